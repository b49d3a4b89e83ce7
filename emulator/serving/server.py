"""The scoring server's routes: a Flask app around one scorer.

Routes, as azureml-inference-server-http defines them::

    GET  /              liveness: 200 "Healthy"
    GET|POST /score     the scorer's answer (OPTIONS: 200, empty)
    GET  /swagger.json  the swagger document (?version=2|3|3.1)

Anything else is a JSON 404. Request ids are echoed the way the real server
echoes them (``x-request-id``, ``x-ms-request-id``, ``x-ms-client-request-id``).
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Callable
from typing import Protocol

from flask import Flask, Request, Response, request
from werkzeug.exceptions import HTTPException

from .errors import ScoringError
from .gate import GatewayOnly
from .messages import error_response, json_response
from .openapi import SwaggerDocuments
from .scoring_script import ScoringScript
from .settings import REPLICA_SECRET_ENV, ServerSettings, describe_bytes

logger = logging.getLogger("azmlinfsrv")

ID_HEADER_LIMIT = 100
ROUTES = "GET /, GET|POST /score and GET /swagger.json"


class Scorer(Protocol):
    """What the routes need from a scorer (the built-in ONNX scorer or a scoring script)."""

    raw_http: bool

    def score(self, request: Request) -> Response:
        """Answers one ``/score`` request; raises ScoringError for a request it refuses."""

    def service_schemas(self, version: str) -> tuple[dict, dict] | None:
        """Swagger ``ServiceInput`` and ``ServiceOutput`` for ``version``; None if not offered."""

    def describe(self) -> str:
        """One line for the start-up log."""


def load_scorer(settings: ServerSettings) -> Scorer:
    """The scorer the settings ask for, loaded and initialised (the script's init() has run).

    Raises:
        StartupError: nothing servable; the message says what to fix.
    """
    if settings.entry_script:
        if os.path.isdir(settings.app_root):
            os.chdir(settings.app_root)
        sys.path.insert(0, settings.app_root)
        return ScoringScript(settings.app_root, settings.entry_script).load()
    from .onnx_scorer import OnnxScorer  # only the built-in ONNX scorer needs onnxruntime (~0.15 s at start)

    return OnnxScorer.from_model_dir(settings.model_dir, settings.max_rows)


def load() -> tuple[Scorer, ServerSettings]:
    """Reads the settings from the environment and loads the scorer (the script's init() has run).

    Raises:
        StartupError: nothing servable; the message says what to fix.
    """
    settings = ServerSettings.from_env()
    os.environ.pop(REPLICA_SECRET_ENV, None)  # the scoring script has no use for it (and might log its environment)
    return load_scorer(settings), settings


def load_app() -> Flask:
    """Loads the scorer and builds the app.

    Raises:
        StartupError: nothing servable; the message says what to fix.
    """
    scorer, settings = load()
    app = create_app(scorer, settings)
    announce_ready(scorer)
    return app


def announce_ready(scorer: Scorer) -> None:
    """The start-up log's last line, as azureml-inference-server-http writes it."""
    logger.info("Worker with pid %d ready for serving traffic: %s", os.getpid(), scorer.describe())
    sys.stdout.flush()
    sys.stderr.flush()


def create_app(scorer: Scorer, settings: ServerSettings) -> Flask:
    """The WSGI app serving ``scorer``."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    swagger = SwaggerDocuments(scorer.service_schemas, settings, settings.app_root if settings.entry_script else None)

    @app.get("/")
    def liveness():
        return Response("Healthy", mimetype="text/plain")

    @app.route("/score", methods=["GET", "POST", "OPTIONS"], provide_automatic_options=False)
    def score():
        if request.method == "OPTIONS" and not scorer.raw_http:
            return Response("", 200)
        return scorer.score(request)

    @app.get("/swagger.json")
    def swagger_json():
        return json_response(swagger.get(request.args.get("version")))

    @app.errorhandler(ScoringError)
    def scoring_error(error: ScoringError):
        return error_response(error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return error_response(
            ScoringError(error.code or 500, _HTTP_CODES.get(error.code, "HttpError"), _http_message(error, settings))
        )

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        return error_response(unexpected_error(error, f"{request.method} {request.path}"))

    app.wsgi_app = RequestIds(app.wsgi_app, settings.server_version)
    if settings.replica_secret:  # set by the endpoint host for every replica; a standalone server has none
        app.wsgi_app = GatewayOnly(app.wsgi_app, settings.replica_secret)
    return app


def unexpected_error(error: Exception, serving: str = "a request") -> ScoringError:
    """A defect met while serving (``"POST /score"``): logged with its traceback, answered 500."""
    logger.exception("Unexpected error while serving %s", serving)
    return ScoringError(
        500,
        "InternalServerError",
        f"An unexpected internal error occurred ({type(error).__name__}: {error}). Check the logs for more info.",
    )


_HTTP_CODES = {404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge", 400: "BadRequest"}


def _http_message(error: HTTPException, settings: ServerSettings) -> str:
    if error.code == 404:
        return f"{request.path} not found: the scoring server answers {ROUTES}"
    if error.code == 405:
        return f"{request.method} is not allowed on {request.path}: the scoring server answers {ROUTES}"
    if error.code == 413:
        return too_large(request.content_length, settings.max_request_bytes)
    return error.description or error.name


def too_large(content_length: int | None, limit: int) -> str:
    """What a 413 says (``content_length`` None: a chunked body)."""
    size = f" of {content_length} bytes" if content_length else ""
    return (
        f"request body{size} is larger than the limit of {describe_bytes(limit)}: "
        "send fewer rows per request (the limit is AMLEMU_MAX_REQUEST_BYTES)"
    )


class RequestIds:
    """WSGI middleware: request id headers as azureml-inference-server-http sets them.

    ``x-request-id`` is echoed (or generated); ``x-ms-request-id`` and
    ``x-ms-client-request-id`` are echoed, each filling in for the other, and an id
    longer than 100 characters is refused with 431. Done below Flask, on the WSGI
    environ, because it runs on every request.
    """

    def __init__(self, app: Callable, server_version: str = ""):
        self.app = app
        self.server_version = server_version

    def __call__(self, environ: dict, start_response: Callable):
        get = environ.get
        try:
            extra = id_headers(
                get("HTTP_X_REQUEST_ID", ""),
                get("HTTP_X_MS_REQUEST_ID", ""),
                get("HTTP_X_MS_CLIENT_REQUEST_ID", ""),
                get("HTTP_TRACEID"),
                self.server_version,
            )
        except ScoringError as error:
            return error_response(error)(environ, start_response)

        def start(status: str, headers: list, exc_info=None):
            headers.extend(extra)
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


def id_headers(
    request_id: str, legacy: str, client: str, trace: str | None = None, server_version: str = ""
) -> list[tuple[str, str]]:
    """The id headers of an answer, from the request's ``x-request-id``, ``x-ms-request-id``,
    ``x-ms-client-request-id`` and ``TraceId`` ("" or None: not sent). Raises ScoringError (431) for an id
    over 100 characters. One rule for the WSGI middleware and the direct server (:mod:`.direct_server`)."""
    request_id = request_id or str(uuid.uuid4())
    for name, value in (("x-request-id", request_id), ("x-ms-request-id", legacy), ("x-ms-client-request-id", client)):
        if len(value) > ID_HEADER_LIMIT:
            raise ScoringError(
                431, "RequestHeaderFieldsTooLarge", f"{name} must not exceed {ID_HEADER_LIMIT} characters"
            )
    if legacy:
        client = client or legacy
    else:
        legacy = client or request_id
    extra = [("x-request-id", request_id), ("x-ms-request-id", legacy)]
    if client:
        extra.append(("x-ms-client-request-id", client))
    if server_version:
        extra.append(("x-ms-server-version", server_version))
    if trace is not None:
        extra.append(("TraceId", trace))
    return extra
