"""``amlemu``: Azure ML's ``az ml`` verbs, flags and YAML, on the backend ``connect()`` picks.

The parsers here hold the ``az ml`` vocabulary; each verb is carried out by the chosen
backend's ``verbs`` (:class:`backends.base.Verbs`): the local emulator by default, the
Azure ML workspace through the real ``MLClient`` with ``AMLEMU_BACKEND=azure``. Imports stay
light at start-up (no azure-ai-ml, MLflow or scikit-learn) so ``amlemu --help`` and, on
the local backend, ``amlemu job create`` answer fast.

Every verb takes ``az``'s global arguments (:mod:`emulator.cli.output`): ``--query`` and
``-o/--output`` shape what is printed, ``--only-show-errors``/``--verbose``/``--debug`` set the
logging levels, and ``-g``/``-w``/``--subscription`` name the workspace (on the local backend,
``-g`` and ``--subscription`` must be the local ones). Deletes ask ``az``'s "Are you sure" unless ``--yes``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

from emulator import __version__
from emulator.cli import (
    component,
    compute,
    contract,
    data,
    endpoint,
    environment,
    job,
    model,
    output,
    serve,
    studio,
    system,
)
from emulator.errors import EmulatorError, JobFailed

logger = logging.getLogger("amlemu.cli")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-w", "--workspace-name", help="workspace (default: AMLEMU_WORKSPACE or 'default'; on azure: config.json's)"
    )
    p.add_argument(
        "-g", "--resource-group", help="the workspace's resource group on azure; locally, checked against the local one"
    )
    output.add_global_arguments(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amlemu",
        description="Azure ML on your machine: the `az ml` commands, emulated locally "
        "(or on Azure ML with AMLEMU_BACKEND=azure).",
    )
    parser.add_argument("--version", action="version", version=f"amlemu {__version__}")
    groups = parser.add_subparsers(dest="group", metavar="<group>")
    for module in (job, model, component, environment, endpoint, compute, system, data, serve, studio, contract):
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


def _local_scope_error(args: argparse.Namespace) -> EmulatorError | None:
    """On the local backend, a -g or --subscription that is not the local one (every local workspace is in
    resource group ``amlemu`` of the all-zero subscription): the error naming them, else None."""
    from emulator import config

    where = (
        f"amlemu's local workspaces are all in resource group '{config.RESOURCE_GROUP}' of subscription "
        f"{config.SUBSCRIPTION_ID}"
    )
    fix = (
        "pick a workspace with -w/--workspace-name (or AMLEMU_WORKSPACE), or set AMLEMU_BACKEND=azure to use "
        "an Azure ML workspace."
    )
    group, subscription = args.resource_group, args.subscription
    if group and group.lower() != config.RESOURCE_GROUP.lower():
        return EmulatorError(
            f"Resource group '{group}' could not be found: {where}. Leave out -g/--resource-group "
            f"(or pass -g {config.RESOURCE_GROUP}); {fix}",
            code="ResourceGroupNotFound",
            status=404,
        )
    if subscription and subscription.lower() != config.SUBSCRIPTION_ID:
        return EmulatorError(
            f"Subscription '{subscription}' could not be found: {where}. Leave out --subscription "
            f"(or pass --subscription {config.SUBSCRIPTION_ID}); {fix}",
            code="SubscriptionNotFound",
            status=404,
        )
    return None


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
    started = time.perf_counter()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # only a command that hands its arguments to another program (contract: pytest) takes unknown ones
        if not hasattr(args, "passthrough"):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.passthrough = extra
    if getattr(args, "run", None) is not None:  # serve, env, studio: not az ml verbs
        try:
            return args.run(args)
        except EmulatorError as exc:
            print(f"ERROR: ({exc.code}) {exc.message}", file=sys.stderr)
            return 1
    method: str | None = getattr(args, "verb_method", None)
    if method is None:
        parser.print_help()
        return 2 if args.group else 0  # a group without a verb is a usage error
    try:
        output.configure_logging(debug=args.debug, verbose=args.verbose, only_show_errors=args.only_show_errors)
    except output.OutputError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    logger.debug("Command arguments: %s", sys.argv[1:] if argv is None else argv)
    if args.confirmation and not args.yes and not output.user_confirmed():
        logger.error("Operation cancelled.")
        return 1
    if args.workspace_name:
        os.environ["AMLEMU_WORKSPACE"] = args.workspace_name
    from backends import connect  # the seam: the same rule (flag, environment, config file, local) as the Python client
    from backends.registry import backend_name

    invoked = time.perf_counter()
    try:
        error = _local_scope_error(args) if backend_name() == "local" else None
        if error is not None:
            raise error
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
    code = _show(result, args, output.TABLE_COLUMNS.get(method))
    now = time.perf_counter()
    logger.info(
        "Command ran in %.3f seconds (init: %.3f, invoke: %.3f)", now - started, invoked - started, now - invoked
    )
    return code


def _show(result, args: argparse.Namespace, table) -> int:
    """The result through --query, then -o's formatter, as az prints it (a null result prints nothing)."""
    if result is None:
        return 0
    try:
        result = json.loads(json.dumps(result, default=str))  # plain JSON types, as az's results are
        if args.query is not None:
            result = output.apply_query(result, args.query)
        if result is None:
            return 0
        text = output.render(result, args.output, query_active=args.query is not None, table=table)
    except output.OutputError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `amlemu ... | head`: the reader is gone, as az ignores it
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
