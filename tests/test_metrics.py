"""``/metrics`` counts exactly what a scripted sequence of requests did, with one worker and with
two (prometheus-client's multiprocess mode; issue 13).

Each request opens its own connection, so two workers share them; the test reads each worker's
own metric files to see that both answered some. The counts compared are the difference of two
scrapes, so the start-up health checks do not matter; the first scrape is itself in the script.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from modelshelf.service.multiprocess_metrics import (
    MetricsAwareMultiprocess,
    worker_metrics_directory,
)
from modelshelf.service.settings import Settings
from tests.modelfactory import dense_model
from tests.support.formdata import form_body
from tests.support.live_server import free_port
from tests.support.tokens import bearer, issue_token

BOUNDARY = "metrics-boundary"
MODEL_JSON = "/v1/models/{store}/{name}/model.json"
MODEL = "/v1/models/{store}/{name}"
WEIGHTS = "/v1/models/{store}/{name}/~v/{version}/{path}"
START_TIMEOUT_SECONDS = 60
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def workers(self) -> set[int]:
        """uvicorn's spawned worker processes (none with one worker: it serves itself)."""
        found = set()
        for entry in Path("/proc").iterdir():
            try:
                status = (entry / "status").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except (OSError, ValueError):
                continue
            ppid = next(int(line.split()[1]) for line in status.splitlines() if "PPid" in line)
            if ppid == self.process.pid and b"spawn_main" in cmdline:
                found.add(int(entry.name))
        return found


