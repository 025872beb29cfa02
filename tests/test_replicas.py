"""Three server processes over one SeaweedFS bucket, and no balancer: the client goes
round-robin over their URLs (issue 12, item 4).

The models and the tokens live in the same bucket (the ``s3`` store at its root, the auth
store under ``~auth/``), as in docker-compose.yml's ``scale`` profile. Every save is visible
through every replica as soon as it is answered, concurrent saves through all of them end on
one current version everywhere, alias moves and removals hold at once, and a token minted
through one replica works on the others; a revocation takes them up to the token cache's 2 s.

Each check reads through every replica before the change too, so a per-process cache that
outlived the change would be caught.

The last part puts Debian's nginx with deploy/nginx-scale.conf in front of the same replicas
(uploads and downloads stream through it, URLs name it), and checks the ``scale`` profile that
docker-compose renders.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from tests.modelfactory import ModelFixture, dense_model, http_saved
from tests.support.formdata import post_model
from tests.support.live_server import free_port
from tests.support.server_process import server_process
from tests.support.tokens import bearer, issue_token

REPOSITORY = Path(__file__).resolve().parents[1]
REPLICAS = 3
BUCKET = "modelshelf-replicas"
STORE = "s3"
ADMIN = "replicas-admin-token"
SAVES_PER_REPLICA = 4  # per round of concurrent saves
ROUNDS = 3
TOKEN_CACHE_SECONDS = 2.0  # access.registry.CACHE_SECONDS
REVOCATION_DEADLINE_SECONDS = TOKEN_CACHE_SECONDS + 1.0
T = TypeVar("T")


@dataclass
class Replicas:
    """The replicas' base URLs, and one admin client each; ``next()`` goes round-robin."""

    urls: list[str]
    clients: list[httpx.Client]

    def __post_init__(self) -> None:
        self._turns = itertools.cycle(range(len(self.urls)))

    def next(self) -> int:
        """The index of the replica whose turn it is."""
        return next(self._turns)

    def at_once(self, read: Callable[[httpx.Client], T]) -> list[T]:
        """``read`` through every replica at the same time, in replica order."""
        with ThreadPoolExecutor(len(self.clients)) as pool:
            return list(pool.map(read, self.clients))


@dataclass(frozen=True)
class View:
    """What one replica answers about a model's current version."""

    current: str
    version_ids: list[str]
    model_version: str
    etag: str
    model_json: bytes
    weights_sha256: str


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, seaweed: Any) -> Iterator[Replicas]:
    seaweed.create_bucket(BUCKET)
    stores = {STORE: seaweed.backend_url(BUCKET)}
    settings = {
        "auth": "tokens",
        "admin_token": ADMIN,
        "auth_store": seaweed.backend_url(BUCKET, "~auth"),
    }
    workdir = tmp_path_factory.mktemp("replicas")
    with ExitStack() as stack:
        with ThreadPoolExecutor(REPLICAS) as pool:  # started side by side
            starting = [server_process(stores, workdir, **settings) for _ in range(REPLICAS)]
            urls = [server.url for server in pool.map(stack.enter_context, starting)]
        clients = [
            stack.enter_context(httpx.Client(base_url=url, headers=bearer(ADMIN), timeout=30))
            for url in urls
        ]
        yield Replicas(urls, clients)


def _model_path(name: str) -> str:
    return f"/v1/models/{STORE}/{name}"


def _save(url: str, name: str, model: ModelFixture, token: str = ADMIN) -> httpx.Response:
    """One save on a connection of its own (safe from any thread)."""
    return post_model(url + _model_path(name), model, bearer(token))


def _saved(url: str, name: str, model: ModelFixture) -> str:
    response = _save(url, name, model)
    assert response.status_code == 201, response.text
    version_id: str = response.json()["versionId"]
    return version_id


def _weights_sha256(client: httpx.Client, name: str, served: bytes) -> str:
    digest = hashlib.sha256()
    for group in json.loads(served)["weightsManifest"]:
        for path in group["paths"]:
            response = client.get(f"{_model_path(name)}/{path}")
            assert response.status_code == 200, response.text
            digest.update(response.content)
    return digest.hexdigest()


