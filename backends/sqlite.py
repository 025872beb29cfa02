"""``sqlite://PATH``: one SQLite file (WAL) holding values as 1 MiB chunk rows.

A put streams its chunks into a staging blob in small transactions (so one long
upload does not hold the write lock for its whole duration), then one
transaction points the key at the new blob and drops the old one: the commit
point. Readers hold a read transaction, so they see one snapshot throughout.

A process killed mid-put leaves its staging blob behind: a ``blobs`` row no key points to,
``created`` when the put began (every database has had that column), and its chunk rows.
``sweep_incomplete`` frees those; a file opened drops the ones older than a day anyway.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from modelshelf.backends.buffers import gathered
from modelshelf.backends.concurrency import BlockingCalls, CallLimits, ThreadBound
from modelshelf.backends.errors import (
    InsufficientStorageError,
    InvalidKeyError,
    NotFoundError,
    PermissionDeniedError,
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
from modelshelf.backends.putmodes import PutMode, check_put_mode
from modelshelf.backends.ranges import resolve_range, validate_range
from modelshelf.backends.readshares import ReadShares

CHUNK_BYTES = 1 << 20
PAGE_BYTES = 64 << 10
# A reader's page cache, in KiB (SQLite's default is 2000 per connection): a stream reads
# each page once, so a larger cache only holds memory, once per open stream (issue 12).
READER_CACHE_KIB = 64
WAL_LIMIT_BYTES = 64 << 20
BATCH_BYTES = 4 * CHUNK_BYTES  # rows per write transaction, held in the write-buffer budget
STALE_STAGING_SECONDS = 24 * 3600
MAX_IDLE_READERS = 16
MAX_BUSY_SECONDS = 5.0  # below a client's patience, and below the call deadline
T = TypeVar("T")
logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    committed INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    blob_id INTEGER NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (blob_id, seq));
CREATE TABLE IF NOT EXISTS objects (
    key TEXT PRIMARY KEY, blob_id INTEGER NOT NULL, size INTEGER NOT NULL) WITHOUT ROWID;
"""


