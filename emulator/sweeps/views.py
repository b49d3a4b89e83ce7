"""``az ml``-shaped JSON of a sweep job."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from emulator import config
from emulator.arm import SCHEMAS
from emulator.jobs.views import job_creation_context, job_id, job_services, job_tracking
from emulator.store import WorkspaceStore
from emulator.tracking import filestore

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import JobRecord, SweepJobSpec


def _inputs(spec: SweepJobSpec) -> dict[str, Any]:
    return {
        k: v["value"] if v["type"] == "literal" else {"type": v["type"], "path": v["path"], "mode": v["mode"]}
        for k, v in spec["inputs"].items()
    }


def trial_summaries(store: WorkspaceStore, job: dict) -> list[dict[str, Any]]:
    """Each trial: name, status, hyperparameters and the primary metric's best and last values."""
    spec = job["spec"]
    metric, goal = spec["objective"]["primary_metric"], spec["objective"]["goal"]
    out = []
    for trial in sorted(store.list_jobs(job["name"]), key=lambda r: r["created_at"]):
        history = [
            v
            for _, v, _ in filestore.metric_history(
                store.mlflow_run_dir(trial["experiment_name"], trial["name"]), metric
            )
        ]
        props = trial["spec"]["properties"]
        entry = {
            "name": trial["name"],
            "status": trial["status"],
            "hyperparameters": json.loads(props.get("hyperparameters", "{}")),
            f"best_{metric}": (max(history) if goal == "maximize" else min(history)) if history else None,
            "reports": len(history),
        }
        if props.get("early_terminated_by"):
            entry["early_terminated_by"] = props["early_terminated_by"]
        out.append(entry)
    return out


def sweep_view(store: WorkspaceStore, job: JobRecord[SweepJobSpec], *, tracking: bool = True) -> dict[str, Any]:
    spec = job["spec"]
    trial = spec["trial"]
    env = trial["environment"]
    limits = {k: v for k, v in spec["limits"].items() if v is not None}
    view = {
        "$schema": f"{SCHEMAS}/sweepJob.schema.json",
        "compute": f"azureml:{spec['compute']}" if spec["compute"] else "local",
        "creation_context": job_creation_context(job),
        "description": spec["description"],
        "display_name": spec["display_name"],
        "early_termination": spec["early_termination"],
        "experiment_name": job["experiment_name"],
        "id": job_id(store, job["name"]),
        "inputs": _inputs(spec),
        "limits": limits,
        "name": job["name"],
        "objective": spec["objective"],
        "outputs": {k: {"mode": v["mode"], "type": v["type"]} for k, v in spec["outputs"].items()},
        "properties": spec["properties"],
        "resourceGroup": config.RESOURCE_GROUP,
        "sampling_algorithm": spec["sampling_algorithm"],
        "search_space": spec["search_space"],
        "services": job_services(store, job["name"]),
        "status": job["status"],
        "tags": spec["tags"],
        "trial": {
            k: v
            for k, v in {
                "code": trial["code"],
                "command": trial["command"],
                "environment": env if isinstance(env, str) else env,
                "environment_variables": trial["environment_variables"],
                "resources": {"instance_count": 1, **(trial["resources"] or {})},
            }.items()
            if v is not None
        },
        "type": "sweep",
    }
    if job["status"] in ("Failed", "Canceled"):
        view["error"] = {"code": "UserError" if job["status"] == "Failed" else "Canceled", "message": job["error"]}
    if tracking:
        view.update(job_tracking(store, job))
        view["trials"] = trial_summaries(store, job)
    return {k: v for k, v in view.items() if v is not None}
