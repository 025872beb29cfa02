"""Range requests on weight files (issue 11), through a real server over every store.

One range answers 206; past the end answers 416; anything else (malformed, several ranges,
HEAD, a stale If-Range) answers 200 with the whole file. ``curl -C -`` resumes a download.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from modelshelf.backends.sqlite import CHUNK_BYTES
from modelshelf.modelstore import ModelStore
from tests.modelfactory import ModelFixture, http_saved
from tests.storehelpers import uploads
from tests.support.formdata import form_body
from tests.support.spy_backend import SpyBackend
from tests.support.stores import SERVER_STORES

BOUNDARY = "----formdata-undici-0123456789"
ORIGIN = "http://page.example"
STORES = [
    pytest.param(name, marks=pytest.mark.s3) if kind == "s3" else name
    for name, kind in SERVER_STORES.items()
]


def big_model() -> ModelFixture:
    """One weight file past two SQLite chunk rows, its size no multiple of a row."""
    values = np.random.default_rng(11).standard_normal(CHUNK_BYTES // 2 + 3001).astype("<f4")
    entries = [{"name": "w", "shape": [len(values)], "dtype": "float32"}]
    return http_saved(entries, values.tobytes())


MODEL = big_model()
DATA = MODEL.weight_bytes
SIZE = len(DATA)
ROW = CHUNK_BYTES  # a SQLite chunk row
assert SIZE > 2 * CHUNK_BYTES and SIZE % CHUNK_BYTES


@dataclass(frozen=True)
class Weights:
    url: str
    etag: str


@pytest.fixture(scope="module")
def server(serve_module: Callable[..., str]) -> str:
    return serve_module()


@pytest.fixture(scope="module", params=STORES)
def weights(server: str, request: pytest.FixtureRequest) -> Weights:
    """The model saved once per store; its weight file's URL and ETag."""
    store = request.param
    body = form_body([("model.json", MODEL.model_json), ("model.weights.bin", DATA)], BOUNDARY)
    saved = httpx.post(
        f"{server}/v1/models/{store}/ranges/model",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        timeout=60,
    )
    assert saved.status_code == 201, saved.text
    url = f"{server}/v1/models/{store}/ranges/model/~v/{saved.json()['versionId']}/"
    whole = httpx.get(url + "model.weights.bin", timeout=60)
    assert whole.content == DATA
    return Weights(url + "model.weights.bin", whole.headers["etag"])


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as http:
        yield http


