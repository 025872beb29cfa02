"""The console's pages in-process: what each shows, pagination, errors, tokens, no CDN."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from modelshelf.service import console
from modelshelf.service.app import create_app
from modelshelf.service.settings import Settings
from tests.modelfactory import ModelFixture, layers_model, sharded_model
from tests.support.formdata import BOUNDARY, form_body

ADMIN = "admin-token-pages"


async def _save(http: httpx.AsyncClient, store: str, name: str, model: ModelFixture) -> str:
    body = form_body([("model.json", model.model_json), *model.files.items()], BOUNDARY)
    response = await http.post(
        f"/v1/models/{store}/{name}",
        content=body,
        headers={
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Authorization": f"Bearer {ADMIN}",
        },
    )
    assert response.status_code == 201, response.text
    version_id: str = response.json()["versionId"]
    return version_id


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            yield http


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        stores={"indexeddb": f"sqlite://{tmp_path / 'i.sqlite'}", "file": f"file://{tmp_path}/f"},
        data_dir=tmp_path,
        quotas={"file": 10_000},
    )
    async for client in _client(settings):
        yield client


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        stores={"indexeddb": "memory://", "file": f"file://{tmp_path}/f"},
        data_dir=tmp_path,
        auth="tokens",
        admin_token=ADMIN,
    )
    async for client in _client(settings):
        yield client


class _Links(HTMLParser):
    """Every URL a page makes the browser fetch or follow."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("href", "src", "action") and value]


