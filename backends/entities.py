"""Translation between azure-ai-ml entities and the engine's plain records.

Entities in (``job_to_spec``, ``model_to_spec``, ``environment_to_spec``) become
CLI v2 YAML-shaped dicts, the one shape the engine validates; records out become
the SDK's own classes with status, ids and creation context filled in.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from emulator.cli.views import arm_id
from emulator.environments.views import environment_view
from emulator.errors import NotEmulated
from emulator.models.views import model_view
from emulator.store import WorkspaceStore


def _ts(ts: float | None):
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc) if ts else None


def system_data(created_at: float, by: str | None = None, modified_at: float | None = None):
    """The SDK's ``SystemData`` (an entity's ``creation_context``) from a record's epoch times."""
    from azure.ai.ml.entities import SystemData

    return SystemData(created_by=by or "local user", created_by_type="User", created_at=_ts(created_at),
                      last_modified_at=_ts(modified_at))


def _from_iso(text: str | None):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def view_system_data(context: dict[str, Any]):
    """The SDK's ``SystemData`` from a view's ``creation_context`` (the same instants, as datetimes)."""
    from azure.ai.ml.entities import SystemData

    return SystemData(created_by=context["created_by"], created_by_type=context["created_by_type"],
                      created_at=_from_iso(context["created_at"]),
                      last_modified_at=_from_iso(context.get("last_modified_at")))


def entity_base_path(entity: Any) -> Path:
    """The folder an entity's relative paths start from (its YAML file's, else the working directory)."""
    return Path(getattr(entity, "base_path", None) or Path.cwd()).resolve()


# -- jobs -----------------------------------------------------------------------------------
def job_to_spec(job: Any) -> dict[str, Any]:
    """A ``command(...)`` node or ``CommandJob`` as a command-job YAML dict with absolute paths."""
    from azure.ai.ml import Input, Output
    from azure.ai.ml.entities import CommandJob
    from azure.ai.ml.entities._builders.command import Command

    base = _base_path(job)  # before _to_job(), which forgets where a YAML file came from
    from azure.ai.ml.entities import PipelineJob
    from azure.ai.ml.entities._builders.sweep import Sweep
    from azure.ai.ml.sweep import SweepJob

    if isinstance(job, (SweepJob, Sweep)):  # Sweep: what command(...)(x=Choice(...)).sweep(...) returns
        from backends.sweep_entities import sweep_to_spec

        return sweep_to_spec(job, base)
    if getattr(job, "type", None) == "automl":
        from backends.automl_entities import automl_to_spec

        return automl_to_spec(job, base)
    if isinstance(job, PipelineJob):
        from backends.pipeline_entities import pipeline_to_spec

        return pipeline_to_spec(job, base)
    if isinstance(job, Command):
        job = job._to_job()
    if not isinstance(job, CommandJob):
        raise NotEmulated(f"{type(job).__name__} ({getattr(job, 'type', '?')} jobs)",
                          "Only command jobs are emulated so far.")
    inputs: dict[str, Any] = {}
    for key, value in (job.inputs or {}).items():
        if isinstance(value, Input):
            if value.type in ("string", "integer", "number", "boolean"):
                inputs[key] = value.default
            else:
                inputs[key] = {"type": value.type, "path": value.path, "mode": value.mode}
        else:
            inputs[key] = value
    outputs = {}
    for key, value in (job.outputs or {}).items():
        if isinstance(value, Output):
            outputs[key] = {"type": value.type or "uri_folder", "mode": value.mode or "rw_mount"}
    environment = inline_environment(job.environment)
    code = local_code(job.code, "code")
    resources = job.resources
    limits = job.limits
    spec = {
        "type": "command", "name": job.name, "display_name": job.display_name,
        "description": job.description, "tags": dict(job.tags or {}),
        "properties": dict(job.properties or {}), "experiment_name": job.experiment_name,
        "compute": job.compute, "command": job.command,
        "code": str((base / code).resolve()) if code else None,
        "environment": environment, "environment_variables": dict(job.environment_variables or {}),
        "inputs": inputs, "outputs": outputs,
        "resources": {"instance_count": resources.instance_count} if resources and resources.instance_count else {},
        "distribution": {k: v for k, v in vars(job.distribution).items() if v is not None}
        if job.distribution is not None else None,
    }
    if limits is not None and getattr(limits, "timeout", None):
        spec["limits"] = {"timeout": limits.timeout}
    for key, value in list(spec["inputs"].items()):  # data paths resolve from the entity's base path
        if isinstance(value, dict) and _is_local(value.get("path")):
            value["path"] = str((base / value["path"]).resolve())
    return {k: v for k, v in spec.items() if v is not None}


