"""The built-in ONNX scorer's own server: asyncio and llhttp, with no WSGI stack on the scoring path.

A replica of a deployment with an ONNX model and no scoring script spent most of each request in its
HTTP stack, not in the model: granian's hand-over to a Python thread, the WSGI environ, Flask's
request and response objects (about 0.5 ms of CPU per request under load, against 15 µs for ONNX
Runtime itself). This server answers ``POST /score`` itself: llhttp parses (:mod:`.http1`, the
gateway's own server side), the replica secret and the request ids are checked by the same code as
the WSGI middleware (:func:`.gate.admits`, :func:`.server.id_headers`), and the scorer turns the
body into the answer (:meth:`.OnnxScorer.score_json`). Every other request (``GET /``,
``/swagger.json``, ``GET`` and ``OPTIONS`` on ``/score``, unknown routes and methods) goes to the
same Flask app granian would serve, through werkzeug's WSGI runner, so those answers are the Flask
server's own.

Requests worked on at once: ``threads`` (``WORKER_COUNT``), like azureml-inference-server-http's sync
workers. With 1, the default, each request is answered on the event loop, with no thread hand-over;
with more, in a pool of that many threads (ONNX Runtime releases the GIL while it runs). The requests
of one connection are answered in order.

SIGTERM or SIGINT closes the listening socket, lets the requests being answered finish (up to
:data:`.wsgi_server.DRAIN_SECONDS`), closes idle keep-alive connections and exits 0.

Python 3.11 or later and httptools are needed (amlemu's interpreter has both); ``--server auto`` picks
this server for the built-in scorer when they are there, granian or waitress otherwise.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import secrets
import signal
import socket
import sys

from werkzeug.test import EnvironBuilder, run_wsgi_app

from . import gate, http1
from .errors import ScoringError, StartupError
from .messages import check_json_content_type, error_text
from .onnx_scorer import OnnxScorer
from .server import announce_ready, create_app, id_headers, load, too_large, unexpected_error
from .settings import REPLICA_CHANNEL_HEADER, REPLICA_SECRET_HEADER, ServerSettings
from .wsgi_server import DRAIN_SECONDS, EXIT_STARTUP_FAILED, report_startup_failure

logger = logging.getLogger("azmlinfsrv")

Answer = http1.Answer
#: the codes of the errors llhttp's reader answers itself, in the server's error shape
_READER_CODES = {
    400: "BadRequest",
    408: "RequestTimeout",
    413: "PayloadTooLarge",
    431: "RequestHeaderFieldsTooLarge",
    501: "NotImplemented",
    505: "HTTPVersionNotSupported",
}


class DirectServer:
    """Serves one built-in scorer: ``POST /score`` directly, everything else through its Flask app."""

    def __init__(self, scorer: OnnxScorer, settings: ServerSettings, threads: int = 1):
        self.scorer = scorer
        self.settings = settings
        self.app = create_app(scorer, settings)  # the other routes, and the same middleware rules
        self._secret = settings.replica_secret.encode("utf-8") if settings.replica_secret else None
        self._pool = concurrent.futures.ThreadPoolExecutor(threads) if threads > 1 else None
        self._stopping = False
        self._connections: set[http1.ServerConnection] = set()
        self.channel: str | None = None  # "@<name>": the Unix socket offered to the gateway (see run)

    # -- answers -------------------------------------------------------------------------------------------
    def answer(self, request: http1.Message) -> Answer:
        """The answer to one parsed request (never raises)."""
        headers = request.headers
        if request.method != "POST" or request.path != "/score":
            answer = self.answer_by_app(request)
            if self.channel and request.path == "/" and answer[0] == 200 and self._admits(headers):
                answer[1][REPLICA_CHANNEL_HEADER] = self.channel  # to the gateway only: it holds the secret
            return answer
        if self._secret is not None and not self._admits(headers):
            return 403, dict(gate.REFUSAL_HEADERS), gate.REFUSAL_BODY
        headers.pop(REPLICA_SECRET_HEADER, None)
        try:
            ids = self._ids(headers.get)
        except ScoringError as error:
            return self._error(error, ())
        try:
            check_json_content_type(headers.get("content-type"))
            text, exec_ms = self.scorer.score_json(request.body)
        except ScoringError as error:
            return self._error(error, ids)
        except Exception as exc:  # a defect: logged and answered 500, as the Flask app does
            return self._error(unexpected_error(exc, f"{request.method} {request.path}"), ids)
        out = {
            "Content-Type": "application/json",
            "x-ms-run-function-failed": "False",
            "x-ms-run-fn-exec-ms": f"{exec_ms:.3f}",
        }
        out.update(ids)
        return 200, out, text.encode()

    def _admits(self, headers: dict[str, str]) -> bool:
        return self._secret is not None and gate.admits(headers.get(REPLICA_SECRET_HEADER, ""), self._secret)

    def _ids(self, get) -> list[tuple[str, str]]:
        return id_headers(
            get("x-request-id", ""),
            get("x-ms-request-id", ""),
            get("x-ms-client-request-id", ""),
            get("traceid"),
            self.settings.server_version,
        )

    def _error(self, error: ScoringError, ids) -> Answer:
        out = {
            "Content-Type": "application/json",
            "x-ms-run-function-failed": "True" if error.run_function_failed else "False",
        }
        out.update(ids)
        return error.status, out, error_text(error).encode()

    def answer_by_app(self, request: http1.Message) -> Answer:
        """The Flask app's answer (HEAD as GET: the caller drops the body)."""
        path, _, query = request.target.partition("?")
        environ = EnvironBuilder(
            path=path,
            query_string=query,
            method="GET" if request.method == "HEAD" else request.method,
            headers=list(request.headers.items()),
            data=request.body,
        ).get_environ()
        try:
            app_iter, status, response_headers = run_wsgi_app(self.app, environ, buffered=True)
            body = b"".join(app_iter)
        except Exception as exc:  # the app answers its own errors: this is a defect of the bridge
            return self._error(unexpected_error(exc, f"{request.method} {path}"), ())
        out: dict[str, str] = {}
        for name, value in response_headers.items():
            if name.lower() != "content-length":  # written from the body
                out[name] = f"{out[name]}, {value}" if name in out else value
        return int(status.split(" ", 1)[0]), out, body

    def refusal(self, exc: http1.BadRequest) -> Answer:
        """A request llhttp's reader refused, answered in the server's error shape (with the request's ids
        when its head had arrived, as the Flask app answers a body over the limit)."""
        headers = exc.headers or {}
        if exc.status == 413:
            length = headers.get("content-length")
            message = too_large(int(length) if length else None, self.settings.max_request_bytes)
        else:
            message = exc.message
        error = ScoringError(exc.status, _READER_CODES.get(exc.status, "BadRequest"), message)
        try:
            ids = self._ids(headers.get) if exc.headers is not None else ()
        except ScoringError as too_long:
            return self._error(too_long, ())
        return self._error(error, ids)

    # -- connections -------------------------------------------------------------------------------------
    def connection(self) -> http1.ServerConnection:
        """The protocol of one connection (to the TCP port or the gateway's channel)."""
        answer = self._answer_sync if self._pool is None else self._answer_in_pool
        connection = http1.ServerConnection(
            answer,
            self.refusal,
            self._failure,
            self.settings.max_request_bytes,
            stopping=lambda: self._stopping,
            closed=self._connections.discard,
        )
        self._connections.add(connection)
        return connection

    def _answer_sync(self, request: http1.Message, peer) -> Answer:
        return self.answer(request)

    def _answer_in_pool(self, request: http1.Message, peer) -> asyncio.Future:
        return asyncio.get_running_loop().run_in_executor(self._pool, self.answer, request)

    def _failure(self, exc: Exception) -> Answer:
        return self._error(unexpected_error(exc), ())

    async def run(self, host: str, port: int) -> None:
        """Serves until SIGTERM or SIGINT, then drains. OSError: the address cannot be bound."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(self.connection, host, port, reuse_address=True, backlog=1024)
        servers = [server]
        if self._secret is not None and host == "127.0.0.1" and sys.platform.startswith("linux"):
            servers.append(await self._open_channel())
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        logger.info("Listening at: http://%s:%d (amlemu direct server)", host, port)
        await stop.wait()
        logger.info("Stop signal received: finishing in-flight requests")
        self._stopping = True
        for listening in servers:
            listening.close()
        for connection in list(self._connections):
            connection.stop()  # idle keep-alive connections now, busy ones after their answer
        deadline = loop.time() + DRAIN_SECONDS
        while any(c.busy for c in self._connections) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0)  # the last answers' writes
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def _open_channel(self) -> asyncio.Server:
        """The gateway's channel: a Unix socket in Linux's abstract namespace (nothing on disk to clean up
        after a kill), under a random name, serving the same requests as the TCP port. Like the port,
        any local process could connect to it; like the port, it answers only requests carrying the
        replica secret. It saves the gateway and the replica the TCP stack's work on every request."""
        name = f"amlemu-replica-{secrets.token_hex(16)}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind("\0" + name)
        sock.listen(1024)
        self.channel = "@" + name
        return await asyncio.get_running_loop().create_unix_server(self.connection, sock=sock)


def serve_direct(host: str, port: int, threads: int) -> int:
    """Loads the built-in scorer (a StartupError exits 3), then serves it until a stop signal; returns the exit code.

    Raises:
        OSError: the address cannot be bound.
    """
    try:
        scorer, settings = load()
    except StartupError as exc:
        report_startup_failure(exc)
        return EXIT_STARTUP_FAILED
    server = DirectServer(scorer, settings, threads)
    announce_ready(scorer)
    try:
        import uvloop  # the replica's event loop, when its interpreter has it

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    run(server.run(host, port))
    return 0