def _urls(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.urls


def _cell_texts(html: str, row_marker: str) -> str:
    start = html.index(row_marker)
    return re.sub(r"<[^>]+>", " ", html[start : html.index("</tr>", start)])


async def test_the_stores_page_shows_kind_models_and_use_against_the_quota(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    await _save(http, "file", "a", layers_model(1))
    await _save(http, "file", "b", layers_model(2))
    page = await http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    file_row = _cell_texts(page.text, 'data-store="file"')
    assert " file " in file_row and " 2 " in file_row
    on_disk = sum(p.stat().st_size for p in (tmp_path / "f").rglob("*") if p.is_file())
    shown = re.search(r'data-used="(\d+)"', page.text.split('data-store="file"')[1])
    assert shown is not None and int(shown[1]) == on_disk  # what the quota counts
    assert "of 9.8 KiB" in file_row
    assert "none" in _cell_texts(page.text, 'data-store="indexeddb"')


async def test_the_models_page_filters_by_prefix_and_follows_the_cursor(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console.pages, "MODELS_PER_PAGE", 2)
    names = ["team/a", "team/b", "team/c", "team/d", "team/e", "zoo/x"]
    for name in names:
        await _save(http, "indexeddb", name, sharded_model())
    seen: list[str] = []
    url: str | None = "/ui/indexeddb?prefix=team/"
    pages = 0
    while url is not None:
        page = await http.get(url)
        assert page.status_code == 200
        seen += re.findall(r'<tr data-model="([^"]+)"', page.text)
        found = re.search(r'<a rel="next" href="([^"]+)"', page.text)
        url = found[1].replace("&amp;", "&") if found else None
        pages += 1
    assert seen == names[:5]
    assert pages == 3


async def test_the_model_page_shows_versions_newest_first_with_aliases_and_hashes(
    http: httpx.AsyncClient,
) -> None:
    first = await _save(http, "indexeddb", "team/net", layers_model(1))
    second = await _save(http, "indexeddb", "team/net", layers_model(2))
    alias = await http.put("/v1/models/indexeddb/team/net/~aliases/prod", json={"versionId": first})
    assert alias.status_code == 200, alias.text
    page = (await http.get("/ui/indexeddb/team/net")).text
    assert re.findall(r'<tr data-version="([^"]+)"', page) == [second, first]
    info = (await http.get("/v1/models/indexeddb/team/net")).json()
    for version in info["versions"]:
        assert version["modelJson"]["sha256"] in page
        assert all(f["sha256"] in page for f in version["files"])
    assert '<span class="tag">prod</span>' in _cell_texts(page, f'data-version="{first}"') or (
        "prod" in _cell_texts(page, f'data-version="{first}"')
    )
    assert "tf.loadLayersModel('http://127.0.0.1/v1/models/indexeddb/team/net/model.json')" in page
    older = (await http.get(f"/ui/indexeddb/team/net?version={first}")).text
    assert f'<tr data-version="{first}" class="shown">' in older
    by_alias = (await http.get("/ui/indexeddb/team/net?version=prod")).text
    assert f'<tr data-version="{first}" class="shown">' in by_alias


async def test_a_graph_model_shows_its_op_summary(http: httpx.AsyncClient) -> None:
    folder = Path(__file__).parent / "fixtures" / "graph_model"
    model = ModelFixture(
        __import__("json").loads((folder / "model.json").read_text()),
        {p.name: p.read_bytes() for p in sorted(folder.glob("*.bin"))},
    )
    await _save(http, "indexeddb", "graph", model)
    page = (await http.get("/ui/indexeddb/graph")).text
    assert '<table class="ops">' in page
    assert "tf.loadGraphModel(" in page


async def test_unknown_stores_models_and_tensors_get_an_html_page_with_the_code(
    http: httpx.AsyncClient,
) -> None:
    await _save(http, "indexeddb", "known", layers_model(1))
    for url, status, code in [
        ("/ui/nowhere", 404, "unknown_store"),
        ("/ui/indexeddb/missing", 404, "model_not_found"),
        ("/ui/indexeddb/known?version=nope", 404, "version_not_found"),
        ("/ui/indexeddb/known/~tensor?tensor=nope", 404, "tensor_not_found"),
    ]:
        page = await http.get(url)
        assert (page.status_code, page.headers["content-type"][:9]) == (status, "text/html"), url
        assert f'data-error-code="{code}"' in page.text, (url, page.text[-600:])


async def test_every_page_and_asset_stays_on_the_server(http: httpx.AsyncClient) -> None:
    """Air-gapped: no URL a page fetches or links points off the server (the API docs do not
    count: they are tested offline in Chromium)."""
    await _save(http, "indexeddb", "net", layers_model(1))
    version = (await http.get("/v1/models/indexeddb/net")).json()["currentVersion"]
    pages = [
        "/",
        "/ui/indexeddb",
        "/ui/indexeddb/net",
        f"/ui/indexeddb/net/~tensor?tensor=dense_Dense1/kernel&version={version}",
        f"/ui/indexeddb/net/~compare?a={version}&b={version}",
    ]
    for url in pages:
        page = await http.get(url)
        assert page.status_code == 200, (url, page.text[-500:])
        for link in _urls(page.text):
            assert not re.match(r"^(https?:)?//", link), (url, link)
        scripts = re.findall(r"<script[^>]*>", page.text)
        assert scripts == [f'<script src="{console.ASSETS_PATH}/console.js" defer>'], url
    for asset in sorted((Path(console.pages.__file__).parent / "static").iterdir()):
        served = await http.get(f"{console.ASSETS_PATH}/{asset.name}")
        assert served.status_code == 200
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", served.text), asset.name


async def test_with_tokens_a_page_without_one_asks_for_it_and_shows_nothing(
    guarded: httpx.AsyncClient,
) -> None:
    await _save(guarded, "indexeddb", "secret", layers_model(1))
    page = await guarded.get("/ui/indexeddb/secret")
    assert page.status_code == 401
    assert "data-needs-token" in page.text
    assert "dense_Dense1" not in page.text
    asset = await guarded.get(f"{console.ASSETS_PATH}/console.css")
    assert asset.status_code == 200  # the page's own assets need no token
    api = await guarded.get("/v1/models/indexeddb/secret")
    assert api.status_code == 401  # the API still refuses


async def test_with_tokens_the_page_offers_only_what_the_scopes_allow(
    guarded: httpx.AsyncClient,
) -> None:
    await _save(guarded, "indexeddb", "team/net", layers_model(1))
    made = await guarded.post(
        "/v1/tokens",
        headers={"Authorization": f"Bearer {ADMIN}"},
        json={"name": "reader", "scopes": ["read:indexeddb/team/*"], "expiresIn": 600},
    )
    reader = {"Authorization": f"Bearer {made.json()['token']}"}
    page = await guarded.get("/ui/indexeddb/team/net", headers=reader)
    assert page.status_code == 200
    assert "dense_Dense1/kernel" in page.text
    for action in ("data-action=", 'id="alias-form"', 'id="transfer-form"'):
        assert action not in page.text
    assert 'id="share"' in page.text  # reading is enough to share
    admin = await guarded.get(
        "/ui/indexeddb/team/net", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    for action in ('data-action="remove-version"', 'id="alias-form"', 'id="transfer-form"'):
        assert action in admin.text
    store_page = await guarded.get("/ui/indexeddb", headers=reader)
    assert 'id="upload"' not in store_page.text
    outside = await guarded.post(
        "/v1/tokens",
        headers={"Authorization": f"Bearer {ADMIN}"},
        json={"name": "other", "scopes": ["read:file"], "expiresIn": 600},
    )
    refused = await guarded.get(
        "/ui/indexeddb/team/net", headers={"Authorization": f"Bearer {outside.json()['token']}"}
    )
    assert refused.status_code == 403
    assert 'data-error-code="forbidden"' in refused.text
