"""What the CLI's command groups share: verb registration.

A verb's parser records the backend method that carries it out (``<group>_<verb>``, see
:class:`backends.base.Verbs`); :func:`emulator.cli.main.main` resolves the backend and calls it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


class VerbParser(argparse.ArgumentParser):
    """A verb's parser: an argument it does not know is reported with this verb's usage (exit 2), as
    ``az`` does, not handed up to the top-level parser (whose usage names no verb)."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras


def verbs(groups, group: str, help_: str, common: Callable) -> Callable:
    """A function that adds ``amlemu <group> <verb>`` parsers with the common options.

    ``verb(name, help_, confirm=True)`` makes a verb ask ``az``'s "Are you sure" before it runs, unless
    ``-y/--yes`` is given (``az ml``'s ``confirmation=True`` commands: the deletes and detach).
    """
    sub = groups.add_parser(group, help=help_).add_subparsers(dest="verb", metavar="<verb>", parser_class=VerbParser)

    def verb(name: str, help_: str, *, confirm: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        common(p)
        p.set_defaults(verb_method=f"{group}_{name}".replace("-", "_"), confirmation=confirm)
        if confirm:
            p.add_argument("-y", "--yes", action="store_true", help="Do not prompt for confirmation.")
        return p

    return verb


def add_show_and_list(verb: Callable, kind: str, *, registry: bool = False) -> None:
    """``show`` and ``list``; with ``registry``, both take ``--registry-name`` (``az ml``'s registry assets)."""
    p = verb("show", f"show a {kind} version (the latest by default)")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-v", "--version")
    p.add_argument("-l", "--label")
    listing = verb("list", f"list {kind}s (every version of --name)")
    listing.add_argument("-n", "--name")
    for parser in (p, listing) if registry else ():
        parser.add_argument("--registry-name", help="a registry's assets (amlemu: azureml, the curated environments)")
