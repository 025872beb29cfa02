"""The naive baseline of small_model_load.py: the model store anyone would write in FastAPI.

    python -m uvicorn naive_app:app --app-dir bench

``POST /v1/models/{store}/{name}`` takes TF.js's ``tf.io.http`` multipart save (parts
``model.json`` and ``model.weights.bin``, as ``UploadFile``) and writes both parts as files
under ``NAIVE_DATA_DIR`` (default ``naive-data`` in the working directory); it answers 201
with ``{"loadUrl": ...}``. ``GET .../model.json`` and ``GET .../model.weights.bin`` send those
files back with ``FileResponse``: model.json as saved, so its weight path stays
``./model.weights.bin``. No versions, no validation, no checksums.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse

DATA_DIR = Path(os.environ.get("NAIVE_DATA_DIR", "naive-data")).resolve()
MODEL_PATH = "/v1/models/{store}/{name:path}"

app = FastAPI(title="naive model store")


@app.post(MODEL_PATH, status_code=201)
async def save_model(
    request: Request,
    store: str,
    name: str,
    model_json: Annotated[UploadFile, File(alias="model.json")],
    weights: Annotated[UploadFile, File(alias="model.weights.bin")],
) -> dict[str, str]:
    folder = model_folder(store, name)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_bytes(await model_json.read())
    (folder / "model.weights.bin").write_bytes(await weights.read())
    return {"loadUrl": f"{request.url}/model.json"}


@app.get(MODEL_PATH + "/model.json")
async def load_model_json(store: str, name: str) -> FileResponse:
    return FileResponse(stored_file(store, name, "model.json"), media_type="application/json")


@app.get(MODEL_PATH + "/model.weights.bin")
async def load_weights(store: str, name: str) -> FileResponse:
    path = stored_file(store, name, "model.weights.bin")
    return FileResponse(path, media_type="application/octet-stream")


def model_folder(store: str, name: str) -> Path:
    parts = [store, *name.split("/")]
    if any(part in ("", ".", "..") for part in parts):
        raise HTTPException(400, "bad store or model name")
    return DATA_DIR.joinpath(*parts)


def stored_file(store: str, name: str, filename: str) -> Path:
    path = model_folder(store, name) / filename
    if not path.is_file():
        raise HTTPException(404, f"no model {store}://{name}")
    return path
