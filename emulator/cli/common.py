"""What the CLI's command groups share: verb registration, asset spec checks, show and list."""

from __future__ import annotations

import argparse
from typing import Callable

from emulator.errors import ValidationError
from emulator.store import open_store


def verbs(groups, group: str, help_: str, common: Callable) -> Callable:
    """A function that adds ``amlemu <group> <verb>`` parsers with the common options."""
    sub = groups.add_parser(group, help=help_).add_subparsers(dest="verb", metavar="<verb>")

    def verb(name: str, handler: Callable, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        common(p)
        p.set_defaults(handler=handler)
        return p

    return verb


def check_fields(kind: str, data: dict, allowed: set[str], args) -> None:
    """Unknown fields: the SDK's own message when a file was given, else ours."""
    unknown = set(data) - allowed
    if unknown and args.file:
        from emulator.cli.sdk import sdk_load

        sdk_load(kind, args.file, args.set)  # raises with the SDK's own message
    if unknown:
        raise ValidationError(f"Unknown {kind} field(s): {', '.join(sorted(unknown))}.")


def asset_handlers(kind: str, view: Callable) -> tuple[Callable, Callable]:
    """``show`` (a version, ``--label latest`` or the newest) and ``list`` for a versioned asset."""
    def show(args):
        store = open_store()
        if args.label not in (None, "latest"):
            raise ValidationError(f"Label '{args.label}' is not supported locally; use --label latest or --version.")
        return view(store, store.get_asset(kind, args.name, args.version))

    def list_(args):
        store = open_store()
        return [view(store, record) for record in store.list_assets(kind, args.name)]

    return show, list_


def add_show_and_list(verb: Callable, kind: str, view: Callable) -> None:
    show, list_ = asset_handlers(kind, view)
    p = verb("show", show, f"show a {kind} version (the latest by default)")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-v", "--version")
    p.add_argument("-l", "--label")
    verb("list", list_, f"list {kind}s (every version of --name)").add_argument("-n", "--name")
