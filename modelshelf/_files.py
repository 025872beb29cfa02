"""Local folders in TF.js's layouts: converter output, tfjs-node ``file://``, ``downloads://``."""

from __future__ import annotations

import json
import os
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from modelshelf._exceptions import InvalidRequestError


def folder_parts(folder: Path) -> tuple[Path, list[tuple[str, Path]]]:
    """model.json and the files its manifest names, in manifest order, checked to exist."""
    model_json = folder / "model.json"
    if not model_json.is_file():
        raise InvalidRequestError(f"{folder} has no model.json; point at a TF.js model folder")
    try:
        document = json.loads(model_json.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidRequestError(f"{model_json} is not valid JSON: {error}") from None
    paths = [p for group in document.get("weightsManifest") or [] for p in group.get("paths", [])]
    files = [(path, folder / safe_relative_path(path)) for path in paths]
    missing = [path for path, file in files if not file.is_file()]
    if missing:
        raise InvalidRequestError(f"{folder} lacks weight files named in model.json: {missing}")
    return model_json, files


def safe_relative_path(path: str) -> Path:
    """A manifest path as a path below the folder; refuses anything that would escape it.

    Backslashes and drive colons are refused too, so Windows cannot read them as separators.
    """
    parts = [part for part in PurePosixPath(path).parts if part != "."]
    escapes = not parts or PurePosixPath(path).is_absolute() or ".." in parts
    if escapes or "\\" in path or ":" in path:
        raise InvalidRequestError(f"weight path {path!r} would leave the model's folder")
    return Path(*parts)


@dataclass
class FileSink:
    """A file written under a temporary name and renamed into place when complete."""

    destination: Path
    temporary: Path
    handle: BinaryIO

    @classmethod
    def open(cls, destination: Path) -> FileSink:
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = destination.with_name(f".{destination.name}.{uuid.uuid4().hex[:8]}.part")
        return cls(destination, temporary, temporary.open("wb"))

    def write(self, chunk: bytes | memoryview) -> None:
        self.handle.write(chunk)

    def commit(self) -> None:
        self.handle.close()
        os.replace(self.temporary, self.destination)

    def discard(self) -> None:
        self.handle.close()
        self.temporary.unlink(missing_ok=True)

    @staticmethod
    def write_bytes(destination: Path, data: bytes) -> Path:
        sink = FileSink.open(destination)
        sink.write(data)
        sink.commit()
        return destination


def unpack_export(archive: Path, folder: Path) -> list[Path]:
    """Extract the two files of an export zip into ``folder``."""
    written = []
    with zipfile.ZipFile(archive) as bundle:
        for name in bundle.namelist():
            target = folder / safe_relative_path(name)
            with bundle.open(name) as source, target.open("wb") as sink:
                while chunk := source.read(1 << 20):
                    sink.write(chunk)
            written.append(target)
    return written
