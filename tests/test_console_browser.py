"""The console in Debian's Chromium, over the file, indexeddb and s3 stores.

Each test drives the pages as a person would (links, the file input, buttons, the confirm
dialog) and checks the outcome through the API, not only on the page. Screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.modelfactory import layers_model
from tests.support.chromium import screenshot_path
from tests.support.formdata import post_model

pytestmark = pytest.mark.browser
STORES = ["file", "indexeddb", pytest.param("s3", marks=pytest.mark.s3)]
OTHER_STORE = {"file": "indexeddb", "indexeddb": "file", "s3": "file"}
GRAPH_MODEL = Path(__file__).parent / "fixtures" / "graph_model"


@pytest.fixture(scope="module")
def server(serve_module: Callable[..., str]) -> str:
    return serve_module("file", "indexeddb", "s3")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations
    yield page
    context.close()


def _saved(server: str, store: str, name: str, seed: int) -> str:
    response = post_model(f"{server}/v1/models/{store}/{name}", layers_model(seed))
    assert response.status_code == 201, response.text
    version_id: str = response.json()["versionId"]
    return version_id


def _info(server: str, store: str, name: str) -> httpx.Response:
    return httpx.get(f"{server}/v1/models/{store}/{name}", timeout=30)


@pytest.mark.parametrize("store", STORES)
def test_browse_inspect_and_open_a_histogram(server: str, page: Page, store: str) -> None:
    name = f"browse/{store}-net"
    _saved(server, store, name, seed=1)
    _saved(server, store, name, seed=2)
    page.goto(server + "/")
    row = page.locator(f"tr[data-store='{store}']")
    expect(row).to_be_visible()
    assert int(row.locator("[data-models]").inner_text()) >= 1
    page.screenshot(path=screenshot_path(f"console-stores-{store}"))

    row.get_by_role("link", name=store).click()
    expect(page.locator("h1")).to_contain_text(store)
    page.get_by_role("link", name=name).click()
    expect(page.locator("h1")).to_contain_text(name)

    layers = page.locator("table.layers tbody tr")
    expect(layers).to_have_count(2)
    # Parameters come from the weight specs: 3x4 + 4 and 4x2 + 2.
    assert [layers.nth(i).locator("td").nth(2).inner_text() for i in range(2)] == ["16", "10"]
    expect(layers.nth(0)).to_contain_text("units 4")
    weights = page.locator("table.weights tbody tr")
    expect(weights).to_have_count(4)
    expect(page.locator("tr[data-weight='dense_Dense2/kernel']")).to_contain_text("[4, 2]")
    expect(page.locator("dl.meta")).to_contain_text('"team": "vision"')
    page.screenshot(path=screenshot_path(f"console-model-{store}"), full_page=True)

    page.locator("tr[data-weight='dense_Dense1/kernel']").get_by_role("link").click()
    kernel = layers_model(2).weight_bytes[: 12 * 4]
    values = np.frombuffer(kernel, "<f4").astype(np.float64)
    expect(page.locator("[data-stat='count']")).to_have_text("12")
    shown_min = float(page.locator("[data-stat='min']").inner_text())
    assert shown_min == pytest.approx(values.min(), rel=1e-5)
    shown_max = float(page.locator("[data-stat='max']").inner_text())
    assert shown_max == pytest.approx(values.max(), rel=1e-5)
    shown_mean = float(page.locator("[data-stat='mean']").inner_text())
    assert shown_mean == pytest.approx(values.mean(), rel=1e-5)
    titles = page.locator("figure.histogram rect title").evaluate_all(
        "titles => titles.map(title => title.textContent)"
    )
    assert sum(int(title.rsplit(": ", 1)[1].replace(",", "")) for title in titles) == 12
    page.screenshot(path=screenshot_path(f"console-histogram-{store}"))

    page.go_back()
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("tr[data-status='changed']")).to_have_count(4)


@pytest.mark.parametrize("store", STORES)
def test_download_alias_remove_and_copy(server: str, page: Page, store: str) -> None:
    name = f"manage/{store}-net"
    first = _saved(server, store, name, seed=1)
    second = _saved(server, store, name, seed=2)
    page.goto(f"{server}/ui/{store}/{name}")

    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Download the export")).click()
    archive = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
    prefix = f"{store}-net"
    assert archive.namelist() == [f"{prefix}.json", f"{prefix}.weights.bin"]
    assert archive.read(f"{prefix}.weights.bin") == layers_model(2).weight_bytes

    page.fill("#alias-name", "prod")
    page.select_option("#alias-version", first)
    page.get_by_role("button", name="Set", exact=True).click()
    expect(page.locator("li[data-alias='prod']")).to_contain_text(first)
    assert _info(server, store, name).json()["aliases"] == {"prod": first}

    # The aliased version is refused, with the server's message on the page.
    page.locator(f"button[data-action='remove-version'][data-version='{first}']").click()
    expect(page.locator("#messages .error")).to_contain_text("version_in_use")
    page.locator(f"button[data-action='remove-version'][data-version='{second}']").click()
    expect(page.locator(f"tr[data-version='{second}']")).to_have_count(0)
    assert [v["id"] for v in _info(server, store, name).json()["versions"]] == [first]

    other = OTHER_STORE[store]
    page.select_option("#transfer-store", other)
    page.fill("#transfer-name", f"copied/{store}-net")
    page.locator("#transfer-form button[value='copy']").click()
    page.wait_for_url(f"**/ui/{other}/copied/{store}-net")
    expect(page.locator("h1")).to_contain_text(f"copied/{store}-net")
    copied = _info(server, other, f"copied/{store}-net")
    assert copied.status_code == 200, copied.text
    assert _info(server, store, name).status_code == 200  # a copy leaves the source


@pytest.mark.parametrize("store", STORES)
def test_upload_a_converter_folder_through_the_file_input(
    server: str, page: Page, store: str
) -> None:
    name = f"uploaded/{store}-graph"
    files = [GRAPH_MODEL / "model.json", *sorted(GRAPH_MODEL.glob("*.bin"))]
    page.goto(f"{server}/ui/{store}")
    page.fill("#upload-name", name)
    page.set_input_files("#upload-files", files)
    expect(page.locator("#upload-list li")).to_have_count(len(files))
    page.screenshot(path=screenshot_path(f"console-upload-{store}"))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url(f"**/ui/{store}/{name}")
    expect(page.locator("table.ops tbody tr").first).to_be_visible()

    info = _info(server, store, name).json()
    stored = b"".join(
        httpx.get(
            f"{server}/v1/models/{store}/{name}/~v/{info['currentVersion']}/{f['path']}"
        ).content
        for f in info["versions"][-1]["files"]
    )
    assert stored == b"".join(path.read_bytes() for path in files[1:])


@pytest.mark.parametrize("store", STORES)
def test_upload_a_downloads_pair_by_dropping_it(
    server: str, page: Page, store: str, tmp_path: Path
) -> None:
    """The export of one model, unzipped, uploads as another: the downloads:// pair."""
    _saved(server, store, f"pair/{store}-source", seed=3)
    export = httpx.get(f"{server}/v1/models/{store}/pair/{store}-source/~export", timeout=30)
    zipfile.ZipFile(io.BytesIO(export.content)).extractall(tmp_path)
    pair = sorted(tmp_path.iterdir())
    page.goto(f"{server}/ui/{store}")
    page.fill("#upload-name", f"pair/{store}-copy")
    _drop_files(page, "#upload-drop", pair)
    expect(page.locator("#upload-list li")).to_have_count(2)
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url(f"**/ui/{store}/pair/{store}-copy")
    loaded = httpx.get(f"{server}/v1/models/{store}/pair/{store}-copy/model.json").json()
    weights = httpx.get(
        f"{server}/v1/models/{store}/pair/{store}-copy/{loaded['weightsManifest'][0]['paths'][0]}"
    )
    assert weights.content == layers_model(3).weight_bytes


