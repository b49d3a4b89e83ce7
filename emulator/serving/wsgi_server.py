"""The HTTP server under the app: granian when installed, else waitress.

Both speak HTTP/1.1 with keep-alive and stop gracefully on SIGTERM or SIGINT:
they stop accepting connections, let in-flight requests finish and their
answers reach the client, close idle keep-alive connections, and exit 0.

* granian (a Rust HTTP server; about twice waitress's throughput on a small
  model) runs like gunicorn under azureml-inference-server-http: a supervising
  process holds the port and one worker process loads the app (the script's
  ``init()``) and serves it on ``threads`` Python threads. Until the worker is
  ready, connections wait in the listen queue.
* waitress loads the app in-process before it binds the port.

Either way a start-up failure exits 3.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from functools import partial

from .errors import StartupError

logger = logging.getLogger("azmlinfsrv")

SERVERS = ("auto", "granian", "waitress")
EXIT_STARTUP_FAILED = 3  # what gunicorn and azureml-inference-server-http use for a boot error
DRAIN_SECONDS = 5  # how long in-flight requests get to finish after a stop signal
POLL_SECONDS = 0.2  # how soon waitress notices a stop signal

AppLoader = Callable[[], Callable]


def pick_server(name: str) -> str:
    """``auto`` -> granian if it is installed, else waitress."""
    if name == "auto":
        return "granian" if importlib.util.find_spec("granian") else "waitress"
    return name


def serve(load_app: AppLoader, host: str, port: int, threads: int, server: str = "auto") -> int:
    """Serves the app ``load_app`` builds until a stop signal; returns the exit code.

    Args:
        load_app: builds the WSGI app; raises StartupError when the replica cannot serve.
            It must be a module-level function (granian may start its worker with spawn).
        host: the address to bind.
        port: the port to listen on.
        threads: requests served in parallel.
        server: ``granian``, ``waitress`` or ``auto``.

    Raises:
        OSError: the address cannot be bound.
    """
    if pick_server(server) == "granian":
        return _serve_granian(load_app, host, port, threads)
    return _serve_waitress(load_app, host, port, threads)


# -- granian --------------------------------------------------------------------------------------------
def _serve_granian(load_app: AppLoader, host: str, port: int, threads: int) -> int:
    # only the granian server needs granian (~60 ms at start)
    from granian.constants import HTTPModes, Interfaces
    from granian.server import Server

    failed = multiprocessing.Value("b", 0, lock=False)
    server = Server(
        target="emulator.serving",
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=1,
        blocking_threads=threads,
        http=HTTPModes.http1,
        websockets=False,
        workers_kill_timeout=DRAIN_SECONDS,
    )
    try:
        server.serve(target_loader=partial(_load_in_worker, load_app, failed), wrap_loader=False)
    except SystemExit as exc:  # granian exits 1 when its worker died
        return EXIT_STARTUP_FAILED if failed.value else (exc.code if isinstance(exc.code, int) else 1)
    except RuntimeError as exc:  # granian's bind error ("Address already in use (os error 98)")
        raise OSError(str(exc)) from None
    return 0


def _load_in_worker(load_app: AppLoader, failed) -> Callable:
    _die_with_parent()
    try:
        return load_app()
    except StartupError as exc:
        report_startup_failure(exc)
        failed.value = 1
        os._exit(EXIT_STARTUP_FAILED)


def _die_with_parent() -> None:
    """A worker whose supervisor is killed gets SIGTERM instead of holding the port as an orphan."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (AttributeError, OSError):  # a libc without prctl: the supervisor's own shutdown still stops us
        return
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


# -- waitress -------------------------------------------------------------------------------------------
def _serve_waitress(load_app: AppLoader, host: str, port: int, threads: int) -> int:
    from waitress import create_server, wasyncore  # only the waitress server needs waitress (~25 ms at start)

    try:
        app = load_app()
    except StartupError as exc:
        report_startup_failure(exc)
        return EXIT_STARTUP_FAILED
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = create_server(app, host=host, port=port, threads=threads, ident="amlemu", connection_limit=1000)
    logger.info("Listening at: http://%s:%d (waitress, %d threads)", host, port, threads)
    while not stop.is_set():
        wasyncore.loop(timeout=POLL_SECONDS, map=server._map, count=1)
    logger.info("Stop signal received: finishing in-flight requests")
    _drain_waitress(server, wasyncore)
    return 0


def _drain_waitress(server, wasyncore) -> None:
    server.accepting = False
    server.del_channel()
    server.socket.close()
    deadline = time.monotonic() + DRAIN_SECONDS
    while time.monotonic() < deadline:
        busy = False
        for channel in list(server.active_channels.values()):
            if channel.requests or channel.total_outbufs_len:
                busy = True
            else:
                channel.will_close = True  # an idle keep-alive connection: close it
        if not busy and not server.active_channels:
            break
        wasyncore.loop(timeout=0.05, map=server._map, count=1)
    else:
        logger.warning(
            "%d connection(s) still busy after %d s; closing them", len(server.active_channels), DRAIN_SECONDS
        )
    server.task_dispatcher.shutdown(timeout=1)


def report_startup_failure(exc: StartupError) -> None:
    print(f"amlemu scoring server failed to start: {exc}", file=sys.stderr, flush=True)
