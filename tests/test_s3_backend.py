"""What only the S3 backend does: multipart uploads, S3 errors, prefixes, paged listings.

The generic contract every backend keeps is in test_backend_contract.py; these run against
the session's SeaweedFS server (conftest's ``seaweed`` fixture) in a bucket of their own.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from modelshelf.backends import (
    InsufficientStorageError,
    InvalidKeyError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    StorageError,
    UnavailableError,
    open_backend,
)
from modelshelf.backends import s3 as s3_module
from modelshelf.backends.ops import iter_keys, put_bytes, read_all
from modelshelf.backends.s3 import MIN_PART_BYTES, S3Backend
from tests.support.seaweed import SeaweedS3, free_ports

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MakeBackend = Callable[..., S3Backend]
MIB = 1 << 20


async def chunked(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def breaking_after(data: bytes) -> AsyncIterator[bytes]:
    async for chunk in chunked(data):
        yield chunk
    raise ConnectionResetError("source broke")


@pytest.fixture(scope="module")
def bucket(seaweed: SeaweedS3) -> str:
    name = f"s3-backend-{uuid.uuid4().hex[:8]}"
    seaweed.create_bucket(name)
    return name


@pytest.fixture
def raw_client(seaweed: SeaweedS3) -> Iterator[S3Client]:
    client = seaweed.client()
    yield client
    client.close()


@pytest.fixture
async def make_backend(seaweed: SeaweedS3, bucket: str) -> AsyncIterator[MakeBackend]:
    """Backends on the test bucket, each under a fresh prefix unless one is given."""
    opened: list[S3Backend] = []

    def make(prefix: str | None = None, **options: Any) -> S3Backend:
        settings: dict[str, Any] = {
            "endpoint_url": seaweed.endpoint_url,
            "region": seaweed.region,
            "access_key": seaweed.access_key,
            "secret_key": seaweed.secret_key,
        }
        backend = S3Backend(
            options.pop("bucket", bucket),
            f"t-{uuid.uuid4().hex[:12]}" if prefix is None else prefix,
            **(settings | options),
        )
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        await backend.close()


def pending_uploads(client: S3Client, bucket: str, prefix: str) -> list[str]:
    uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
    return [upload.get("Key", "") for upload in uploads]


# -- multipart uploads ---------------------------------------------------------------------


@pytest.mark.s3
@pytest.mark.parametrize(
    ("size", "parts"),
    [(MIN_PART_BYTES, 0), (MIN_PART_BYTES + 1, 2), (2 * MIN_PART_BYTES + MIB, 3)],
    ids=["one-full-part", "part-plus-one-byte", "three-parts"],
)
async def test_put_uses_multipart_beyond_one_part(
    make_backend: MakeBackend, raw_client: S3Client, size: int, parts: int
) -> None:
    backend = make_backend(part_size=MIN_PART_BYTES)
    data = os.urandom(size)
    info = await backend.put("weights.bin", chunked(data))
    assert info.size == size
    # A multipart ETag is "<md5 of part md5s>-<part count>"; a single PUT's has no dash.
    assert info.etag.endswith(f"-{parts}") if parts else "-" not in info.etag
    assert (await backend.head("weights.bin")).etag == info.etag
    assert await read_all(backend, "weights.bin") == data
    assert pending_uploads(raw_client, backend.bucket, backend.prefix) == []


@pytest.mark.s3
async def test_missing_etag_from_complete_falls_back_to_head(
    make_backend: MakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Some S3 servers answer CompleteMultipartUpload without an ETag (s3-testing.md).
    complete = s3_module._MultipartUpload._complete
    monkeypatch.setattr(s3_module._MultipartUpload, "_complete", lambda self: complete(self) and "")
    backend = make_backend(part_size=MIN_PART_BYTES)
    info = await backend.put("k", chunked(os.urandom(MIN_PART_BYTES + 10)))
    assert info.etag == (await backend.head("k")).etag
    assert info.etag.endswith("-2")


@pytest.mark.s3
async def test_source_failing_mid_multipart_leaves_nothing(
    make_backend: MakeBackend, raw_client: S3Client
) -> None:
    backend = make_backend(part_size=MIN_PART_BYTES)
    await put_bytes(backend, "old", b"old value")
    with pytest.raises(ConnectionResetError):
        await backend.put("new", breaking_after(os.urandom(2 * MIN_PART_BYTES + 100)))
    with pytest.raises(ConnectionResetError):
        await backend.put("old", breaking_after(os.urandom(2 * MIN_PART_BYTES + 100)))
    with pytest.raises(NotFoundError):
        await backend.head("new")
    assert await read_all(backend, "old") == b"old value"
    assert pending_uploads(raw_client, backend.bucket, backend.prefix) == []


@pytest.mark.s3
async def test_cancelled_put_aborts_its_upload(
    make_backend: MakeBackend, raw_client: S3Client
) -> None:
    backend = make_backend(part_size=MIN_PART_BYTES)
    first_part_sent = asyncio.Event()

    async def stalling() -> AsyncIterator[bytes]:
        yield os.urandom(MIN_PART_BYTES + 1)  # one full part, sent while the next is read
        first_part_sent.set()
        await asyncio.Event().wait()
        yield b"never"

    put = asyncio.create_task(backend.put("stalled", stalling()))
    await asyncio.wait_for(first_part_sent.wait(), timeout=30)
    for _ in range(300):  # the part goes out beside the stalled read
        if pending_uploads(raw_client, backend.bucket, backend.prefix):
            break
        await asyncio.sleep(0.1)
    assert pending_uploads(raw_client, backend.bucket, backend.prefix) == [
        backend.prefix + "stalled"
    ]
    put.cancel()
    with pytest.raises(asyncio.CancelledError):
        await put
    assert pending_uploads(raw_client, backend.bucket, backend.prefix) == []
    with pytest.raises(NotFoundError):
        await backend.head("stalled")


@pytest.mark.s3
async def test_the_next_part_is_received_while_one_is_sent(
    make_backend: MakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Receiving and sending overlap (issue 12: a save within 1.3x of boto3's upload_file)."""
    backend = make_backend(part_size=MIN_PART_BYTES)
    next_part_read = threading.Event()
    overlapped: list[bool] = []
    send_part = s3_module._MultipartUpload._send_part

    def watching(self: Any, data: bytearray) -> None:
        overlapped.append(next_part_read.wait(timeout=10))  # in the thread that sends
        send_part(self, data)

    monkeypatch.setattr(s3_module._MultipartUpload, "_send_part", watching)
    value = os.urandom(3 * MIN_PART_BYTES + 7)

    async def source() -> AsyncIterator[bytes]:
        for offset in range(0, len(value), MIB):
            if offset >= MIN_PART_BYTES + MIB:
                next_part_read.set()  # a whole MiB of the second part came in
            yield value[offset : offset + MIB]

    await backend.put("overlapped", source())
    assert await read_all(backend, "overlapped") == value
    assert overlapped[0], "the first part waited for its upload before the second was read"


