"""The command job kind: validate a command job, resolve its compute and environment, record it.

Every other kind's children (sweep trials, pipeline steps, AutoML trials) are command jobs
submitted here, which is why this kind lives in the jobs concept rather than above it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator import config
from emulator.compute import service as compute
from emulator.environments import registry as environments
from emulator.jobs.kind import JobKind
from emulator.jobs.spec import COMMAND_JOB_FIELDS, fill_output_paths, normalize_command_job
from emulator.jobs.submission import name_job, record_and_start, resolve_compute, snapshot_code
from emulator.jobs.views import command_view
from emulator.runtime.base import check_runtime
from emulator.store import WorkspaceStore

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import CommandJobSpec, JobRecord


def submit_command(
    store: WorkspaceStore,
    data: dict[str, Any],
    base_path: Path,
    parent_job_name: str | None = None,
    fork: bool = False,
    slot_gated: bool = False,
) -> JobRecord[CommandJobSpec]:
    """Validate a command job, record it, snapshot its code and start its supervisor.

    Everything is checked before the first write: bad input leaves nothing behind. A parent
    job's orchestrator submits its children here with ``fork``: the supervisor is forked from
    the orchestrator (:mod:`emulator.jobs.forking`); with ``slot_gated`` the child is prepared,
    then waits for its parent to open its slot (:func:`emulator.jobs.supervisor.open_trial_slot`).
    """
    spec = normalize_command_job(data, Path(base_path), store)
    spec["compute"] = resolve_compute(store, spec["compute"])
    compute.placement(store, spec["compute"], spec["resources"]["instance_count"])
    spec["environment_resolved"] = environments.resolve(store, spec["environment"], Path(base_path))
    spec["runtime"] = check_runtime(config.runtime_name())
    if slot_gated:
        spec["slot_gated"] = True
    name_job(spec)
    fill_output_paths(spec)

    def fill(staging: Path) -> None:
        snapshot_code(spec["code"], staging / "snapshot")
        (staging / "outputs").mkdir()

    return record_and_start(store, spec, "command", fill, parent_job_name, fork=fork)


KIND = JobKind(
    type="command",
    submit=submit_command,
    view=command_view,
    sdk="backends.command_entities",
    fast_fields=frozenset(COMMAND_JOB_FIELDS),
)
