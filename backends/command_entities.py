"""Command jobs between azure-ai-ml entities (``command(...)``, ``CommandJob``) and the engine.

``to_spec`` gives the command-job YAML dict the engine validates; ``from_view`` gives a
``CommandJob`` built from the job's ``az ml job show`` view, so a field shown there is the
field the SDK sees. Three things come from the record instead, as before: ``code`` (the
folder the user gave, the view shows the snapshot), the outputs' local folders (the view
shows ``azureml://`` URIs) and the exit code and error in ``amlemu.*`` properties.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from azure.ai.ml import Input, Output
from azure.ai.ml.entities import CommandJob, JobResourceConfiguration, JobService
from azure.ai.ml.entities._builders.command import Command

from backends.entities import header_spec, inline_environment, job_outputs, local_code, local_path, view_system_data
from emulator.errors import NotEmulated
from emulator.jobs.spec import output_path
from emulator.store import WorkspaceStore


def to_spec(job: Any, base: Path) -> dict[str, Any]:
    """A ``command(...)`` node or ``CommandJob`` as a command-job YAML dict with absolute paths."""
    if isinstance(job, Command):
        job = job._to_job()
    if not isinstance(job, CommandJob):
        raise NotEmulated(
            f"{type(job).__name__} ({getattr(job, 'type', '?')} jobs)", "Only command jobs are emulated so far."
        )
    inputs: dict[str, Any] = {}
    for key, value in (job.inputs or {}).items():
        if isinstance(value, Input):
            if value.type in ("string", "integer", "number", "boolean"):
                inputs[key] = value.default
            else:
                inputs[key] = {"type": value.type, "path": value.path, "mode": value.mode}
        else:
            inputs[key] = value
    outputs = job_outputs({k: v for k, v in (job.outputs or {}).items() if isinstance(v, Output)})
    environment = inline_environment(job.environment)
    code = local_code(job.code, "code")
    resources = job.resources
    limits = job.limits
    spec = {
        **header_spec(job, "command"),
        "command": job.command,
        "code": str((base / code).resolve()) if code else None,
        "environment": environment,
        "environment_variables": dict(job.environment_variables or {}),
        "inputs": inputs,
        "outputs": outputs,
        "resources": {"instance_count": resources.instance_count} if resources and resources.instance_count else {},
        "distribution": {k: v for k, v in vars(job.distribution).items() if v is not None}
        if job.distribution is not None
        else None,
    }
    if limits is not None and getattr(limits, "timeout", None):
        spec["limits"] = {"timeout": limits.timeout}
    for value in list(spec["inputs"].values()):  # data paths resolve from the entity's base path
        if isinstance(value, dict) and value.get("path"):
            value["path"] = local_path(value["path"], base)
    return {k: v for k, v in spec.items() if v is not None}


def amlemu_properties(view: dict[str, Any], record: dict[str, Any]) -> dict[str, str]:
    """The view's properties, plus the job's error and exit code as ``amlemu.*`` properties."""
    properties = dict(view["properties"])
    if record.get("error"):
        properties["amlemu.error"] = record["error"]
    if record.get("exit_code") is not None:
        properties["amlemu.exit_code"] = str(record["exit_code"])
    return properties


def compute_name(view: dict[str, Any]) -> str | None:
    """The view's ``compute`` (``azureml:<name>`` or ``local``) as the SDK's compute name (None: this machine)."""
    compute = view.get("compute")
    return None if compute in (None, "local") else compute.removeprefix("azureml:")


def from_view(store: WorkspaceStore, record: dict[str, Any], view: dict[str, Any]):
    """A ``CommandJob`` from a command job's view."""
    inputs = {
        k: Input(type=v["type"], path=v["path"], mode=v["mode"]) if isinstance(v, dict) else v
        for k, v in view["inputs"].items()
    }
    outputs = {
        k: Output(
            type=view["outputs"][k]["type"],
            mode=view["outputs"][k]["mode"],
            path=str(output_path(store, store.job_dir(view["name"]), k, record["spec"]["outputs"][k])),
            **{f: view["outputs"][k][f] for f in ("name", "version") if f in view["outputs"][k]},
        )
        for k in record["spec"]["outputs"]
    }  # the view adds "default": the artifacts
    return CommandJob(
        name=view["name"],
        display_name=view["display_name"],
        description=view.get("description"),
        tags=view["tags"],
        properties=amlemu_properties(view, record),
        experiment_name=view["experiment_name"],
        compute=compute_name(view),
        command=view["command"],
        code=record["spec"]["code"],
        environment=view["environment"],
        environment_variables=view["environment_variables"],
        inputs=inputs,
        outputs=outputs,
        resources=JobResourceConfiguration(instance_count=view["resources"]["instance_count"]),
        distribution=view.get("distribution"),
        status=view["status"],
        parent_job_name=view.get("parent_job_name"),
        creation_context=view_system_data(view["creation_context"]),
        id=view["id"],
        # the view's services: Studio (the job's folder here, where Azure links the studio) and Tracking
        services={key: JobService(**value) for key, value in (view.get("services") or {}).items()},
    )
