"""The studio served on 127.0.0.1: ``amlemu studio`` in the foreground, the tests and the benchmark in a thread.

Werkzeug's threaded server is enough for one person's browser (a page and its one poll a second); it binds the
loopback address only, since the studio can stop computes and holds the way to every endpoint's keys.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import TextIO

from werkzeug.serving import WSGIRequestHandler, make_server

from emulator import errors
from emulator.store import WorkspaceStore
from emulator.studio.app import create_app

HOST = "127.0.0.1"
log = logging.getLogger("amlemu.studio")


class _QuietLog(WSGIRequestHandler):
    """One line per request at DEBUG (the live polls would fill a terminal at INFO); no query strings."""

    def log_request(self, code="-", size="-"):
        log.debug("%s %s %s", self.command, self.path.split("?", 1)[0], code)


class Studio:
    """The studio of one workspace, on ``port`` (0: a free one)."""

    def __init__(self, store: WorkspaceStore, port: int = 0):
        self.app = create_app(store)
        try:
            self._server = make_server(HOST, port, self.app, threaded=True, request_handler=_QuietLog)
        except OSError as exc:
            raise errors.ValidationError(
                f"Cannot listen on {HOST}:{port}: {exc.strerror}. Pick another port with --port, or leave it out "
                "for a free one."
            ) from None
        self.port = self._server.port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def start(self) -> Studio:
        """Serve in a background thread (tests, benchmarks)."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="amlemu-studio", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> Studio:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def serve_forever(self, out: TextIO = sys.stdout, on_ready=None) -> None:
        """Say where, then serve until Ctrl-C or SIGTERM."""

        def on_signal(signum, frame):
            threading.Thread(target=self._server.shutdown, daemon=True).start()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        workspace = self.app.config["STUDIO_STORE"].name
        out.write(f"amlemu studio: workspace '{workspace}' at {self.url}\n(Ctrl-C stops it)\n")
        out.flush()
        if on_ready is not None:
            on_ready(self.url)
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()
            for s, handler in previous.items():
                signal.signal(s, handler)
