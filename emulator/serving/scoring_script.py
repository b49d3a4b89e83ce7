"""A user's scoring script: ``init()`` once, ``run()`` per request, as Azure ML calls them.

It follows azureml-inference-server-http: the script is imported from
``AML_APP_ROOT/AZUREML_ENTRY_SCRIPT`` as module ``entry_module``; how ``run()`` is
declared picks what it receives:

* undecorated: the request body as text (a GET's query string as a JSON object);
* ``@input_schema`` (inference-schema): the JSON body's keys as keyword arguments;
* ``@rawhttp``: the Flask request itself;
* a ``request_headers`` parameter: the request's headers as a dict, in addition.

The return value is serialised with ``json.dumps`` (None gives ``{}``); a Flask or
``AMLResponse`` response is sent as it is.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import os
import time
import traceback
from collections.abc import Callable
from typing import Any

from flask import Request, Response

from . import aml_api
from .errors import BadRequest, ScoringError, StartupError
from .messages import json_response, query_parameters, read_body

try:  # optional, as in Azure ML environments: only scripts that use it need it
    from inference_schema import schema_util
except ImportError:  # pragma: no cover - depends on the environment
    schema_util = None

logger = logging.getLogger("azmlinfsrv.user_script")

EMPTY_SCHEMA = {"type": "object", "example": {}}
_VERSION_ALIASES = {"2": ("2", "2.0"), "3": ("3", "3.0"), "3.1": ("3.1",)}


class ScoringScript:
    """A loaded and initialised scoring script.

    Attributes:
        path: the script file.
        raw_http: whether run() takes the request itself (``@rawhttp``).
    """

    def __init__(self, app_root: str, entry_script: str):
        self.app_root = app_root
        self.entry_script = entry_script
        self.path = os.path.join(app_root, entry_script.replace("/", os.sep))
        self.raw_http = False
        self._run: Callable[..., Any] | None = None
        self._parse: Callable[[Request], dict[str, Any]] | None = None
        self._wants_headers = False

    def load(self) -> ScoringScript:
        """Imports the script and calls its ``init()``.

        Raises:
            StartupError: the script is missing, fails to import, lacks init()/run(), declares
                run() in a way the server cannot call, or its init() raises. The traceback,
                if any, has been printed to stderr.
        """
        if not os.path.isfile(self.path):
            listing = ", ".join(sorted(os.listdir(self.app_root))[:20]) if os.path.isdir(self.app_root) else "-"
            raise StartupError(
                f"scoring script {self.path} not found (AML_APP_ROOT={self.app_root}, "
                f"AZUREML_ENTRY_SCRIPT={self.entry_script}; the code folder holds: {listing})"
            )
        aml_api.install()
        spec = importlib.util.spec_from_file_location("entry_module", self.path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:
            raise self._failed("importing", exc) from None
        for name in ("init", "run"):
            if not callable(getattr(module, name, None)):
                raise StartupError(f"scoring script {self.path} does not define a {name}() function")
        self._run = module.run
        self._analyse_run()
        logger.info("Invoking user's init function")
        try:
            module.init()
        except BaseException as exc:
            raise self._failed("init() of", exc) from None
        logger.info("User's init has completed successfully")
        return self

    def describe(self) -> str:
        return f"scoring script {self.path}"

    def score(self, request: Request) -> Response:
        """Answers one ``/score`` request by calling run()."""
        kwargs = self._parse(request)
        if self._wants_headers:
            kwargs["request_headers"] = dict(request.headers)
        started = time.perf_counter()
        try:
            output = self._run(**kwargs)
        except Exception as exc:
            logger.error("Encountered Exception: %s", traceback.format_exc())
            raise ScoringError(
                500,
                "ScoringScriptFailed",
                f"An unexpected error occurred in scoring script: run() raised "
                f"{type(exc).__name__}: {exc}. Check the logs for more info.",
                run_function_failed=True,
            ) from None
        elapsed = f"{(time.perf_counter() - started) * 1000:.3f}"
        if isinstance(output, Response):
            if output.status_code >= 500:
                output.headers["x-ms-run-function-failed"] = "True"
            output.headers["x-ms-run-fn-exec-ms"] = elapsed
            return output
        try:
            text = json.dumps(output) if output is not None else "{}"
        except (TypeError, ValueError) as exc:
            raise ScoringError(
                500,
                "RunOutputNotSerializable",
                f"run() returned {type(output).__module__}.{type(output).__name__}, which JSON "
                f"cannot carry ({exc}); Azure ML's server fails the same way: return lists, dicts, "
                "numbers or strings (e.g. array.tolist()), or an AMLResponse",
            ) from None
        response = json_response(text)
        response.headers["x-ms-run-fn-exec-ms"] = elapsed
        return response

    def service_schemas(self, version: str) -> tuple[dict, dict] | None:
        """Swagger ``ServiceInput``/``ServiceOutput`` from inference-schema; None if run() excludes ``version``."""
        if schema_util is None:
            return EMPTY_SCHEMA, EMPTY_SCHEMA
        supported = schema_util.get_supported_versions(self._run)
        if not any(alias in supported for alias in _VERSION_ALIASES[version]):
            return None
        if schema_util.is_schema_decorated(self._run):
            return schema_util.get_input_schema(self._run), schema_util.get_output_schema(self._run)
        return EMPTY_SCHEMA, EMPTY_SCHEMA

    # -- how run() is called ------------------------------------------------------------------------
    def _analyse_run(self) -> None:
        params = list(inspect.signature(self._run).parameters.values())
        if any(p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params):
            raise StartupError("run() cannot accept positional-only arguments, *args, or **kwargs.")
        self._wants_headers = any(p.name == "request_headers" for p in params)
        params = [p for p in params if p.name != "request_headers"]
        if not params:
            raise StartupError(
                'run() needs to accept an argument other than "request_headers".'
                if self._wants_headers
                else "run() needs to accept an argument for input data."
            )
        decorated = schema_util is not None and schema_util.is_schema_decorated(self._run)
        if aml_api.raw_http_requested and decorated:
            raise StartupError("run() cannot be decorated with both @rawhttp and @input_schema")
        first = params[0].name
        if aml_api.raw_http_requested:
            self.raw_http = True
            self._parse = lambda request: {first: request}
            logger.info("run() is decorated with @rawhttp. Server will invoke it with the flask request object.")
        elif decorated:
            self._parse = lambda request: _schema_arguments(request, params)
            logger.info(
                "run() is decorated with @input_schema. Server will invoke it with the following arguments: %s.",
                ", ".join(p.name for p in params),
            )
        else:
            self._parse = lambda request: {first: _body_text(request)}
            logger.info("run() is not decorated. Server will invoke it with the input in JSON string.")

    def _failed(self, what: str, exc: BaseException) -> StartupError:
        traceback.print_exception(type(exc), exc, exc.__traceback__)
        where = _last_script_frame(exc, self.path)
        return StartupError(f"{what} scoring script {self.entry_script} failed{where}: {type(exc).__name__}: {exc}")


def _body_text(request: Request) -> str:
    if request.method == "GET":
        return json.dumps(query_parameters(request))
    try:
        return read_body(request).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("InvalidInput", f"Input cannot be decoded as UTF-8: {exc}") from None


def _schema_arguments(request: Request, params: list[inspect.Parameter]) -> dict[str, Any]:
    """``@input_schema``: the JSON body's keys as run()'s keyword arguments (messages as the real server's)."""
    if request.method == "GET":
        body = query_parameters(request)
    else:
        if not request.is_json:
            raise ScoringError(415, "UnsupportedMediaType", "Expects Content-Type to be application/json")
        raw = read_body(request)
        try:
            body = json.loads(raw)
        except ValueError as exc:
            message = (
                f"POST body could not be decoded as JSON: {exc}"
                if raw
                else "POST body is empty. Expecting a JSON dictionary."
            )
            raise BadRequest("InvalidJson", message) from None
        if not isinstance(body, dict):
            raise BadRequest("InvalidRequestBody", "POST body should be a JSON dictionary.")
    arguments = {}
    for param in params:
        value = body.get(param.name, param.default)
        if value is inspect.Parameter.empty:
            raise BadRequest("MissingInputData", f"A value is not provided for the {param.name!r} parameter.")
        arguments[param.name] = value
    return arguments


def _last_script_frame(exc: BaseException, path: str) -> str:
    """`` (score.py, line 12)`` for the deepest frame in the script, else ``''``."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if os.path.abspath(f.filename) == os.path.abspath(path)
    ]
    return f" ({os.path.basename(path)}, line {frames[-1].lineno})" if frames else ""