def _view(name: str) -> Callable[[httpx.Client], View]:
    def read(client: httpx.Client) -> View:
        info = client.get(_model_path(name))
        assert info.status_code == 200, info.text
        served = client.get(f"{_model_path(name)}/model.json")
        assert served.status_code == 200, served.text
        return View(
            current=info.json()["currentVersion"],
            version_ids=[version["id"] for version in info.json()["versions"]],
            model_version=served.headers["X-Model-Version"],
            etag=served.headers["ETag"],
            model_json=served.content,
            weights_sha256=_weights_sha256(client, name, served.content),
        )

    return read


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _assert_all_on(views: Sequence[View], version_id: str, model: ModelFixture) -> None:
    for index, view in enumerate(views):
        where = f"replica {index}"
        assert view.current == version_id, where
        assert view.model_version == version_id, where
        assert view.etag == f'"{version_id}"', where
        assert view.weights_sha256 == _sha256(model.weight_bytes), where
    assert len({view.model_json for view in views}) == 1


@pytest.mark.s3
def test_every_save_is_visible_through_every_replica_at_once(replicas: Replicas) -> None:
    name = f"visible/{uuid.uuid4().hex[:8]}"
    saved: list[str] = []
    for seed in range(2 * REPLICAS):  # each replica saves twice, round-robin
        model = dense_model(seed)
        saved.append(_saved(replicas.urls[replicas.next()], name, model))
        views = replicas.at_once(_view(name))  # no sleep: right after the save's answer
        _assert_all_on(views, saved[-1], model)
        assert all(view.version_ids == saved for view in views)


@pytest.mark.s3
def test_concurrent_saves_through_every_replica_end_on_one_current_version(
    replicas: Replicas,
) -> None:
    name = f"race/{uuid.uuid4().hex[:8]}"
    seeds: dict[str, int] = {}  # version id -> the seed of the model saved as it
    for round_number in range(ROUNDS):
        batch = range(round_number * 100, round_number * 100 + REPLICAS * SAVES_PER_REPLICA)
        with ThreadPoolExecutor(len(batch)) as pool:
            answers = list(
                pool.map(
                    lambda seed: _save(replicas.urls[seed % REPLICAS], name, dense_model(seed)),
                    batch,
                )
            )
        assert [r.status_code for r in answers] == [201] * len(batch), [r.text for r in answers]
        seeds |= {r.json()["versionId"]: seed for seed, r in zip(batch, answers, strict=True)}
        newest = max(seeds)  # ids sort by the time their save began (README, Decisions)
        views = replicas.at_once(_view(name))
        _assert_all_on(views, newest, dense_model(seeds[newest]))
        assert all(view.version_ids == sorted(seeds) for view in views)  # none lost
    for version_id, seed in seeds.items():  # none partial, each through the next replica
        _version_check(name, version_id, dense_model(seed))(replicas.clients[replicas.next()])


def _version_check(
    name: str, version_id: str, model: ModelFixture
) -> Callable[[httpx.Client], None]:
    def check(client: httpx.Client) -> None:
        served = client.get(f"{_model_path(name)}/model.json", params={"version": version_id})
        assert served.status_code == 200, served.text
        assert served.headers["X-Model-Version"] == version_id
        assert _weights_sha256(client, name, served.content) == _sha256(model.weight_bytes)
        original = client.get(
            f"{_model_path(name)}/model.json", params={"version": version_id, "original": "true"}
        )
        assert original.content == model.model_json

    return check


def _alias_target(alias: str, name: str) -> Callable[[httpx.Client], tuple[str, str, str]]:
    """What a replica resolves the alias to: model.json's version and ETag, and the info's."""

    def read(client: httpx.Client) -> tuple[str, str, str]:
        served = client.get(f"{_model_path(name)}/model.json", params={"version": alias})
        assert served.status_code == 200, served.text
        aliases = client.get(_model_path(name)).json()["aliases"]
        return served.headers["X-Model-Version"], served.headers["ETag"], aliases[alias]

    return read


