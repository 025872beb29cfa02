"""``file://PATH``: values as plain files under a root folder.

Writes go to a temp file in the target folder, are fsynced, then ``os.replace``d
into place, so a reader sees the old value or the new one, never a torn one. A process
killed mid-put leaves its temp file behind (listings skip them); ``sweep_incomplete`` frees
those whose last write is older than the threshold.
"""

from __future__ import annotations

import asyncio
import builtins
import errno
import fcntl
import logging
import os
import re
import stat as stat_module
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import aiofiles

from modelshelf.backends.concurrency import BlockingCalls, CallLimits, ThreadBound
from modelshelf.backends.errors import (
    InsufficientStorageError,
    InvalidKeyError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    ReadOnlyStoreError,
    StorageError,
    UnavailableError,
)
from modelshelf.backends.keys import validate_key
from modelshelf.backends.protocol import (
    Capabilities,
    ListPage,
    ObjectInfo,
    ObjectStream,
    SweptItem,
)
from modelshelf.backends.putmodes import CreateOnly, PutMode, check_put_mode
from modelshelf.backends.ranges import resolve_range, validate_range
from modelshelf.backends.readshares import ReadShares

TEMP_PREFIX = ".modelshelf-tmp-"
TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + "[0-9a-f]{32}")  # what put() names them
SWEEP_DEADLINE_SECONDS = 600.0  # one walk of the whole tree, however large
WRITE_BATCH_BYTES = 1 << 20
PARENT_ATTEMPTS = 5
T = TypeVar("T")
logger = logging.getLogger(__name__)


class LocalBackend:
    """Values stored as files below ``root``; keys are relative POSIX paths."""

    def __init__(self, root: str | os.PathLike[str], limits: CallLimits | None = None) -> None:
        self.root = Path(root).resolve()
        self.limits = limits or CallLimits()
        self._calls = BlockingCalls(self.limits, "file")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            if not self.root.is_dir():
                raise _translated_error(self.limits.store, str(root), error) from error
        self.capabilities = Capabilities(
            persistent=True,
            shared=True,
            local_root=str(self.root),
            prefix_keys=False,
            plain_objects=True,
            # Exclusive create by hard link; replace-if-etag under an flock of the folder:
            # atomic across processes on one machine (not over NFS).
            put_create=True,
            put_replace_if_etag=True,
            sweeps_incomplete=True,
        )

    async def put(self, key: str, chunks: AsyncIterable[bytes], mode: PutMode = None) -> ObjectInfo:
        path = self._path(key)
        temp = path.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}")
        try:
            with self._translated(key, writing=True):
                handle = await self._open_temp(path, temp)
            try:
                await self._write(key, handle, chunks)
                with self._translated(key, writing=True):
                    await self._calls.run(_commit_temp, temp, path, key, mode)
                    return _info(key, await self._calls.run(os.stat, path))
            except BaseException:
                await asyncio.shield(self._calls.guarded(_close_quietly(handle)))
                raise
        except BaseException:
            # Nothing of a failed put stays: no temp file, no folder it made (issue 8.3, 8.6).
            await asyncio.shield(self._calls.run(_discard_temp, temp, self.root))
            raise

    async def _open_temp(self, path: Path, temp: Path) -> Any:
        for attempt in range(PARENT_ATTEMPTS):
            await self._calls.run(_make_parents, path)
            try:
                return await self._calls.guarded(
                    aiofiles.open(temp, "wb", executor=self._calls.executor)
                )
            except FileNotFoundError:  # a concurrent delete pruned the new folder: again
                if attempt == PARENT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _write(self, key: str, handle: Any, chunks: AsyncIterable[bytes]) -> None:
        # Errors of the source propagate as they are; only our own I/O is translated.
        pending: list[bytes] = []
        pending_bytes = 0
        async for chunk in chunks:
            pending.append(chunk)
            pending_bytes += len(chunk)
            if pending_bytes >= WRITE_BATCH_BYTES:
                with self._translated(key, writing=True):
                    await self._calls.guarded(handle.writelines(pending))  # one hop, many chunks
                pending, pending_bytes = [], 0
        with self._translated(key, writing=True):
            await self._calls.guarded(handle.writelines(pending))
            await self._calls.guarded(handle.flush())
            await self._calls.run(os.fsync, handle.fileno())
            await self._calls.guarded(handle.close())  # a full disk can fail here too

    async def get(self, key: str, *, start: int = 0, end: int | None = None) -> ObjectStream:
        path = self._path(key)
        validate_range(start, end)
        with self._translated(key):
            file = await self._calls.run(_open_for_reading, path)
            handle = ThreadBound(self._calls, file, _close)
            try:
                info = _info(key, await handle.run(_fstat))
                start, end = resolve_range(info.size, start, end)
                if start:
                    await handle.run(_seek, start)
            except BaseException:
                handle.close_soon()
                raise
        chunks = _read_chunks(handle, self.limits.read_shares, self._translated, key, end - start)
        return ObjectStream(info, chunks, release=_releaser(handle), start=start, end=end)

    async def head(self, key: str) -> ObjectInfo:
        path = self._path(key)
        with self._translated(key):
            stat = await self._calls.run(os.stat, path)
            if not stat_module.S_ISREG(stat.st_mode):
                raise NotFoundError(f"no value at key {key!r}")
            return _info(key, stat)

    async def delete(self, key: str) -> None:
        path = self._path(key)
        with self._translated(key, writing=True):
            await self._calls.run(os.unlink, path)
            await self._calls.run(_prune_empty_parents, path.parent, self.root)

    async def list(
        self, prefix: str = "", *, start_after: str | None = None, limit: int = 1000
    ) -> ListPage:
        with self._translated(prefix):
            items = await self._calls.run(self._page, prefix, start_after, limit + 1)
        more = len(items) > limit
        items = items[:limit]
        return ListPage(items, items[-1].key if more else None)

    def _page(self, prefix: str, start_after: str | None, count: int) -> builtins.list[ObjectInfo]:
        """The first ``count`` keys after ``start_after``, walking folders in key order.

        Folders wholly before ``start_after`` or outside ``prefix`` are never opened, so a
        page costs its size, not the store's.
        """
        items: builtins.list[ObjectInfo] = []
        for key, path in _keys_in_order(self.root, "", prefix, start_after):
            try:
                items.append(_info(key, os.stat(path)))
            except FileNotFoundError:
                continue  # deleted since the folder was read
            if len(items) == count:
                break
        return items

    async def sweep_incomplete(
        self, older_than_seconds: float, *, dry_run: bool
    ) -> builtins.list[SweptItem]:
        """Free temp files of puts last written before the threshold (mtime)."""
        cutoff = time.time() - older_than_seconds
        walk = self._calls.start(_stale_temps, self.root, cutoff)
        with self._translated("(temp files)", writing=not dry_run):
            found = await self._calls.wait(walk, SWEEP_DEADLINE_SECONDS)
            if not dry_run:
                found = [
                    (path, size)
                    for path, size in found
                    if await self._calls.run(_remove_temp, path, self.root)
                ]
        return [
            SweptItem("temp_file", path.relative_to(self.root).as_posix(), size)
            for path, size in found
        ]

    async def close(self) -> None:
        self._calls.shutdown()

    def _translated(self, key: str, *, writing: bool = False) -> AbstractContextManager[None]:
        return _translated(self.limits.store, key, writing=writing)

    def _path(self, key: str) -> Path:
        validate_key(key)
        return self.root.joinpath(*key.split("/"))


