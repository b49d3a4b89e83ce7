"""Whether an active job's owning process (supervisor or orchestrator) still lives.

Low enough for the compute scheduler (:mod:`emulator.compute.nodes`) to ask without
importing job submission.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from emulator.runtime import proctree
from emulator.store.db import ACTIVE

#: a job still without a supervisor this long after submission was lost at submit time
UNSTARTED_GRACE_S = 60.0


def lost_reason(job: Mapping[str, Any]) -> str | None:
    """Why an active job is lost (its supervisor is gone), or None while it is not."""
    if job["status"] not in ACTIVE:
        return None
    if job["pid"]:
        if proctree.is_alive(job["pid"], job["pid_start"]):
            return None
        return (
            f"The job's supervisor process (pid {job['pid']}) ended unexpectedly while the job "
            f"was {job['status']}; the job was lost. Submit it again."
        )
    if time.time() - job["created_at"] > UNSTARTED_GRACE_S:
        return "The job was recorded but its supervisor never started; submit it again."
    return None
