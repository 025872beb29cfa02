"""``sqlite://PATH``: one SQLite file (WAL) holding values as 1 MiB chunk rows.

A put streams its chunks into a staging blob in small transactions (so one long
upload does not hold the write lock for its whole duration), then one
transaction points the key at the new blob and drops the old one: the commit
point. Readers hold a read transaction, so they see one snapshot throughout.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from backends.errors import (
    InsufficientStorageError,
    InvalidKeyError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    UnavailableError,
)
from backends.keys import validate_key
from backends.protocol import Capabilities, ListPage, ObjectInfo, ObjectStream

CHUNK_BYTES = 1 << 20
PAGE_BYTES = 64 << 10
READ_AHEAD_ROWS = 4
WAL_LIMIT_BYTES = 64 << 20
BATCH_BYTES = 4 * CHUNK_BYTES  # rows per write transaction, bounded memory per upload
STALE_STAGING_SECONDS = 24 * 3600
T = TypeVar("T")
logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    id INTEGER PRIMARY KEY, committed INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    blob_id INTEGER NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (blob_id, seq));
CREATE TABLE IF NOT EXISTS objects (
    key TEXT PRIMARY KEY, blob_id INTEGER NOT NULL, size INTEGER NOT NULL) WITHOUT ROWID;
"""


