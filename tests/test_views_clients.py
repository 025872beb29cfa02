"""Views (issue 14) through the clients: the SDK's load and pull, the CLI's pull, the console.

Every test goes through a real server: the views are the server's, the clients only ask.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelshelf import AsyncClient, Client, InvalidRequestError, ModelArtifacts
from modelshelf.cli import QUANTIZE_CHOICES, parse_size
from modelshelf.schemas.artifacts import QuantizationDtype
from tests.modelfactory import layers_model
from tests.support.cli import cli, cli_json

MIB = 1 << 20


@pytest.fixture(scope="module")
def server(serve_module: Callable[..., str]) -> str:
    return serve_module("indexeddb")


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[Client]:
    with Client(server, token="") as sdk:
        yield sdk


def _big_weights(seed: int = 14) -> dict[str, np.ndarray]:
    """2.8 MB of float32 (several 1 MiB shards once quantized) and a tensor of another dtype."""
    rng = np.random.default_rng(seed)
    return {
        "dense/kernel": rng.standard_normal((700, 1000)).astype(np.float32),
        "dense/bias": rng.uniform(-3, 7, 1000).astype(np.float32),
        "steps": np.arange(10, dtype=np.int32),
    }


def _save_layers(client: Client, seed: int = 3) -> tuple[str, dict[str, np.ndarray]]:
    """A tfjs-layers model (converter-style shards) saved with the SDK: its URL and weights."""
    url = f"indexeddb://views/{uuid.uuid4().hex[:8]}"
    fixture = layers_model(seed)
    client.save_files(url, fixture.model_json, list(fixture.files.items()))
    original = ModelArtifacts.from_model_json(fixture.document, fixture.weight_bytes)
    return url, original.weights()


def _save_big(client: Client) -> tuple[str, dict[str, np.ndarray]]:
    url = f"indexeddb://views/big-{uuid.uuid4().hex[:8]}"
    weights = _big_weights()
    client.save(url, ModelArtifacts.from_weights(weights, {"class_name": "Sequential"}))
    return url, weights


def _specs(artifacts: ModelArtifacts) -> dict[str, dict[str, Any]]:
    return {spec["name"]: spec for spec in artifacts.weight_specs or []}


def _assert_float16_close(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    for name, values in want.items():
        assert got[name].shape == values.shape, name
        if values.dtype != np.float32:
            np.testing.assert_array_equal(got[name], values)
            continue
        error = np.abs(got[name].astype(np.float64) - values)
        # float16 keeps 11 significant bits (relative error <= 2**-11); subnormals near 0
        # are 2**-24 apart
        assert np.all(error <= 1e-3 * np.abs(values) + 2**-24), name


def _assert_affine_close(
    got: dict[str, np.ndarray], want: dict[str, np.ndarray], specs: dict[str, dict[str, Any]]
) -> None:
    for name, values in want.items():
        if values.dtype != np.float32:
            np.testing.assert_array_equal(got[name], values)
            continue
        scale = specs[name]["quantization"]["scale"]
        error = np.abs(got[name].astype(np.float64) - values)
        tiny = 1e-6 * float(np.max(np.abs(values))) + 1e-12
        assert float(error.max()) <= scale / 2 + tiny, (name, float(error.max()), scale)


# -- the SDK ---------------------------------------------------------------------------------


def test_load_a_float16_view_of_a_layers_model(client: Client) -> None:
    url, original = _save_layers(client)
    loaded = client.load(url, quantize="float16")
    specs = _specs(loaded)
    assert {spec["quantization"]["dtype"] for spec in specs.values()} == {"float16"}
    _assert_float16_close(loaded.weights(), original)
    assert len(loaded.weight_data or b"") == sum(v.size for v in original.values()) * 2
    document = client.load_model_json(url, quantize="float16")
    paths = [path for group in document["weightsManifest"] for path in group["paths"]]
    version = client.get_model_info(url).currentVersion
    assert paths == [f"~v/{version}/~view/float16-4194304/group1-shard1of1.bin"]


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_load_an_affine_view_of_a_big_model_within_half_a_step(client: Client, dtype: str) -> None:
    url, original = _save_big(client)
    loaded = client.load(url, quantize=dtype, shard_bytes=MIB)
    specs = _specs(loaded)
    assert specs["steps"]["dtype"] == "int32" and "quantization" not in specs["steps"]
    for name in ("dense/kernel", "dense/bias"):
        assert specs[name]["quantization"]["dtype"] == dtype
        assert {"min", "scale"} <= specs[name]["quantization"].keys()
    _assert_affine_close(loaded.weights(), original, specs)
    document = client.load_model_json(url, quantize=dtype, shard_bytes=MIB)
    shards = -(-len(loaded.weight_data or b"") // MIB)  # uint8: 1, uint16: 2
    assert len(document["weightsManifest"][0]["paths"]) == shards


async def test_the_async_client_loads_a_view_of_a_version_by_alias(
    server: str, client: Client
) -> None:
    url, original = _save_layers(client, seed=8)
    version = client.get_model_info(url).currentVersion
    _save_layers_over(client, url)
    client.set_alias(url, "prod", version)
    async with AsyncClient(server, token="") as sdk:
        loaded = await sdk.load(url, "prod", quantize="float16", shard_bytes=2 * MIB)
        document = await sdk.load_model_json(url, version="prod", quantize="float16")
    _assert_float16_close(loaded.weights(), original)
    assert document["weightsManifest"][0]["paths"][0].startswith(f"~v/{version}/~view/")


def _save_layers_over(client: Client, url: str) -> None:
    fixture = layers_model(99)
    client.save_files(url, fixture.model_json, list(fixture.files.items()))


def test_shard_bytes_alone_gives_the_same_bits(client: Client) -> None:
    url, original = _save_big(client)
    plain = client.load(url)
    resharded = client.load(url, shard_bytes=MIB)
    assert resharded.weight_data == plain.weight_data
    assert resharded.weight_specs == plain.weight_specs  # no quantization metadata
    for name, values in resharded.weights().items():
        np.testing.assert_array_equal(values, original[name])
    document = client.load_model_json(url, shard_bytes=MIB)
    paths = document["weightsManifest"][0]["paths"]
    assert len(paths) == 3 and all("/~view/keep-1048576/" in path for path in paths)


def test_a_model_json_url_loads_a_view_with_its_own_query(client: Client) -> None:
    """As a share link's URL loads (tokens off here, so no token in it): the view's options
    join the URL's query on model.json, as ``version`` does, or come in the URL itself."""
    url, original = _save_layers(client, seed=4)
    base = client.base_url + "/v1/models/indexeddb/" + url.removeprefix("indexeddb://")
    loaded = client.load(base + "/model.json", quantize="float16")  # tokens off: no token needed
    _assert_float16_close(loaded.weights(), original)
    from_link = client.load(base + "/model.json?quantize=uint8")
    assert {s["quantization"]["dtype"] for s in _specs(from_link).values()} == {"uint8"}


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"quantize": "int4"}, "float16, uint8, uint16"),
        ({"quantize": "float16", "shard_bytes": 5}, "1048576"),
        ({"shard_bytes": 128 * MIB}, "64 MiB"),
    ],
)
def test_bad_options_are_the_servers_invalid_view(
    client: Client, options: dict[str, Any], fragment: str
) -> None:
    url, _original = _save_layers(client)
    with pytest.raises(InvalidRequestError) as raised:
        client.load(url, **options)
    assert raised.value.code == "invalid_view" and raised.value.status == 400
    assert fragment in raised.value.message
    with pytest.raises(InvalidRequestError) as raised:
        client.pull(url, Path("/nonexistent/never-written"), **options)
    assert raised.value.code == "invalid_view"