class SqliteBackend:
    """Values as chunk rows in one SQLite database file."""

    # Conditional puts check and commit in one BEGIN IMMEDIATE transaction: atomic across
    # every process that opens the file.
    capabilities = Capabilities(
        persistent=True,
        shared=False,
        put_create=True,
        put_replace_if_etag=True,
        sweeps_incomplete=True,
    )

    def __init__(self, path: str | Path, limits: CallLimits | None = None) -> None:
        self.path = Path(path)
        self.limits = limits or CallLimits()
        self._calls = BlockingCalls(self.limits, "sqlite")
        # Reads have threads of their own: in WAL mode they never wait for a writer, so they
        # must not queue behind writes stuck on another process's lock either.
        self._reads = BlockingCalls(self.limits, "sqlite-read")
        self._busy_seconds = min(MAX_BUSY_SECONDS, (self.limits.timeout or 10.0) / 2)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._checkpoint: asyncio.Task[None] | None = None
        self._idle_readers: list[sqlite3.Connection] = []
        self._closing = False
        self.connections_opened = 0  # readers are pooled: this stays small however many reads
        self._undropped: set[int] = set()  # staging blobs a failed put could not drop yet
        self.read_only = False
        with contextlib.suppress(OSError):  # a read-only folder that exists is fine
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._translated("(database)"):
            try:
                self._setup(self._connection())
            except sqlite3.Error as error:
                if not self._can_open_read_only(error):
                    raise
                logger.warning("%s is read-only: store %r serves loads only", path, self.store)

    @property
    def store(self) -> str:
        return self.limits.store

    async def put(self, key: str, chunks: AsyncIterable[bytes], mode: PutMode = None) -> ObjectInfo:
        validate_key(key)
        self._refuse_if_read_only()
        with self._translated(key):
            blob_id = await self._run(self._new_blob)
            try:
                size = await self._write_chunks(blob_id, chunks)
                await self._run(self._commit_blob, key, blob_id, size, mode)
            except BaseException:
                await asyncio.shield(self._drop_or_remember(blob_id))
                raise
        self._checkpoint_soon()
        return ObjectInfo(key, size, _etag(blob_id))

    async def _drop_or_remember(self, blob_id: int) -> None:
        """Drop a failed put's staging rows; on a full disk, retry after the next put."""
        try:
            await self._run(self._drop_blob, blob_id)
        except (sqlite3.Error, StorageError):
            self._undropped.add(blob_id)
            logger.warning("could not drop staging blob %s of %s yet", blob_id, self.path)

    def _refuse_if_read_only(self) -> None:
        if self.read_only:
            raise ReadOnlyStoreError(
                f"store {self.store!r} is read-only (its SQLite file or folder cannot be "
                f"written): loads work, saves and removals do not; make it writable"
            )

    def _checkpoint_soon(self) -> None:
        """Fold the WAL into the database in the background, one checkpoint at a time."""
        if self._checkpoint is None or self._checkpoint.done():
            self._checkpoint = asyncio.create_task(self._run(self._checkpoint_now))

    def _checkpoint_now(self) -> None:
        try:
            connection = self._connection()
            for blob_id in list(self._undropped):
                self._drop_blob(blob_id)
                self._undropped.discard(blob_id)
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            logger.warning("SQLite checkpoint of %s failed; the next put retries", self.path)

    async def get(self, key: str, *, start: int = 0, end: int | None = None) -> ObjectStream:
        validate_key(key)
        validate_range(start, end)
        with self._translated(key):
            reader = ThreadBound(self._reads, await self._read(self._reader), self._recycle)
            try:
                blob_id, size = await reader.run(_snapshot_row, key)
                start, end = resolve_range(size, start, end)
            except BaseException:
                reader.close_soon()
                raise
        info = ObjectInfo(key, size, _etag(blob_id))
        translated = partial(self._translated, key)
        chunks = _read(reader, self.limits.read_shares, blob_id, start, end, translated)
        return ObjectStream(info, chunks, release=_releaser(reader), start=start, end=end)

    async def head(self, key: str) -> ObjectInfo:
        validate_key(key)
        with self._translated(key):
            blob_id, size = await self._read(lambda: _object_row(self._connection(), key))
        return ObjectInfo(key, size, _etag(blob_id))

    async def delete(self, key: str) -> None:
        validate_key(key)
        self._refuse_if_read_only()
        with self._translated(key):
            await self._run(self._delete, key)

    async def list(
        self, prefix: str = "", *, start_after: str | None = None, limit: int = 1000
    ) -> ListPage:
        with self._translated(prefix):
            rows = await self._read(self._list_rows, prefix, start_after or "", limit + 1)
        items = [ObjectInfo(key, size, _etag(blob_id)) for key, blob_id, size in rows[:limit]]
        return ListPage(items, items[-1].key if len(rows) > limit else None)

    async def sweep_incomplete(
        self, older_than_seconds: float, *, dry_run: bool
    ) -> builtins.list[SweptItem]:
        """Free staging blobs of puts begun before the threshold that never committed."""
        if not dry_run:
            self._refuse_if_read_only()
        cutoff = time.time() - older_than_seconds
        with self._translated("(staging blobs)"):
            found = await self._run(self._sweep, cutoff, dry_run)
        if not dry_run and found:
            self._checkpoint_soon()
        return [SweptItem("staging_blob", f"staging blob {blob}", size) for blob, size in found]

    async def close(self) -> None:
        if self._checkpoint is not None:
            with contextlib.suppress(Exception):
                await self._checkpoint
        # Each connection is closed in a pool thread after the calls before it: never under
        # a running query. A thread stuck on a lock gives up after the busy timeout.
        with contextlib.suppress(Exception):
            await self._reads.drain()  # no read runs while the connections close
        with contextlib.suppress(Exception):
            await self._calls.run(self._close_connections)
        self._calls.shutdown()

    def _close_connections(self) -> None:
        with self._lock:
            self._closing = True
            for connection in [*self._connections, *self._idle_readers]:
                connection.close()
            self._connections.clear()
            self._idle_readers.clear()

    # -- blocking parts, run in worker threads ---------------------------------------------

    def _can_open_read_only(self, error: sqlite3.Error) -> bool:
        """On a read-only medium, switch to read-only connections if the file can be read."""
        code = getattr(error, "sqlite_errorcode", 0) & 0xFF
        if code not in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
            return False
        if not self.path.is_file():
            return False
        self.read_only = True
        self._local = threading.local()
        try:
            self._connection().execute("SELECT count(*) FROM objects").fetchone()
        except sqlite3.Error:
            return False
        return True

    def _setup(self, connection: sqlite3.Connection) -> None:
        # 1 MiB rows: large pages and a rowid table keep them out of long overflow chains
        # (WITHOUT ROWID suits rows under 1/20 of a page). Only new files take the page size.
        connection.execute(f"PRAGMA page_size={PAGE_BYTES}")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(_SCHEMA)
        _never_reuse_blob_ids(connection)
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
        connection = self._connect()
        if self.read_only:
            return self._remembered(connection)
        connection.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints run after each put instead (see _checkpoint_soon): checkpointing in the
        # middle of a large put copies its pages twice while the client waits.
        connection.execute("PRAGMA wal_autocheckpoint=0")
        connection.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        return self._remembered(connection)

    def _remembered(self, connection: sqlite3.Connection) -> sqlite3.Connection:
        with self._lock:
            self._connections.append(connection)
        return connection

    def _connect(self) -> sqlite3.Connection:
        self.connections_opened += 1
        if not self.read_only:
            target: str | Path = self.path
        else:  # without -shm/-wal files on a read-only medium, only immutable=1 opens it
            mode = "ro" if Path(f"{self.path}-shm").exists() else "ro&immutable=1"
            target = f"{self.path.resolve().as_uri()}?mode={mode}"
        return sqlite3.connect(
            target,
            timeout=self._busy_seconds,
            isolation_level=None,
            check_same_thread=False,
            uri=self.read_only,
        )

    def _reader(self) -> sqlite3.Connection:
        # A connection of its own: the read transaction must outlive this thread hop. Kept
        # for reuse: SQLite defers closing a file while others hold locks on it (POSIX
        # locks are per process), so closed readers would pile up as open descriptors.
        with self._lock:
            if self._idle_readers:
                return self._idle_readers.pop()
        reader = self._connect()
        reader.execute(f"PRAGMA cache_size=-{READER_CACHE_KIB}")
        return reader

    def _recycle(self, reader: sqlite3.Connection) -> None:
        """End a reader's snapshot and keep it for the next get; runs when no query does."""
        try:
            if reader.in_transaction:
                reader.execute("ROLLBACK")
        except sqlite3.Error:
            reader.close()
            return
        with self._lock:
            if not self._closing and len(self._idle_readers) < MAX_IDLE_READERS:
                self._idle_readers.append(reader)
                return
        reader.close()

    def _new_blob(self) -> int:
        cursor = self._connection().execute(
            "INSERT INTO blobs (committed, created) VALUES (0, ?)", (time.time(),)
        )
        return int(cursor.lastrowid or 0)

    async def _write_chunks(self, blob_id: int, chunks: AsyncIterable[bytes]) -> int:
        seq = size = 0
        batches = gathered(chunks, BATCH_BYTES, self.limits.write_buffers)
        async with contextlib.aclosing(batches):
            async for batch, _last in batches:
                if batch:
                    seq += await self._run(self._insert_rows, blob_id, seq, batch)
                    size += len(batch)
                del batch  # freed before the next batch takes the budget
        return size

    def _insert_rows(self, blob_id: int, first_seq: int, batch: bytearray) -> int:
        """A batch as chunk rows in one transaction (one commit per batch); the rows."""
        rows = _rows(batch)
        connection = self._connection()
        with _transaction(connection):
            connection.executemany(
                "INSERT INTO chunks (blob_id, seq, data) VALUES (?, ?, ?)",
                [(blob_id, first_seq + index, row) for index, row in enumerate(rows)],
            )
        return len(rows)

    def _commit_blob(self, key: str, blob_id: int, size: int, mode: PutMode) -> None:
        connection = self._connection()
        with _transaction(connection, "BEGIN IMMEDIATE"):
            self._require_staged(connection, blob_id, size)
            old = connection.execute("SELECT blob_id FROM objects WHERE key = ?", (key,)).fetchone()
            check_put_mode(mode, key, None if old is None else _etag(old[0]))
            connection.execute(
                "INSERT OR REPLACE INTO objects (key, blob_id, size) VALUES (?, ?, ?)",
                (key, blob_id, size),
            )
            connection.execute("UPDATE blobs SET committed = 1 WHERE id = ?", (blob_id,))
            if old is not None:
                _drop_blob_rows(connection, old[0])

    def _require_staged(self, connection: sqlite3.Connection, blob_id: int, size: int) -> None:
        """Refuse to commit a blob that lost rows: gc swept it while this put ran too long."""
        if _staged_bytes(connection, blob_id) != size:
            raise UnavailableError(
                f"store {self.store!r} lost this upload's staged bytes before it committed: it "
                f"ran longer than a garbage collection's age threshold; save again"
            )

    def _sweep(self, cutoff: float, dry_run: bool) -> builtins.list[tuple[int, int]]:
        """(blob id, bytes) of the abandoned staging blobs; dropped unless ``dry_run``."""
        connection = self._connection()
        with _transaction(connection, "BEGIN" if dry_run else "BEGIN IMMEDIATE"):
            found = [
                (blob_id, _chunk_bytes(connection, blob_id))
                for blob_id in _abandoned(connection, cutoff)
            ]
            if not dry_run:
                for blob_id, _size in found:
                    _drop_blob_rows(connection, blob_id)
        if not dry_run:
            self._undropped.difference_update(blob_id for blob_id, _size in found)
        return found

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
        return await self._calls.run(function, *args)

    async def _read(self, function: Callable[..., T], *args: Any) -> T:
        return await self._reads.run(function, *args)

    def _translated(self, key: str) -> AbstractContextManager[None]:
        return _translated(self.store, key)


