"""What puts that never finished left in a store, measured around the backend, not through it.

gc's tests check its report against these: temp files on disk, SQLite rows no key points
to, incomplete multipart uploads in the bucket.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

MIB = 1 << 20
_TEMP_NAME = re.compile(r"\.modelshelf-tmp-[0-9a-f]{32}")
# A child that puts SIZE bytes under KEY, says so, and then waits to be killed.
_HANGING_PUT = """
import asyncio, sys
from modelshelf.backends import open_backend

async def main(url, key, size):
    backend = open_backend(url)

    async def chunks():
        for _ in range(size // (1 << 20)):
            yield b"Z" * (1 << 20)
        print("sent", flush=True)
        await asyncio.Event().wait()

    await backend.put(key, chunks())

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def leftover_bytes(url: str, seaweed: Any = None) -> int:
    """Bytes of unfinished puts in the store at ``url``: 0 when there are none."""
    scheme = urlsplit(url).scheme
    if scheme == "file":
        return _temp_file_bytes(url.removeprefix("file://"))
    if scheme == "sqlite":
        return sqlite_staging(url)[1]
    if scheme == "s3":
        return _multipart_bytes(url, seaweed)
    return 0


def sqlite_staging(url: str) -> tuple[int, int]:
    """(blob rows, chunk bytes) of an SQLite store that no key points to."""
    connection = sqlite3.connect(url.removeprefix("sqlite://"))
    try:
        blobs = connection.execute(
            "SELECT count(*) FROM blobs WHERE id NOT IN (SELECT blob_id FROM objects)"
        ).fetchone()[0]
        size = connection.execute(
            "SELECT coalesce(sum(length(data)), 0) FROM chunks "
            "WHERE blob_id NOT IN (SELECT blob_id FROM objects)"
        ).fetchone()[0]
    finally:
        connection.close()
    return int(blobs), int(size)


def _temp_file_bytes(root: str) -> int:
    total = 0
    for folder, _folders, files in os.walk(root):
        for name in files:
            if _TEMP_NAME.fullmatch(name):
                total += os.stat(os.path.join(folder, name)).st_size
    return total


def _multipart_bytes(url: str, seaweed: Any) -> int:
    parts = urlsplit(url)
    bucket, prefix = parts.netloc, parts.path.strip("/") + "/"
    endpoint = parse_qs(parts.query)["endpoint_url"][0]
    assert endpoint == seaweed.endpoint_url
    client = seaweed.client()
    uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
    total = 0
    for upload in uploads:
        listed = client.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        total += sum(part["Size"] for part in listed.get("Parts", []))
    return total


def wait_for(measure: Callable[[], int], at_least: int, timeout: float = 30.0) -> int:
    """Poll ``measure`` until it reaches ``at_least``; AssertionError with the last value."""
    deadline = time.monotonic() + timeout
    while (value := measure()) < at_least:
        assert time.monotonic() < deadline, f"only {value} of {at_least} bytes arrived"
        time.sleep(0.05)
    return value


@contextmanager
def hanging_put(url: str, key: str, size: int) -> Iterator[subprocess.Popen[str]]:
    """A process that has sent ``size`` bytes of a put to ``key``, hanging mid-put until the
    block ends, when it is killed with SIGKILL."""
    child = subprocess.Popen(
        [sys.executable, "-c", _HANGING_PUT, url, key, str(size)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "sent", "the child could not start its put"
        yield child
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