@pytest.mark.s3
async def test_cancel_during_a_part_upload_aborts_after_it(
    make_backend: MakeBackend, raw_client: S3Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    part_uploaded, release = threading.Event(), threading.Event()
    send_part = s3_module._MultipartUpload._send_part

    def slow_send_part(upload: Any, data: bytes) -> None:
        send_part(upload, data)
        part_uploaded.set()
        release.wait(timeout=30)  # the worker thread is still busy when the put is cancelled

    monkeypatch.setattr(s3_module._MultipartUpload, "_send_part", slow_send_part)
    backend = make_backend(part_size=MIN_PART_BYTES)
    put = asyncio.create_task(backend.put("k", chunked(os.urandom(2 * MIN_PART_BYTES + 1))))
    try:
        await asyncio.to_thread(part_uploaded.wait, 30)
        put.cancel()
        await asyncio.sleep(0.2)
        assert not put.done()  # the abort waits for the thread instead of racing it
    finally:
        release.set()
    with pytest.raises(asyncio.CancelledError):
        await put
    assert pending_uploads(raw_client, backend.bucket, backend.prefix) == []


# -- errors --------------------------------------------------------------------------------


@pytest.mark.s3
@pytest.mark.parametrize("access_key", ["right", "unknown"])
async def test_wrong_credentials_are_permission_denied(
    make_backend: MakeBackend, seaweed: SeaweedS3, access_key: str
) -> None:
    key_id = seaweed.access_key if access_key == "right" else "NOSUCHKEY"
    backend = make_backend(access_key=key_id, secret_key="not-the-secret")
    with pytest.raises(PermissionDeniedError, match="check the credentials"):
        await put_bytes(backend, "k", b"v")
    for operation in (backend.get, backend.head, backend.delete):
        with pytest.raises(PermissionDeniedError):
            await operation("k")
    with pytest.raises(PermissionError):  # the error tree's builtin twin
        await backend.list()


@pytest.mark.s3
async def test_missing_bucket_is_unavailable_with_a_fix(make_backend: MakeBackend) -> None:
    backend = make_backend(bucket="no-such-bucket-here")
    hint = "cannot find its S3 bucket: the server's operator must create it"
    # head and delete go through HEAD, whose 404 has no body to tell key from bucket.
    for operation in (backend.head, backend.get, backend.delete):
        with pytest.raises(UnavailableError, match=hint) as raised:
            await operation("k")
        # Clients see the store, never the endpoint or the bucket (issue 8.8).
        assert "127.0.0.1" not in str(raised.value)
        assert "no-such-bucket-here" not in str(raised.value)
    with pytest.raises(UnavailableError, match=hint):
        await backend.list()
    with pytest.raises(UnavailableError, match=hint):
        await put_bytes(backend, "k", b"v")


@pytest.mark.s3
async def test_missing_key_in_existing_bucket_is_not_found(make_backend: MakeBackend) -> None:
    backend = make_backend()
    for _ in range(2):  # the second HEAD skips the bucket check
        with pytest.raises(NotFoundError):
            await backend.head("missing")


async def test_unreachable_endpoint_is_unavailable_quickly() -> None:
    port = free_ports(1)[0]
    backend = S3Backend(
        "bucket",
        endpoint_url=f"http://127.0.0.1:{port}",
        region="us-east-1",
        access_key="K",
        secret_key="S",
        connect_timeout=0.5,
        read_timeout=1,
        max_attempts=1,
    )
    started = time.monotonic()
    try:
        with pytest.raises(UnavailableError, match="cannot reach its S3 server") as raised:
            await backend.head("k")
        assert str(port) not in str(raised.value)
        with pytest.raises(ConnectionError):
            await put_bytes(backend, "k", b"v")
    finally:
        await backend.close()
    assert time.monotonic() - started < 5


async def test_missing_credentials_are_permission_denied(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    backend = S3Backend("bucket", endpoint_url="http://127.0.0.1:9", region="us-east-1")
    try:
        with pytest.raises(PermissionDeniedError, match="AWS_ACCESS_KEY_ID"):
            await backend.head("k")
    finally:
        await backend.close()


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},  # type: ignore[typeddict-item]
        "PutObject",
    )


