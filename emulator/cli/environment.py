"""``amlemu environment create|show|list|build``: the parsers; the backend's verbs do the work."""

from __future__ import annotations

from emulator.cli.common import add_show_and_list, verbs


def register(groups, common) -> None:
    verb = verbs(groups, "environment", "register environments", common)

    p = verb("create", "register an environment version")
    p.add_argument("-f", "--file")
    p.add_argument("-n", "--name")
    p.add_argument("-v", "--version")
    p.add_argument("-i", "--image")
    p.add_argument("-c", "--conda-file")
    p.add_argument("-b", "--build-context")
    p.add_argument("-d", "--dockerfile-path")
    p.add_argument("--description")
    p.add_argument("--set", action="append", metavar="PATH=VALUE")
    add_show_and_list(verb, "environment", registry=True)

    p = verb("build", "build the environment's image (docker runtime) or virtualenv (process) now (local backend)")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-v", "--version", help="default: the latest version")
