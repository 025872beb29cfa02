"""``file://PATH``: values as plain files under a root folder.

Writes go to a temp file in the target folder, are fsynced, then ``os.replace``d
into place, so a reader sees the old value or the new one, never a torn one.
"""

from __future__ import annotations

import asyncio
import builtins
import errno
import os
import stat as stat_module
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiofiles

from backends.errors import (
    InsufficientStorageError,
    InvalidKeyError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
)
from backends.keys import validate_key
from backends.protocol import Capabilities, ListPage, ObjectInfo, ObjectStream

TEMP_PREFIX = ".modelshelf-tmp-"
READ_CHUNK_BYTES = 1 << 20
WRITE_BATCH_BYTES = 1 << 20
T = TypeVar("T")


class LocalBackend:
    """Values stored as files below ``root``; keys are relative POSIX paths."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.capabilities = Capabilities(
            persistent=True, shared=True, local_root=str(self.root), prefix_keys=False
        )

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> ObjectInfo:
        path = self._path(key)
        temp = path.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}")
        with _translated(key, writing=True):
            await _run(_make_parents, path)
            handle = await aiofiles.open(temp, "wb")
        try:
            # Errors of the source propagate as they are; only our own I/O is translated.
            pending: list[bytes] = []
            pending_bytes = 0
            async for chunk in chunks:
                pending.append(chunk)
                pending_bytes += len(chunk)
                if pending_bytes >= WRITE_BATCH_BYTES:
                    with _translated(key, writing=True):
                        await handle.writelines(pending)  # one thread hop for many chunks
                    pending, pending_bytes = [], 0
            with _translated(key, writing=True):
                await handle.writelines(pending)
                await handle.flush()
                await _run(os.fsync, handle.fileno())
                await handle.close()
                await _run(os.replace, temp, path)
                return _info(key, await _run(os.stat, path))
        except BaseException:
            await handle.close()
            await _run(_unlink_quietly, temp)
            raise

    async def get(self, key: str) -> ObjectStream:
        path = self._path(key)
        with _translated(key):
            handle = await aiofiles.open(path, "rb")
            try:
                info = _info(key, await _run(os.fstat, handle.fileno()))
            except BaseException:
                await handle.close()
                raise
        return ObjectStream(info, _read_chunks(handle, key), release=handle.close)

    async def head(self, key: str) -> ObjectInfo:
        path = self._path(key)
        with _translated(key):
            stat = await _run(os.stat, path)
            if not stat_module.S_ISREG(stat.st_mode):
                raise NotFoundError(f"no value at key {key!r}")
            return _info(key, stat)

    async def delete(self, key: str) -> None:
        path = self._path(key)
        with _translated(key):
            await _run(os.unlink, path)
            await _run(_prune_empty_parents, path.parent, self.root)

    async def list(
        self, prefix: str = "", *, start_after: str | None = None, limit: int = 1000
    ) -> ListPage:
        with _translated(prefix):
            keys = await _run(self._sorted_keys, prefix)
        if start_after is not None:
            keys = [key for key in keys if key > start_after]
        with _translated(prefix):
            items = await _run(self._described, keys, limit)
        more = bool(items) and keys[-1] != items[-1].key and len(items) == limit
        return ListPage(items, items[-1].key if more else None)

    def _described(self, keys: builtins.list[str], limit: int) -> builtins.list[ObjectInfo]:
        """Up to ``limit`` keys with their sizes; keys deleted since the walk are skipped."""
        items = []
        for key in keys:
            try:
                items.append(_info(key, os.stat(self.root / key)))
            except FileNotFoundError:
                continue
            if len(items) == limit:
                break
        return items

    async def close(self) -> None:
        return None

    def _path(self, key: str) -> Path:
        validate_key(key)
        return self.root.joinpath(*key.split("/"))

    def _sorted_keys(self, prefix: str) -> builtins.list[str]:
        folder = self.root.joinpath(*prefix.split("/")[:-1]) if "/" in prefix else self.root
        if not folder.is_dir():
            return []
        return sorted(key for key in _walk_keys(folder, self.root) if key.startswith(prefix))


def _walk_keys(folder: Path, root: Path) -> Iterator[str]:
    for dirpath, _dirnames, filenames in os.walk(folder):
        for filename in filenames:
            if not filename.startswith(TEMP_PREFIX):
                yield (Path(dirpath) / filename).relative_to(root).as_posix()


async def _read_chunks(handle: Any, key: str) -> AsyncIterator[bytes]:
    try:
        with _translated(key):
            while chunk := await handle.read(READ_CHUNK_BYTES):
                yield chunk
    finally:
        await handle.close()


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


def _unlink_quietly(path: Path) -> None:
    path.unlink(missing_ok=True)


def _info(key: str, stat: os.stat_result) -> ObjectInfo:
    etag = f"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}"
    return ObjectInfo(key, stat.st_size, etag)


async def _run(function: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(function, *args)


_ERRNO_TABLE: dict[int, type[StorageError]] = {
    errno.ENOENT: NotFoundError,
    errno.EISDIR: NotFoundError,
    errno.EACCES: PermissionDeniedError,
    errno.EPERM: PermissionDeniedError,
    errno.EROFS: PermissionDeniedError,
    errno.ENOSPC: InsufficientStorageError,
    errno.EDQUOT: InsufficientStorageError,
    errno.ENAMETOOLONG: InvalidKeyError,
}


@contextmanager
def _translated(key: str, *, writing: bool = False) -> Iterator[None]:
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
        kind = _ERRNO_TABLE.get(error.errno or 0, StorageError)
        raise kind(f"{error.strerror or 'storage error'}: key {key!r}") from error


def from_url(body: str, options: dict[str, str]) -> LocalBackend:
    """``file://PATH``: relative paths are taken from the working directory."""
    if not body:
        raise InvalidKeyError("file:// needs a folder, e.g. file://./data/models")
    return LocalBackend(body)
