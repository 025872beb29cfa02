"""Tokens for tests against a tokens-mode server: issued through the real API."""

from __future__ import annotations

import httpx


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def issue_token(url: str, admin: str, name: str, scopes: list[str]) -> str:
    """A token with ``scopes`` for an hour, made with the admin token through POST /v1/tokens."""
    response = httpx.post(
        f"{url}/v1/tokens",
        headers=bearer(admin),
        json={"name": name, "scopes": scopes, "expiresIn": 3600},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token