def _object_row(connection: sqlite3.Connection, key: str) -> tuple[int, int]:
    row = connection.execute("SELECT blob_id, size FROM objects WHERE key = ?", (key,)).fetchone()
    if row is None:
        raise NotFoundError(f"no value at key {key!r}")
    return int(row[0]), int(row[1])


def _abandoned(connection: sqlite3.Connection, cutoff: float) -> list[int]:
    """Blobs begun before ``cutoff`` that no key points to, and ids of rows with no blob.

    A committed blob always has its key (one transaction sets both), so the first kind are
    staging blobs of puts that never ended. Chunk rows whose blob row is gone (a cancelled
    put's last batch landing after its cleanup) can never be committed: any age goes.
    """
    staging = connection.execute(
        "SELECT id FROM blobs WHERE committed = 0 AND created < ? AND NOT EXISTS "
        "(SELECT 1 FROM objects WHERE objects.blob_id = blobs.id)",
        (cutoff,),
    ).fetchall()
    strays = connection.execute(
        "SELECT DISTINCT blob_id FROM chunks WHERE blob_id NOT IN (SELECT id FROM blobs)"
    ).fetchall()
    return sorted({int(row[0]) for row in [*staging, *strays]})


def _chunk_bytes(connection: sqlite3.Connection, blob_id: int) -> int:
    row = connection.execute(
        "SELECT coalesce(sum(length(data)), 0) FROM chunks WHERE blob_id = ?", (blob_id,)
    ).fetchone()
    return int(row[0])


