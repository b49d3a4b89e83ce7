"""``python -m emulator.serving``: run the scoring server of one replica.

Usage::

    python -m emulator.serving [--host 127.0.0.1] [--port 5001] [--threads 4] [--server auto]

``--server auto`` serves the built-in ONNX scorer with the direct server (asyncio and llhttp, see
``direct_server``) when the interpreter can run it, and a scoring script (or the built-in scorer
elsewhere) with granian if installed, else waitress.

Configuration comes from the environment, as for azureml-inference-server-http
(see ``settings``). Exit codes: 0 after SIGTERM/SIGINT (in-flight requests
finished); 3 when the replica cannot start (no usable model, the scoring script
fails to import or its init() raises, the port is taken), with the traceback and
a one-line summary on stderr; 2 for a bad command line.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
import time

from .errors import StartupError
from .settings import ServerSettings
from .wsgi_server import EXIT_STARTUP_FAILED, SERVERS, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator.serving", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5001, help="port to listen on (default 5001)")
    parser.add_argument("--threads", type=int, default=4, help="requests served in parallel (default 4)")
    parser.add_argument(
        "--server",
        choices=(*SERVERS, "direct"),
        default="auto",
        help="HTTP server: auto (the default) picks direct for the built-in ONNX scorer where it runs, else "
        "granian if installed, else waitress; direct serves the built-in scorer only",
    )
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    try:
        settings = ServerSettings.from_env()
    except StartupError as exc:
        print(f"amlemu scoring server failed to start: {exc}", file=sys.stderr, flush=True)
        return EXIT_STARTUP_FAILED
    _configure_logging(settings.log_level)
    builtin_scorer = settings.entry_script is None
    if args.server == "direct" and not builtin_scorer:
        parser.error("--server direct serves the built-in ONNX scorer only: use granian or waitress for a script")
    try:
        if args.server == "direct" or (args.server == "auto" and builtin_scorer and _direct_available()):
            from .direct_server import serve_direct  # flask, onnxruntime and httptools: on first use

            return serve_direct(args.host, args.port, args.threads)
        from .server import load_app  # on first use (after the settings check): flask costs ~0.1 s at start

        return serve(load_app, args.host, args.port, args.threads, args.server)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        print(f"amlemu scoring server cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr, flush=True)
        return EXIT_STARTUP_FAILED


def _direct_available() -> bool:
    """Python 3.11+ and httptools: what the direct server needs (a user's older environment has granian)."""
    return sys.version_info >= (3, 11) and importlib.util.find_spec("httptools") is not None


def _configure_logging(level: str) -> None:
    """Server and script logs to stderr, in azureml-inference-server-http's format (UTC times)."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter("%(asctime)s %(levelname).1s [%(process)d] %(name)s - %(message)s")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.addHandler(handler)
    known = isinstance(logging.getLevelName(level), int)  # getLevelNamesMapping is 3.11+: replicas may run 3.8+
    root.setLevel(level if known else "INFO")
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" under load is expected


if __name__ == "__main__":
    sys.exit(main())
