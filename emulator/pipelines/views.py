"""A pipeline job as ``az ml job show`` prints one, plus each step's child job and status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator import config
from emulator.arm import SCHEMAS
from emulator.jobs.views import job_creation_context, job_id, job_services, job_tracking
from emulator.pipelines.service import step_jobs

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import JobRecord, PipelineJobSpec


def _input_view(value: Any) -> Any:
    if isinstance(value, dict) and value.get("type") == "literal":
        return value["value"]
    if isinstance(value, str) and value.startswith("${{"):
        return {"path": value}  # a binding, as azure-ai-ml serialises one
    return value


def pipeline_view(store, job: JobRecord[PipelineJobSpec], *, tracking: bool = True) -> dict[str, Any]:
    """az ml JSON for a pipeline job; each step under ``jobs`` also names its child job and status."""
    spec = job["spec"]
    children = step_jobs(store, job)
    bound_outputs = {(out["step"], out["output"]): key for key, out in spec["outputs"].items()}
    steps = {}
    for step, node in spec["jobs"].items():
        step_job = node["job"]
        child = children.get(step)
        outputs = {
            key: (f"${{{{parent.outputs.{bound_outputs[(step, key)]}}}}}" if (step, key) in bound_outputs else value)
            for key, value in step_job.get("outputs", {}).items()
        }
        steps[step] = {
            k: v
            for k, v in {
                "type": "command",
                "command": step_job["command"],
                "code": step_job.get("code"),
                "environment": step_job.get("environment"),
                "environment_variables": step_job.get("environment_variables") or {},
                "compute": step_job.get("compute") or "local",
                "inputs": {k: _input_view(v) for k, v in (step_job.get("inputs") or {}).items()},
                "outputs": outputs,
                "job_name": child["name"] if child else None,
                "status": child["status"] if child else "NotStarted",
            }.items()
            if v is not None
        }
    view = {
        "$schema": f"{SCHEMAS}/pipelineJob.schema.json",
        "compute": spec.get("compute"),
        "creation_context": job_creation_context(job),
        "description": spec["description"],
        "display_name": spec["display_name"],
        "experiment_name": job["experiment_name"],
        "id": job_id(store, job["name"]),
        "inputs": {k: _input_view(v) for k, v in spec["inputs"].items()},
        "jobs": steps,
        "name": job["name"],
        "outputs": {
            key: {"mode": out["mode"], "type": out["type"], "path": f"azureml://jobs/{job['name']}/outputs/{key}"}
            for key, out in spec["outputs"].items()
        },
        "properties": spec["properties"],
        "resourceGroup": config.RESOURCE_GROUP,
        "services": job_services(store, job["name"]),
        "settings": {k: v for k, v in spec["settings"].items() if v is not None},
        "status": job["status"],
        "tags": spec["tags"],
        "type": "pipeline",
    }
    if job["status"] in ("Failed", "Canceled"):
        view["error"] = {"code": "UserError" if job["status"] == "Failed" else "Canceled", "message": job["error"]}
    if tracking:
        view.update(job_tracking(store, job))
    return {k: v for k, v in view.items() if v is not None}