def record_to_job(store: WorkspaceStore, record: dict[str, Any]):
    """A ``CommandJob`` (``SweepJob``, ``PipelineJob``) from an engine record, with status, id and creation context."""
    if record["type"] == "sweep":
        from backends.sweep_entities import record_to_sweep_job

        return record_to_sweep_job(store, record)
    if record["type"] == "pipeline":
        from backends.pipeline_entities import record_to_pipeline_job

        return record_to_pipeline_job(store, record)
    if record["type"] == "automl":
        from backends.automl_entities import record_to_automl_job

        return record_to_automl_job(store, record)
    from azure.ai.ml import Input, Output
    from azure.ai.ml.entities import CommandJob, JobResourceConfiguration

    spec = record["spec"]
    inputs = {k: v["value"] if v["type"] == "literal" else Input(type=v["type"], path=v["path"], mode=v["mode"])
              for k, v in spec["inputs"].items()}
    outputs = {k: Output(type=v["type"], mode=v["mode"], path=str(store.job_dir(record["name"]) / "outputs" / k))
               for k, v in spec["outputs"].items()}
    env = spec["environment"] if isinstance(spec["environment"], str) else spec["environment_resolved"]["reference"]
    properties = dict(spec["properties"])
    if record.get("error"):
        properties["amlemu.error"] = record["error"]
    if record.get("exit_code") is not None:
        properties["amlemu.exit_code"] = str(record["exit_code"])
    return CommandJob(
        name=record["name"], display_name=spec["display_name"], description=spec["description"],
        tags=spec["tags"], properties=properties, experiment_name=record["experiment_name"],
        compute=spec["compute"], command=spec["command"], code=spec["code"], environment=env,
        environment_variables=spec["environment_variables"], inputs=inputs, outputs=outputs,
        resources=JobResourceConfiguration(instance_count=spec["resources"].get("instance_count", 1)),
        distribution=spec.get("distribution"), status=record["status"], parent_job_name=record.get("parent_job_name"),
        creation_context=_system_data(record["created_at"], spec.get("created_by")),
        id=arm_id(store, f"jobs/{record['name']}"))


# -- paths, code and environments shared by every job type ------------------------------------
def is_local_path(path: Any) -> bool:
    """A plain local path, not a URI (``azureml://``, ``runs:/``, ``azureml:name:1`` ...)."""
    return bool(path) and not re.match(r"^[A-Za-z][\w+.-]+:", str(path))


# The old private names, still imported by the job converters until they move to the public ones.
_system_data, _base_path, _is_local = system_data, entity_base_path, is_local_path


def local_path(path: Any, base: Path) -> Any:
    """A local data path (plain, or a ``file:`` URI) made absolute against ``base``; a URI as it is."""
    local = path[len("file:"):].removeprefix("//") if isinstance(path, str) and path.startswith("file:") else path
    return str((base / str(local)).resolve()) if is_local_path(local) else path


def local_code(code: Any, what: str) -> str | Path | None:
    """A job's ``code``: a local folder; a ``Code`` asset is not emulated (``what`` names the field)."""
    if code is not None and not isinstance(code, (str, Path)):
        raise NotEmulated(f"{what} given as a Code asset", "Pass a local folder path as code.")
    return code


def inline_environment(environment: Any) -> Any:
    """A job's environment as YAML: a reference string as it is, an ``Environment`` object inline."""
    from azure.ai.ml.entities import Environment

    if isinstance(environment, Environment):
        return {k: v for k, v in environment_to_spec(environment).items() if k in ("image", "conda_file", "build")}
    return environment


# -- models ---------------------------------------------------------------------------------
def model_to_spec(model: Any) -> dict[str, Any]:
    path = model.path
    if is_local_path(path):
        path = str((entity_base_path(model) / path).resolve())
    return {"name": model.name, "version": model.version, "path": str(path) if path else None,
            "type": model.type, "description": model.description, "tags": model.tags,
            "properties": model.properties, "stage": getattr(model, "stage", None)}


def record_to_model(store: WorkspaceStore, record: dict[str, Any]):
    """The SDK's ``Model``, built from the ``az ml model show`` view; its path is where the files are here."""
    from azure.ai.ml.entities import Model

    from emulator.models.registry import files

    view = model_view(store, record)
    return Model(name=view["name"], version=view["version"], path=str(files(store, record)),
                 type=view["type"], description=view.get("description"), tags=view["tags"],
                 properties=view["properties"], stage=view.get("stage"), job_name=view.get("job_name"),
                 creation_context=view_system_data(view["creation_context"]), id=view["id"])


# -- environments ------------------------------------------------------------------------------
def environment_to_spec(env: Any) -> dict[str, Any]:
    build = None
    if env.build is not None:
        build = {"path": str((entity_base_path(env) / env.build.path).resolve()),
                 "dockerfile_path": env.build.dockerfile_path or "Dockerfile"}
    return {k: v for k, v in {
        "name": env.name, "version": env.version, "image": env.image, "conda_file": env.conda_file,
        "build": build, "description": env.description, "tags": env.tags}.items() if v}


def record_to_environment(store: WorkspaceStore, record: dict[str, Any]):
    """The SDK's ``Environment``, built from the ``az ml environment show`` view."""
    from azure.ai.ml.entities import BuildContext, Environment

    view = environment_view(store, record)
    build = view.get("build")
    return Environment(name=view["name"], version=view["version"], image=view.get("image"),
                       conda_file=view.get("conda_file"), description=view.get("description"), tags=view["tags"],
                       build=BuildContext(path=build["path"], dockerfile_path=build["dockerfile_path"]) if build else None,
                       creation_context=view_system_data(view["creation_context"]), id=view["id"])
