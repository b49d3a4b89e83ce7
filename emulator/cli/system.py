"""``amlemu system status|stop|start|prune``: what amlemu runs in the background, and cleanup.

Endpoint hosts (one process per online endpoint, with its replicas) are the only
long-lived processes amlemu starts; jobs have their own supervisors that end with
the job. ``status`` lists the hosts, ``stop`` ends them (the next call that needs an
endpoint brings it back on the same URI), ``start`` brings them all up now. These act
on this machine's amlemu state: the local backend only.
"""

from __future__ import annotations

from emulator.cli.common import verbs


def register(groups, common) -> None:
    verb = verbs(groups, "system", "housekeeping of what amlemu created (local backend)", common)
    verb("status", "list the endpoint host processes running for this workspace")
    verb("stop", "stop every endpoint host of this workspace (endpoints return on next use)")
    verb("start", "bring every endpoint of this workspace up now (after a reboot)")
    p = verb(
        "prune",
        "remove stopped amlemu containers, unused amlemu images, old virtualenvs "
        "and staging folders left by killed processes (in this AMLEMU_HOME)",
    )
    p.add_argument("--all", action="store_true", help="every unused amlemu image, not only dangling ones")
    p.add_argument("--days", type=float, default=30.0, help="virtualenvs unused this many days (default 30)")
