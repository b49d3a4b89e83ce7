"""Compute instances: one node with its own persistent home folder and a life cycle.

States move ``Creating -> Running``, ``Running -> Stopping -> Stopped``,
``Stopped -> Starting -> Running``, ``Running -> Restarting -> Running``; each move
is recorded (``state_history``) and the last verb is ``last_operation``, as Azure
shows it. Locally every move completes at once. A running instance runs one job at a time
(the others wait ``Queued``), or, with the setting ``AMLEMU_INSTANCE_CONCURRENT_JOBS`` (a number,
or ``cores``: one job per vCPU of its size, Azure's rule), that many; a stopped one runs none.
The count is taken when the instance is created, started or restarted (``concurrent_jobs`` in
``compute show``); each concurrent job holds one of its job slots (:mod:`emulator.compute.nodes`).
The home folder (``<workspace>/computes/<name>/home``) outlives stop and start and
is ``HOME`` for the instance's jobs (mounted at the same path on the docker runtime).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator import config, naming
from emulator.compute import nodes, sizes
from emulator.errors import ResourceExists, ValidationError
from emulator.store import WorkspaceStore

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import ComputeRecord

KIND, V = "compute", "1"
FIELDS = {
    "$schema",
    "name",
    "type",
    "description",
    "size",
    "location",
    "tags",
    "identity",
    "ssh_public_access_enabled",
    "ssh_settings",
    "network_settings",
    "create_on_behalf_of",
    "schedules",
    "idle_time_before_shutdown",
    "idle_time_before_shutdown_minutes",
    "setup_scripts",
    "enable_node_public_ip",
    "custom_applications",
    "enable_sso",
    "enable_root_access",
    "release_quota_on_stop",
    "enable_os_patching",
}
# verb: (state it needs, state while it runs, state after it, operation name)
VERBS = {
    "start": ("Stopped", "Starting", "Running", "Start"),
    "stop": ("Running", "Stopping", "Stopped", "Stop"),
    "restart": ("Running", "Restarting", "Running", "Restart"),
}


def home_dir(store: WorkspaceStore, name: str) -> Path:
    return naming.confined_join(store.root, "computes", name, "home")


def concurrent_jobs(size: sizes.VmSize) -> int:
    """How many jobs an instance of ``size`` runs at once: AMLEMU_INSTANCE_CONCURRENT_JOBS (default 1)."""
    value = (config.setting("instance_concurrent_jobs") or "1").strip().lower()
    if value == "cores":
        return size.cores
    if not value.isdigit() or int(value) < 1:
        raise ValidationError(
            f"AMLEMU_INSTANCE_CONCURRENT_JOBS is {value!r}; set it to a whole number of at least 1 "
            "(1 by default: one job at a time) or to 'cores' (one job per vCPU of the instance's "
            "size, as Azure ML runs them)."
        )
    return int(value)


def _moved(body: dict[str, Any], states: list[str], operation: str) -> dict[str, Any]:
    now = time.time()
    history = list(body.get("state_history") or [])
    history += [{"state": state, "time": now} for state in states]
    return {
        **body,
        "state": states[-1],
        "state_history": history,
        "last_operation": {
            "operation_name": operation,
            "operation_time": now,
            "operation_status": "Succeeded",
            "operation_trigger": "User",
        },
    }


def create(store: WorkspaceStore, name: str, spec: dict[str, Any], existing: ComputeRecord | None) -> ComputeRecord:
    if existing:
        raise ResourceExists(
            f"Compute instance '{name}' already exists ({existing['state']}). Start, stop or "
            f"restart it with `amlemu compute start|stop|restart --name {name}`, or delete it first."
        )
    unknown = set(spec) - FIELDS
    if unknown:
        raise ValidationError(f"Unknown compute instance field(s) {', '.join(sorted(unknown))}.")
    size = sizes.lookup(spec.get("size"))
    home_dir(store, name).mkdir(parents=True, exist_ok=True)
    body = _moved(
        {
            "type": "computeinstance",
            "size": size.name,
            "description": spec.get("description"),
            "tags": dict(spec.get("tags") or {}),
            "location": spec.get("location") or "local",
            "provisioning_state": "Succeeded",
            "created_on": time.time(),
            "home": str(home_dir(store, name)),
            "concurrent_jobs": concurrent_jobs(size),
        },
        ["Creating", "Running"],
        "Create",
    )
    store.put_asset(KIND, name, V, body)
    record = store.get_asset(KIND, name, V)
    nodes.sync(store, name)
    return record


def transition(store: WorkspaceStore, record: ComputeRecord, verb: str, active_jobs: list[str]) -> ComputeRecord:
    """Start, stop or restart an instance; refused while jobs run or wait on it (stop, restart)."""
    name = record["name"]
    needs, during, after, operation = VERBS[verb]
    if record["state"] != needs:
        raise ValidationError(f"Compute instance '{name}' is {record['state']}; {verb} needs it {needs}.")
    if verb != "start" and active_jobs:
        raise ValidationError(
            f"Compute instance '{name}' has active job(s) {', '.join(active_jobs)}; "
            f"{verb.replace('stop', 'stopp')}ing it "
            f"would stop them. Cancel them (`amlemu job cancel --name {active_jobs[0]}`) or wait "
            f"for them to end, then {verb} it."
        )
    body = {k: v for k, v in record.items() if k not in ("name", "version", "created_at", "updated_at")}
    if after == "Running":  # a (re)started instance takes the setting as it is now
        body["concurrent_jobs"] = concurrent_jobs(sizes.lookup(body["size"]))
    store.put_asset(KIND, name, V, _moved(body, [during, after], operation))
    record = store.get_asset(KIND, name, V)
    if verb == "restart":  # a restarted instance comes back on a fresh node
        with store.transaction() as db:
            nodes.drop(db, name)
    nodes.sync(store, name)
    return record


def remove_home(store: WorkspaceStore, name: str) -> None:
    shutil.rmtree(home_dir(store, name).parent, ignore_errors=True)