class SqliteBackend:
    """Values as chunk rows in one SQLite database file."""

    capabilities = Capabilities(persistent=True, shared=False)

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._checkpoint: asyncio.Task[None] | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UnavailableError(f"cannot create the folder of {self.path}: {error}") from error
        with _translated("(database)"):
            self._setup(self._connection())

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> ObjectInfo:
        validate_key(key)
        with _translated(key):
            blob_id = await self._run(self._new_blob)
            try:
                size = await self._write_chunks(blob_id, chunks)
                await self._run(self._commit_blob, key, blob_id, size)
            except BaseException:
                await asyncio.shield(self._run(self._drop_blob, blob_id))
                raise
        self._checkpoint_soon()
        return ObjectInfo(key, size, _etag(blob_id))

    def _checkpoint_soon(self) -> None:
        """Fold the WAL into the database in the background, one checkpoint at a time."""
        if self._checkpoint is None or self._checkpoint.done():
            self._checkpoint = asyncio.create_task(self._run(self._checkpoint_now))

    def _checkpoint_now(self) -> None:
        try:
            self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            logger.warning("SQLite checkpoint of %s failed; the next put retries", self.path)

    async def get(self, key: str) -> ObjectStream:
        validate_key(key)
        with _translated(key):
            connection = await self._run(self._reader)
            try:
                blob_id, size = await _to_thread(_snapshot_row, connection, key)
            except BaseException:
                connection.close()
                raise
        info = ObjectInfo(key, size, _etag(blob_id))
        return ObjectStream(info, _read(connection, key, blob_id), release=_closer(connection))

    async def head(self, key: str) -> ObjectInfo:
        validate_key(key)
        with _translated(key):
            blob_id, size = await self._run(lambda: _object_row(self._connection(), key))
        return ObjectInfo(key, size, _etag(blob_id))

    async def delete(self, key: str) -> None:
        validate_key(key)
        with _translated(key):
            await self._run(self._delete, key)

    async def list(
        self, prefix: str = "", *, start_after: str | None = None, limit: int = 1000
    ) -> ListPage:
        with _translated(prefix):
            rows = await self._run(self._list_rows, prefix, start_after or "", limit + 1)
        items = [ObjectInfo(key, size, _etag(blob_id)) for key, blob_id, size in rows[:limit]]
        return ListPage(items, items[-1].key if len(rows) > limit else None)

    async def close(self) -> None:
        if self._checkpoint is not None:
            await self._checkpoint
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()

    # -- blocking parts, run in worker threads ---------------------------------------------

    def _setup(self, connection: sqlite3.Connection) -> None:
        # 1 MiB rows: large pages and a rowid table keep them out of long overflow chains
        # (WITHOUT ROWID suits rows under 1/20 of a page). Only new files take the page size.
        connection.execute(f"PRAGMA page_size={PAGE_BYTES}")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(_SCHEMA)
        stale = time.time() - STALE_STAGING_SECONDS
        for (blob_id,) in connection.execute(
            "SELECT id FROM blobs WHERE committed = 0 AND created < ?", (stale,)
        ).fetchall():
            self._drop_blob(blob_id)

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._open()
            self._local.connection = connection
        return connection

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, timeout=60, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints run after each put instead (see _checkpoint_soon): checkpointing in the
        # middle of a large put copies its pages twice while the client waits.
        connection.execute("PRAGMA wal_autocheckpoint=0")
        connection.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        with self._lock:
            self._connections.append(connection)
        return connection

    def _reader(self) -> sqlite3.Connection:
        # A dedicated connection: the read transaction must outlive this thread hop.
        return sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)

    def _new_blob(self) -> int:
        cursor = self._connection().execute(
            "INSERT INTO blobs (committed, created) VALUES (0, ?)", (time.time(),)
        )
        return int(cursor.lastrowid or 0)

    async def _write_chunks(self, blob_id: int, chunks: AsyncIterable[bytes]) -> int:
        pending = bytearray()
        seq = size = 0
        async for chunk in chunks:
            pending += chunk
            size += len(chunk)
            if len(pending) >= BATCH_BYTES:
                rows = _rows(pending, len(pending) - len(pending) % CHUNK_BYTES)
                await self._run(self._insert_rows, blob_id, seq, rows)
                del pending[: len(rows) * CHUNK_BYTES]
                seq += len(rows)
        if pending:
            await self._run(self._insert_rows, blob_id, seq, _rows(pending, len(pending)))
        return size

    def _insert_rows(self, blob_id: int, first_seq: int, rows: builtins.list[bytes]) -> None:
        """Several chunk rows in one transaction: one commit per batch, not per row."""
        connection = self._connection()
        with _transaction(connection):
            connection.executemany(
                "INSERT INTO chunks (blob_id, seq, data) VALUES (?, ?, ?)",
                [(blob_id, first_seq + index, row) for index, row in enumerate(rows)],
            )

    def _commit_blob(self, key: str, blob_id: int, size: int) -> None:
        connection = self._connection()
        with _transaction(connection, "BEGIN IMMEDIATE"):
            old = connection.execute("SELECT blob_id FROM objects WHERE key = ?", (key,)).fetchone()
            connection.execute(
                "INSERT OR REPLACE INTO objects (key, blob_id, size) VALUES (?, ?, ?)",
                (key, blob_id, size),
            )
            connection.execute("UPDATE blobs SET committed = 1 WHERE id = ?", (blob_id,))
            if old is not None:
                _drop_blob_rows(connection, old[0])

    def _drop_blob(self, blob_id: int) -> None:
        """Drop a staging blob; a committed one (the put was cancelled too late) stays."""
        connection = self._connection()
        with _transaction(connection, "BEGIN IMMEDIATE"):
            row = connection.execute("SELECT committed FROM blobs WHERE id = ?", (blob_id,))
            if (found := row.fetchone()) is not None and found[0] == 0:
                _drop_blob_rows(connection, blob_id)

    def _delete(self, key: str) -> None:
        connection = self._connection()
        with _transaction(connection, "BEGIN IMMEDIATE"):
            blob_id, _size = _object_row(connection, key)
            connection.execute("DELETE FROM objects WHERE key = ?", (key,))
            _drop_blob_rows(connection, blob_id)

    def _list_rows(
        self, prefix: str, after: str, limit: int
    ) -> builtins.list[tuple[str, int, int]]:
        rows = self._connection().execute(
            "SELECT key, blob_id, size FROM objects WHERE key >= ? AND key > ? "
            "AND substr(key, 1, ?) = ? ORDER BY key LIMIT ?",
            (prefix, after, len(prefix), prefix, limit),
        )
        return [(str(key), int(blob_id), int(size)) for key, blob_id, size in rows]

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        return await _to_thread(function, *args)