def _staged_bytes(connection: sqlite3.Connection, blob_id: int) -> int | None:
    """The bytes of a staging blob; None if it is none (gone, or committed)."""
    row = connection.execute("SELECT committed FROM blobs WHERE id = ?", (blob_id,)).fetchone()
    if row is None or row[0] != 0:
        return None
    return _chunk_bytes(connection, blob_id)


def _snapshot_row(connection: sqlite3.Connection, key: str) -> tuple[int, int]:
    # The read transaction starts here and ends when the reader is closed.
    connection.execute("BEGIN")
    return _object_row(connection, key)


def _rows(batch: bytearray) -> list[memoryview]:
    """The batch cut into CHUNK_BYTES rows (the last may be shorter), uncopied.

    Batches are whole rows but a value's last, so only a value's last row is ever short:
    ranged reads (``_read``) find a byte's row by dividing. sqlite3 binds any buffer as a
    BLOB, so the rows are views of the batch.
    """
    view = memoryview(batch)
    return [view[start : start + CHUNK_BYTES] for start in range(0, len(batch), CHUNK_BYTES)]


def _drop_blob_rows(connection: sqlite3.Connection, blob_id: int) -> None:
    connection.execute("DELETE FROM chunks WHERE blob_id = ?", (blob_id,))
    connection.execute("DELETE FROM blobs WHERE id = ?", (blob_id,))


def _row_ids(connection: sqlite3.Connection, blob_id: int, first: int, last: int) -> list[int]:
    rows = connection.execute(
        "SELECT rowid FROM chunks WHERE blob_id = ? AND seq >= ? AND seq <= ? ORDER BY seq",
        (blob_id, first, last),
    ).fetchall()
    return [int(row[0]) for row in rows]


def _read_piece(connection: sqlite3.Connection, rowid: int, offset: int, size: int) -> bytes:
    """``size`` bytes of one chunk row from ``offset``, read in place (incremental blob I/O)."""
    with connection.blobopen("chunks", "data", rowid, readonly=True) as row:
        row.seek(offset)
        return row.read(size)


