"""The ``modelshelf`` command: run the server, and move models in and out of it.

Exit codes: 0 done, 1 failed (the message says why), 2 usage error, 3 not found,
4 server unreachable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from modelshelf._terminal import ProgressCallback, print_table, progress_bar, size_text

EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_UNREACHABLE = 1, 2, 3, 4
EPILOG = """model URLs are written as TF.js writes them: STORE://NAME, e.g. indexeddb://my-model,
file://team/resnet, s3://prod/classifier. The server is --server or MODELSHELF_URL
(default http://127.0.0.1:8000).

exit codes: 0 done, 1 failed, 2 usage error, 3 not found, 4 server unreachable"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelshelf",
        description="A model store that speaks TensorFlow.js's save/load protocol.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _serve_parser(commands)
    for name, help_text, arguments in _CLIENT_COMMANDS:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        for argument, argument_help in arguments:
            if name == "ls":
                sub.add_argument(argument, help=argument_help, nargs="?", default="")
            else:
                sub.add_argument(argument, help=argument_help)
        _client_options(sub, name)
    return parser


_CLIENT_COMMANDS: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "push",
        "save a TF.js model folder (model.json + weight files) as a new version",
        [
            ("folder", "folder holding model.json"),
            ("url", "where to save, e.g. indexeddb://my-model"),
        ],
    ),
    (
        "pull",
        "write a model into a folder as it was saved (tfjs-node file:// loads it)",
        [("url", "model URL"), ("folder", "destination folder (created if missing)")],
    ),
    (
        "export",
        "write NAME.json and NAME.weights.bin, as tf.io.browserDownloads does",
        [("url", "model URL"), ("folder", "destination folder (created if missing)")],
    ),
    (
        "ls",
        "list models of a store, optionally under a name prefix",
        [("url", "STORE or STORE://PREFIX (default: every store)")],
    ),
    ("info", "show a model's current version and sizes", [("url", "model URL")]),
    ("versions", "list a model's versions, oldest first", [("url", "model URL")]),
    ("rm", "remove a model, or one version with --version", [("url", "model URL")]),
    (
        "cp",
        "copy a model's current version to another URL, in any store",
        [("source", "model URL"), ("destination", "model URL")],
    ),
    (
        "mv",
        "move a model with all its versions; the source goes once the copy is verified",
        [("source", "model URL"), ("destination", "model URL")],
    ),
]


def _serve_parser(commands: Any) -> None:
    from modelshelf.service.cli import add_serve_arguments

    serve = commands.add_parser(
        "serve",
        help="run the server",
        description="Run the modelshelf server. With no configuration it keeps models in "
        "./data: 'file' (plain files), 'indexeddb' and 'localstorage' (SQLite).",
    )
    add_serve_arguments(serve)


