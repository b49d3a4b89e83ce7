"""``amlemu component create|show|list``: the parsers (``az ml component``'s flags); the backend's verbs do the work."""

from __future__ import annotations

from emulator.cli.common import add_show_and_list, verbs


def register(groups, common) -> None:
    verb = verbs(groups, "component", "register and fetch command components", common)

    p = verb("create", "register a command component version from a YAML file")
    p.add_argument("-f", "--file", required=True)
    p.add_argument("-n", "--name", help="the component's name, over the file's")
    p.add_argument("-v", "--version", help="the version, over the file's (the next number when neither gives one)")
    p.add_argument("--set", action="append", metavar="PATH=VALUE")
    add_show_and_list(verb, "component")