@pytest.mark.s3
def test_an_alias_moved_through_one_replica_resolves_through_the_others_at_once(
    replicas: Replicas,
) -> None:
    name = f"alias/{uuid.uuid4().hex[:8]}"
    versions = [_saved(replicas.urls[replicas.next()], name, dense_model(n)) for n in range(3)]
    alias_path = f"{_model_path(name)}/~aliases/prod"
    assert replicas.clients[0].put(alias_path, json={"versionId": versions[0]}).status_code == 200
    previous = versions[0]
    for step, target in enumerate([versions[1], versions[2], versions[0], versions[2]]):
        # Every replica has resolved the alias before the move.
        assert (
            replicas.at_once(_alias_target("prod", name))
            == [(previous, f'"{previous}"', previous)] * REPLICAS
        )
        mover = replicas.clients[step % REPLICAS]
        moved = mover.put(alias_path, json={"versionId": target})
        assert moved.status_code == 200, moved.text
        assert (
            replicas.at_once(_alias_target("prod", name))
            == [(target, f'"{target}"', target)] * REPLICAS
        )
        previous = target


def _absent(name: str, weight_url: str) -> Callable[[httpx.Client], list[int]]:
    def read(client: httpx.Client) -> list[int]:
        answers = [
            client.get(_model_path(name)),
            client.get(f"{_model_path(name)}/model.json"),
            client.head(f"{_model_path(name)}/model.json"),
            client.get(weight_url),
        ]
        return [answer.status_code for answer in answers]

    return read


@pytest.mark.s3
def test_a_removal_through_one_replica_is_a_404_through_the_others_at_once(
    replicas: Replicas,
) -> None:
    for remover in range(REPLICAS):
        name = f"removed/{uuid.uuid4().hex[:8]}"
        model = dense_model(remover)
        version_id = _saved(replicas.urls[(remover + 1) % REPLICAS], name, model)
        views = replicas.at_once(_view(name))  # loaded everywhere first
        _assert_all_on(views, version_id, model)
        paths = [
            p
            for group in json.loads(views[0].model_json)["weightsManifest"]
            for p in group["paths"]
        ]
        weight_url = f"{_model_path(name)}/{paths[0]}"
        removed = replicas.clients[remover].delete(_model_path(name))
        assert removed.status_code == 200, removed.text
        assert replicas.at_once(_absent(name, weight_url)) == [[404] * 4] * REPLICAS


@pytest.mark.s3
def test_a_removed_version_is_not_revalidated_by_the_others(replicas: Replicas) -> None:
    name = f"revalidated/{uuid.uuid4().hex[:8]}"
    version_id = _saved(replicas.urls[0], name, dense_model(7))
    served = json.loads(replicas.clients[1].get(f"{_model_path(name)}/model.json").content)
    weight_url = f"{_model_path(name)}/{served['weightsManifest'][0]['paths'][0]}"
    etag = replicas.clients[1].get(weight_url).headers["ETag"]  # replica 1 reads the record
    assert replicas.clients[0].delete(_model_path(name)).status_code == 200
    revalidated = replicas.clients[1].get(weight_url, headers={"If-None-Match": etag})
    assert revalidated.status_code == 404, f"{version_id} removed, answered {revalidated}"


@pytest.mark.s3
def test_one_version_removed_through_one_replica_is_gone_from_the_others_at_once(
    replicas: Replicas,
) -> None:
    name = f"removed-version/{uuid.uuid4().hex[:8]}"
    models = [dense_model(n) for n in range(2)]
    older, newer = (_saved(replicas.urls[n], name, model) for n, model in enumerate(models))
    _assert_all_on(replicas.at_once(_view(name)), newer, models[1])
    removed = replicas.clients[2].delete(_model_path(name), params={"version": newer})
    assert removed.status_code == 200, removed.text
    views = replicas.at_once(_view(name))
    _assert_all_on(views, older, models[0])  # the newest remaining version is current
    assert all(view.version_ids == [older] for view in views)
    gone = replicas.at_once(
        lambda client: (
            client.get(f"{_model_path(name)}/model.json", params={"version": newer}).status_code
        )
    )
    assert gone == [404] * REPLICAS


@pytest.mark.s3
def test_a_token_minted_through_one_replica_works_on_the_others(replicas: Replicas) -> None:
    name = f"tokens/{uuid.uuid4().hex[:8]}"
    token = issue_token(
        replicas.urls[0], ADMIN, "replicated", ["read:*", f"write:{STORE}/tokens/*"]
    )
    for index in (1, 2):
        url = replicas.urls[index]
        saved = _save(url, name, dense_model(index), token)
        assert saved.status_code == 201, (index, saved.text)
        loaded = httpx.get(f"{url}{_model_path(name)}/model.json", params={"token": token})
        assert loaded.status_code == 200, (index, loaded.text)
        # The token's scopes travelled with it: a save outside them is refused here too.
        outside = _save(url, f"elsewhere/{uuid.uuid4().hex[:8]}", dense_model(index), token)
        assert outside.status_code == 403, (index, outside.text)


