"""Translation between azure-ai-ml entities and the engine's plain records.

Entities in (``job_entities.job_to_spec``, ``model_to_spec``, ``environment_to_spec``) become
CLI v2 YAML-shaped dicts, the one shape the engine validates; records out become
the SDK's own classes with status, ids and creation context filled in.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from azure.ai.ml.entities import BuildContext, Environment, Model, SystemData

from emulator.environments.views import environment_view
from emulator.errors import NotEmulated
from emulator.models.registry import files
from emulator.models.views import model_view
from emulator.store import WorkspaceStore


def _ts(ts: float | None):
    return dt.datetime.fromtimestamp(ts, dt.UTC) if ts else None


def system_data(created_at: float, by: str | None = None, modified_at: float | None = None):
    """The SDK's ``SystemData`` (an entity's ``creation_context``) from a record's epoch times."""
    return SystemData(
        created_by=by or "local user",
        created_by_type="User",
        created_at=_ts(created_at),
        last_modified_at=_ts(modified_at),
    )


def _from_iso(text: str | None):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def view_system_data(context: dict[str, Any]):
    """The SDK's ``SystemData`` from a view's ``creation_context`` (the same instants, as datetimes)."""
    return SystemData(
        created_by=context["created_by"],
        created_by_type=context["created_by_type"],
        created_at=_from_iso(context["created_at"]),
        last_modified_at=_from_iso(context.get("last_modified_at")),
    )


def entity_base_path(entity: Any) -> Path:
    """The folder an entity's relative paths start from (its YAML file's, else the working directory)."""
    return Path(getattr(entity, "base_path", None) or Path.cwd()).resolve()


# -- paths, code and environments shared by every job type ------------------------------------
def is_local_path(path: Any) -> bool:
    """A plain local path, not a URI (``azureml://``, ``runs:/``, ``azureml:name:1`` ...)."""
    return bool(path) and not re.match(r"^[A-Za-z][\w+.-]+:", str(path))


#: ``name:version`` or ``name@label``: azure-ai-ml's ``load_job`` drops a data input's ``azureml:`` prefix
_ASSET_REFERENCE = re.compile(r"[A-Za-z0-9][\w.-]*(?::[\w.-]+|@[\w.-]+)")


def local_path(path: Any, base: Path) -> Any:
    """A local data path (plain, or a ``file:`` URI) made absolute against ``base``; a URI as it is; a data asset
    reference the SDK left without its prefix (``iris:1``, ``iris@latest``; the SDK reads a relative path with ``:``
    or ``@`` so) as ``azureml:<reference>``."""
    if isinstance(path, str) and _ASSET_REFERENCE.fullmatch(path):
        return f"azureml:{path}"
    local = path[len("file:") :].removeprefix("//") if isinstance(path, str) and path.startswith("file:") else path
    return str((base / str(local)).resolve()) if is_local_path(local) else path


def job_outputs(outputs: Any) -> dict[str, Any]:
    """A job's ``outputs`` (``Output`` objects or their dicts) as YAML: type and mode, and a datastore path and the
    data asset it is registered as (``name``, ``version``) when given."""
    found: dict[str, Any] = {}
    for key, value in (outputs or {}).items():
        if not isinstance(value, dict):
            value = {f: getattr(value, f, None) for f in ("type", "mode", "path", "name", "version")}
        found[key] = {"type": value.get("type") or "uri_folder", "mode": value.get("mode") or "rw_mount"}
        for field in ("path", "name", "version"):
            if value.get(field):
                found[key][field] = str(value[field])
    return found


def local_code(code: Any, what: str) -> str | Path | None:
    """A job's ``code``: a local folder; a ``Code`` asset is not emulated (``what`` names the field)."""
    if code is not None and not isinstance(code, (str, Path)):
        raise NotEmulated(f"{what} given as a Code asset", "Pass a local folder path as code.")
    return code


def inline_environment(environment: Any) -> Any:
    """A job's environment as YAML: a reference string as it is, an ``Environment`` object inline."""
    if isinstance(environment, Environment):
        return {k: v for k, v in environment_to_spec(environment).items() if k in ("image", "conda_file", "build")}
    return environment


# -- models ---------------------------------------------------------------------------------
def model_to_spec(model: Any) -> dict[str, Any]:
    path = model.path
    if is_local_path(path):
        path = str((entity_base_path(model) / path).resolve())
    return {
        "name": model.name,
        "version": model.version,
        "path": str(path) if path else None,
        "type": model.type,
        "description": model.description,
        "tags": model.tags,
        "properties": model.properties,
        "stage": getattr(model, "stage", None),
    }


def record_to_model(store: WorkspaceStore, record: dict[str, Any]):
    """The SDK's ``Model``, built from the ``az ml model show`` view; its path is where the files are here."""
    view = model_view(store, record)
    return Model(
        name=view["name"],
        version=view["version"],
        path=str(files(store, record)),
        type=view["type"],
        description=view.get("description"),
        tags=view["tags"],
        properties=view["properties"],
        stage=view.get("stage"),
        job_name=view.get("job_name"),
        creation_context=view_system_data(view["creation_context"]),
        id=view["id"],
    )


# -- environments ------------------------------------------------------------------------------
def environment_to_spec(env: Any) -> dict[str, Any]:
    build = None
    if env.build is not None:
        build = {
            "path": str((entity_base_path(env) / env.build.path).resolve()),
            "dockerfile_path": env.build.dockerfile_path or "Dockerfile",
        }
    return {
        k: v
        for k, v in {
            "name": env.name,
            "version": env.version,
            "image": env.image,
            "conda_file": env.conda_file,
            "build": build,
            "description": env.description,
            "tags": env.tags,
        }.items()
        if v
    }


def record_to_environment(store: WorkspaceStore, record: dict[str, Any]):
    """The SDK's ``Environment``, built from the ``az ml environment show`` view."""
    view = environment_view(store, record)
    build = view.get("build")
    return Environment(
        name=view["name"],
        version=view["version"],
        image=view.get("image"),
        conda_file=view.get("conda_file"),
        description=view.get("description"),
        tags=view["tags"],
        build=BuildContext(path=build["path"], dockerfile_path=build["dockerfile_path"]) if build else None,
        creation_context=view_system_data(view["creation_context"]),
        id=view["id"],
    )


def header_spec(job: Any, job_type: str) -> dict[str, Any]:
    """The fields every job kind's spec takes from an SDK job entity (``emulator.jobs.spec.JOB_HEADER_FIELDS``)."""
    return {
        "type": job_type,
        "name": job.name,
        "display_name": job.display_name,
        "description": job.description,
        "tags": dict(job.tags or {}),
        "properties": dict(job.properties or {}),
        "experiment_name": job.experiment_name,
        "compute": job.compute,
    }
