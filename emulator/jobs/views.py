"""``az ml``-shaped JSON of jobs: what every kind's view shares, and the command job's view.

Each kind renders its own jobs (:mod:`emulator.sweeps.views`, ...); the registry
(:mod:`emulator.kinds`) picks the view, and the Python client builds its entities from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator import config
from emulator.arm import SCHEMAS, arm_id, creation_context
from emulator.jobs import faults
from emulator.store import WorkspaceStore
from emulator.tracking import filestore

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import CommandJobSpec, JobRecord


def job_tracking(store: WorkspaceStore, job: JobRecord) -> dict[str, Any]:
    """The job's MLflow metrics and params, and the files in its artifacts."""
    run = filestore.read_run(store.mlflow_run_dir(job["experiment_name"], job["name"]))
    artifacts_dir = store.job_dir(job["name"]) / "artifacts"
    artifacts = (
        sorted(str(p.relative_to(artifacts_dir)) for p in artifacts_dir.rglob("*") if p.is_file())
        if artifacts_dir.is_dir()
        else []
    )
    return {"metrics": run["metrics"], "params": run["params"], "artifacts": artifacts}


def job_id(store: WorkspaceStore, name: str) -> str:
    """A job's ARM id."""
    return arm_id(store.name, f"jobs/{name}")


def job_services(store: WorkspaceStore, name: str) -> dict[str, Any]:
    """A job's ``services``: its tracking URI, and its folder where Azure links the studio."""
    return {
        "Tracking": {"endpoint": store.tracking_uri, "job_service_type": "Tracking"},
        "Studio": {"endpoint": str(store.job_dir(name)), "job_service_type": "Studio"},
    }


def job_creation_context(job: JobRecord) -> dict[str, Any]:
    return creation_context(job["created_at"], job["spec"].get("created_by"))


def command_view(store: WorkspaceStore, job: JobRecord[CommandJobSpec], *, tracking: bool = True) -> dict[str, Any]:
    """A command job as ``az ml job show`` prints it."""
    spec = job["spec"]
    inputs = {
        k: v["value"]
        if v["type"] == "literal"
        else {"type": v["type"], "path": v.get("reference") or v["path"], "mode": v["mode"]}
        for k, v in spec["inputs"].items()
    }
    outputs = {
        "default": {"mode": "rw_mount", "type": "uri_folder", "path": f"azureml://jobs/{job['name']}/outputs/artifacts"}
    }
    for key, value in spec["outputs"].items():
        outputs[key] = {
            "mode": value["mode"],
            "type": value["type"],
            "path": value.get("path") or f"azureml://jobs/{job['name']}/outputs/{key}",
        }
        for field in ("name", "version"):  # the data asset the output is registered as
            if value.get(field):
                outputs[key][field] = value[field]
    view = {
        "$schema": f"{SCHEMAS}/commandJob.schema.json",
        "code": str(store.job_dir(job["name"]) / "snapshot") if spec["code"] else None,
        "command": spec["command"],
        "compute": f"azureml:{spec['compute']}" if spec["compute"] else "local",
        "creation_context": job_creation_context(job),
        "description": spec["description"],
        "display_name": spec["display_name"],
        "distribution": spec.get("distribution"),
        "environment": spec["environment"]
        if isinstance(spec["environment"], str)
        else spec["environment_resolved"]["reference"],
        "environment_variables": spec["environment_variables"],
        "experiment_name": job["experiment_name"],
        "id": job_id(store, job["name"]),
        "inputs": inputs,
        "name": job["name"],
        "outputs": outputs,
        "parameters": {},
        "properties": spec["properties"],
        "resourceGroup": config.RESOURCE_GROUP,
        "resources": {"instance_count": 1, "shm_size": "2g", **spec["resources"]},
        "services": job_services(store, job["name"]),
        "status": job["status"],
        "tags": spec["tags"],
        "type": job["type"],
    }
    if job["parent_job_name"]:
        view["parent_job_name"] = job["parent_job_name"]
    if job["status"] in ("Failed", "Canceled") or job["exit_code"] not in (None, 0):
        view["error"] = {
            "code": faults.error_code(store, job),
            "message": job["error"],
            "exit_code": job["exit_code"],
        }
    if tracking:
        view.update(job_tracking(store, job))
    return {k: v for k, v in view.items() if v is not None}
