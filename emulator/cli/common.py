"""What the CLI's command groups share: verb registration.

A verb's parser records the backend method that carries it out (``<group>_<verb>``, see
:class:`backends.base.Verbs`); :func:`emulator.cli.main.main` resolves the backend and calls it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def verbs(groups, group: str, help_: str, common: Callable) -> Callable:
    """A function that adds ``amlemu <group> <verb>`` parsers with the common options."""
    sub = groups.add_parser(group, help=help_).add_subparsers(dest="verb", metavar="<verb>")

    def verb(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        common(p)
        p.set_defaults(verb_method=f"{group}_{name}".replace("-", "_"))
        return p

    return verb


def add_show_and_list(verb: Callable, kind: str) -> None:
    p = verb("show", f"show a {kind} version (the latest by default)")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-v", "--version")
    p.add_argument("-l", "--label")
    verb("list", f"list {kind}s (every version of --name)").add_argument("-n", "--name")
