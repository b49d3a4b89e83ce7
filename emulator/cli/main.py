"""``amlemu``: Azure ML's ``az ml`` verbs, flags and YAML, on the backend ``connect()`` picks.

The parsers here hold the ``az ml`` vocabulary; each verb is carried out by the chosen
backend's ``verbs`` (:class:`backends.base.Verbs`): the local emulator by default, the
Azure ML workspace through the real ``MLClient`` with ``AMLEMU_BACKEND=azure``. Imports stay
light at start-up (no azure-ai-ml, MLflow or scikit-learn) so ``amlemu --help`` and, on
the local backend, ``amlemu job create`` answer fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from emulator import __version__
from emulator.cli import compute, data, endpoint, environment, job, model, system
from emulator.errors import EmulatorError, JobFailed


def _print(data: Any, output: str = "json") -> None:
    if output == "yaml":
        import yaml  # only -o yaml needs PyYAML (~20 ms at start)

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
    else:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-w", "--workspace-name", help="workspace (default: AMLEMU_WORKSPACE or 'default'; on azure: config.json's)"
    )
    p.add_argument("-g", "--resource-group", help="the workspace's resource group on azure; ignored locally")
    p.add_argument("--subscription", help="the workspace's subscription on azure; ignored locally")
    p.add_argument("-o", "--output", choices=["json", "yaml", "none"], default="json")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amlemu",
        description="Azure ML on your machine: the `az ml` commands, emulated locally "
        "(or on Azure ML with AMLEMU_BACKEND=azure).",
    )
    parser.add_argument("--version", action="version", version=f"amlemu {__version__}")
    groups = parser.add_subparsers(dest="group", metavar="<group>")
    for module in (job, model, environment, endpoint, compute, system, data):
        module.register(groups, _common)
    return parser


def _scope(args: argparse.Namespace) -> dict[str, str]:
    """The workspace flags given, by ``MLClient``'s names (every backend takes them)."""
    given = {
        "workspace_name": args.workspace_name,
        "resource_group_name": args.resource_group,
        "subscription_id": args.subscription,
    }
    return {key: value for key, value in given.items() if value}


def _service_error(exc: BaseException) -> str | None:
    """One line for an error raised by azure-core or azure-ai-ml (the Azure backend), else None."""
    classes = type(exc).__mro__
    if not any(c.__module__.startswith("azure.") for c in classes):
        return None
    text = " ".join(str(exc).split()) or type(exc).__name__
    if any(c.__name__ == "ClientAuthenticationError" for c in classes):
        text += (
            " Sign in for DefaultAzureCredential with `az login` (or set AZURE_CLIENT_ID, AZURE_TENANT_ID "
            "and AZURE_CLIENT_SECRET), or unset AMLEMU_BACKEND to use the local emulator."
        )
    return f"({type(exc).__name__}) {text}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    method: str | None = getattr(args, "verb_method", None)
    if method is None:
        parser.print_help()
        return 2 if args.group else 0  # a group without a verb is a usage error
    if getattr(args, "workspace_name", None):
        os.environ["AMLEMU_WORKSPACE"] = args.workspace_name
    from backends import connect  # the seam: the same rule (flag, environment, config file, local) as the Python client

    try:
        result = getattr(connect(**_scope(args)).verbs, method)(args)
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
    except Exception as exc:  # the Azure backend's own errors: one line, as az ml prints them
        message = None if args.debug else _service_error(exc)
        if message is None:
            raise
        print(f"ERROR: {message}", file=sys.stderr)
        return 1
    if result is not None and getattr(args, "output", "json") != "none":
        _print(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