@pytest.mark.parametrize(
    ("native", "expected"),
    [
        (client_error("NoSuchKey", 404), NotFoundError),
        (client_error("NoSuchBucket", 404), UnavailableError),
        (client_error("AccessDenied", 403), PermissionDeniedError),
        (client_error("412", 412), PreconditionFailedError),
        (client_error("EntityTooLarge", 400), InsufficientStorageError),
        (client_error("SlowDown", 503), UnavailableError),
        (client_error("SomethingNew", 502), UnavailableError),
        (client_error("SomethingNew", 400), StorageError),
        (EndpointConnectionError(endpoint_url="http://x"), UnavailableError),
    ],
    ids=lambda value: type(value).__name__ if not isinstance(value, ClientError) else None,
)
def test_native_errors_are_translated(native: Exception, expected: type[StorageError]) -> None:
    with pytest.raises(StorageError) as raised, s3_module._translated("s3", "b", "http://x", "k"):
        raise native
    assert type(raised.value) is expected
    assert raised.value.__cause__ is native
    assert "http://x" not in str(raised.value)  # the log has the endpoint, clients do not


# -- prefixes and listing ------------------------------------------------------------------


@pytest.mark.s3
async def test_prefixes_isolate_backends_in_one_bucket(make_backend: MakeBackend) -> None:
    root = f"iso-{uuid.uuid4().hex[:8]}"
    shelf, neighbour = make_backend(f"{root}/shelf"), make_backend(f"/{root}/shelf-b/")
    assert neighbour.prefix == f"{root}/shelf-b/"  # normalised to one trailing slash
    await put_bytes(shelf, "model.json", b"shelf")
    await put_bytes(neighbour, "model.json", b"neighbour")
    await put_bytes(neighbour, "only-here", b"x")

    assert await read_all(shelf, "model.json") == b"shelf"
    assert [item.key for item in (await shelf.list()).items] == ["model.json"]
    assert [item.key for item in (await neighbour.list()).items] == ["model.json", "only-here"]
    with pytest.raises(NotFoundError):
        await shelf.head("only-here")

    await shelf.delete("model.json")
    assert await read_all(neighbour, "model.json") == b"neighbour"
    whole = make_backend(root)
    assert [item.key async for item in iter_keys(whole)] == [
        "shelf-b/model.json",
        "shelf-b/only-here",
    ]