def test_only_types_are_checked_client_side(client: Client) -> None:
    with pytest.raises(TypeError, match="shard_bytes"):
        client.load("indexeddb://whatever", shard_bytes="4MiB")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="quantize"):
        client.load("indexeddb://whatever", quantize=16)  # type: ignore[arg-type]


def test_sdk_pull_of_a_view_loads_back_from_the_folder(client: Client, tmp_path: Path) -> None:
    url, original = _save_big(client)
    seen: list[tuple[int, int | None]] = []
    path = client.pull(
        url, tmp_path, quantize="uint8", shard_bytes=MIB, progress=lambda d, t: seen.append((d, t))
    )
    document = json.loads(path.read_bytes())
    data = b"".join(
        (tmp_path / p).read_bytes() for g in document["weightsManifest"] for p in g["paths"]
    )
    artifacts = ModelArtifacts.from_model_json(document, data)
    _assert_affine_close(artifacts.weights(), original, _specs(artifacts))
    assert seen and seen[-1] == (len(data), len(data))  # the total was known from the start


# -- the CLI ---------------------------------------------------------------------------------


def test_cli_pull_writes_a_quantized_view_tfjs_node_can_load(
    server: str, client: Client, tmp_path: Path
) -> None:
    url, original = _save_big(client)
    folder = tmp_path / "small"
    result = cli_json(
        server, "pull", url, str(folder), "--quantize", "float16", "--shard-bytes", "1MiB"
    )
    model_json = Path(result["modelJson"])
    assert model_json == folder / "model.json"
    document = json.loads(model_json.read_bytes())
    paths = [p for group in document["weightsManifest"] for p in group["paths"]]
    assert paths == ["group1-shard1of2.bin", "group1-shard2of2.bin"]  # 1.4 MB of float16
    assert sorted(p.name for p in folder.iterdir()) == sorted([*paths, "model.json"])
    assert (folder / paths[0]).stat().st_size == MIB
    specs = {s["name"]: s for g in document["weightsManifest"] for s in g["weights"]}
    assert specs["dense/kernel"]["quantization"]["dtype"] == "float16"
    assert "quantization" not in specs["steps"]
    data = b"".join((folder / p).read_bytes() for p in paths)
    _assert_float16_close(ModelArtifacts.from_model_json(document, data).weights(), original)


