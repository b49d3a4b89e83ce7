"""``az ml`` groups amlemu does not emulate yet: each verb answers with a clear error."""

from __future__ import annotations

from emulator.errors import NotEmulated

GROUPS = {
    "compute": ("create", "show", "list", "start", "stop", "restart", "delete", "list-nodes"),
    "online-endpoint": ("create", "show", "list", "update", "delete", "invoke", "get-credentials",
                        "regenerate-keys"),
    "online-deployment": ("create", "show", "list", "update", "delete", "get-logs"),
}


def register(groups, common) -> None:
    for group_name, verbs in GROUPS.items():
        group = groups.add_parser(group_name, help=f"{group_name} (not emulated yet)").add_subparsers(
            dest="verb", metavar="<verb>")
        for verb in verbs:
            p = group.add_parser(verb, help="not emulated yet")
            common(p)
            p.add_argument("rest", nargs="*")
            p.add_argument("--file", "-f")
            p.add_argument("--name", "-n")

            def handler(args, _op=f"az ml {group_name} {verb}"):
                raise NotEmulated(_op)

            p.set_defaults(handler=handler)