async def _read(
    reader: ThreadBound[sqlite3.Connection],
    shares: ReadShares,
    blob_id: int,
    start: int,
    end: int,
    translated: Callable[[], AbstractContextManager[None]],
) -> AsyncIterator[bytes]:
    """The blob's bytes ``[start, end)``, one piece of a row (its share) per thread hop.

    Every row of a blob but its last holds CHUNK_BYTES (``_rows``), so byte ``start`` is
    in row ``start // CHUNK_BYTES``, and no row before it is read. Pieces are read out of
    their rows, so a stream holds one piece, never a batch of rows.
    """
    first, offset = divmod(start, CHUNK_BYTES)
    remaining = end - start
    try:
        if remaining <= 0:
            return
        with translated(), shares.stream():
            row_ids = await reader.run(_row_ids, blob_id, first, (end - 1) // CHUNK_BYTES)
            for rowid in row_ids:
                while remaining > 0 and offset < CHUNK_BYTES:
                    wanted = min(shares.chunk_bytes(), remaining, CHUNK_BYTES - offset)
                    piece = await reader.run(_read_piece, rowid, offset, wanted)
                    if not piece:
                        return
                    offset, remaining = offset + len(piece), remaining - len(piece)
                    yield piece
                offset = 0
    finally:
        reader.close_soon()  # no await: safe in a cancelled task


def _releaser(reader: ThreadBound[sqlite3.Connection]) -> Callable[[], Awaitable[None]]:
    async def release() -> None:
        reader.close_soon()  # ends the read transaction once no query runs on it

    return release


@contextmanager
def _transaction(connection: sqlite3.Connection, begin: str = "BEGIN") -> Iterator[None]:
    connection.execute(begin)
    try:
        yield
    except BaseException:
        # SQLite has already rolled back on some errors (SQLITE_FULL): a second ROLLBACK
        # would fail with "no transaction is active" and hide the real error.
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _never_reuse_blob_ids(connection: sqlite3.Connection) -> None:
    """Give a database made before AUTOINCREMENT its blob table again, with it.

    An etag is the value's blob id. Without AUTOINCREMENT, SQLite hands the highest id out
    again once its row is deleted, so a value removed and written anew could carry the etag
    of the old one, and a replace-if-etag or a cache keyed by etags would take one for the
    other.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        (table,) = connection.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'blobs'"
        ).fetchone()
        if "AUTOINCREMENT" not in table.upper():
            connection.execute(
                "CREATE TABLE blobs_autoincrement (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "committed INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL)"
            )
            connection.execute(
                "INSERT INTO blobs_autoincrement SELECT id, committed, created FROM blobs"
            )
            connection.execute("DROP TABLE blobs")
            connection.execute("ALTER TABLE blobs_autoincrement RENAME TO blobs")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _etag(blob_id: int) -> str:
    return f"b{blob_id}"


# SQLite primary result code -> (error class, what the client is told; the log keeps the rest)
_ERROR_CODES: dict[int, tuple[type[StorageError], str]] = {
    sqlite3.SQLITE_BUSY: (UnavailableError, "is locked by another process; try again later"),
    sqlite3.SQLITE_LOCKED: (UnavailableError, "is locked; try again later"),
    sqlite3.SQLITE_FULL: (
        InsufficientStorageError,
        "has no space left on its disk; free space or remove models, then save again",
    ),
    sqlite3.SQLITE_READONLY: (
        ReadOnlyStoreError,
        "is read-only: loads work, saves and removals do not; make its file writable",
    ),
    sqlite3.SQLITE_PERM: (PermissionDeniedError, "was refused access to its SQLite file"),
    sqlite3.SQLITE_CANTOPEN: (UnavailableError, "cannot open its SQLite file"),
    sqlite3.SQLITE_IOERR: (UnavailableError, "had a disk I/O error; try again later"),
    sqlite3.SQLITE_TOOBIG: (InvalidKeyError, "cannot hold a value this large"),
}


@contextmanager
def _translated(store: str, key: str) -> Iterator[None]:
    """Turn sqlite3 errors into the backend-neutral tree, with a message for the client."""
    try:
        yield
    except StorageError:
        raise
    except sqlite3.Error as error:
        primary = getattr(error, "sqlite_errorcode", 0) & 0xFF
        kind, what = _ERROR_CODES.get(primary, (StorageError, "failed"))
        logger.warning("SQLite error in store %r at key %r: %s", store, key, error)
        raise kind(f"store {store!r} {what}") from error


def from_url(body: str, options: dict[str, str], limits: CallLimits | None = None) -> SqliteBackend:
    """``sqlite://PATH``: relative paths are taken from the working directory."""
    if not body:
        raise InvalidKeyError("sqlite:// needs a file path, e.g. sqlite://./data/indexeddb.sqlite")
    return SqliteBackend(body, limits)
