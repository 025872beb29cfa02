"""Clients generated from the LIVE OpenAPI document work against a real server.

A live server's own ``/openapi.json`` (not the snapshot) is fed to two generators:

- TypeScript: ``openapi-typescript`` types (tests/clients/ts/generate.mjs) + the
  ``openapi-fetch`` runtime; tests/clients/ts/scenario.mts is type-checked against the
  generated types with ``tsc`` and run with Node. Install first: ``cd tests/clients/ts && npm ci``.
- Python: ``openapi-python-client`` generates a package into a temp dir, imported from there.

Each client saves (JSON body and multipart body), lists, copies, inspects, loads model.json
and weight bytes, removes, and reads a 404 as the documented ErrorBody. So an API or document
change that breaks generated clients fails the build.

Both run against two servers: one with tokens off (MODELSHELF_AUTH=none) and one with
MODELSHELF_AUTH=tokens, where the TypeScript client sends a bearer token from an
openapi-fetch middleware and the Python client is the generated ``AuthenticatedClient``. There
the same save and list first go out without a token (401) and with a read-only token (403 for
the save), so a client that stopped sending its token would fail.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.modelfactory import ModelFixture, dense_model
from tests.support.tokens import issue_token

pytestmark = pytest.mark.clients

CLIENTS = Path(__file__).parent / "clients"
TS_DIR = CLIENTS / "ts"
PYTHON_CONFIG = CLIENTS / "python" / "openapi-python-client.json"
PACKAGE = "modelshelf_generated_client"
GENERATE_TIMEOUT = 60
COMPILE_TIMEOUT = 120
RUN_TIMEOUT = 60
ADMIN = "admin-token-generated-clients"


@dataclass(frozen=True)
class Server:
    url: str
    token: str | None = None  # tokens mode: read, write and delete on every store
    read_only_token: str | None = None  # tokens mode: read:*


@pytest.fixture(scope="module")
def tokens_server(serve_module: Callable[..., str]) -> Server:
    url = serve_module("indexeddb", "file", auth="tokens", admin_token=ADMIN)
    return Server(
        url,
        token=issue_token(url, ADMIN, "generated-client", ["read:*", "write:*", "delete:*"]),
        read_only_token=issue_token(url, ADMIN, "generated-client-read-only", ["read:*"]),
    )


@pytest.fixture(scope="module", params=["auth-none", "auth-tokens"])
def server(
    request: pytest.FixtureRequest, serve_module: Callable[..., str], tokens_server: Server
) -> Server:
    if request.param == "auth-tokens":
        return tokens_server
    return Server(serve_module("indexeddb", "file", auth="none"))


@pytest.fixture(scope="module")
def live_document(server: Server) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/openapi.json", timeout=30)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


@pytest.fixture
def document_path(live_document: dict[str, Any], tmp_path: Path) -> Path:
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(live_document))
    return path


def unique_prefix(client: str) -> str:
    """A name prefix with '/', a space and non-ASCII: path parameters travel percent-encoded."""
    return f"gen/client model+ü {client}-{uuid.uuid4().hex[:6]}"


def models() -> dict[str, ModelFixture]:
    return {"first": dense_model(1), "second": dense_model(2), "third": dense_model(3)}


def run(args: list[str], timeout: float, what: str, cwd: Path | None = None) -> str:
    """Run a step; fail with its output when it fails or takes too long."""
    try:
        completed = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{what} took more than {timeout} s:\n{error.stdout!r}\n{error.stderr!r}")
    if completed.returncode != 0:
        pytest.fail(
            f"{what} failed (exit {completed.returncode}):\n"
            f"{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"
        )
    return completed.stdout


def dangling_refs(document: dict[str, Any]) -> list[str]:
    """Every local ``$ref`` that names nothing in the document."""
    missing: list[str] = []

    def resolves(ref: str) -> bool:
        node: Any = document
        for token in ref.removeprefix("#/").split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or token not in node:
                return False
            node = node[token]
        return True

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/") and not resolves(ref):
                missing.append(ref)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    return sorted(set(missing))


def test_live_document_references_only_what_it_defines(live_document: dict[str, Any]) -> None:
    """Generators refuse (TS) or silently drop operations (Python) on an unresolved $ref."""
    assert dangling_refs(live_document) == []


def test_live_document_declares_how_to_send_a_token(tokens_server: Server) -> None:
    """What generators read to send the token: the schemes, and which operations take them."""
    document = httpx.get(f"{tokens_server.url}/openapi.json", timeout=30).json()
    schemes = {
        name: {key: value for key, value in scheme.items() if key != "description"}
        for name, scheme in document["components"]["securitySchemes"].items()
    }
    assert schemes == {
        "bearerToken": {"type": "http", "scheme": "bearer"},
        "tokenQuery": {"type": "apiKey", "in": "query", "name": "token"},
    }
    operations = {
        operation["operationId"]: operation.get("security")
        for path in document["paths"].values()
        for operation in path.values()
    }
    either = [{"bearerToken": []}, {"tokenQuery": []}]
    assert operations["saveModel"] == operations["listModels"] == [{"bearerToken": []}]
    assert operations["loadModelJson"] == operations["loadWeightFile"] == either
    assert operations["healthz"] is None and operations["readyz"] is None


# --- TypeScript: openapi-typescript + openapi-fetch -------------------------------------------


def require_ts_toolchain() -> None:
    if shutil.which("node") is None:
        pytest.fail("Node.js is not installed; install Node >= 20")
    for package in ("openapi-typescript", "openapi-fetch", "typescript", "@types/node"):
        if not (TS_DIR / "node_modules" / package).is_dir():
            pytest.fail(f"{package} is not installed; run `npm ci` in {TS_DIR}")


@pytest.mark.node
def test_typescript_client(server: Server, document_path: Path, tmp_path: Path) -> None:
    require_ts_toolchain()
    types = tmp_path / "modelshelf-openapi.d.ts"
    run(
        ["node", str(TS_DIR / "generate.mjs"), str(document_path), str(types)],
        GENERATE_TIMEOUT,
        "openapi-typescript",
        cwd=TS_DIR,
    )
    out = tmp_path / "out"
    out.mkdir()
    (out / "node_modules").symlink_to(TS_DIR / "node_modules", target_is_directory=True)
    tsconfig = tmp_path / "tsconfig.json"
    tsconfig.write_text(
        json.dumps(
            {
                "extends": str(TS_DIR / "tsconfig.json"),
                "compilerOptions": {
                    "rootDir": str(TS_DIR),
                    "outDir": str(out),
                    "paths": {"modelshelf-openapi": [str(types)]},
                },
            }
        )
    )
    tsc = TS_DIR / "node_modules" / "typescript" / "bin" / "tsc"
    run(
        ["node", str(tsc), "-p", str(tsconfig)],
        COMPILE_TIMEOUT,
        "tsc (scenario.mts against the types)",
    )

    prefix = unique_prefix("ts")
    fixtures = models()
    scenario_input = tmp_path / "input.json"
    scenario_input.write_text(
        json.dumps(
            {
                "baseUrl": server.url,
                "prefix": prefix,
                **({"token": server.token} if server.token else {}),
                **({"readOnlyToken": server.read_only_token} if server.read_only_token else {}),
                "models": {
                    key: {
                        "modelJson": model.model_json.decode(),
                        "weights": base64.b64encode(model.weight_bytes).decode(),
                    }
                    for key, model in fixtures.items()
                },
            }
        )
    )
    try:
        completed = subprocess.run(
            ["node", str(out / "scenario.mjs"), str(scenario_input)],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"the TypeScript scenario took more than {RUN_TIMEOUT} s: {error.stdout!r}")
    lines = completed.stdout.strip().splitlines()
    assert lines, f"the scenario printed nothing; stderr:\n{completed.stderr[-4000:]}"
    result = json.loads(lines[-1])
    assert result["ok"], f"{result.get('error')}\npassed: {result['checks']}\n{completed.stderr}"
    assert result["names"] == {
        "a": f"{prefix}/a",
        "b": f"file://{prefix}/b",
        "c": f"indexeddb://{prefix}/c",
    }
    assert len(result["versions"]) == 2
    assert result["error"]["code"] == "model_not_found"
    assert len(result["checks"]) >= 20
    if server.token is None:
        assert result["refused"] is None
        return
    refused = result["refused"]
    for call in ("anonymousSave", "anonymousList"):
        assert refused[call]["status"] == 401, refused
        assert refused[call]["code"] == "unauthorized"
        assert refused[call]["challenge"].startswith("Bearer")
    assert refused["readOnlySave"]["status"] == 403
    assert refused["readOnlySave"]["code"] == "forbidden"
    assert f"write:indexeddb/{prefix}/a" in refused["readOnlySave"]["message"]
    assert refused["readOnlyList"]["status"] == 200


# --- Python: openapi-python-client ------------------------------------------------------------


@pytest.fixture
def generated_package(
    document_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """Generate the client into tmp_path (a subprocess: its warnings are its own) and import it.

    ``--fail-on-warning``: a part of the document the generator cannot turn into code (and so
    leaves out of the client) fails the test.
    """
    if importlib.util.find_spec("openapi_python_client") is None:
        pytest.fail('openapi-python-client is not installed; run `pip install -e ".[test]"`')
    root = tmp_path / "generated"
    root.mkdir()
    run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(document_path),
            "--output-path",
            str(root / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(PYTHON_CONFIG),
            "--fail-on-warning",
        ],
        GENERATE_TIMEOUT,
        "openapi-python-client generate",
    )
    add_missing_unset_imports(root / PACKAGE)
    monkeypatch.syspath_prepend(str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        for module in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[module]


def add_missing_unset_imports(package: Path) -> list[str]:
    """Work around openapi-python-client issue #1451 (0.28.0 to 0.29.1 at least).

    An operation whose required requestBody has several media types (saveModel, saveModelPut:
    multipart and JSON) is generated with ``body: ... | Unset = UNSET`` but without importing
    ``Unset``, so its module raises NameError on import. Adds the import where it is missing;
    a no-op once the generator is fixed (upstream PR #1478).
    """
    patched = []
    for module in sorted((package / "api").rglob("*.py")):
        text = module.read_text()
        uses = re.search(r"\bUnset\b", text)
        imports = re.search(r"^from \.+types import [^\n]*\bUnset\b", text, re.MULTILINE)
        if uses and not imports:
            dots = "." * len(module.relative_to(package).parts)
            module.write_text(f"from {dots}types import Unset\n{text}")
            patched.append(module.relative_to(package).as_posix())
    return patched


def operation(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.models.{name}")


def connect(
    package: Any, server: Server, token: str | None, raise_on_unexpected_status: bool = True
) -> Any:
    """The generated ``Client``, or its ``AuthenticatedClient`` (a bearer token) for a token."""
    options = {
        "base_url": server.url,
        "raise_on_unexpected_status": raise_on_unexpected_status,
        "timeout": httpx.Timeout(30),
    }
    if token is None:
        return package.Client(**options)
    return package.AuthenticatedClient(token=token, **options)


def check_refusals(package: Any, server: Server, prefix: str, name: str, body: Any) -> None:
    """Tokens mode: a save and a list without a token get 401; a read-only token's save, 403.

    The model operations do not document 401 or 403 (only /v1/tokens and ~share do), so the
    generated client cannot parse those bodies: read them from the raw content.
    """
    save_model, list_models = operation("save_model"), operation("list_models")

    def save(client: Any) -> Any:
        return save_model.sync_detailed(store="indexeddb", name=name, client=client, body=body)

    def listing(client: Any) -> Any:
        return list_models.sync_detailed(store="indexeddb", client=client, prefix=f"{prefix}/")

    with connect(package, server, None, raise_on_unexpected_status=False) as anonymous:
        for response in (save(anonymous), listing(anonymous)):
            assert response.status_code == 401, response.content
            assert json.loads(response.content)["code"] == "unauthorized"
            assert response.headers["www-authenticate"].startswith("Bearer")
    with connect(package, server, server.read_only_token, False) as reader:
        refused = save(reader)
        assert refused.status_code == 403, refused.content
        error = json.loads(refused.content)
        assert error["code"] == "forbidden"
        assert f"write:indexeddb/{name}" in error["message"]
        listed = listing(reader)
        assert listed.status_code == 200
        assert listed.parsed is not None and listed.parsed.additional_keys == []


def test_python_client(server: Server, generated_package: Any) -> None:
    schemas = importlib.import_module(f"{PACKAGE}.models")
    types = importlib.import_module(f"{PACKAGE}.types")
    save_model, save_model_put = operation("save_model"), operation("save_model_put")
    list_models, copy_model = operation("list_models"), operation("copy_model")
    get_model_info, remove_model = operation("get_model_info"), operation("remove_model")
    load_model_json, load_weight_file = operation("load_model_json"), operation("load_weight_file")

    fixtures = models()
    first, second, third = fixtures["first"], fixtures["second"], fixtures["third"]
    prefix = unique_prefix("py")
    name_a, name_b, name_c = f"{prefix}/a", f"{prefix}/b", f"{prefix}/c"

    def artifacts(model: ModelFixture) -> Any:
        document = model.document
        return schemas.ModelArtifacts.from_dict(
            {
                "modelTopology": document["modelTopology"],
                "weightSpecs": [w for g in document["weightsManifest"] for w in g["weights"]],
                "weightData": base64.b64encode(model.weight_bytes).decode(),
                "format": document["format"],
                "generatedBy": document["generatedBy"],
                "convertedBy": document["convertedBy"],
                "userDefinedMetadata": document["userDefinedMetadata"],
            }
        )

    def files(model: ModelFixture, body_class: Any) -> Any:
        """The multipart body; the generator makes one class per operation."""
        return body_class(
            model_json=types.File(
                payload=model.model_json, file_name="model.json", mime_type="application/json"
            ),
            model_weights_bin=types.File(
                payload=model.weight_bytes,
                file_name="model.weights.bin",
                mime_type="application/octet-stream",
            ),
        )

    if server.token is not None:
        check_refusals(generated_package, server, prefix, name_a, artifacts(first))
    client = connect(generated_package, server, server.token)
    with client:
        # saveModel with the JSON body, then saveModelPut with the multipart body.
        saved = save_model.sync_detailed(
            store="indexeddb", name=name_a, client=client, body=artifacts(first)
        )
        assert saved.status_code == 201, saved.content
        assert isinstance(saved.parsed, schemas.SaveResult)
        assert saved.parsed.model_url == f"indexeddb://{name_a}"
        assert saved.parsed.model_artifacts_info.weight_data_bytes == len(first.weight_bytes)
        put = save_model_put.sync(
            store="indexeddb",
            name=name_a,
            client=client,
            body=files(second, schemas.SaveModelFiles),
        )
        assert isinstance(put, schemas.SaveResult), put
        # saveModel with the multipart body, into the file store.
        posted = save_model.sync(
            store="file", name=name_b, client=client, body=files(third, schemas.SaveModelFiles)
        )
        assert isinstance(posted, schemas.SaveResult), posted
        assert posted.model_url == f"file://{name_b}"

        listing = list_models.sync(store="indexeddb", client=client, prefix=f"{prefix}/", limit=10)
        assert isinstance(listing, schemas.ModelList), listing
        assert set(listing.additional_keys) == {f"indexeddb://{name_a}"}
        info = listing[f"indexeddb://{name_a}"]
        assert isinstance(info, schemas.ModelArtifactsInfo)
        assert info.weight_data_bytes == len(second.weight_bytes)

        transfer = schemas.TransferRequest(
            source=f"file://{name_b}", destination=f"indexeddb://{name_c}"
        )
        copied = copy_model.sync(client=client, body=transfer)
        assert isinstance(copied, schemas.ModelInfo), copied
        assert copied.url == f"indexeddb://{name_c}"

        model_a = get_model_info.sync(store="indexeddb", name=name_a, client=client)
        assert isinstance(model_a, schemas.ModelInfo), model_a
        assert (model_a.store, model_a.name) == ("indexeddb", name_a)
        assert [v.id for v in model_a.versions] == [saved.parsed.version_id, put.version_id]
        assert model_a.current_version == put.version_id

        # model.json: published (weight paths under ~v/VERSION/) and original (bytes as saved).
        published = load_model_json.sync(store="indexeddb", name=name_c, client=client)
        assert isinstance(published, schemas.ModelJSON), published
        assert isinstance(published.weights_manifest, list)
        paths = published.weights_manifest[0].paths
        assert paths == [f"~v/{copied.current_version}/model.weights.bin"]
        original = load_model_json.sync_detailed(
            store="indexeddb", name=name_c, client=client, original=True
        )
        assert original.status_code == 200
        assert original.content == third.model_json

        def weights(name: str, version: Any) -> bytes:
            loaded = load_weight_file.sync(
                store="indexeddb",
                name=name,
                version=version.id,
                path=version.files[0].path,
                client=client,
            )
            assert isinstance(loaded, types.File), loaded
            data: bytes = loaded.payload.read()
            return data

        assert weights(name_c, copied.versions[0]) == third.weight_bytes
        assert weights(name_a, model_a.versions[0]) == first.weight_bytes  # JSON, base64
        assert weights(name_a, model_a.versions[1]) == second.weight_bytes  # multipart PUT

        removed = remove_model.sync(store="indexeddb", name=name_a, client=client)
        assert isinstance(removed, schemas.ModelInfo), removed
        assert removed.url == f"indexeddb://{name_a}"
        gone = get_model_info.sync_detailed(store="indexeddb", name=name_a, client=client)
        assert gone.status_code == 404
        assert isinstance(gone.parsed, schemas.ErrorBody), gone.content
        assert gone.parsed.code == "model_not_found"
        assert gone.parsed.message
        missing = load_weight_file.sync_detailed(
            store="indexeddb",
            name=name_c,
            version=copied.current_version,
            path="nope.bin",
            client=client,
        )
        assert missing.status_code == 404
        assert isinstance(missing.parsed, schemas.ErrorBody), missing.content
        assert missing.parsed.code == "weight_file_not_found"

        for store, name in (("file", name_b), ("indexeddb", name_c)):
            assert (
                remove_model.sync_detailed(store=store, name=name, client=client).status_code == 200
            )
