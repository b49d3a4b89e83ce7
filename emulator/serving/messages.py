"""HTTP glue both scorers share: reading a request's input, writing JSON answers.

Every answer the server writes itself is JSON with ``Content-Type:
application/json`` and ``x-ms-run-function-failed`` (as azureml-inference-server-http
sets it). Errors carry the real server's ``message`` and an Azure-style
``error: {code, message}``, so clients written for either shape read them.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Request, Response
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header

from .errors import BadRequest, ScoringError


def json_response(
    text: str, status: int = 200, *, run_function_failed: bool = False, exec_ms: float | None = None
) -> Response:
    """An answer whose body is already-serialised JSON."""
    headers = [("x-ms-run-function-failed", "True" if run_function_failed else "False")]
    if exec_ms is not None:
        headers.append(("x-ms-run-fn-exec-ms", f"{exec_ms:.3f}"))
    return Response(text, status=status, headers=headers, mimetype="application/json")


def error_text(error: ScoringError) -> str:
    """The JSON body of an error answer: the real server's ``message`` and an Azure-style ``error``."""
    return json.dumps({"message": error.message, "error": {"code": error.code, "message": error.message}})


def error_response(error: ScoringError) -> Response:
    return json_response(error_text(error), error.status, run_function_failed=error.run_function_failed)


def query_parameters(request: Request) -> dict[str, Any]:
    """A GET request's query string read as a JSON body, as the real server reads it.

    ``/score?a=1&b=[1,2]&c=x&c=y`` reads as ``{"a": 1, "b": [1, 2], "c": ["x", "y"]}``: each
    value is parsed as JSON when it can be, and a repeated name becomes a list.
    """
    parsed: dict[str, Any] = {}
    for name in request.args.keys():
        values = [_json_or_text(v) for v in request.args.getlist(name)]
        parsed[name] = values[0] if len(values) == 1 else values
    return parsed


def read_body(request: Request) -> bytes:
    """The request body; RequestEntityTooLarge (413) above ``MAX_CONTENT_LENGTH``.

    Werkzeug refuses a declared Content-Length over the limit, but cuts a chunked body
    off at the limit without a word: a chunked body that reaches it is refused here.
    """
    raw = request.get_data(cache=True)
    limit = request.max_content_length
    if limit is not None and request.content_length is None and len(raw) >= limit:
        raise RequestEntityTooLarge()
    return raw


def require_json_content_type(request: Request) -> None:
    """Raises 415 unless the body is declared ``application/json`` (UTF-8, if a charset is given)."""
    check_json_content_type(request.content_type)


def check_json_content_type(content_type: str | None) -> None:
    """:func:`require_json_content_type` on a ``Content-Type`` value (None: the header is missing)."""
    mimetype, params = parse_options_header(content_type)
    if mimetype.lower() != "application/json":
        got = content_type or "none"
        raise ScoringError(
            415,
            "UnsupportedMediaType",
            f"Content-Type must be application/json; got {got}. "
            "Send the request body as JSON with the header Content-Type: application/json",
        )
    charset = params.get("charset")
    if charset and charset.lower() not in ("utf-8", "utf8"):
        raise ScoringError(
            415, "UnsupportedMediaType", f"charset={charset} is not supported: send the JSON body as UTF-8"
        )


def decode_json(raw: bytes, example: Any) -> Any:
    """Parses a request body, or raises a 400 naming where it is malformed."""
    if not raw.strip():
        raise BadRequest("EmptyBody", f"request body is empty: send a JSON object such as {json.dumps(example)}")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            "InvalidJson",
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} (char {exc.pos})",
        ) from None
    except UnicodeDecodeError as exc:
        raise BadRequest("InvalidJson", f"request body is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except RecursionError:
        raise BadRequest("InvalidJson", "request body is nested too deeply to parse") from None


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value