def _drop_files(page: Page, target: str, paths: list[Path]) -> None:
    """Dispatch a real drop event whose DataTransfer holds these files."""
    payload = [{"name": p.name, "bytes": list(p.read_bytes())} for p in paths]
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const f of files) transfer.items.add(new File([new Uint8Array(f.bytes)], f.name));
            return transfer;
        }""",
        payload,
    )
    page.dispatch_event(target, "dragover", {"dataTransfer": transfer})
    page.dispatch_event(target, "drop", {"dataTransfer": transfer})


def test_a_phone_sized_window_needs_no_sideways_scroll(server: str, browser: Browser) -> None:
    """Wide tables scroll inside their own box; the page itself fits the window."""
    _saved(server, "indexeddb", "phone/net", seed=1)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        for url in ("/", "/ui/indexeddb", "/ui/indexeddb/phone/net"):
            page.goto(server + url)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (url, width)
        page.screenshot(path=screenshot_path("console-model-phone"), full_page=True)
    finally:
        context.close()


def test_the_keyboard_reaches_and_follows_the_links(server: str, page: Page) -> None:
    _saved(server, "file", "keys/net", seed=1)
    page.goto(server + "/")
    for _ in range(20):  # skip link, brand, breadcrumbs, docs, then the stores
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "file":
            break
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/file")
    page.get_by_role("textbox", name="Name starts with").focus()
    page.keyboard.type("keys/")
    page.keyboard.press("Enter")
    expect(page.locator("tr[data-model]")).to_have_count(1)