@pytest.mark.s3
def test_a_token_revoked_through_one_replica_is_refused_by_the_others_within_3_s(
    replicas: Replicas,
) -> None:
    created = replicas.clients[0].post(
        "/v1/tokens", json={"name": "revoked", "scopes": ["read:*"], "expiresIn": 3600}
    )
    assert created.status_code == 201, created.text
    token, token_id = created.json()["token"], created.json()["id"]
    listing = f"/v1/models/{STORE}"

    def status(url: str) -> int:
        return httpx.get(url + listing, headers=bearer(token), timeout=30).status_code

    assert [status(url) for url in replicas.urls] == [200] * REPLICAS  # cached everywhere
    revoked = replicas.clients[0].delete(f"/v1/tokens/{token_id}")
    assert revoked.status_code == 200, revoked.text
    started = time.monotonic()
    assert status(replicas.urls[0]) == 401  # at once where it was revoked
    waiting = set(replicas.urls[1:])
    while waiting := {url for url in waiting if status(url) == 200}:
        elapsed = time.monotonic() - started
        assert elapsed < REVOCATION_DEADLINE_SECONDS, f"still accepted after {elapsed:.1f} s"
        time.sleep(0.1)
    assert [status(url) for url in replicas.urls] == [401] * REPLICAS


# -- behind nginx, with deploy/nginx-scale.conf ------------------------------------------------

NGINX_CONF = REPOSITORY / "deploy" / "nginx-scale.conf"
NGINX_WRAPPER = """
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{}}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/site.conf;
}}
"""
LARGE_BYTES = 12 << 20  # above S3's 8 MiB part size, far above nginx's 16 KiB body buffer


@dataclass(frozen=True)
class Balancer:
    url: str
    error_log: Path


