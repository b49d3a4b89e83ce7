"""Endpoint credentials: primary/secondary keys and expiring ``aml_token`` tokens.

Keys are random URL-safe strings. Tokens are signed with the endpoint's own
secret (HMAC-SHA256) and carry their expiry, so the gateway checks them without
a lookup. Every comparison is constant-time; no key or token is ever logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

#: Azure ML's aml_token lifetime (tokens refresh after half of it)
TOKEN_LIFETIME_S = 3600
KEY_TYPES = ("primary", "secondary")


def new_key() -> str:
    return secrets.token_urlsafe(32)


def new_credentials() -> dict[str, str]:
    """Fresh keys and secrets for a new endpoint."""
    return {"primary": new_key(), "secondary": new_key(), "token_secret": new_key(), "admin": new_key()}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(
    endpoint: str, secret: str, lifetime_s: float = TOKEN_LIFETIME_S, now: float | None = None
) -> tuple[str, float]:
    """A token for ``endpoint`` and its expiry (epoch seconds)."""
    expiry = (now if now is not None else time.time()) + lifetime_s
    payload = _b64(json.dumps({"ep": endpoint, "exp": expiry}, separators=(",", ":")).encode())
    signature = _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}", expiry


def check_token(token: str, endpoint: str, secret: str, now: float | None = None) -> str | None:
    """None when ``token`` is valid for ``endpoint``; otherwise why it is not."""
    payload, _, signature = token.partition(".")
    if not signature:
        return "the token is malformed"
    expected = _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        return "the token is not valid for this endpoint"
    try:
        claims = json.loads(_unb64(payload))
    except ValueError:
        return "the token is malformed"
    if claims.get("ep") != endpoint:
        return "the token was issued for another endpoint"
    if claims.get("exp", 0) <= (now if now is not None else time.time()):
        return "the token has expired; get a new one with get_keys / get-credentials"
    return None


def matches_key(presented: str, keys: tuple[str, ...]) -> bool:
    """Whether ``presented`` equals one of ``keys`` (each compared in constant time)."""
    found = False
    for key in keys:
        found |= hmac.compare_digest(presented.encode(), key.encode())
    return found