def assert_whole_file(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text[:200]
    assert response.content == DATA
    assert response.headers["content-length"] == str(SIZE)
    assert response.headers["accept-ranges"] == "bytes"
    assert "content-range" not in response.headers


def test_the_whole_file_says_it_accepts_ranges(weights: Weights, client: httpx.Client) -> None:
    assert_whole_file(client.get(weights.url))
    head = client.head(weights.url)
    assert head.headers["accept-ranges"] == "bytes"
    assert head.headers["content-length"] == str(SIZE)


SATISFIABLE = {
    "first byte": ("bytes=0-0", 0, 1),
    "first bytes": ("bytes=0-99", 0, 100),
    "middle": ("bytes=5000-5999", 5000, 6000),
    "across a row": (f"bytes={ROW - 6}-{ROW + 13}", ROW - 6, ROW + 14),
    "across two rows": (f"bytes={ROW - 6}-{2 * ROW}", ROW - 6, 2 * ROW + 1),
    "open-ended": (f"bytes={ROW + 1}-", ROW + 1, SIZE),
    "suffix": ("bytes=-500", SIZE - 500, SIZE),
    "suffix past the start": (f"bytes=-{SIZE + 10}", 0, SIZE),
    "exact last byte": (f"bytes={SIZE - 1}-{SIZE - 1}", SIZE - 1, SIZE),
    "last byte open-ended": (f"bytes={SIZE - 1}-", SIZE - 1, SIZE),
    "last-pos past the end": (f"bytes={SIZE - 10}-{SIZE + 1000}", SIZE - 10, SIZE),
    "huge last-pos": (f"bytes=7-{'9' * 40}", 7, SIZE),
    "unit in capitals": ("Bytes=3-4", 3, 5),
    "whitespace": ("bytes = 3-4", 3, 5),
}


@pytest.mark.parametrize("case", SATISFIABLE.values(), ids=SATISFIABLE.keys())
def test_one_range_answers_206_with_its_bytes(
    weights: Weights, client: httpx.Client, case: tuple[str, int, int]
) -> None:
    header, start, end = case
    response = client.get(weights.url, headers={"Range": header})
    assert response.status_code == 206, response.text[:200]
    assert response.content == DATA[start:end]
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{SIZE}"
    assert response.headers["content-length"] == str(end - start)
    assert response.headers["etag"] == weights.etag
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-type"] == "application/octet-stream"


UNSATISFIABLE = {
    "at the end": f"bytes={SIZE}-",
    "past the end": f"bytes={SIZE + 5}-{SIZE + 10}",
    "empty suffix": "bytes=-0",
    "a start too long for int()": f"bytes={'9' * 5000}-",
}


@pytest.mark.parametrize("header", UNSATISFIABLE.values(), ids=UNSATISFIABLE.keys())
def test_a_range_past_the_end_answers_416(
    weights: Weights, client: httpx.Client, header: str
) -> None:
    response = client.get(weights.url, headers={"Range": header, "Origin": ORIGIN})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{SIZE}"
    assert response.json()["code"] == "range_not_satisfiable"
    assert f"{SIZE} bytes" in response.json()["message"]
    assert "immutable" not in response.headers.get("cache-control", "")
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "content-range" in exposed


IGNORED = {
    "start after end": "bytes=10-5",
    "two ranges (answered whole, no multipart)": "bytes=0-1,5-6",
    "two ranges with a space": "bytes=0-1, 5-6",
    "overlapping ranges": "bytes=0-100,50-150",
    "not a number": "bytes=abc-",
    "not digits of ASCII": "bytes=١-٢",
    "a bare dash": "bytes=-",
    "nothing": "bytes=",
    "no unit": "0-5",
    "another unit": "items=0-5",
    "negative": "bytes=--5",
}


@pytest.mark.parametrize("header", IGNORED.values(), ids=IGNORED.keys())
def test_a_range_header_it_does_not_honour_answers_the_whole_file(
    weights: Weights, client: httpx.Client, header: str
) -> None:
    assert_whole_file(client.get(weights.url, headers={"Range": header.encode()}))


def test_if_range_with_the_etag_honours_the_range(weights: Weights, client: httpx.Client) -> None:
    response = client.get(weights.url, headers={"Range": "bytes=10-19", "If-Range": weights.etag})
    assert response.status_code == 206
    assert response.content == DATA[10:20]


@pytest.mark.parametrize(
    "validator",
    ['"0000"', "W/{etag}", "Wed, 21 Oct 2015 07:28:00 GMT", "{etag}x"],
    ids=["another etag", "weak", "a date", "garbled"],
)
def test_if_range_not_matching_answers_the_whole_file(
    weights: Weights, client: httpx.Client, validator: str
) -> None:
    headers = {"Range": "bytes=10-19", "If-Range": validator.format(etag=weights.etag)}
    assert_whole_file(client.get(weights.url, headers=headers))


@pytest.mark.parametrize("header", ["bytes=10-19", f"bytes={SIZE}-"], ids=["range", "past end"])
def test_if_none_match_answers_304_before_any_range(
    weights: Weights, client: httpx.Client, header: str
) -> None:
    headers = {"Range": header, "If-None-Match": weights.etag}
    response = client.get(weights.url, headers=headers)
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == weights.etag


def test_head_ignores_range(weights: Weights, client: httpx.Client) -> None:
    # RFC 9110 §14.2: range handling is defined for GET only.
    response = client.head(weights.url, headers={"Range": "bytes=0-9"})
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(SIZE)
    assert response.headers["accept-ranges"] == "bytes"
    assert "content-range" not in response.headers


def test_cross_origin_pages_may_send_range_and_read_content_range(
    weights: Weights, client: httpx.Client
) -> None:
    preflight = client.options(
        weights.url,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "range,if-range",
        },
    )
    assert preflight.status_code == 200
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "range" in allowed and "if-range" in allowed
    response = client.get(weights.url, headers={"Origin": ORIGIN, "Range": "bytes=0-3"})
    assert response.status_code == 206
    exposed = response.headers["access-control-expose-headers"].lower().split(", ")
    assert {"content-range", "accept-ranges", "content-length", "etag"} <= set(exposed)


def curl(*args: str, fail: bool = True) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("curl")
    if binary is None:
        pytest.fail("curl is not installed; run `apt-get install -y curl`")
    return subprocess.run(
        [binary, "--silent", "--show-error", *(["--fail"] if fail else []), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_curl_resumes_a_partial_download(weights: Weights, tmp_path: Path) -> None:
    target = tmp_path / "model.weights.bin"
    target.write_bytes(DATA[: CHUNK_BYTES + 1234])  # a download cut off in the second row
    resumed = curl("-C", "-", "-o", str(target), "-w", "%{http_code} %{size_download}", weights.url)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == f"206 {SIZE - CHUNK_BYTES - 1234}"
    assert target.read_bytes() == DATA


def test_curl_resuming_a_complete_download_changes_nothing(
    weights: Weights, tmp_path: Path
) -> None:
    target = tmp_path / "model.weights.bin"
    target.write_bytes(DATA)
    # Without --fail, curl takes a 416 to a resume as "already complete" and keeps the file
    # as it is, the JSON error body unwritten.
    resumed = curl("-C", "-", "-o", str(target), "-w", "%{http_code}", weights.url, fail=False)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == "416"
    assert target.read_bytes() == DATA


async def test_the_model_layer_passes_the_range_to_the_backend(model_store: ModelStore) -> None:
    spy = SpyBackend(model_store.backend)
    store = ModelStore("indexeddb", spy)
    saved = await store.save("m", MODEL.model_json, uploads(MODEL.files, 65536))
    spy.reset()
    stored, stream = await store.open_weight_file(
        "m", saved.id, "model.weights.bin", start=CHUNK_BYTES - 1, end=CHUNK_BYTES + 1
    )
    data = b"".join([chunk async for chunk in stream])
    await stream.aclose()
    assert data == DATA[CHUNK_BYTES - 1 : CHUNK_BYTES + 1]
    assert (stored.size, stream.info.size) == (SIZE, SIZE)
    assert (stream.start, stream.end, stream.length) == (CHUNK_BYTES - 1, CHUNK_BYTES + 1, 2)
    assert spy.ranges[-1] == (CHUNK_BYTES - 1, CHUNK_BYTES + 1)
