"""Multipart bodies laid out byte for byte as undici's FormData sends them (protocol doc §4)."""

from __future__ import annotations


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
