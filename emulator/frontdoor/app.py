"""The front door's WSGI app: every route module's blueprint, token checks, and ARM errors.

One Flask app serves all three listeners (see :mod:`.settings`); which routes need a token
is decided by path, so a client that reaches the control plane over plain HTTP is refused
just the same.
"""

from __future__ import annotations

import importlib
import logging

from flask import Flask, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from emulator import errors
from emulator.frontdoor import resources, tokens
from emulator.frontdoor.settings import FrontDoor

log = logging.getLogger("amlemu.frontdoor")

#: the route modules, each a ``blueprint`` of one concept's routes (moto's ``responses.py``)
ROUTES = (
    "cloud",
    "workspaces",
    "computes",
    "datastores",
    "blobs",
    "codes",
    "data",
    "assets",
    "components",
    "jobs",
    "history",
    "dataplane",
    "endpoints",
    "tracking",
)

#: paths that carry a bearer token: ARM and the run-history and dataset data planes
_TOKEN_PATHS = ("/subscriptions/", "/history/", "/data/")


def create_app(front: FrontDoor) -> Flask:
    app = Flask("amlemu.frontdoor")
    app.config["FRONT_DOOR"] = front
    app.config["MAX_CONTENT_LENGTH"] = None  # blob uploads are streamed to disk, not held in memory
    for name in ROUTES:
        app.register_blueprint(importlib.import_module(f"emulator.frontdoor.{name}").blueprint)
    app.before_request(_check_token)
    app.register_error_handler(errors.EmulatorError, _engine_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app


def _check_token():
    if not request.path.startswith(_TOKEN_PATHS):
        return None
    try:
        g.claims = tokens.verify(request.headers.get("Authorization"), resources.front())
    except tokens.TokenRefused as exc:
        response = resources.arm_error("InvalidAuthenticationToken", str(exc), 401)
        response.headers["WWW-Authenticate"] = f'Bearer authorization_uri="{resources.front().http_url}/login/"'
        return response
    return None


def _engine_error(exc: errors.EmulatorError):
    return resources.arm_error(exc.code, exc.message, exc.status if exc.status >= 400 else 400)


def _http_error(exc: HTTPException):
    if isinstance(exc, NotFound | MethodNotAllowed) and request.path.startswith(_TOKEN_PATHS):
        return resources.not_emulated(f"{request.method} {request.path}")
    return resources.arm_error(type(exc).__name__, exc.description or exc.name, exc.code or 500)


def _unexpected(exc: Exception):
    log.exception("%s %s failed", request.method, request.path)
    return resources.arm_error(
        "InternalServerError",
        f"amlemu's front door failed on {request.method} {request.path}: {type(exc).__name__}: {exc}. "
        "This is a bug in amlemu; the server's log has the traceback.",
        500,
    )
