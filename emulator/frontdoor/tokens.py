"""Access tokens: issued by the managed-identity endpoint, checked on every control-plane call.

Tokens are JWTs (PyJWT, HS256) signed with a secret kept 0600 in ``AMLEMU_HOME``: clients
such as ``az login --identity`` read the claims, and the front door alone can verify them.
A token is accepted only for the audiences this cloud hands out: its resource manager,
Azure ML's resource id, storage. The managed-identity endpoint answers both protocols Azure
uses: App Service's (``IDENTITY_ENDPOINT`` + ``X-IDENTITY-HEADER``, api-version 2019-08-01),
which ``DefaultAzureCredential`` picks from ``IDENTITY_ENDPOINT``/``IDENTITY_HEADER``, and
Azure ML compute's (``MSI_ENDPOINT`` + ``secret``, 2017-09-01), which jobs get.
"""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

from emulator.frontdoor import settings

TENANT_ID = "00000000-0000-0000-0000-000000000000"
#: the identity every token names (a user-assigned-style managed identity of the local machine)
OBJECT_ID = "00000000-0000-0000-0000-0000000a1e00"
CLIENT_ID = "00000000-0000-0000-0000-0000000a1e01"
LIFETIME_S = 3600
ALGORITHM = "HS256"


class TokenRefused(Exception):
    """Why a bearer token was refused (the 401's message)."""


_read: dict[Path, str] = {}


def _secret(name: str, size: int) -> str:
    """A secret file of the front door's folder, made 0600 on first use and read once per process (every request
    checks a token or a signature against one: no file read per request)."""
    path = settings.folder() / name
    known = _read.get(path)
    if known is None:
        if not path.is_file():
            settings.write_private(path, secrets.token_urlsafe(size).encode())
        known = _read[path] = path.read_text().strip()
    return known


def signing_key() -> str:
    return _secret("token-signing-key", 48)


def service_key(name: str) -> str:
    """A key of one of the front door's own services (``name``: its file, e.g. the key signing log URLs), kept
    0600 in the front door's folder like the token key, made on first use."""
    return _secret(name, 48)


def identity_header() -> str:
    """The value ``IDENTITY_HEADER``/``MSI_SECRET`` must carry to get a token."""
    return _secret("identity-header", 24)


def audiences(front: settings.FrontDoor) -> set[str]:
    """The audiences a token may name: this cloud's resource manager, Azure ML, storage (with or without ``/``)."""
    base = {front.resource_manager, "https://ml.azure.com/", "https://storage.azure.com/"}
    return base | {a.rstrip("/") for a in base}


def resource_of(scope_or_resource: str) -> str:
    """``https://x/.default`` -> ``https://x/`` (a scope names its resource)."""
    return scope_or_resource.removesuffix(".default").removesuffix("/.default")


def issue(resource: str, front: settings.FrontDoor) -> dict[str, Any]:
    """A token for ``resource``, as the managed-identity endpoint answers it; refused for an unknown audience."""
    import jwt

    resource = resource_of(resource)
    if resource not in audiences(front):
        raise TokenRefused(
            f"No token for resource '{resource}': amlemu issues tokens for {', '.join(sorted(audiences(front)))}. "
            "Ask for the resource manager in the cloud metadata (ARM_CLOUD_METADATA_URL)."
        )
    now = int(time.time())
    claims = {
        "aud": resource,
        "iss": f"https://sts.{settings.STORAGE_SUFFIX}/{TENANT_ID}/",
        "iat": now,
        "nbf": now,
        "exp": now + LIFETIME_S,
        "oid": OBJECT_ID,
        "sub": OBJECT_ID,
        "tid": TENANT_ID,
        "appid": CLIENT_ID,
        "idtyp": "app",
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, signing_key(), algorithm=ALGORITHM)
    return {
        "access_token": token,
        "expires_on": str(now + LIFETIME_S),
        "expires_in": str(LIFETIME_S),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": CLIENT_ID,
    }


def verify(authorization: str | None, front: settings.FrontDoor) -> dict[str, Any]:
    """The claims of the ``Authorization: Bearer`` token, or :class:`TokenRefused` saying what is wrong."""
    import jwt

    if not authorization:
        raise TokenRefused(
            "The request has no Authorization header. Get a token from the front door's managed identity: "
            'eval "$(amlemu env)" sets IDENTITY_ENDPOINT and IDENTITY_HEADER for DefaultAzureCredential.'
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise TokenRefused("The Authorization header is not 'Bearer <token>'.")
    try:
        return jwt.decode(
            token.strip(),
            signing_key(),
            algorithms=[ALGORITHM],
            audience=sorted(audiences(front)),
            options={"require": ["exp", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenRefused("The access token has expired. Ask the credential for a new one.")
    except jwt.InvalidAudienceError:
        raise TokenRefused(
            "The access token is for another audience. This front door accepts tokens for "
            f"{', '.join(sorted(audiences(front)))}."
        )
    except jwt.PyJWTError:
        raise TokenRefused(
            "The access token was not issued by this amlemu front door (bad signature or format). "
            "Get one from its managed-identity endpoint (IDENTITY_ENDPOINT from `amlemu env`)."
        )


def identity_header_ok(given: str | None) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), identity_header().encode())
