"""``amlemu studio``: the workspace in a browser (:mod:`emulator.studio`)."""

from __future__ import annotations

import argparse
import logging


def register(groups, common) -> None:
    studio = groups.add_parser(
        "studio",
        help="the workspace in a browser: jobs, metrics, models, endpoints, compute, as Azure ML studio shows them",
        description="Serve amlemu studio on 127.0.0.1 and print its URL. It reads the local workspace the CLI uses "
        "(-w/--workspace-name, AMLEMU_WORKSPACE, or 'default').",
    )
    studio.add_argument("--port", type=int, default=0, help="the port to listen on (default: a free one)")
    studio.add_argument("--open", action="store_true", help="open the studio in the default browser")
    studio.add_argument("-w", "--workspace-name", help="the local workspace (default: AMLEMU_WORKSPACE or 'default')")
    studio.set_defaults(run=_studio)


def _studio(args: argparse.Namespace) -> int:
    # only this command pays for these: the studio's modules import the engine's views (~0.3 s), webbrowser ~10 ms
    import webbrowser

    from backends import connect
    from emulator.studio.server import Studio

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = connect("local", workspace=args.workspace_name).store
    studio = Studio(store, args.port)
    studio.serve_forever(on_ready=webbrowser.open if args.open else None)
    return 0
