"""Only the endpoint's gateway may call a replica: the replica-secret check, as plain WSGI middleware.

The endpoint host gives each replica a secret (``AMLEMU_REPLICA_SECRET``); the gateway sends it
in ``x-amlemu-replica-secret`` with every request it forwards and with its probes. Anything else
reaching the replica's port (a local process skipping the gateway's key check and network rules)
is answered 403 before any other code runs.

It wraps amlemu's own scoring server and a user's own azureml-inference-server-http alike (see
:mod:`.user_server`), so it uses nothing but the standard library and Python 3.8 syntax: it runs
in the user's interpreter.
"""

from __future__ import annotations

import hmac
import json

SECRET_ENVIRON_KEY = "HTTP_X_AMLEMU_REPLICA_SECRET"  # the WSGI name of the x-amlemu-replica-secret header
REFUSAL = "This replica answers only its endpoint's gateway: call the endpoint's scoring URI with its key or token."
REFUSAL_BODY = json.dumps({"message": REFUSAL, "error": {"code": "Forbidden", "message": REFUSAL}}).encode("utf-8")
REFUSAL_HEADERS = [
    ("Content-Type", "application/json"),
    ("Content-Length", str(len(REFUSAL_BODY))),
    ("x-ms-run-function-failed", "False"),
]


class GatewayOnly:
    """WSGI middleware, outermost: a request without the replica secret gets 403 and reaches nothing.

    The comparison is in constant time. The header is removed from the request before the app
    sees it, so a scoring script's ``request_headers`` (or a ``@rawhttp`` request) never holds
    it; neither the expected nor the received value is ever logged or echoed.
    """

    def __init__(self, app, secret: str):
        if not secret:
            raise ValueError("GatewayOnly needs the replica secret")
        self.app = app
        self._secret = secret.encode("utf-8")

    def __call__(self, environ: dict, start_response):
        if admits(environ.pop(SECRET_ENVIRON_KEY, ""), self._secret):
            return self.app(environ, start_response)
        start_response("403 Forbidden", list(REFUSAL_HEADERS))
        return [REFUSAL_BODY]


def admits(given: str, secret: bytes) -> bool:
    """Whether the header value ``given`` is the replica secret (compared in constant time)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), secret)
