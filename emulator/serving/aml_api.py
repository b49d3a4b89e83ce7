"""What scoring scripts import from ``azureml.contrib.services``: rawhttp, AMLRequest, AMLResponse.

azureml-inference-server-http makes ``azureml.contrib.services.aml_request`` and
``.aml_response`` importable for scripts written against the old SDK; ``install()``
does the same here (and answers for ``azureml_inference_server_http.api.*``), so a
script's ``from azureml.contrib.services.aml_response import AMLResponse`` works
without either package installed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from flask import Request, Response

MODULE_NAMES = (
    "azureml.contrib.services.aml_request",
    "azureml.contrib.services.aml_response",
    "azureml_inference_server_http.api.aml_request",
    "azureml_inference_server_http.api.aml_response",
)

raw_http_requested = False


def rawhttp(func: Callable) -> Callable:
    """Marks ``run()`` as taking the HTTP request itself rather than its body."""
    global raw_http_requested
    raw_http_requested = True
    return func


class AMLRequest(Request):
    """The request object a ``@rawhttp`` run() receives (a Flask request)."""


class AMLResponse(Response):
    """A response a run() may return to control status, headers and body.

    Args:
        message: the body; serialised with ``json.dumps`` when ``json_str`` is true.
            None gives ``{}``.
        status_code: the HTTP status.
        response_headers: extra headers; a comma in a value adds the header once per part.
        json_str: whether to serialise ``message`` as JSON.
        run_function_failed: the value of the ``x-ms-run-function-failed`` header.
    """

    def __init__(
        self,
        message: Any,
        status_code: int,
        response_headers: dict | None = None,
        json_str: bool = False,
        run_function_failed: bool = False,
    ):
        response_headers = response_headers or {}
        if message is None:
            super().__init__(json.dumps({}), status=status_code, mimetype="application/json")
        elif json_str:
            super().__init__(json.dumps(message), status=status_code, mimetype="application/json")
        else:
            super().__init__(message, status=status_code)
            if "Content-Type" in response_headers:
                self.headers.remove("Content-Type")
        self.headers["x-ms-run-function-failed"] = str(bool(run_function_failed))
        for header, value in response_headers.items():
            for part in str(value).split(","):
                self.headers.add_header(header, part.strip())


def install() -> None:
    """Makes this module importable under the names scoring scripts use."""
    module = sys.modules[__name__]
    for name in MODULE_NAMES:
        sys.modules[name] = module
