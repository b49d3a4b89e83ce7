"""JSON shaped like ``az ml``'s output, built from the engine's plain records."""

from __future__ import annotations

from typing import Any

from emulator import arm, config
from emulator.arm import SCHEMAS, iso  # noqa: F401  (re-exported until the views move)
from emulator.store import WorkspaceStore
from emulator.tracking import filestore


def arm_id(store: WorkspaceStore, tail: str) -> str:
    return arm.arm_id(store.name, tail)


_context = arm.creation_context


def job_tracking(store: WorkspaceStore, job: dict) -> dict:
    """The job's MLflow metrics and params, and the files in its artifacts."""
    run = filestore.read_run(store.mlflow_run_dir(job["experiment_name"], job["name"]))
    artifacts_dir = store.job_dir(job["name"]) / "artifacts"
    artifacts = sorted(str(p.relative_to(artifacts_dir)) for p in artifacts_dir.rglob("*")
                       if p.is_file()) if artifacts_dir.is_dir() else []
    return {"metrics": run["metrics"], "params": run["params"], "artifacts": artifacts}


def job_view(store: WorkspaceStore, job: dict, *, tracking: bool = True) -> dict[str, Any]:
    if job["type"] == "sweep":
        from emulator.sweeps.views import sweep_view

        return sweep_view(store, job, tracking=tracking)
    if job["type"] == "pipeline":
        from emulator.pipelines.views import pipeline_view

        return pipeline_view(store, job, tracking=tracking)
    if job["type"] == "automl":
        from emulator.automl.views import automl_view

        return automl_view(store, job, tracking=tracking)
    spec = job["spec"]
    inputs = {k: v["value"] if v["type"] == "literal" else {"type": v["type"], "path": v["path"], "mode": v["mode"]}
              for k, v in spec["inputs"].items()}
    outputs = {"default": {"mode": "rw_mount", "type": "uri_folder",
                           "path": f"azureml://jobs/{job['name']}/outputs/artifacts"}}
    for key, value in spec["outputs"].items():
        outputs[key] = {"mode": value["mode"], "type": value["type"],
                        "path": f"azureml://jobs/{job['name']}/outputs/{key}"}
    view = {
        "$schema": f"{SCHEMAS}/commandJob.schema.json",
        "code": str(store.job_dir(job["name"]) / "snapshot") if spec["code"] else None,
        "command": spec["command"],
        "compute": f"azureml:{spec['compute']}" if spec["compute"] else "local",
        "creation_context": _context(job["created_at"], spec.get("created_by")),
        "description": spec["description"],
        "display_name": spec["display_name"],
        "distribution": spec.get("distribution"),
        "environment": spec["environment"] if isinstance(spec["environment"], str) else spec["environment_resolved"]["reference"],
        "environment_variables": spec["environment_variables"],
        "experiment_name": job["experiment_name"],
        "id": arm_id(store, f"jobs/{job['name']}"),
        "inputs": inputs,
        "name": job["name"],
        "outputs": outputs,
        "parameters": {},
        "properties": spec["properties"],
        "resourceGroup": config.RESOURCE_GROUP,
        "resources": {"instance_count": 1, "shm_size": "2g", **spec["resources"]},
        "services": {"Tracking": {"endpoint": store.tracking_uri, "job_service_type": "Tracking"},
                     "Studio": {"endpoint": str(store.job_dir(job["name"])), "job_service_type": "Studio"}},
        "status": job["status"],
        "tags": spec["tags"],
        "type": job["type"],
    }
    if job["parent_job_name"]:
        view["parent_job_name"] = job["parent_job_name"]
    if job["status"] in ("Failed", "Canceled") or job["exit_code"] not in (None, 0):
        view["error"] = {"code": "UserError" if job["status"] == "Failed" else "Canceled",
                         "message": job["error"], "exit_code": job["exit_code"]}
    if tracking:
        view.update(job_tracking(store, job))
    return {k: v for k, v in view.items() if v is not None}