def _commit_temp(temp: Path, path: Path, key: str, mode: PutMode) -> None:
    """Move the finished temp file into place, if ``mode`` allows (blocking)."""
    if mode is None:
        os.replace(temp, path)
        return
    if isinstance(mode, CreateOnly):
        try:
            os.link(temp, path)  # fails if anything is there, atomically
        except FileExistsError:
            raise PreconditionFailedError(f"{key!r} already exists") from None
        os.unlink(temp)
        return
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)  # released when the descriptor closes
        try:
            current: str | None = _info(key, os.stat(path)).etag
        except FileNotFoundError:
            current = None
        check_put_mode(mode, key, current)
        os.replace(temp, path)
    finally:
        os.close(folder)


def _keys_in_order(
    folder: Path, relative: str, prefix: str, start_after: str | None
) -> Iterator[tuple[str, Path]]:
    """Keys under ``folder`` in key order (a folder ``x`` sorts as its keys ``x/...`` do)."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    # Filter before sorting: a page after a cursor sorts only what comes after it.
    wanted = [
        (key, entry)
        for entry in entries
        if not entry.name.startswith(TEMP_PREFIX)
        and _may_hold(key := relative + entry.name + ("/" if entry.is_dir() else ""), prefix)
        and (start_after is None or key > start_after or start_after.startswith(key))
    ]
    for key, entry in sorted(wanted):
        if key.endswith("/"):
            yield from _keys_in_order(Path(entry.path), key, prefix, start_after)
        elif key.startswith(prefix) and (start_after is None or key > start_after):
            yield key, Path(entry.path)


def _may_hold(key: str, prefix: str) -> bool:
    """A key, or a folder ``key`` ending in '/', that is or holds keys starting with prefix."""
    return key.startswith(prefix) or (key.endswith("/") and prefix.startswith(key))


async def _read_chunks(
    handle: ThreadBound[BinaryIO],
    shares: ReadShares,
    translated: Callable[[str], AbstractContextManager[None]],
    key: str,
    remaining: int,
) -> AsyncIterator[bytes]:
    """``remaining`` bytes from the file's position: values are replaced, never appended."""
    try:
        with translated(key), shares.stream():
            while remaining > 0:
                chunk = await handle.run(_read_block, min(remaining, shares.chunk_bytes()))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk
    finally:
        handle.close_soon()  # no await: safe in a cancelled task