def _object_row(connection: sqlite3.Connection, key: str) -> tuple[int, int]:
    row = connection.execute("SELECT blob_id, size FROM objects WHERE key = ?", (key,)).fetchone()
    if row is None:
        raise NotFoundError(f"no value at key {key!r}")
    return int(row[0]), int(row[1])


def _snapshot_row(connection: sqlite3.Connection, key: str) -> tuple[int, int]:
    connection.execute("BEGIN")
    return _object_row(connection, key)


def _rows(pending: bytearray, end: int) -> list[bytes]:
    """``pending[:end]`` cut into CHUNK_BYTES rows (the last may be shorter)."""
    with memoryview(pending) as view:
        return [
            bytes(view[start : min(start + CHUNK_BYTES, end)])
            for start in range(0, end, CHUNK_BYTES)
        ]


def _drop_blob_rows(connection: sqlite3.Connection, blob_id: int) -> None:
    connection.execute("DELETE FROM chunks WHERE blob_id = ?", (blob_id,))
    connection.execute("DELETE FROM blobs WHERE id = ?", (blob_id,))


def _next_rows(connection: sqlite3.Connection, blob_id: int, seq: int) -> list[bytes]:
    rows = connection.execute(
        "SELECT data FROM chunks WHERE blob_id = ? AND seq >= ? ORDER BY seq LIMIT ?",
        (blob_id, seq, READ_AHEAD_ROWS),
    ).fetchall()
    return [bytes(row[0]) for row in rows]


async def _read(connection: sqlite3.Connection, key: str, blob_id: int) -> AsyncIterator[bytes]:
    try:
        seq = 0
        with _translated(key):
            # A few rows per thread hop: the hop, not SQLite, dominates at 1 MiB a row.
            while rows := await _to_thread(_next_rows, connection, blob_id, seq):
                for row in rows:
                    yield row
                seq += len(rows)
    finally:
        connection.close()


def _closer(connection: sqlite3.Connection) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        connection.close()  # idempotent; ends the read transaction

    return close


@contextmanager
def _transaction(connection: sqlite3.Connection, begin: str = "BEGIN") -> Iterator[None]:
    connection.execute(begin)
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


async def _to_thread(function: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(function, *args)


def _etag(blob_id: int) -> str:
    return f"b{blob_id}"


_ERROR_CODES: dict[int, type[StorageError]] = {
    sqlite3.SQLITE_BUSY: UnavailableError,
    sqlite3.SQLITE_LOCKED: UnavailableError,
    sqlite3.SQLITE_FULL: InsufficientStorageError,
    sqlite3.SQLITE_READONLY: PermissionDeniedError,
    sqlite3.SQLITE_PERM: PermissionDeniedError,
    sqlite3.SQLITE_CANTOPEN: UnavailableError,
    sqlite3.SQLITE_TOOBIG: InvalidKeyError,
}


@contextmanager
def _translated(key: str) -> Iterator[None]:
    """Turn sqlite3 and OS errors into the backend-neutral tree."""
    try:
        yield
    except StorageError:
        raise
    except sqlite3.Error as error:
        primary = getattr(error, "sqlite_errorcode", 0) & 0xFF
        kind = _ERROR_CODES.get(primary, StorageError)
        raise kind(f"SQLite failed for key {key!r}: {error}") from error


def from_url(body: str, options: dict[str, str]) -> SqliteBackend:
    """``sqlite://PATH``: relative paths are taken from the working directory."""
    if not body:
        raise InvalidKeyError("sqlite:// needs a file path, e.g. sqlite://./data/indexeddb.sqlite")
    return SqliteBackend(body)
