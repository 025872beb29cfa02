"""Multipart bodies laid out byte for byte as undici's FormData sends them (protocol doc §4)."""

from __future__ import annotations

import httpx

from tests.modelfactory import ModelFixture


def form_body(parts: list[tuple[str, bytes]], boundary: str) -> bytes:
    """Each part named and file-named after ``name``; model.json typed as JSON."""
    body = b""
    for name, data in parts:
        kind = "application/json" if name == "model.json" else "application/octet-stream"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{name}"\r\nContent-Type: {kind}\r\n\r\n'
        )
        body += head.encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


BOUNDARY = "modelshelf-test-boundary"


def post_model(
    model_url: str, model: ModelFixture, headers: dict[str, str] | None = None
) -> httpx.Response:
    """Save ``model`` at ``model_url`` (``.../v1/models/STORE/NAME``) as tf.io.http does.

    One POST on a connection of its own (safe from any thread): model.json, then each
    weight file in manifest order.
    """
    body = form_body([("model.json", model.model_json), *model.files.items()], BOUNDARY)
    return httpx.post(
        model_url,
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **(headers or {})},
        timeout=60,
    )
