"""``amlemu serve``: the three listeners of the front door, started together and stopped together."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import TextIO

from werkzeug.serving import WSGIRequestHandler, make_server

from emulator import errors
from emulator.frontdoor import certificates, environment
from emulator.frontdoor.app import create_app
from emulator.frontdoor.proxy import BlobProxy
from emulator.frontdoor.settings import FrontDoor

log = logging.getLogger("amlemu.frontdoor")


class _RequestLog(WSGIRequestHandler):
    """Werkzeug's request log without query strings: SAS signatures and tokens travel there, never into a log."""

    def make_environ(self):
        environ = super().make_environ()
        # werkzeug leaves out header names with '_' (ambiguous as CGI variables); blob metadata names carry them
        # (azure-ai-ml's x-ms-meta-upload_status), so the blob service reads the headers as sent
        environ["amlemu.raw_headers"] = tuple(self.headers.items())
        return environ

    def log_request(self, code="-", size="-") -> None:
        path = self.path.split("?", 1)[0]
        log.info('%s "%s %s" %s', self.address_string(), self.command, path, code)


class Server:
    """The running front door; ``stop()`` (or Ctrl-C, or SIGTERM under ``serve_forever``) ends all of it."""

    def __init__(self, front: FrontDoor):
        self.front = front
        self.certs = certificates.ensure()
        app = create_app(front)
        tls = certificates.server_context(self.certs)
        try:
            self._servers = [
                make_server(front.host, front.port, app, threaded=True, request_handler=_RequestLog),
                make_server(
                    front.host, front.tls_port, app, threaded=True, request_handler=_RequestLog, ssl_context=tls
                ),
            ]
        except OSError as exc:
            raise errors.ValidationError(
                f"Cannot listen on {front.host} ports {front.port}-{front.proxy_port}: {exc.strerror}. "
                "Another `amlemu serve` may be running; stop it, or pick other ports with --port."
            ) from None
        self._proxy = BlobProxy(front)
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()

    def start(self) -> Server:
        try:
            self._proxy.start()
        except OSError as exc:
            for s in self._servers:
                s.server_close()
            raise errors.ValidationError(
                f"Cannot listen on {self.front.host}:{self.front.proxy_port} (the blob proxy): {exc.strerror}. "
                "Pick other ports with --port."
            ) from None
        for s in self._servers:
            t = threading.Thread(target=s.serve_forever, name=f"amlemu-serve-{s.port}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        for s in self._servers:
            s.shutdown()
            s.server_close()
        self._proxy.stop()

    def serve_forever(self, out: TextIO = sys.stdout) -> None:
        """Start, say where and what to export, and run until Ctrl-C or SIGTERM."""

        def on_signal(signum, frame):
            threading.Thread(target=self.stop, daemon=True).start()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        self.start()
        out.write(banner(self.front, self.certs))
        out.flush()
        try:
            while not self._stopped.wait(0.5):
                pass
        finally:
            self.stop()
            for s, handler in previous.items():
                signal.signal(s, handler)
            out.write("amlemu serve: stopped\n")
            out.flush()


def banner(front: FrontDoor, certs: certificates.Certificates) -> str:
    lines = [
        f"amlemu serve: listening on {front.host}",
        f"  cloud metadata, managed identity, MLflow  {front.http_url}",
        f"  Azure ML control plane, run history, blob {front.https_url}",
        f"  blob proxy (HTTPS_PROXY)                  {front.proxy_url}",
        f"  CA certificate                            {certs.ca}",
        "Point the Azure ML SDK, az and mlflow here with:",
        f'  eval "$(amlemu env{"" if front.port == FrontDoor().port else f" --port {front.port}"})"',
        "or export:",
    ]
    shown = {**environment.variables(front, certs), "IDENTITY_HEADER": "<secret: from `amlemu env`>"}
    lines += [f"  {line}" for line in environment.render(shown, "bash").splitlines()]
    lines.append("Ctrl-C (or SIGTERM) stops it.")
    return "\n".join(lines) + "\n"