def _client_options(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--server", metavar="URL", help="the server (default: MODELSHELF_URL)")
    parser.add_argument("--token", help="bearer token sent as Authorization (MODELSHELF_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print JSON, for scripts")
    if command in ("pull", "export", "rm"):
        parser.add_argument("--version", help="a version id (default: the current version)")
    if command == "export":
        parser.add_argument("--prefix", help="file prefix (default: the name's last segment)")
    if command in ("push", "pull", "export"):
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from modelshelf.service.cli import serve

        serve(args)
        return
    sys.exit(_run_client_command(args))


def _run_client_command(args: argparse.Namespace) -> int:
    from modelshelf import (
        Client,
        InvalidModelError,
        InvalidRequestError,
        ModelshelfError,
        NotFoundError,
        UnavailableError,
    )

    token = args.token or os.environ.get("MODELSHELF_TOKEN")
    try:
        with Client(args.server, token=token, timeout=600.0) as client:
            _COMMANDS[args.command](client, args)
    except NotFoundError as error:
        return _fail(error.message, EXIT_NOT_FOUND)
    except UnavailableError as error:
        return _fail(error.message, EXIT_UNREACHABLE)
    except InvalidModelError as error:
        return _fail(error.message, EXIT_FAILED)
    except InvalidRequestError as error:
        return _fail(error.message, EXIT_USAGE)
    except ModelshelfError as error:
        return _fail(error.message, EXIT_FAILED)
    except OSError as error:
        return _fail(f"{error}", EXIT_FAILED)
    return 0


def _fail(message: str, code: int) -> int:
    print(f"modelshelf: {message}", file=sys.stderr)
    return code


def _push(client: Any, args: argparse.Namespace) -> None:
    with _progress(args, "push") as progress:
        result = client.push(args.folder, args.url, progress=progress)
    _print(args, result.model_dump(), f"saved {result.modelUrl} version {result.versionId}")


def _pull(client: Any, args: argparse.Namespace) -> None:
    with _progress(args, "pull") as progress:
        path = client.pull(args.url, args.folder, version=args.version, progress=progress)
    _print(args, {"modelJson": str(path)}, f"wrote {path}")


def _export(client: Any, args: argparse.Namespace) -> None:
    with _progress(args, "export") as progress:
        paths = client.export(
            args.url, args.folder, version=args.version, prefix=args.prefix, progress=progress
        )
    _print(args, {"files": [str(p) for p in paths]}, "wrote " + ", ".join(map(str, paths)))


def _ls(client: Any, args: argparse.Namespace) -> None:
    targets = [args.url] if args.url else [store.name for store in client.list_stores()]
    models = {}
    for target in targets:
        models.update({url: info.model_dump() for url, info in client.list_models(target).items()})
    rows = [
        [url, info["dateSaved"], size_text(info["weightDataBytes"])] for url, info in models.items()
    ]
    _print_rows(args, models, ["model", "saved", "weights"], rows, empty="no models")


def _info(client: Any, args: argparse.Namespace) -> None:
    info = client.get_model_info(args.url)
    sizes = info.modelArtifactsInfo
    text = "\n".join(
        [
            info.url,
            f"current version  {info.currentVersion}",
            f"saved            {sizes.dateSaved}",
            f"versions         {len(info.versions)}",
            f"topology         {size_text(sizes.modelTopologyBytes)}",
            f"weights          {size_text(sizes.weightDataBytes)}",
        ]
    )
    _print(args, info.model_dump(), text)


def _versions(client: Any, args: argparse.Namespace) -> None:
    versions = client.list_versions(args.url)
    rows = [[v.id, v.dateSaved, size_text(v.modelArtifactsInfo.weightDataBytes)] for v in versions]
    _print_rows(args, [v.model_dump() for v in versions], ["version", "saved", "weights"], rows)


def _rm(client: Any, args: argparse.Namespace) -> None:
    info = client.remove_model(args.url, args.version)
    what = f"version {args.version} of {info.url}" if args.version else info.url
    _print(args, info.model_dump(), f"removed {what}")


def _cp(client: Any, args: argparse.Namespace) -> None:
    info = client.copy_model(args.source, args.destination)
    _print(args, info.model_dump(), f"copied {args.source} to {info.url} ({info.currentVersion})")


def _mv(client: Any, args: argparse.Namespace) -> None:
    info = client.move_model(args.source, args.destination)
    _print(args, info.model_dump(), f"moved {args.source} to {info.url}")


_COMMANDS: dict[str, Callable[[Any, argparse.Namespace], None]] = {
    "push": _push,
    "pull": _pull,
    "export": _export,
    "ls": _ls,
    "info": _info,
    "versions": _versions,
    "rm": _rm,
    "cp": _cp,
    "mv": _mv,
}


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text)


def _print_rows(
    args: argparse.Namespace,
    data: Any,
    headers: list[str],
    rows: list[list[str]],
    empty: str = "",
) -> None:
    """JSON, a table on a terminal, or tab-separated rows for ``cut`` and ``awk``."""
    if args.json:
        _print(args, data, "")
        return
    print_table(headers, rows, "\n".join("\t".join(row) for row in rows) if rows else empty)


@contextmanager
def _progress(args: argparse.Namespace, verb: str) -> Iterator[ProgressCallback | None]:
    """A progress bar on stderr when it is a terminal, unless --no-progress."""
    if getattr(args, "no_progress", False) or not sys.stderr.isatty():
        yield None
        return
    with progress_bar(verb) as progress:
        yield progress


if __name__ == "__main__":
    main()
