"""The OpenAPI document is a contract: clients in other languages are generated from it.

A change to it must be deliberate: regenerate the snapshot with
``UPDATE_SNAPSHOTS=1 pytest tests/test_openapi.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from modelshelf.service.app import create_app
from modelshelf.service.settings import Settings

SNAPSHOT = Path(__file__).parent / "snapshots" / "openapi.json"
OPERATIONS = {
    "saveModel",
    "saveModelPut",
    "loadModelJson",
    "loadWeightFile",
    "getModelInfo",
    "removeModel",
    "listModels",
    "copyModel",
    "moveModel",
    "listStores",
    "healthz",
    "readyz",
    "exportModel",
    "createToken",
    "listTokens",
    "revokeToken",
    "shareModel",
    "setAlias",
    "removeAlias",
    "pruneModel",
    "collectGarbage",
}
PUBLIC = {"healthz", "readyz"}
LOADS = {"loadModelJson", "loadWeightFile", "exportModel"}  # what TF.js sends ?token= to


def current_document() -> dict[str, Any]:
    return create_app(Settings(stores={"memory": "memory://"})).openapi()


def test_openapi_matches_snapshot() -> None:
    document = current_document()
    rendered = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(rendered)
    assert rendered == SNAPSHOT.read_text(), (
        "the OpenAPI document changed; if deliberate, run "
        "UPDATE_SNAPSHOTS=1 pytest tests/test_openapi.py and commit the snapshot"
    )


def test_every_route_has_its_operation_id_and_error_body() -> None:
    document = current_document()
    operations = {
        operation["operationId"]: operation
        for path in document["paths"].values()
        for operation in path.values()
    }
    assert set(operations) == OPERATIONS
    for name in OPERATIONS - {"healthz", "readyz", "listStores"}:
        errors = [code for code in operations[name]["responses"] if code.startswith(("4", "5"))]
        assert errors, f"{name} documents no error response"
        for code in errors:
            schema = operations[name]["responses"][code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}


def test_save_documents_both_request_bodies() -> None:
    save = current_document()["paths"]["/v1/models/{store}/{name}"]["post"]
    assert set(save["requestBody"]["content"]) == {"multipart/form-data", "application/json"}


def test_every_operation_but_health_checks_declares_the_bearer_scheme() -> None:
    """Generated clients send a token where the document asks for one (issue 10)."""
    document = current_document()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearerToken"]["description"],
    }
    assert (schemes["tokenQuery"]["in"], schemes["tokenQuery"]["name"]) == ("query", "token")
    for path in document["paths"].values():
        for operation in path.values():
            name, security = operation["operationId"], operation.get("security")
            if name in PUBLIC:
                assert not security, name
                continue
            expected = [{"bearerToken": []}, *([{"tokenQuery": []}] if name in LOADS else [])]
            assert security == expected, name
            assert {"401", "403", "429"} <= set(operation["responses"]), name
