"""The SDK and CLI for aliases, conditional saves and pruning, against a real server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import modelshelf
from modelshelf import Client
from tests.support.cli import cli, cli_json


@pytest.fixture(scope="module")
def server(serve_module: Callable[..., str]) -> str:
    return serve_module("indexeddb", "file")


@pytest.fixture
def client(server: str) -> Iterator[Client]:
    with Client(server) as shelf:
        yield shelf


def _artifacts(value: float) -> modelshelf.ModelArtifacts:
    return modelshelf.ModelArtifacts.from_weights(
        {"dense/kernel": np.full((2, 2), value, np.float32)},
        model_topology={"class_name": "Sequential", "config": {"name": "m", "layers": []}},
    )


def _url() -> str:
    return f"indexeddb://sdk-alias-{uuid.uuid4().hex[:8]}"


def _kernel(client: Client, url: str, version: str | None = None) -> float:
    return float(client.load(url, version=version).weights()["dense/kernel"][0, 0])


def test_alias_round_trip_through_the_sdk(client: Client) -> None:
    url = _url()
    first = client.save(url, _artifacts(1.0)).versionId
    second = client.save(url, _artifacts(2.0)).versionId
    info = client.set_alias(url, "prod", first)
    assert info.aliases == {"prod": first}
    assert _kernel(client, url, "prod") == 1.0 and _kernel(client, url) == 2.0
    with pytest.raises(modelshelf.ConflictError) as refused:
        client.set_alias(url, "prod", second, if_match=second)
    assert refused.value.code == "precondition_failed"
    assert client.set_alias(url, "prod", second, if_match=first).aliases == {"prod": second}
    with pytest.raises(modelshelf.ConflictError, match="exists already"):
        client.set_alias(url, "prod", first, if_none_match=True)
    with pytest.raises(modelshelf.ConflictError) as in_use:
        client.remove_model(url, version=second)
    assert in_use.value.code == "version_in_use"
    assert client.remove_alias(url, "prod").aliases == {}
    with pytest.raises(modelshelf.NotFoundError):
        client.load(url, version="prod")


def test_conditional_saves_through_the_sdk(client: Client) -> None:
    url = _url()
    first = client.save(url, _artifacts(1.0), if_none_match=True).versionId
    with pytest.raises(modelshelf.ConflictError, match="exists already"):
        client.save(url, _artifacts(9.0), if_none_match=True)
    second = client.save(url, _artifacts(2.0), if_match=first).versionId
    with pytest.raises(modelshelf.ConflictError, match=f"current version is {second}"):
        client.save(url, _artifacts(9.0), if_match=first)
    assert [v.id for v in client.list_versions(url)] == [first, second]


def test_prune_through_the_sdk(client: Client) -> None:
    url = _url()
    ids = [client.save(url, _artifacts(float(n))).versionId for n in range(4)]
    client.set_alias(url, "prod", ids[0])
    dry = client.prune(url, 1, dry_run=True)
    assert (dry.removed, dry.dryRun) == (ids[1:3], True)
    assert len(client.list_versions(url)) == 4
    done = client.prune(url, 1)
    assert done.removed == ids[1:3]
    assert [v.id for v in client.list_versions(url)] == [ids[0], ids[3]]


def test_tag_untag_prune_and_versions_in_thecli(
    client: Client, server: str, tmp_path: Path
) -> None:
    url = _url()
    ids = [client.save(url, _artifacts(float(n))).versionId for n in range(3)]
    tagged = cli_json(server, "tag", url, "prod")  # the current version by default
    assert tagged["aliases"] == {"prod": ids[2]}
    cli(server, "tag", url, "old", ids[0])
    text = cli(server, "info", url).stdout
    assert f"prod -> {ids[2]}" in text and f"old -> {ids[0]}" in text
    rows = cli_json(server, "versions", url)
    assert [row["aliases"] for row in rows] == [["old"], [], ["prod"]]
    refused = cli(server, "tag", url, "prod", ids[1], "--if-match", ids[0], expect=1)
    assert "points at" in refused.stderr
    pruned = cli_json(server, "prune", url, "--keep", "1", "--dry-run")
    assert (pruned["removed"], pruned["dryRun"]) == ([ids[1]], True)
    assert (
        "would remove 1 version(s)" in cli(server, "prune", url, "--keep", "1", "--dry-run").stdout
    )
    assert cli_json(server, "prune", url, "--keep", "1")["removed"] == [ids[1]]
    assert cli_json(server, "untag", url, "old")["aliases"] == {"prod": ids[2]}
    pulled = cli(server, "pull", url, "--version", "prod", str(tmp_path), "--no-progress")
    assert "wrote" in pulled.stdout
    assert (tmp_path / "model.json").is_file()
