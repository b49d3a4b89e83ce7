"""``amlemu system prune``: clean up amlemu's own containers, images and virtualenvs."""

from __future__ import annotations

from emulator.cli.common import verbs


def prune(args):
    from emulator.runtime.prune import prune as run_prune

    return run_prune(all_images=args.all, venv_days=args.days)


def register(groups, common) -> None:
    verb = verbs(groups, "system", "housekeeping of what amlemu created", common)
    p = verb("prune", prune, "remove stopped amlemu containers, unused amlemu images and old virtualenvs")
    p.add_argument("--all", action="store_true", help="every unused amlemu image, not only dangling ones")
    p.add_argument("--days", type=float, default=30.0, help="virtualenvs unused this many days (default 30)")
