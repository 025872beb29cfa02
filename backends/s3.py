"""``s3://BUCKET[/PREFIX]``: values as objects in an S3 bucket (AWS or S3-compatible).

boto3 blocks, so every call runs in a worker thread and nothing of boto3 leaves this
module. A value larger than one part goes up as a multipart upload that is aborted on any
failure (S3 failing, the source raising, the task being cancelled), so a failed put leaves
nothing visible. A process killed mid-put cannot abort: its multipart upload stays
(invisible, but billed) until ``sweep_incomplete`` aborts it.

Credentials come from the standard AWS chain (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, profiles, instance roles). The ``access_key`` and ``secret_key``
URL options exist for tests and are discouraged: URLs end up in logs and process listings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from modelshelf.backends.buffers import BufferBudget, gathered
from modelshelf.backends.concurrency import BlockingCalls, CallLimits, ThreadBound
from modelshelf.backends.errors import (
    InsufficientStorageError,
    InvalidKeyError,
    InvalidRangeError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    StorageError,
    UnavailableError,
)
from modelshelf.backends.keys import MAX_KEY_BYTES, validate_key
from modelshelf.backends.protocol import (
    Capabilities,
    ListPage,
    ObjectInfo,
    ObjectStream,
    SweptItem,
)
from modelshelf.backends.putmodes import CreateOnly, PutMode, ReplaceIfEtag
from modelshelf.backends.ranges import validate_range
from modelshelf.backends.readshares import ReadShares

if TYPE_CHECKING:
    from botocore.awsrequest import AWSPreparedRequest
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import (
        CompletedPartTypeDef,
        GetObjectOutputTypeDef,
        GetObjectRequestTypeDef,
        ListMultipartUploadsRequestTypeDef,
        ListObjectsV2RequestTypeDef,
        ListPartsRequestTypeDef,
    )

MIB = 1 << 20
DEFAULT_PART_BYTES = 8 * MIB
MIN_PART_BYTES = 5 * MIB  # S3 rejects smaller parts, except the last (EntityTooSmall)
MAX_PART_BYTES = 5 * 1024 * MIB
MAX_POOL_CONNECTIONS = 16
MAX_ATTEMPTS = 3  # with standard retries: a frozen server costs at most 3 read timeouts
ABORT_WAIT_SECONDS = 2.0
TRANSFER_DEADLINE_FACTOR = 6  # a part upload may take this many call deadlines
MAX_LIST_PAGE = 1000  # S3 caps MaxKeys here
URL_OPTIONS = ("endpoint_url", "region", "path_style", "part_size", "access_key", "secret_key")
T = TypeVar("T")
_ObjectInfos = list[ObjectInfo]  # an alias: inside S3Backend, ``list`` names the method
_Uploads = list[tuple[str, str]]  # (object key, upload id)
_SweptItems = list[SweptItem]
logger = logging.getLogger(__name__)


class S3Backend:
    """Values stored as objects ``prefix + key`` in one bucket."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        path_style: bool | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        part_size: int = DEFAULT_PART_BYTES,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        limits: CallLimits | None = None,
    ) -> None:
        """A client for ``bucket``; ``path_style`` defaults to true when ``endpoint_url`` is set.

        The socket timeouts default to the call deadline of ``limits`` (connect: at most 5 s).

        Raises:
            InvalidKeyError: a bad bucket, prefix, part size, endpoint or half a key pair.
        """
        if not bucket:
            raise InvalidKeyError("an S3 backend needs a bucket name")
        if (access_key is None) != (secret_key is None):
            raise InvalidKeyError("give both access_key and secret_key, or neither")
        self.bucket = bucket
        self.prefix = _normalised_prefix(prefix)
        self.capabilities = Capabilities(
            persistent=True,
            shared=True,
            plain_objects=True,
            max_key_bytes=MAX_KEY_BYTES - len(self.prefix.encode("utf-8", "surrogatepass")),
            # S3 conditional writes (If-None-Match / If-Match on PutObject and on
            # CompleteMultipartUpload): AWS since 2024, SeaweedFS, MinIO. A server without
            # them ignores the headers; see the README on what is then guaranteed.
            put_create=True,
            put_replace_if_etag=True,
            sweeps_incomplete=True,
        )
        self.endpoint_url = endpoint_url
        self.part_size = _checked_part_size(part_size)
        self.limits = limits or CallLimits()
        self._calls = BlockingCalls(self.limits, "s3")
        self._transfer_deadline = (self.limits.timeout or 0) * TRANSFER_DEADLINE_FACTOR or None
        self._unaborted: list[_MultipartUpload] = []
        self._bucket_seen = False
        deadline = self.limits.timeout or 60.0
        config = Config(
            s3={"addressing_style": "path" if _path_style(path_style, endpoint_url) else "auto"},
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=connect_timeout or min(5.0, deadline),
            read_timeout=read_timeout or deadline,
            max_pool_connections=max(MAX_POOL_CONNECTIONS, self.limits.threads),
        )
        credentials = {"aws_access_key_id": access_key, "aws_secret_access_key": secret_key}
        self._client = _new_client(endpoint_url, region, config, credentials)
        self._client.meta.events.register("before-send.s3", _without_expect_continue)

    async def put(self, key: str, chunks: AsyncIterable[bytes], mode: PutMode = None) -> ObjectInfo:
        object_key = self._object_key(key)
        conditions = _conditions(mode)
        upload = _MultipartUpload(
            self._client, self.bucket, object_key, self._calls, self._transfer_deadline, conditions
        )
        parts = gathered(chunks, self.part_size, self.limits.write_buffers)
        with self._translated(key):
            async with contextlib.aclosing(parts):  # the part's budget back after the abort
                try:
                    last_part = await _send_full_parts(upload, parts, self.limits.write_buffers)
                    if upload.upload_id is None:  # the whole value fits in one part
                        return await self._put_single(key, object_key, last_part, conditions)
                    etag = await upload.complete(last_part)
                except BaseException:
                    if not await asyncio.shield(upload.abort()):
                        self._unaborted.append(upload)
                    raise
        await self._retry_aborts()
        # Some servers answer CompleteMultipartUpload without an ETag (s3-testing.md).
        return ObjectInfo(key, upload.size, _etag(etag)) if etag else await self.head(key)

    async def _retry_aborts(self) -> None:
        """Abort uploads whose abort failed while S3 was down, now that it answers again."""
        pending, self._unaborted = self._unaborted, []
        for upload in pending:
            if not await upload.abort():
                self._unaborted.append(upload)

    async def get(self, key: str, *, start: int = 0, end: int | None = None) -> ObjectStream:
        request: GetObjectRequestTypeDef = {"Bucket": self.bucket, "Key": self._object_key(key)}
        if validate_range(start, end):  # S3 answers 416 InvalidRange past the end
            request["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        with self._translated(key):
            response = await self._calls.run(partial(self._client.get_object, **request))
        body = ThreadBound(self._calls, response["Body"], _close_body)
        try:
            size, start, end = _content_range(response, "Range" in request)
        except BaseException:
            body.close_soon()
            raise
        info = ObjectInfo(key, size, _etag(response["ETag"]))
        chunks = _body_chunks(body, self.limits.read_shares, partial(self._translated, key))
        return ObjectStream(info, chunks, release=_releaser(body), start=start, end=end)

    async def head(self, key: str) -> ObjectInfo:
        object_key = self._object_key(key)
        with self._translated(key):
            size, etag = await self._calls.run(self._head_object, object_key)
        return ObjectInfo(key, size, _etag(etag))

    async def delete(self, key: str) -> None:
        # S3 deletes are idempotent: HEAD first so a missing key raises NotFoundError.
        object_key = self._object_key(key)
        with self._translated(key):
            await self._calls.run(self._head_object, object_key)
            await self._calls.run(
                partial(self._client.delete_object, Bucket=self.bucket, Key=object_key)
            )

    async def list(
        self, prefix: str = "", *, start_after: str | None = None, limit: int = 1000
    ) -> ListPage:
        with self._translated(prefix):
            found = await self._calls.run(self._list_objects, prefix, start_after, limit + 1)
        items = found[:limit]
        return ListPage(items, items[-1].key if items and len(found) > limit else None)

    async def sweep_incomplete(self, older_than_seconds: float, *, dry_run: bool) -> _SweptItems:
        """Abort multipart uploads under the prefix initiated before the threshold."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        swept: list[SweptItem] = []
        with self._translated("(multipart uploads)"):
            for object_key, upload_id in await self._calls.run(self._stale_uploads, cutoff):
                size = await self._calls.run(self._uploaded_bytes, object_key, upload_id)
                if size is None or not (dry_run or await self._abort(object_key, upload_id)):
                    continue  # completed or aborted meanwhile
                key = object_key.removeprefix(self.prefix)
                swept.append(SweptItem("multipart_upload", f"{key} (upload {upload_id})", size))
        return swept

    async def _abort(self, object_key: str, upload_id: str) -> bool:
        """Abort one upload; False if it was gone already."""
        abort = partial(
            self._client.abort_multipart_upload,
            Bucket=self.bucket,
            Key=object_key,
            UploadId=upload_id,
        )
        try:
            await self._calls.run(abort)
        except ClientError as error:
            if _code(error) in ("NoSuchUpload", "404"):
                return False
            raise
        return True

    async def close(self) -> None:
        self._calls.shutdown()
        self._client.close()

    async def _put_single(
        self, key: str, object_key: str, data: bytearray, conditions: dict[str, str]
    ) -> ObjectInfo:
        put_object = partial(
            self._client.put_object,
            Bucket=self.bucket,
            Key=object_key,
            Body=data,  # type: ignore[arg-type]  # botocore takes a bytearray; its stubs do not say so
            **conditions,  # type: ignore[arg-type]
        )
        response = await self._calls.wait(self._calls.start(put_object), self._transfer_deadline)
        return ObjectInfo(key, len(data), _etag(response["ETag"]))

    # -- blocking parts, run in worker threads ---------------------------------------------

    def _head_object(self, object_key: str) -> tuple[int, str]:
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=object_key)
        except ClientError as error:
            if _code(error) in ("404", "NotFound") and not self._bucket_seen:
                self._check_bucket()
            raise
        return response["ContentLength"], response["ETag"]

    def _check_bucket(self) -> None:
        """Raise NoSuchBucket if the bucket is missing: a HEAD 404 has no body to say so."""
        try:
            self._client.list_objects_v2(Bucket=self.bucket, MaxKeys=1)
        except ClientError as error:
            if _code(error) == "NoSuchBucket":
                raise
            return
        self._bucket_seen = True

    def _list_objects(self, prefix: str, start_after: str | None, wanted: int) -> _ObjectInfos:
        request: ListObjectsV2RequestTypeDef = {
            "Bucket": self.bucket,
            "Prefix": self.prefix + prefix,
        }
        if start_after is not None:
            request["StartAfter"] = self.prefix + start_after
        found: list[ObjectInfo] = []
        while len(found) < wanted:
            request["MaxKeys"] = min(wanted - len(found), MAX_LIST_PAGE)
            response = self._client.list_objects_v2(**request)
            for entry in response.get("Contents", []):
                # Skip "folder/" marker objects other tools create; they are not valid keys.
                if not entry["Key"].endswith("/"):
                    key = entry["Key"].removeprefix(self.prefix)
                    found.append(ObjectInfo(key, entry["Size"], _etag(entry["ETag"])))
            if not response.get("IsTruncated"):
                break
            request["ContinuationToken"] = response["NextContinuationToken"]
        return found

    def _stale_uploads(self, cutoff: datetime) -> _Uploads:
        request: ListMultipartUploadsRequestTypeDef = {"Bucket": self.bucket, "Prefix": self.prefix}
        found: _Uploads = []
        while True:
            response = self._client.list_multipart_uploads(**request)
            found += [
                (upload["Key"], upload["UploadId"])
                for upload in response.get("Uploads", [])
                if upload["Initiated"] < cutoff
            ]
            if not response.get("IsTruncated"):
                return found
            request["KeyMarker"] = response.get("NextKeyMarker", "")
            request["UploadIdMarker"] = response.get("NextUploadIdMarker", "")

    def _uploaded_bytes(self, object_key: str, upload_id: str) -> int | None:
        """The bytes of an upload's parts; None if it is gone (completed, aborted)."""
        request: ListPartsRequestTypeDef = {
            "Bucket": self.bucket,
            "Key": object_key,
            "UploadId": upload_id,
        }
        size = 0
        while True:
            try:
                response = self._client.list_parts(**request)
            except ClientError as error:
                if _code(error) in ("NoSuchUpload", "404"):
                    return None
                raise
            size += sum(part["Size"] for part in response.get("Parts", []))
            if not response.get("IsTruncated"):
                return size
            request["PartNumberMarker"] = response.get("NextPartNumberMarker", 0)

    # -- helpers ---------------------------------------------------------------------------

    def _object_key(self, key: str) -> str:
        object_key = self.prefix + validate_key(key)
        if len(object_key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
            raise InvalidKeyError(f"invalid key {key!r}: too long with the prefix {self.prefix!r}")
        return object_key

    def _translated(self, key: str) -> AbstractContextManager[None]:
        return _translated(self.limits.store, self.bucket, self.endpoint_url or "AWS S3", key)


class _MultipartUpload:
    """One multipart upload, created with its first part; one S3 call in flight at a time."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        object_key: str,
        calls: BlockingCalls,
        deadline: float | None,
        conditions: dict[str, str] | None = None,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._key = object_key
        self._calls = calls
        self._deadline = deadline
        self._conditions = conditions or {}  # checked by S3 when the upload completes
        self.upload_id: str | None = None
        self.size = 0
        self._parts: list[CompletedPartTypeDef] = []
        self._in_flight: Any = None  # the concurrent future of the call in a thread

    async def send_part(self, data: bytearray) -> None:
        await self._call(self._send_part, data)

    async def complete(self, last_part: bytearray) -> str:
        """Send the last part and complete; the ETag, or "" if the server gave none."""
        await self.send_part(last_part)
        return await self._call(self._complete)

    async def abort(self) -> bool:
        """Abort once no call is in flight, so no part lands after the abort.

        Never raises; False when S3 could not be told (it is down), so the caller can try
        again later.
        """
        if self._in_flight is not None and not self._in_flight.done():
            # A call stuck on a frozen server ends within the client's socket timeouts; do
            # not hold the client's answer for that long: the retry comes after a later put.
            await asyncio.wait([asyncio.wrap_future(self._in_flight)], timeout=ABORT_WAIT_SECONDS)
            if not self._in_flight.done():
                return False
        if self.upload_id is None:
            return True
        abort = partial(
            self._client.abort_multipart_upload,
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self.upload_id,
        )
        try:
            await self._calls.run(abort)
        except ClientError as error:
            return _code(error) in ("NoSuchUpload", "404")  # already gone is aborted
        except Exception:
            logger.warning("could not abort the S3 upload of %r yet; will retry", self._key)
            return False
        return True

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        # Tracked: a cancelled put must not leave a thread uploading behind the abort.
        self._in_flight = self._calls.start(function, *args)
        return await asyncio.shield(self._calls.wait(self._in_flight, self._deadline))

    def _send_part(self, data: bytearray) -> None:
        if self.upload_id is None:
            created = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key)
            self.upload_id = created["UploadId"]
        number = len(self._parts) + 1
        response = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=data,  # type: ignore[arg-type]  # as in _put_single
        )
        self._parts.append({"ETag": response["ETag"], "PartNumber": number})
        self.size += len(data)

    def _complete(self) -> str:
        response = self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self.upload_id or "",
            MultipartUpload={"Parts": self._parts},
            **self._conditions,  # type: ignore[arg-type]
        )
        return response.get("ETag", "")


async def _send_full_parts(
    upload: _MultipartUpload, parts: AsyncIterator[tuple[bytearray, bool]], budget: BufferBudget
) -> bytearray:
    """Upload every part but the last, each while the next one fills; return the last, unsent.

    One part is in flight at a time: receiving and sending overlap, as boto3's own transfers
    do, and an upload holds two parts at most. The part in flight keeps its size taken from
    ``budget`` until it is sent (the generator gives its own back when asked for the next).
    That is taken only if free at once: waiting for it while holding the part could
    deadlock two uploads, so without room the part is sent before the next one fills.
    The parts are sent as they are (botocore takes a bytearray Body and checksums it): none
    copied.
    """
    sending: asyncio.Task[None] | None = None
    try:
        async for part, last in parts:
            if sending is not None:
                await sending  # the previous part: sent before the next one starts
                sending = None
            if last:
                return part
            held = budget.try_acquire(len(part))
            if held is None:  # no room for two parts: one after the other
                await upload.send_part(part)
                continue
            sending = asyncio.ensure_future(_send_holding(upload, part, budget, held))
            del part  # the task holds it until sent
        return bytearray()  # not reached: gathered() always ends with a last part
    finally:
        if sending is not None:
            sending.cancel()
            with contextlib.suppress(BaseException):
                await sending


async def _send_holding(
    upload: _MultipartUpload, part: bytearray, budget: BufferBudget, held: int
) -> None:
    try:
        await upload.send_part(part)
    finally:
        budget.release(held)


async def _body_chunks(
    body: ThreadBound[StreamingBody],
    shares: ReadShares,
    translated: Callable[[], AbstractContextManager[None]],
) -> AsyncIterator[bytes]:
    """The chunks of one object body, one per thread hop; ending releases the connection."""
    try:
        with translated(), shares.stream():
            while chunk := await body.run(_read_block, shares.chunk_bytes()):
                yield chunk
    finally:
        body.close_soon()  # no await: safe in a cancelled task


def _releaser(body: ThreadBound[StreamingBody]) -> Callable[[], Awaitable[None]]:
    async def release() -> None:
        body.close_soon()

    return release


def _content_range(response: GetObjectOutputTypeDef, ranged: bool) -> tuple[int, int, int]:
    """The value's size and the bytes ``[start, end)`` a get's response holds.

    Raises:
        StorageError: the server answered a ranged get with the whole value.
    """
    length = response["ContentLength"]
    if not ranged:
        return length, 0, length
    held, _, size = response.get("ContentRange", "").removeprefix("bytes ").partition("/")
    first, _, last = held.partition("-")
    if not (first.isdigit() and last.isdigit() and size.isdigit()):
        raise StorageError("the S3 server ignored the byte range of a get")
    return int(size), int(first), int(last) + 1


def _read_block(body: StreamingBody, size: int) -> bytes:
    return body.read(size)


def _close_body(body: StreamingBody) -> None:
    body.close()


def _new_client(
    endpoint_url: str | None, region: str | None, config: Config, credentials: dict[str, Any]
) -> S3Client:
    try:
        session = boto3.session.Session(region_name=region)
        return session.client("s3", endpoint_url=endpoint_url, config=config, **credentials)
    except ValueError as error:  # botocore's answer to a malformed endpoint_url
        raise InvalidKeyError(f"invalid S3 endpoint_url {endpoint_url!r}: {error}") from error
    except BotoCoreError as error:  # e.g. AWS_PROFILE names no profile
        raise StorageError(f"cannot set up the S3 client: {error}") from error


def _without_expect_continue(request: AWSPreparedRequest, **_: Any) -> None:
    # botocore before 1.43.77 poisons a pooled connection after a zero-length PUT sent with
    # "Expect: 100-continue": the next response on it stalls for read_timeout, then is retried
    # (boto/botocore#3755). The header is not signed, so dropping it is safe.
    if "Expect" in request.headers:
        del request.headers["Expect"]


def _normalised_prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    return validate_key(prefix) + "/" if prefix else ""


def _checked_part_size(part_size: int) -> int:
    if not MIN_PART_BYTES <= part_size <= MAX_PART_BYTES:
        raise InvalidKeyError(
            f"S3 part_size must be between {MIN_PART_BYTES} (5 MiB) and {MAX_PART_BYTES} bytes"
        )
    return part_size


def _path_style(path_style: bool | None, endpoint_url: str | None) -> bool:
    # Custom endpoints are usually an IP or localhost, where virtual hosts cannot work.
    return endpoint_url is not None if path_style is None else path_style


def _conditions(mode: PutMode) -> dict[str, str]:
    """A put mode as S3's conditional-write parameters."""
    if isinstance(mode, CreateOnly):
        return {"IfNoneMatch": "*"}
    if isinstance(mode, ReplaceIfEtag):
        return {"IfMatch": f'"{mode.etag}"'}
    return {}


def _etag(raw: str) -> str:
    return raw.strip('"')


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


# -- error translation at the module edge --------------------------------------------------

# Messages go to clients: they name the store, never the endpoint, bucket or key; the
# server log has those (issue 8.8).
_NO_BUCKET = (
    "store {store!r} cannot find its S3 bucket: the server's operator must create it "
    "(e.g. `aws s3 mb s3://BUCKET`) or fix the bucket in the store's URL"
)
_DENIED = (
    "store {store!r} was refused access by S3 ({code}): the server's operator must check "
    "the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the AWS profile) and "
    "the bucket policy"
)
_BUSY = "store {store!r} is unavailable (S3 answered {code}); try again later"
_NOT_FOUND = "no value at key {key!r}"
_PAST_THE_END = "the byte range starts past the end of the value at key {key!r}"
_PRECONDITION = "store {store!r}: {key!r} is not in the state the write required ({code})"
_TOO_LARGE = "store {store!r}: the value is larger than its S3 server accepts ({code})"

# ClientError code -> (error class, message template)
_CLIENT_ERRORS: dict[str, tuple[type[StorageError], str]] = {
    "NoSuchKey": (NotFoundError, _NOT_FOUND),
    "NotFound": (NotFoundError, _NOT_FOUND),
    "404": (NotFoundError, _NOT_FOUND),
    "InvalidRange": (InvalidRangeError, _PAST_THE_END),
    "416": (InvalidRangeError, _PAST_THE_END),
    "NoSuchBucket": (UnavailableError, _NO_BUCKET),
    "AccessDenied": (PermissionDeniedError, _DENIED),
    "InvalidAccessKeyId": (PermissionDeniedError, _DENIED),
    "SignatureDoesNotMatch": (PermissionDeniedError, _DENIED),
    "ExpiredToken": (PermissionDeniedError, _DENIED),
    "403": (PermissionDeniedError, _DENIED),
    "PreconditionFailed": (PreconditionFailedError, _PRECONDITION),
    "412": (PreconditionFailedError, _PRECONDITION),
    # AWS: another conditional write to the key was in flight; one of the two loses.
    "ConditionalRequestConflict": (PreconditionFailedError, _PRECONDITION),
    "EntityTooLarge": (InsufficientStorageError, _TOO_LARGE),
    "SlowDown": (UnavailableError, _BUSY),
    "ServiceUnavailable": (UnavailableError, _BUSY),
    "InternalError": (UnavailableError, _BUSY),
}


@contextmanager
def _translated(store: str, bucket: str, endpoint: str, key: str) -> Iterator[None]:
    """Turn botocore's errors into the backend-neutral tree; the detail goes to the log."""
    try:
        yield
    except ClientError as error:
        translated = _client_error(error, store, key)
        if not isinstance(translated, NotFoundError | InvalidRangeError):
            logger.warning("S3 %s bucket %r key %r: %s", endpoint, bucket, key, error)
        raise translated from error
    except BotoCoreError as error:
        logger.warning("S3 %s bucket %r key %r: %s", endpoint, bucket, key, error)
        raise _botocore_error(error, store) from error


def _client_error(error: ClientError, store: str, key: str) -> StorageError:
    code = _code(error) or "unknown"
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    fallback = (UnavailableError, _BUSY) if status >= 500 else (StorageError, "")
    kind, template = _CLIENT_ERRORS.get(code, fallback)
    if not template:
        return kind(f"store {store!r} failed: S3 answered {code}")
    return kind(template.format(store=store, key=key, code=code))


def _botocore_error(error: BotoCoreError, store: str) -> StorageError:
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return PermissionDeniedError(
            f"store {store!r} has no usable S3 credentials: the server's operator must set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an AWS profile or role"
        )
    if isinstance(error, BotoConnectionError | HTTPClientError | IncompleteReadError):
        return UnavailableError(f"store {store!r} cannot reach its S3 server; try again later")
    return StorageError(f"store {store!r} failed: the S3 client gave up ({type(error).__name__})")


def from_url(body: str, options: dict[str, str], limits: CallLimits | None = None) -> S3Backend:
    """``s3://BUCKET[/PREFIX]?endpoint_url=URL&region=R&path_style=true&part_size=BYTES``."""
    bucket, _, prefix = body.partition("/")
    if not bucket:
        raise InvalidKeyError("s3:// needs a bucket, e.g. s3://models/shelf?region=eu-west-1")
    unknown = sorted(set(options) - set(URL_OPTIONS))
    if unknown:
        raise InvalidKeyError(f"unknown s3:// options {unknown}: use {', '.join(URL_OPTIONS)}")
    return S3Backend(
        bucket,
        prefix,
        endpoint_url=options.get("endpoint_url"),
        region=options.get("region"),
        path_style=_parse_bool("path_style", options.get("path_style")),
        access_key=options.get("access_key"),
        secret_key=options.get("secret_key"),
        part_size=_parse_int("part_size", options.get("part_size"), DEFAULT_PART_BYTES),
        limits=limits,
    )


def _parse_bool(name: str, text: str | None) -> bool | None:
    if text is None:
        return None
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise InvalidKeyError(f"s3:// option {name} must be true or false, not {text!r}")


def _parse_int(name: str, text: str | None, default: int) -> int:
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidKeyError(f"s3:// option {name} must be a number of bytes") from None