def test_cli_pull_of_a_version_resharded_only(server: str, client: Client, tmp_path: Path) -> None:
    url, original = _save_layers(client, seed=6)
    version = client.get_model_info(url).currentVersion
    _save_layers_over(client, url)
    cli(server, "pull", url, str(tmp_path), "--version", version, "--shard-bytes", "1048576")
    document = json.loads((tmp_path / "model.json").read_bytes())
    assert document["weightsManifest"][0]["paths"] == ["group1-shard1of1.bin"]
    data = (tmp_path / "group1-shard1of1.bin").read_bytes()
    got = ModelArtifacts.from_model_json(document, data).weights()
    for name, values in original.items():
        np.testing.assert_array_equal(got[name], values)


def test_cli_rejects_sizes_it_cannot_read(server: str, tmp_path: Path) -> None:
    result = cli(server, "pull", "indexeddb://m", str(tmp_path), "--shard-bytes", "lots", expect=2)
    assert "--shard-bytes: 'lots' is not a size" in result.stderr
    assert "512KiB or 4MiB" in result.stderr and "Traceback" not in result.stderr
    result = cli(server, "pull", "indexeddb://m", str(tmp_path), "--quantize", "int4", expect=2)
    assert "invalid choice: 'int4'" in result.stderr


def test_cli_leaves_the_range_to_the_server(server: str, client: Client, tmp_path: Path) -> None:
    url, _original = _save_layers(client)
    result = cli(server, "pull", url, str(tmp_path), "--shard-bytes", "512KiB", expect=2)
    assert "shard_bytes=524288 is out of range" in result.stderr
    assert not (tmp_path / "model.json").exists()


def test_sizes_and_choices() -> None:
    assert [parse_size(t) for t in ("1", "4194304", "512KiB", "4MiB", "4 mib")] == [
        1,
        4194304,
        512 << 10,
        4 << 20,
        4 << 20,
    ]
    for text in ("", "0", "-1", "4MB", "1.5MiB", "4GiB", "lots"):
        with pytest.raises(Exception, match="is not a size"):
            parse_size(text)
    from typing import get_args

    assert QUANTIZE_CHOICES == ["float16", "uint8", "uint16"]
    assert set(QUANTIZE_CHOICES) == set(get_args(QuantizationDtype))


def test_cli_help_names_the_view_options(server: str) -> None:
    text = cli(server, "pull", "--help").stdout
    assert "--quantize {float16,uint8,uint16}" in text
    assert "--shard-bytes SIZE" in text and "512KiB or 4MiB" in text


# -- the console -----------------------------------------------------------------------------


def test_the_model_page_lists_a_views_size_once_it_was_requested(
    server: str, client: Client
) -> None:
    url, _original = _save_big(client)
    name = url.removeprefix("indexeddb://")
    page_url = f"{server}/ui/indexeddb/{name}"
    before = httpx.get(page_url)
    assert before.status_code == 200
    assert 'id="no-views"' in before.text and "model.json?quantize=float16" in before.text
    client.load(url, quantize="float16")
    after = httpx.get(page_url).text
    version = client.get_model_info(url).currentVersion
    assert 'id="no-views"' not in after
    assert '<tr data-view="float16-4194304">' in after
    assert "float16, 4 MiB shards" in after
    row = after.split('<tr data-view="float16-4194304">')[1].split("</tr>")[0]
    assert "1.3 MiB" in row and "50%" in row  # 1.4 MB of float16 (int32 kept) of 2.8 MB
    query = f"version={version}&amp;quantize=float16&amp;shard_bytes=4194304"
    link = f"/v1/models/indexeddb/{name}/model.json?{query}"
    assert f'href="{link}"' in row
    served = httpx.get(server + link.replace("&amp;", "&"))
    assert served.status_code == 200 and served.headers["x-model-view"] == "float16-4194304"
    client.load(url, shard_bytes=MIB)
    again = httpx.get(page_url).text
    assert "not quantized, 1 MiB shards" in again and "100%" in again
