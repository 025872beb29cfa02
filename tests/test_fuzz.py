"""Fuzzing a live server: Schemathesis over the OpenAPI document, and broken multipart saves.

Bounded in time and count; never a 5xx, every response as documented, nothing partial stored.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.modelfactory import ModelFixture, dense_model, every_dtype_model, sharded_model
from tests.support.formdata import form_body

FUZZ_DIR = Path(__file__).parent / "fuzz"
GRAPH = Path(__file__).parent / "fixtures" / "graph_model"
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance,unsupported_method,"
    "allow_header_conformance"
)


@pytest.fixture(scope="module")
def server(serve_module: Callable[..., str]) -> str:
    url = serve_module("indexeddb", "file", max_body_bytes=4 << 20)
    files = [("model.json", ("model.json", (GRAPH / "model.json").read_bytes()))]
    files += [(p.name, (p.name, p.read_bytes())) for p in sorted(GRAPH.glob("*.bin"))]
    assert httpx.post(f"{url}/v1/models/indexeddb/fuzz/model", files=files).status_code == 201
    return url


def test_schemathesis_finds_no_server_errors_or_schema_violations(server: str) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if st is None:
        pytest.fail("schemathesis is not installed; pip install -e '.[test]'")
    completed = subprocess.run(
        [
            st,
            "run",
            f"{server}/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            "40",
            "--max-time",
            "120",
            "--seed",
            "20261126",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=FUZZ_DIR,
    )
    report = completed.stdout[-6000:]
    assert completed.returncode == 0, report
    assert "passed" in report


BOUNDARY = b"fuzzboundary"


def tfjs_body(model: ModelFixture) -> bytes:
    parts = [("model.json", model.model_json), ("model.weights.bin", model.weight_bytes)]
    return form_body(parts, BOUNDARY.decode())


def mutations(body: bytes, rng: random.Random) -> Iterator[tuple[str, bytes, bytes]]:
    """(what, content-type boundary, body) for one broken variant of a valid upload."""
    cut = rng.randrange(len(body))
    yield "truncated", BOUNDARY, body[:cut]
    yield "wrong boundary", b"otherboundary", body
    yield "boundary prefix", BOUNDARY[:-1], body
    flipped = bytearray(body)
    flipped[cut] ^= 1 << rng.randrange(8)
    yield "bit flip", BOUNDARY, bytes(flipped)
    yield (
        "huge header",
        BOUNDARY,
        body.replace(b"\r\n\r\n", b"\r\nX-Pad: " + b"a" * 70_000 + b"\r\n\r\n", 1),
    )
    weights_at = body.index(b'name="model.weights.bin"')
    part_start = body.rindex(b"--" + BOUNDARY, 0, weights_at)
    yield (
        "duplicate part",
        BOUNDARY,
        body[:part_start]
        + body[part_start:].replace(b"--" + BOUNDARY + b"--", b"", 1)
        + body[part_start:],
    )
    yield "no closing delimiter", BOUNDARY, body[: body.rindex(b"--" + BOUNDARY + b"--")]
    yield (
        "extra bytes in weights",
        BOUNDARY,
        body.replace(b"\r\n--" + BOUNDARY + b"--", b"\0\r\n--" + BOUNDARY + b"--"),
    )
    yield "garbage", BOUNDARY, rng.randbytes(rng.randrange(1, 5000))
    yield "empty", BOUNDARY, b""


@pytest.mark.parametrize("seed", range(6))
def test_broken_multipart_saves_never_5xx_and_store_nothing(server: str, seed: int) -> None:
    rng = random.Random(seed)
    model = [dense_model(seed), every_dtype_model(), sharded_model()][seed % 3]
    if len(model.files) > 1:
        model = dense_model(seed)
    body = tfjs_body(model)
    name = f"broken/{seed}"
    with httpx.Client(base_url=server, timeout=30) as client:
        for what, boundary, variant in mutations(body, rng):
            response = client.post(
                f"/v1/models/indexeddb/{name}",
                content=variant,
                headers={"Content-Type": "multipart/form-data; boundary=" + boundary.decode()},
            )
            assert response.status_code < 500, (what, response.text)
            if response.status_code == 201:  # a harmless mutation (e.g. a flipped weight bit)
                client.delete(f"/v1/models/indexeddb/{name}")
                continue
            body_json = response.json()
            assert set(body_json) == {"code", "message"}, (what, body_json)
            assert client.get(f"/v1/models/indexeddb/{name}").status_code == 404, what
        listing = client.get("/v1/models/indexeddb", params={"prefix": "broken/"}).json()
        assert listing == {}
