"""``python -m emulator.serving``: run the scoring server of one replica.

Usage::

    python -m emulator.serving [--host 127.0.0.1] [--port 5001] [--threads 4] [--server auto]

Configuration comes from the environment, as for azureml-inference-server-http
(see ``settings``). Exit codes: 0 after SIGTERM/SIGINT (in-flight requests
finished); 3 when the replica cannot start (no usable model, the scoring script
fails to import or its init() raises, the port is taken), with the traceback and
a one-line summary on stderr; 2 for a bad command line.
"""

from __future__ import annotations

import argparse
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
        choices=SERVERS,
        default="auto",
        help="HTTP server: granian if installed (auto, the default), else waitress",
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

    from .server import load_app  # on first use (after the settings check): flask costs ~0.1 s at start

    try:
        return serve(load_app, args.host, args.port, args.threads, args.server)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        print(f"amlemu scoring server cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr, flush=True)
        return EXIT_STARTUP_FAILED


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
