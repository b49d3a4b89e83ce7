"""What the CLI's handlers still take from here: ids and timestamps, re-exported from :mod:`emulator.arm`.

Each concept renders itself: jobs in :mod:`emulator.jobs.views` and each kind's ``views``
(picked by :func:`emulator.kinds.view`), models, environments, computes and endpoints in theirs.
"""

from __future__ import annotations

from emulator import arm
from emulator.arm import SCHEMAS, iso  # noqa: F401  (re-exported until the views move)
from emulator.store import WorkspaceStore


def arm_id(store: WorkspaceStore, tail: str) -> str:
    return arm.arm_id(store.name, tail)


_context = arm.creation_context
