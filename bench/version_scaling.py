"""Issue 9.6: what a save, a load, an info and a remove cost at 2,000 versions vs at 10.

Through the model layer, on each store (file, sqlite, memory; s3 on a SeaweedFS this script
starts, unless --no-s3). For each store: median wall time of --repeat saves and of as many
loads of the current version (model.json, then its weight file) with 10 versions of one
model, then again with --versions versions; the figure that matters is the ratio of the two,
measured in the same run (goal: within 1.5x). Also a listing walk: every page of 7 over
--models models on the file store, against the same walk over 50 models.

Runs against older checkouts too (``--code PATH``), which import ``backends`` rather than
``modelshelf.backends``: so before and after can be measured by one command each.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

from benchkit import REPOSITORY, Report, note, run_metadata, write_json

BUCKET = "version-scaling"


def _import_code(code: Path) -> tuple[Any, Any, Any]:
    sys.path.insert(0, str(code))
    try:
        from modelshelf.backends import open_backend
        from modelshelf.modelstore import ModelStore, WeightUpload
    except ImportError:  # before the single package (issue 9)
        from backends import open_backend  # type: ignore[no-redef]
        from modelstore import ModelStore, WeightUpload  # type: ignore[no-redef]
    return open_backend, ModelStore, WeightUpload


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Cost of saves and loads at many versions, as a ratio to few versions.",
    )
    parser.add_argument("--versions", type=int, default=2000, help="versions of one model")
    parser.add_argument("--models", type=int, default=5000, help="models in the listing walk")
    parser.add_argument("--repeat", type=int, default=15, help="timed saves and loads each")
    parser.add_argument("--stores", default="memory,sqlite,file,s3", help="comma-separated")
    parser.add_argument("--code", type=Path, default=REPOSITORY, help="checkout to measure")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    return parser.parse_args()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.open_backend, self.ModelStore, self.WeightUpload = _import_code(args.code)
        sys.path.insert(0, str(REPOSITORY))
        from tests.modelfactory import dense_model

        self.model = dense_model()
        signature = inspect.signature(self.ModelStore.open_model_json)
        self.new_api = signature.parameters["version_id"].default is None

    async def save(self, store: Any, name: str) -> Any:
        model = self.model

        async def uploads() -> AsyncIterator[Any]:
            for path, data in model.files.items():

                async def chunks(data: bytes = data) -> AsyncIterator[bytes]:
                    yield data

                yield self.WeightUpload(path, chunks())

        return await store.save(name, model.model_json, uploads())

    async def load(self, store: Any, name: str) -> None:
        if self.new_api:
            version, stream = await store.open_model_json(name)
        else:
            version = await store.version(name)
            stream = await store.open_model_json(name, version.id)
        async for _chunk in stream:
            pass
        await stream.aclose()
        _stored, weights = await store.open_weight_file(name, version.id, "model.weights.bin")
        async for _chunk in weights:
            pass
        await weights.aclose()

    async def timed(self, action: Callable[[], Awaitable[Any]]) -> float:
        samples = []
        for _ in range(self.args.repeat):
            started = time.perf_counter()
            await action()
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    async def grow(self, store: Any, name: str, count: int, label: str) -> None:
        have = len(await store.version_ids(name))
        for index in range(have, count):
            await self.save(store, name)
            if index % 500 == 499:
                note(f"  {label}: {index + 1}/{count} versions")

    async def one_store(self, kind: str, url: str) -> dict[str, float]:
        store = self.ModelStore("indexeddb", self.open_backend(url))
        figures: dict[str, float] = {}
        try:
            for count in (10, self.args.versions):
                await self.grow(store, "m", count - self.args.repeat, kind)
                figures[f"save@{count}"] = await self.timed(lambda: self.save(store, "m"))
                figures[f"load@{count}"] = await self.timed(lambda: self.load(store, "m"))
                figures[f"info@{count}"] = await self.timed(lambda: self.info(store, "m"))
            ids = await store.version_ids("m")
            started = time.perf_counter()
            await store.remove("m", ids[0])
            figures["remove@many"] = time.perf_counter() - started
        finally:
            await store.close()
        return figures

    async def info(self, store: Any, name: str) -> None:
        if hasattr(store, "version_page"):
            await store.version(name)
            await store.version_page(name, limit=100)
        else:
            await store.versions(name)

    async def listing_walk(self, root: Path, models: int) -> float:
        store = self.ModelStore("file", self.open_backend(f"file://{root}"))
        try:
            for index in range(models):
                await self.save(store, f"team/m{index:05d}")
                if index % 1000 == 999:
                    note(f"  listing: {index + 1}/{models} models")
            await store.list_models(limit=1)  # a one-time index, if the code has one
            started = time.perf_counter()
            cursor = None
            seen = 0
            while True:
                page = await store.list_models("team/", cursor=cursor, limit=7)
                seen += len(page.models)
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert seen == models, (seen, models)
            return time.perf_counter() - started
        finally:
            await store.close()


@contextmanager
def s3_url(workdir: Path) -> Any:
    from tests.support.seaweed import SeaweedS3

    note("starting SeaweedFS ...")
    with SeaweedS3.start(workdir / "seaweed") as server:
        server.create_bucket(BUCKET)
        yield server.backend_url(BUCKET, "scaling", credentials=False), server.env()


async def main() -> None:
    args = parse_args()
    bench = Bench(args)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="version-scaling-") as temp:
        workdir = Path(temp)
        async with AsyncExitStack():
            for kind in args.stores.split(","):
                note(f"{kind}: growing to {args.versions} versions ...")
                if kind == "s3":
                    with s3_url(workdir) as (url, env):
                        import os

                        os.environ.update(env)
                        results[kind] = await bench.one_store(kind, url)
                else:
                    url = {
                        "memory": "memory://",
                        "file": f"file://{workdir / 'file'}",
                        "sqlite": f"sqlite://{workdir / 'store.sqlite'}",
                    }[kind]
                    results[kind] = await bench.one_store(kind, url)
        note(f"listing walk: {args.models} models vs 50 ...")
        few = await bench.listing_walk(workdir / "few", 50)
        many = await bench.listing_walk(workdir / "many", args.models)
    report = Report(
        f"Version scaling ({args.code}): median ms, ratio = at {args.versions} / at 10 versions",
        [
            "store",
            "save@10",
            f"save@{args.versions}",
            "ratio",
            "load@10",
            f"load@{args.versions}",
            "ratio",
            f"info@{args.versions}",
            "remove 1 of many",
        ],
    )
    for kind, fig in results.items():
        many_v = args.versions
        report.add(
            kind,
            f"{fig['save@10'] * 1e3:.1f}",
            f"{fig[f'save@{many_v}'] * 1e3:.1f}",
            f"{fig[f'save@{many_v}'] / fig['save@10']:.2f}x",
            f"{fig['load@10'] * 1e3:.1f}",
            f"{fig[f'load@{many_v}'] * 1e3:.1f}",
            f"{fig[f'load@{many_v}'] / fig['load@10']:.2f}x",
            f"{fig[f'info@{many_v}'] * 1e3:.1f}",
            f"{fig['remove@many'] * 1e3:.1f}",
        )
    per_page_few = few / max(1, -(-50 // 7))
    per_page_many = many / max(1, -(-args.models // 7))
    report.notes.append(
        f"listing walk, pages of 7, file store: {args.models} models {many:.2f} s "
        f"({per_page_many * 1e3:.2f} ms/page), 50 models {few:.3f} s "
        f"({per_page_few * 1e3:.2f} ms/page): {per_page_many / per_page_few:.2f}x per page"
    )
    print(report.render())
    write_json(
        args.json,
        {
            "meta": run_metadata(**vars(args) | {"code": str(args.code)}),
            "results": results,
            "listing": {"few": few, "many": many},
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
