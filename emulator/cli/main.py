"""``amlemu``: Azure ML's ``az ml`` verbs, flags and YAML, against the local emulator.

Imports stay light at start-up (no azure-ai-ml, MLflow or scikit-learn) so
``amlemu --help`` and ``amlemu job create`` answer fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable

from emulator import __version__
from emulator.errors import EmulatorError, JobFailed


def _print(data: Any, output: str = "json") -> None:
    if output == "yaml":
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
    else:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-w", "--workspace-name", help="workspace (default: AMLEMU_WORKSPACE or 'default')")
    p.add_argument("-g", "--resource-group", help="accepted for az ml compatibility; ignored locally")
    p.add_argument("--subscription", help="accepted for az ml compatibility; ignored locally")
    p.add_argument("-o", "--output", choices=["json", "yaml", "none"], default="json")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def build_parser() -> argparse.ArgumentParser:
    from emulator.cli import compute, endpoint, environment, job, model, system

    parser = argparse.ArgumentParser(
        prog="amlemu", description="Azure ML on your machine: the `az ml` commands, emulated locally.")
    parser.add_argument("--version", action="version", version=f"amlemu {__version__}")
    groups = parser.add_subparsers(dest="group", metavar="<group>")
    for module in (job, model, environment, endpoint, compute, system):
        module.register(groups, _common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2 if args.group else 0  # a group without a verb is a usage error
    if getattr(args, "workspace_name", None):
        os.environ["AMLEMU_WORKSPACE"] = args.workspace_name
    try:
        result = handler(args)
    except JobFailed as exc:
        print(f"ERROR: {exc.message}", file=sys.stderr)
        return 1
    except EmulatorError as exc:
        if args.debug:
            raise
        print(f"ERROR: ({exc.code}) {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if result is not None and getattr(args, "output", "json") != "none":
        _print(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
