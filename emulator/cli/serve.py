"""``amlemu serve`` and ``amlemu env``: the REST front door for the real Azure ML SDK (:mod:`emulator.frontdoor`)."""

from __future__ import annotations

import argparse
import logging
import sys

from emulator.frontdoor import environment, settings


def register(groups, common) -> None:
    serve = groups.add_parser(
        "serve",
        help="run the REST front door: unmodified MLClient/az/mlflow code talks to amlemu",
        description="Serve the Azure ML REST API on 127.0.0.1 (cloud metadata, managed identity, control plane over "
        'HTTPS, run history, MLflow, blob storage). Then `eval "$(amlemu env)"` in the shell that runs the SDK.',
    )
    serve.add_argument(
        "--port", type=int, help=f"first of three ports (default {settings.DEFAULT_PORT}, or AMLEMU_PORT)"
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; anything else exposes the workspace to the network)",
    )
    serve.add_argument(
        "--no-auto-create",
        action="store_true",
        help="answer 404 for a workspace that does not exist yet, instead of creating it on first use",
    )
    serve.set_defaults(run=_serve)
    env = groups.add_parser(
        "env",
        help="print the variables that point the Azure ML SDK, az and mlflow at `amlemu serve`",
        description='Print the exports for the front door: eval "$(amlemu env)", or '
        'amlemu env --format github >> "$GITHUB_ENV" in CI.',
    )
    env.add_argument("--port", type=int, help="the port `amlemu serve` was given (default: its default)")
    env.add_argument(
        "--format", choices=environment.FORMATS, default="bash", help="bash (default), powershell, dotenv, github"
    )
    env.set_defaults(run=_env)


def _serve(args: argparse.Namespace) -> int:
    from emulator.frontdoor.server import Server

    if args.host not in ("127.0.0.1", "::1", "localhost"):
        print(
            f"WARNING: --host {args.host}: the front door will answer beyond this machine. Anyone who can reach it "
            "and read a token from its identity endpoint can run code here. Use 127.0.0.1 unless you mean it.",
            file=sys.stderr,
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host = "127.0.0.1" if args.host == "localhost" else args.host
    Server(settings.FrontDoor.at(args.port, host=host, auto_create=not args.no_auto_create)).serve_forever()
    return 0


def _env(args: argparse.Namespace) -> int:
    sys.stdout.write(environment.render(environment.variables(settings.FrontDoor.at(args.port)), args.format))
    return 0