@pytest.mark.s3
async def test_listing_pages_across_many_s3_requests(
    make_backend: MakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_module, "MAX_LIST_PAGE", 4)  # so one page takes several requests
    backend = make_backend()
    keys = [f"m/{number:02d}" for number in range(23)]
    await asyncio.gather(*(put_bytes(backend, key, key.encode()) for key in [*keys, "n/other"]))

    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = await backend.list("m/", start_after=cursor, limit=10)
        pages.append([item.key for item in page.items])
        if page.next_cursor is None:
            break
        assert page.next_cursor == page.items[-1].key
        cursor = page.next_cursor
    assert [len(page) for page in pages] == [10, 10, 3]
    assert [key for page in pages for key in page] == keys
    assert (await backend.list("m/", limit=23)).next_cursor is None
    assert (await backend.list(limit=0)).items == []


@pytest.mark.s3
async def test_reading_part_of_a_value_then_closing_releases_the_connection(
    make_backend: MakeBackend,
) -> None:
    backend = make_backend(read_timeout=5)
    await put_bytes(backend, "big", os.urandom(3 * MIB))
    for _ in range(20):  # more than the pool holds, so leaked connections would block
        stream = await backend.get("big")
        assert len(await anext(stream.chunks)) > 0
        await stream.aclose()
        await (await backend.get("big")).aclose()  # closed before the first read
    assert len(await read_all(backend, "big")) == 3 * MIB


@pytest.mark.s3
async def test_empty_put_does_not_stall_the_next_request(make_backend: MakeBackend) -> None:
    # botocore < 1.43.77 with "Expect: 100-continue" stalls the request after a zero-length
    # PUT on the same pooled connection for read_timeout (boto/botocore#3755).
    backend = make_backend(read_timeout=3, max_attempts=1)
    for number in range(3):
        await put_bytes(backend, f"empty-{number}", b"")
        started = time.monotonic()
        await put_bytes(backend, f"full-{number}", b"x" * 300)
        assert time.monotonic() - started < 2


@pytest.mark.s3
async def test_open_backend_from_url(seaweed: SeaweedS3, bucket: str) -> None:
    backend = open_backend(seaweed.backend_url(bucket, "from-url/"))
    try:
        assert isinstance(backend, S3Backend)
        assert backend.prefix == "from-url/"
        await put_bytes(backend, "k", b"v")
        assert (await backend.head("k")).size == 1
    finally:
        await backend.close()


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://?region=x", "needs a bucket"),
        ("s3://b/p?part_size=1024", "part_size must be between"),
        ("s3://b/p?part_size=lots", "part_size must be a number"),
        ("s3://b/p?path_style=maybe", "path_style must be true or false"),
        ("s3://b/p?endpoint=http://x", "unknown s3:// options"),
        ("s3://b/p?access_key=K", "both access_key and secret_key"),
        ("s3://b/../up", "invalid key"),
        ("s3://b?endpoint_url=not%20a%20url", "invalid S3 endpoint_url"),
    ],
)
def test_bad_urls_are_rejected(url: str, message: str) -> None:
    with pytest.raises(InvalidKeyError, match=message):
        open_backend(url)


async def test_url_options_configure_the_client() -> None:
    backend = open_backend(
        "s3://models/a/b/?endpoint_url=http://127.0.0.1:1&region=eu-west-3&part_size=6291456"
    )
    assert isinstance(backend, S3Backend)
    try:
        assert (backend.bucket, backend.prefix, backend.part_size) == ("models", "a/b/", 6 * MIB)
        assert backend._client.meta.config.s3 == {"addressing_style": "path"}  # type: ignore[attr-defined]
        assert backend._client.meta.region_name == "eu-west-3"
        assert backend.capabilities.shared and backend.capabilities.persistent
    finally:
        await backend.close()