@contextmanager
def modelshelf_serve(data: Path, workers: int) -> Iterator[Server]:
    port = free_port()
    stores = {"file": f"file://{data / 'models'}", "indexeddb": f"sqlite://{data / 'idb.sqlite'}"}
    env = {**os.environ, "MODELSHELF_STORES": json.dumps(stores), "MODELSHELF_QUOTAS": "{}"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = data / "server.log"
    command = [sys.executable, "-m", "modelshelf", "serve", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--workers", str(workers)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_until(lambda: _healthy(server) and len(server.workers()) in (0, workers))
        yield server
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _healthy(server: Server) -> bool:
    if server.process.poll() is not None:
        raise AssertionError(f"the server exited:\n{server.log.read_text()[-3000:]}")
    try:
        return httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_until(condition: Any, timeout: float = START_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the server")
        time.sleep(0.1)


@dataclass
class Ledger:
    """Every request the test made, counted the way /metrics should count it."""

    url: str
    requests: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    received: Counter[str] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)

    def call(
        self, method: str, path: str, route: str, store: str = "", **options: Any
    ) -> httpx.Response:
        response = self.uncounted(method, path, **options)
        self.requests[(method, route, str(response.status_code))] += 1
        self.received[store] += len(options.get("content", b""))
        self.sent[store] += len(response.content)
        return response

    def uncounted(self, method: str, path: str, **options: Any) -> httpx.Response:
        # A fresh connection per request: with two workers, either may accept it.
        return httpx.request(method, f"{self.url}{path}", timeout=30, **options)

    def save(self, method: str, store: str, name: str, seed: int) -> httpx.Response:
        model = dense_model(seed)
        body = form_body(
            [("model.json", model.model_json), ("model.weights.bin", model.weight_bytes)],
            BOUNDARY,
        )
        headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        path = f"/v1/models/{store}/{name}"
        response = self.call(method, path, MODEL, store, content=body, headers=headers)
        assert response.status_code == 201, response.text
        return response


def run_script(ledger: Ledger) -> None:
    """Saves, loads (200, 304, HEAD), weight files, a removal, 404s and refusals."""
    ledger.save("POST", "file", "team/a", seed=1)
    ledger.save("PUT", "indexeddb", "b", seed=2)
    ledger.save("POST", "file", "team/a", seed=3)
    loaded = ledger.call("GET", "/v1/models/file/team/a/model.json", MODEL_JSON, "file")
    assert loaded.status_code == 200
    etag = {"If-None-Match": loaded.headers["ETag"]}
    revalidated = ledger.call(
        "GET", "/v1/models/file/team/a/model.json", MODEL_JSON, "file", headers=etag
    )
    assert revalidated.status_code == 304
    head = ledger.call("HEAD", "/v1/models/file/team/a/model.json", MODEL_JSON, "file")
    assert head.status_code == 200
    for group in loaded.json()["weightsManifest"]:
        for weight_path in group["paths"]:
            weights = ledger.call("GET", f"/v1/models/file/team/a/{weight_path}", WEIGHTS, "file")
            assert weights.status_code == 200
    assert ledger.call("GET", "/v1/models/indexeddb/b/model.json", MODEL_JSON, "indexeddb")
    assert ledger.call("DELETE", "/v1/models/indexeddb/b", MODEL, "indexeddb").status_code == 200
    missing = ledger.call("GET", "/v1/models/file/missing/model.json", MODEL_JSON, "file")
    assert missing.status_code == 404
    # An unknown store is no label value of its own: labels stay bounded.
    unknown = ledger.call("GET", "/v1/models/nostore/x/model.json", MODEL_JSON)
    assert unknown.status_code == 404
    assert ledger.call("GET", "/no/such/route", "unmatched").status_code == 404
    refused = ledger.call("GET", "/v1/stores", "/v1/stores", headers={"Host": "evil.example"})
    assert refused.status_code == 400  # the host guard's refusal, counted all the same
    preflight = {"Origin": "http://page.example", "Access-Control-Request-Method": "PUT"}
    options = ledger.call("OPTIONS", "/v1/models/file/c", MODEL, "file", headers=preflight)
    assert options.status_code == 200


def scrape(ledger: Ledger, *, last: bool = False) -> Samples:
    """The metrics; the last scrape is left out of the ledger (it counts itself once sent)."""
    if last:
        response = ledger.uncounted("GET", "/metrics")
    else:
        response = ledger.call("GET", "/metrics", "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("modelshelf_"):
            continue
        for sample in family.samples:
            if sample.name.endswith(("_created", "_bucket", "_sum")):
                continue
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def expected_counts(ledger: Ledger, stores: list[str]) -> Samples:
    expected: Samples = {}

    def add(name: str, value: float, **labels: str) -> None:
        key = (name, frozenset(labels.items()))
        expected[key] = expected.get(key, 0) + value

    for (method, route, status), count in ledger.requests.items():
        add("modelshelf_requests_total", count, method=method, route=route, status=status)
        add("modelshelf_request_duration_seconds_count", count, method=method, route=route)
    for store in ["", *stores]:
        add("modelshelf_received_bytes_total", ledger.received[store], store=store)
        add("modelshelf_sent_bytes_total", ledger.sent[store], store=store)
    for store, saves, loads, removals in [("file", 2, 2, 0), ("indexeddb", 1, 1, 1)]:
        add("modelshelf_saves_total", saves, store=store)
        add("modelshelf_loads_total", loads, store=store)  # 200 and 304; not HEAD
        add("modelshelf_removals_total", removals, store=store)
    return expected


def difference(after: Samples, before: Samples) -> Samples:
    return {key: value - before.get(key, 0) for key, value in after.items()}


def requests_answered_by(directory: Path) -> dict[int, float]:
    """Each worker's own count of answered requests, from its metric file."""
    answered = {}
    for values in directory.glob("counter_*.db"):
        pid = int(values.stem.removeprefix("counter_"))
        metrics = MultiProcessCollector.merge([str(values)], accumulate=True)
        answered[pid] = sum(
            sample.value
            for metric in metrics
            if metric.name == "modelshelf_requests"
            for sample in metric.samples
            if sample.name == "modelshelf_requests_total"
        )
    return answered


def metrics_directory(worker: int) -> Path:
    environ = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
    (entry,) = [item for item in environ if item.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
    return Path(entry.split(b"=", 1)[1].decode())


def spread_over_both_workers(ledger: Ledger, server: Server) -> Path:
    """Health checks (counted too) until both workers have answered some requests."""
    directory = metrics_directory(min(server.workers()))
    for _ in range(200):
        answered = requests_answered_by(directory)
        if len(answered) == 2 and all(answered.values()):
            return directory
        ledger.call("GET", "/healthz", "/healthz")
    raise AssertionError(f"one worker answered every request: {answered}")


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_count_exactly_the_scripted_requests(tmp_path: Path, workers: int) -> None:
    with modelshelf_serve(tmp_path, workers) as server:
        ledger = Ledger(server.url)
        before = scrape(ledger)
        run_script(ledger)
        directory = spread_over_both_workers(ledger, server) if workers > 1 else None
        after = scrape(ledger, last=True)

        changed = {key: value for key, value in difference(after, before).items() if value}
        wanted = {
            key: value
            for key, value in expected_counts(ledger, ["file", "indexeddb"]).items()
            if value
        }
        assert changed == wanted
        for store in ("file", "indexeddb"):  # every store's series exist from the start
            assert ("modelshelf_saves_total", frozenset({("store", store)})) in before
        assert after[("modelshelf_uploads_in_flight", frozenset())] == 0
        failures = [key for key in after if key[0] == "modelshelf_backend_errors_total"]
        assert failures and all(after[key] == 0 for key in failures)
    if directory is not None:  # the private directory goes with the server
        assert not directory.exists()


def test_an_operators_metrics_directory_is_emptied_at_start_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = tmp_path / "prometheus"
    given.mkdir()
    (given / "counter_12345.db").write_bytes(b"stale")
    (given / "README").write_text("the operator's own file")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(given))
    with worker_metrics_directory() as directory:
        assert directory == given
        assert sorted(p.name for p in given.iterdir()) == ["README"]
    assert given.is_dir()
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(given)


def test_without_one_the_workers_get_a_private_directory_removed_at_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with worker_metrics_directory() as directory:
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(directory)
        assert directory.is_dir() and not any(directory.iterdir())
        assert directory.stat().st_mode & 0o077 == 0  # private to the server's user
    assert not directory.exists()
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


@dataclass
class _Worker:
    pid: int


def test_the_supervisor_drops_the_live_gauges_of_exited_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for pid in (111, 222):
        (tmp_path / f"gauge_livesum_{pid}.db").write_bytes(b"")
        (tmp_path / f"counter_{pid}.db").write_bytes(b"")
    supervisor = object.__new__(MetricsAwareMultiprocess)  # no signal handlers, no workers
    supervisor.processes = [_Worker(111), _Worker(222)]  # type: ignore[list-item]
    supervisor._forget_exited_workers()
    supervisor.processes = [_Worker(333), _Worker(222)]  # type: ignore[list-item]  # 111 died
    supervisor._forget_exited_workers()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "counter_111.db",  # what it counted stays counted
        "counter_222.db",
        "gauge_livesum_222.db",
    ]


METRICS_ADMIN = "metrics-admin-token"


@pytest.mark.parametrize(
    ("access", "without_token", "write_only", "reader"),
    [("public", 200, 200, 200), ("token", 401, 403, 200), ("off", 401, 404, 404)],
)
def test_metrics_access_follows_the_setting(
    serve_module: Any, access: str, without_token: int, write_only: int, reader: int
) -> None:
    url = serve_module("file", auth="tokens", admin_token=METRICS_ADMIN, metrics=access)
    writer = issue_token(url, METRICS_ADMIN, "writer", ["write:file"])
    scraper = issue_token(url, METRICS_ADMIN, "prometheus", ["read:*"])
    assert httpx.get(f"{url}/metrics").status_code == without_token
    assert httpx.get(f"{url}/metrics", headers=bearer(writer)).status_code == write_only
    assert httpx.get(f"{url}/metrics", headers=bearer(scraper)).status_code == reader


def test_metrics_default_to_needing_a_token_only_where_tokens_guard_an_open_port() -> None:
    loopback = Settings(auth="tokens", admin_token="x")
    exposed = Settings(host="0.0.0.0", auth="tokens", admin_token="x")
    open_port = Settings(host="0.0.0.0", auth="none")
    assert [s.metrics_access() for s in (loopback, exposed, open_port)] == [
        "public",
        "token",
        "public",
    ]
