"""Sweep job submission: validate, snapshot the trial's code, record, start the orchestrator.

The registry (:mod:`emulator.kinds`) hands ``type: sweep`` specs here. The sweep is recorded as a
parent job (type ``sweep``) whose detached orchestrator (:mod:`emulator.sweeps.orchestrator`)
is started like a command job's supervisor, so reads notice a lost orchestrator and ``cancel``
reaches it. The trial's code is snapshotted once, at submission, as Azure ML does; every trial
copies that snapshot.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator import config
from emulator.environments import registry as environments
from emulator.jobs import submission
from emulator.runtime.base import check_runtime
from emulator.store import WorkspaceStore
from emulator.sweeps.spec import normalize_sweep_job

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import JobRecord, SweepJobSpec

ORCHESTRATOR = "emulator.sweeps.orchestrator"


def submit_sweep(store: WorkspaceStore, data: dict[str, Any], base_path: Path) -> JobRecord[SweepJobSpec]:
    """Validate a sweep job, record it and start its orchestrator; everything is checked first."""
    spec = normalize_sweep_job(data, Path(base_path), store)
    spec["compute"] = submission.resolve_compute(store, spec["compute"])
    environments.resolve(store, spec["trial"]["environment"], Path(base_path))  # fails now, not in every trial
    check_runtime(config.runtime_name())
    name = submission.name_job(spec)
    spec["base_path"] = str(Path(base_path).resolve())  # trials resolve inline environments' files from it

    def fill(staging: Path) -> None:
        code = spec["trial"]["code"]
        if code:  # the trials' code is snapshotted once, at submit
            submission.snapshot_code(code, staging / "snapshot")
            spec["trial"]["source_code"] = code
            spec["trial"]["code"] = str(store.job_dir(name) / "snapshot")

    return submission.record_and_start(store, spec, "sweep", fill, orchestrator=ORCHESTRATOR)