def _nginx() -> str:
    """Debian's nginx (often off a user's PATH, in /usr/sbin), or skip."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if found is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    return found


def _nginx_command(nginx: str, workdir: Path) -> list[str]:
    """nginx on NGINX_WRAPPER in ``workdir`` (which includes ``workdir/site.conf``)."""
    conf, log = workdir / "nginx.conf", workdir / "error.log"
    conf.write_text(NGINX_WRAPPER.format(dir=workdir))
    return [nginx, "-p", str(workdir), "-c", str(conf), "-e", str(log)]


def _site_for(replicas: Replicas, port: int) -> str:
    """deploy/nginx-scale.conf, with the test's replicas and port for compose's names."""
    site = NGINX_CONF.read_text()
    for number, url in enumerate(replicas.urls, start=1):
        site = site.replace(f"server modelshelf-{number}:8000", f"server {url.split('//')[1]}")
    assert "modelshelf-" not in site.replace("upstream modelshelf", "")
    return site.replace("listen 80;", f"listen 127.0.0.1:{port};")


@pytest.fixture(scope="module")
def balancer(replicas: Replicas, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Balancer]:
    nginx = _nginx()
    workdir = tmp_path_factory.mktemp("nginx")
    port = free_port()
    (workdir / "site.conf").write_text(_site_for(replicas, port))
    process = subprocess.Popen(
        _nginx_command(nginx, workdir), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_answering(url, process)
        yield Balancer(url, workdir / "error.log")
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_until_answering(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert process.poll() is None, "nginx exited; see its error.log"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"nginx did not answer at {url}")


@pytest.mark.s3
def test_through_nginx_large_saves_stream_and_urls_name_the_balancer(
    balancer: Balancer, replicas: Replicas
) -> None:
    name = f"balanced/{uuid.uuid4().hex[:8]}"
    weights = os.urandom(LARGE_BYTES)
    entries = [{"name": "w", "shape": [LARGE_BYTES // 4], "dtype": "float32"}]
    model = http_saved(entries, weights)
    saved = _save(balancer.url, name, model)
    assert saved.status_code == 201, saved.text
    version_id = saved.json()["versionId"]
    load_url = saved.json()["loadUrl"]  # from the Host header nginx passed on, port and all
    assert load_url == f"{balancer.url}{_model_path(name)}/model.json?version={version_id}"
    with httpx.Client(base_url=balancer.url, headers=bearer(ADMIN), timeout=60) as client:
        served = client.get(load_url)
        assert served.status_code == 200, served.text
        assert served.headers["X-Model-Version"] == version_id
        assert _weights_sha256(client, name, served.content) == _sha256(weights)
        views = [_view(name)(client) for _ in range(REPLICAS)]  # through nginx, any replica
    _assert_all_on(views, version_id, model)
    _assert_all_on(replicas.at_once(_view(name)), version_id, model)
    # Neither the upload nor the download went through a buffer file of nginx's.
    log = balancer.error_log.read_text()
    assert "buffered to a temporary file" not in log, log


# -- docker-compose.yml's scale profile -------------------------------------------------------

SCALE_REPLICAS = ["modelshelf-1", "modelshelf-2", "modelshelf-3"]
DEFAULT_SERVICES = {"minio", "create-bucket", "modelshelf"}


def _compose_config(*arguments: str) -> dict[str, Any]:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed")
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MODELSHELF_", "COMPOSE_", "DOCKER_"))
    }
    rendered = subprocess.run(
        ["docker-compose", *arguments, "config"],
        cwd=REPOSITORY,
        env={**environment, "MODELSHELF_ADMIN_TOKEN": "compose-admin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    config: dict[str, Any] = yaml.safe_load(rendered.stdout)
    return config


def _mounted_file(service: dict[str, Any], target: str) -> Path:
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):  # the long syntax (docker compose v2 renders it)
            source, inside, read_only = volume["source"], volume["target"], volume["read_only"]
        else:
            source, inside, mode = [*volume.split(":"), "rw"][:3]
            read_only = mode == "ro"
        if inside == target:
            assert read_only, f"{target} is mounted writable"
            return Path(source)
    raise AssertionError(f"nothing is mounted at {target}")


def test_the_default_services_have_no_profile() -> None:
    services = _compose_config()["services"]
    assert {name for name, service in services.items() if not service.get("profiles")} == (
        DEFAULT_SERVICES
    )


def test_the_scale_profile_runs_three_replicas_over_one_bucket_behind_nginx() -> None:
    services = _compose_config("--profile", "scale")["services"]
    replicas = [services[name] for name in SCALE_REPLICAS]
    environments = [replica["environment"] for replica in replicas]
    assert all(replica["profiles"] == ["scale"] for replica in replicas)
    assert all(replica["build"] == services["modelshelf"]["build"] for replica in replicas)
    assert all("ports" not in replica for replica in replicas)  # reached through nginx only
    stores = [json.loads(environment["MODELSHELF_STORES"]) for environment in environments]
    assert stores == [{"s3": services["modelshelf"]["environment"]["MODELSHELF_S3_URL"]}] * 3
    (auth_store,) = {environment["MODELSHELF_AUTH_STORE"] for environment in environments}
    models, tokens = urlsplit(stores[0]["s3"]), urlsplit(auth_store)
    assert (tokens.scheme, tokens.netloc, tokens.query) == ("s3", models.netloc, models.query)
    assert tokens.path.strip("/").startswith("~")  # a prefix no model name can have
    assert "local/" + models.netloc in services["create-bucket"]["entrypoint"]
    assert {environment["MODELSHELF_ADMIN_TOKEN"] for environment in environments} == {
        "compose-admin"
    }
    balancer = services["balancer"]
    assert balancer["image"].startswith("nginx")
    assert set(balancer["depends_on"]) == set(SCALE_REPLICAS)
    conf = _mounted_file(balancer, "/etc/nginx/conf.d/default.conf")
    assert conf.resolve() == NGINX_CONF.resolve()
    upstream = re.search(r"upstream modelshelf \{(.*?)\}", conf.read_text(), re.DOTALL)
    assert upstream is not None
    servers = re.findall(r"^\s*server\s+(\S+?)[\s;]", upstream.group(1), re.MULTILINE)
    assert servers == [f"{name}:8000" for name in SCALE_REPLICAS]


def test_the_nginx_config_is_valid_for_nginx(tmp_path: Path) -> None:
    nginx = _nginx()
    site = NGINX_CONF.read_text()
    (tmp_path / "site.conf").write_text(re.sub(r"modelshelf-\d:8000", "127.0.0.1:8000", site))
    checked = subprocess.run(
        [*_nginx_command(nginx, tmp_path), "-t"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
