"""Registered models: versions, where their files come from, download.

A model's files are copied into the workspace at registration, so a model
outlives the job or folder it came from. Paths understood (as Azure ML):
a local file or folder; ``azureml://jobs/<job>/outputs/artifacts/paths/<p>`` (or ``.../artifacts/<p>``);
``azureml://jobs/<job>/outputs/<output>[/paths/<p>]``; ``runs:/<run-id>/<p>``; a datastore path,
``azureml://datastores/<ds>/paths/<p>`` (short or long form: where the SDK uploads a local model).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from emulator import naming
from emulator.data import paths as datastore_paths
from emulator.errors import NotEmulated, ValidationError
from emulator.jobs import lifecycle, outputs
from emulator.store import WorkspaceStore
from emulator.store import staging as stagings
from emulator.store.db import TERMINAL

KIND = "model"
MODEL_TYPES = {"custom_model", "mlflow_model", "triton_model"}
_JOB_OUTPUT = re.compile(r"^azureml://jobs/(?P<job>[^/]+)/outputs/(?P<output>[^/]+)(?:/paths/(?P<path>.*))?$")
_RUNS = re.compile(r"^runs:/(?P<job>[^/]+)/?(?P<path>.*)$")
#: the job's artifacts without ``paths/``, as Azure ML's AutoML docs write the best trial's MLflow model
#: (``azureml://jobs/<job>/outputs/artifacts/outputs/mlflow-model/``)
_JOB_ARTIFACTS = re.compile(r"^azureml://jobs/(?P<job>[^/]+)/outputs/artifacts/(?!paths/)(?P<path>.+)$")


def job_output(path: str) -> tuple[str, str, str] | None:
    """The job, its output (``artifacts`` for ``runs:/``) and the path inside it that a model path names;
    None for a path that names no job output."""
    match = _JOB_OUTPUT.match(path) or _JOB_ARTIFACTS.match(path) or _RUNS.match(path)
    if not match:
        return None
    return match["job"], match.groupdict().get("output") or "artifacts", match["path"] or ""


def source_path(store: WorkspaceStore, path: str, base_path: Path) -> tuple[Path, str | None]:
    """The local file or folder a model path points at, and the job it came from (if any)."""
    source = job_output(path)
    if source:
        job_name, output, inner = source
        job = lifecycle.get(store, job_name)
        if job["status"] not in TERMINAL:
            raise ValidationError(
                f"Job '{job_name}' is {job['status']}: its outputs exist once it ends. Wait with "
                f"`amlemu job stream --name {job_name}`, then register the model."
            )
        folder = outputs.output_dir(store, job_name, output)
        local = naming.confined_join(folder, inner.strip("/")) if inner.strip("/") else folder
        if not local.exists():
            have = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
            raise ValidationError(
                f"Job '{job_name}' output '{output}' has no '{inner}' "
                f"(it holds: {', '.join(have) or 'nothing'}). Fix the path after /paths/."
            )
        return local, job_name
    if datastore_paths.is_datastore_uri(path):
        local = datastore_paths.local(store, datastore_paths.parse(store, path))
        if not local.exists():
            raise ValidationError(
                f"Model path '{path}' names nothing in its datastore (looked at {local}). Upload the files first, "
                "or fix the path after /paths/."
            )
        return local, None
    if path.startswith(("azureml://", "http://", "https://", "wasbs://", "abfss://", "azureml:")):
        raise NotEmulated(
            f"model path '{path}'", "Register from a local path or a job output (azureml://jobs/<job>/outputs/...)."
        )
    local = (base_path / path.removeprefix("file://")).resolve()
    if not local.exists():
        raise ValidationError(
            f"Model path '{path}' does not exist (looked at {local}). Fix the path: "
            "a local file or folder, or azureml://jobs/<job>/outputs/artifacts/paths/<path>."
        )
    return local, None


def create_or_update(store: WorkspaceStore, spec: dict[str, Any], base_path: Path) -> dict[str, Any]:
    """Register a model version: files are copied in, then the record is written."""
    name = spec.get("name")
    if not name:
        raise ValidationError("A model needs a 'name'.")
    name = naming.check("model", name)
    if spec.get("version") is not None:
        naming.check("version", spec["version"], f"of model '{name}'")
    if not spec.get("path"):
        raise ValidationError("A model needs a 'path' (a local file or folder, or a job output).")
    model_type = spec.get("type") or "custom_model"
    if model_type not in MODEL_TYPES:
        raise ValidationError(f"Model type '{model_type}' is unknown; use one of {', '.join(sorted(MODEL_TYPES))}.")
    local, job_name = source_path(store, str(spec["path"]), Path(base_path))
    if model_type == "mlflow_model" and not (local.is_dir() and (local / "MLmodel").is_file()):
        raise ValidationError(
            f"An mlflow_model path must be a folder with an MLmodel file; {local} is not. "
            "Register it as custom_model, or point at the MLflow model folder."
        )
    models_root = naming.confined_join(store.root, "models", name)
    staging = stagings.make(models_root)
    try:
        leaf = local.name or name
        if local.is_dir():
            shutil.copytree(local, staging / leaf)
        else:
            shutil.copy2(local, staging / leaf)
        body = {
            "type": model_type,
            "path": str(spec["path"]),
            "local_path": leaf,
            "description": spec.get("description"),
            "tags": dict(spec.get("tags") or {}),
            "properties": dict(spec.get("properties") or {}),
            "stage": spec.get("stage"),
            "job_name": job_name,
        }
        with store.transaction() as db:
            version = str(spec["version"]) if spec.get("version") is not None else store.next_version(db, KIND, name)
            store.insert_asset(db, KIND, name, version, body)
            staging.rename(naming.confined_join(models_root, version))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return store.get_asset(KIND, name, version)


def files(store: WorkspaceStore, model: dict[str, Any]) -> Path:
    """The stored file or folder of a model version."""
    return naming.confined_join(store.asset_dir(KIND, model["name"], model["version"]), model["local_path"])


def download(store: WorkspaceStore, name: str, version: str | None, download_path: Path) -> Path:
    """Copy a model's files to ``download_path/<name>/`` (as ``az ml model download``)."""
    model = store.get_asset(KIND, name, version)
    src = files(store, model)
    target = naming.confined_join(download_path, naming.check("model", model["name"]))
    target.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, naming.confined_join(target, src.name), dirs_exist_ok=True)
    else:
        shutil.copy2(src, naming.confined_join(target, src.name))
    return target