def _open_for_reading(path: Path) -> BinaryIO:
    return path.open("rb")


def _fstat(file: BinaryIO) -> os.stat_result:
    return os.fstat(file.fileno())


def _seek(file: BinaryIO, offset: int) -> None:
    file.seek(offset)


def _read_block(file: BinaryIO, size: int) -> bytes:
    return file.read(size)


def _close(file: BinaryIO) -> None:
    file.close()


def _releaser(handle: ThreadBound[BinaryIO]) -> Callable[[], Awaitable[None]]:
    async def release() -> None:
        handle.close_soon()

    return release


async def _close_quietly(handle: Any) -> None:
    with suppress(OSError):  # ENOSPC flushing the buffer: the put fails anyway
        await handle.close()


def _stale_temps(root: Path, cutoff: float) -> builtins.list[tuple[Path, int]]:
    """(path, bytes) of every temp file under ``root`` last modified before ``cutoff``."""
    found: builtins.list[tuple[Path, int]] = []
    for folder, _folders, files in os.walk(root):
        for name in files:
            if not TEMP_NAME.fullmatch(name):
                continue
            path = Path(folder, name)
            with suppress(FileNotFoundError):  # the put ended meanwhile
                stat = path.lstat()
                if stat_module.S_ISREG(stat.st_mode) and stat.st_mtime < cutoff:
                    # A create-only put killed after its link: the value keeps the bytes.
                    found.append((path, stat.st_size if stat.st_nlink == 1 else 0))
    return sorted(found)


def _remove_temp(path: Path, root: Path) -> bool:
    """Unlink a stale temp file and the folders it leaves empty; False if it was gone."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    _prune_empty_parents(path.parent, root)
    return True


def _discard_temp(temp: Path, root: Path) -> None:
    with suppress(OSError):  # e.g. EROFS even for a missing file: the put's error matters
        temp.unlink(missing_ok=True)
    _prune_empty_parents(temp.parent, root)


def _make_parents(path: Path) -> None:
    # A concurrent delete may prune the folder we just made; try again a few times.
    for _ in range(5):
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent.is_dir():
            return


def _prune_empty_parents(folder: Path, root: Path) -> None:
    while folder != root:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _info(key: str, stat: os.stat_result) -> ObjectInfo:
    etag = f"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}"
    return ObjectInfo(key, stat.st_size, etag)


_FULL = "has no space left on its disk; free space or remove models, then save again"
# errno -> (error class, what the client is told; the log keeps the path)
_ERRNO_TABLE: dict[int, tuple[type[StorageError], str]] = {
    errno.ENOENT: (NotFoundError, ""),
    errno.EISDIR: (NotFoundError, ""),
    errno.EACCES: (PermissionDeniedError, "was refused access to its folder"),
    errno.EPERM: (PermissionDeniedError, "was refused access to its folder"),
    errno.EROFS: (
        ReadOnlyStoreError,
        "is on a read-only file system: loads work, saves and removals do not",
    ),
    errno.ENOSPC: (InsufficientStorageError, _FULL),
    errno.EDQUOT: (InsufficientStorageError, _FULL),
    errno.ENAMETOOLONG: (InvalidKeyError, "cannot store a path this long"),
    errno.EIO: (UnavailableError, "had a disk I/O error; try again later"),
}


def _translated_error(store: str, key: str, error: OSError) -> StorageError:
    kind, what = _ERRNO_TABLE.get(error.errno or 0, (StorageError, "failed"))
    if kind is NotFoundError:
        return NotFoundError(f"no value at key {key!r}")
    logger.warning("file store %r failed at key %r: %s", store, key, error)
    return kind(f"store {store!r} {what}")


@contextmanager
def _translated(store: str, key: str, *, writing: bool = False) -> Iterator[None]:
    """Turn OSError into the backend-neutral tree."""
    try:
        yield
    except StorageError:
        raise
    except IsADirectoryError:
        if writing:
            raise InvalidKeyError(f"key {key!r} is already the folder of other keys") from None
        raise NotFoundError(f"no value at key {key!r}") from None
    except NotADirectoryError:
        if writing:
            raise InvalidKeyError(f"key {key!r} runs through an existing value") from None
        raise NotFoundError(f"no value at key {key!r}") from None
    except OSError as error:
        raise _translated_error(store, key, error) from error


def from_url(body: str, options: dict[str, str], limits: CallLimits | None = None) -> LocalBackend:
    """``file://PATH``: relative paths are taken from the working directory."""
    if not body:
        raise InvalidKeyError("file:// needs a folder, e.g. file://./data/models")
    return LocalBackend(body, limits)
