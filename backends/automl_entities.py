"""AutoML jobs between azure-ai-ml entities (``ClassificationJob``, ``RegressionJob``) and the engine's records.

``to_spec`` takes what ``automl.classification(...)`` / ``automl.regression(...)`` or
``load_job`` of a ``type: automl`` YAML gives, and returns the CLI v2 YAML-shaped dict that
:mod:`emulator.automl.spec` validates; ``from_view`` gives the SDK's job back with its
status, id, creation context and the best trial in its properties.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from azure.ai.ml import Input, automl
from azure.ai.ml.automl import ColumnTransformer

from backends.entities import header_spec, local_path, view_system_data
from emulator.errors import NotEmulated
from emulator.store import WorkspaceStore


def _value(obj: Any) -> Any:
    return getattr(obj, "value", obj)


def _data(value: Any, base: Path) -> Any:
    """An Input (or its dict) as a YAML input with an absolute local path."""
    if value is None:
        return None
    if not isinstance(value, dict):
        value = {"type": value.type, "path": value.path}
    value = {k: v for k, v in value.items() if v is not None}
    if value.get("path"):
        value["path"] = local_path(value["path"], base)
    return value


def _featurization(settings: Any) -> dict[str, Any] | None:
    """``job.featurization`` (``TabularFeaturizationSettings``) as the YAML ``featurization`` section."""
    if settings is None:
        return None
    params = {
        key: [{"fields": list(t.fields or []), "parameters": dict(t.parameters or {})} for t in entries or []]
        for key, entries in (settings.transformer_params or {}).items()
    }
    out = {
        "mode": _value(settings.mode),
        "blocked_transformers": [_value(t) for t in settings.blocked_transformers or []] or None,
        "column_name_and_types": dict(settings.column_name_and_types or {}) or None,
        "transformer_params": params or None,
        "dataset_language": settings.dataset_language,
        "enable_dnn_featurization": settings.enable_dnn_featurization,
    }
    return {k: v for k, v in out.items() if v is not None}


def to_spec(job: Any, base: Path) -> dict[str, Any]:
    """A tabular AutoML job entity as a ``type: automl`` YAML dict with absolute local paths."""
    source = getattr(job, "_source_path", None)
    if source:  # load_job gives AutoML jobs the current directory as base_path; Azure reads from the YAML's folder
        base = Path(source).resolve().parent
    task = str(_value(getattr(job, "task_type", None)) or "").lower()
    if task not in ("classification", "regression"):
        raise NotEmulated(f"AutoML task '{task}'", "amlemu runs AutoML classification and regression.")
    limits = training = None
    if job.limits is not None:
        limits = {
            k: getattr(job.limits, k, None)
            for k in (
                "max_trials",
                "max_concurrent_trials",
                "timeout_minutes",
                "trial_timeout_minutes",
                "exit_score",
                "enable_early_termination",
                "max_cores_per_trial",
                "max_nodes",
            )
        }
    if job.training is not None:
        t = job.training
        training = {
            "enable_onnx_compatible_models": t.enable_onnx_compatible_models,
            "enable_model_explainability": t.enable_model_explainability,
            "allowed_training_algorithms": [_value(a) for a in t.allowed_training_algorithms or []] or None,
            "blocked_training_algorithms": [_value(a) for a in t.blocked_training_algorithms or []] or None,
        }
    spec = {
        **header_spec(job, "automl"),
        "task": task,
        "primary_metric": _value(job.primary_metric),
        "target_column_name": job.target_column_name,
        "weight_column_name": job.weight_column_name,
        "training_data": _data(job.training_data, base),
        "validation_data": _data(job.validation_data, base),
        "test_data": _data(job.test_data, base),
        "n_cross_validations": _value(job.n_cross_validations),
        "validation_data_size": job.validation_data_size,
        "positive_label": getattr(job, "positive_label", None),
        "limits": {k: v for k, v in limits.items() if v is not None} if limits else None,
        "training": {k: v for k, v in training.items() if v is not None} if training else None,
        "featurization": _featurization(getattr(job, "featurization", None)),
    }
    return {k: v for k, v in spec.items() if v is not None}


def from_view(store: WorkspaceStore, record: dict[str, Any], view: dict[str, Any]):
    """A ``ClassificationJob`` or ``RegressionJob`` (best effort): its header (names, status, id,
    creation context) from the view, its settings from the record."""
    spec = record["spec"]
    inputs = {k: Input(type=v["type"], path=v["path"]) for k, v in spec["inputs"].items()}
    validation = spec["validation"]
    factory = automl.classification if spec["task"] == "classification" else automl.regression
    properties = dict(spec["properties"])
    if record.get("error"):
        properties["amlemu.error"] = record["error"]
    job = factory(
        training_data=inputs["training_data"],
        validation_data=inputs.get("validation_data"),
        target_column_name=spec["target_column_name"],
        primary_metric=spec["primary_metric"],
        n_cross_validations=validation.get("folds"),
        validation_data_size=validation.get("size"),
        compute=spec["compute"],
        experiment_name=record["experiment_name"],
        name=record["name"],
        display_name=spec["display_name"],
        description=spec["description"],
        tags=spec["tags"],
        properties=properties,
    )
    limits = spec["limits"]
    job.set_limits(
        max_trials=limits["max_trials"],
        max_concurrent_trials=limits["max_concurrent_trials"],
        timeout_minutes=limits["timeout_minutes"],
        trial_timeout_minutes=limits["trial_timeout_minutes"],
        exit_score=limits["exit_score"],
        enable_early_termination=limits.get("enable_early_termination", True),
        max_cores_per_trial=limits.get("max_cores_per_trial"),
        max_nodes=limits.get("max_nodes"),
    )
    training = spec["training"]
    job.set_training(
        enable_onnx_compatible_models=training["enable_onnx_compatible_models"],
        allowed_training_algorithms=training["allowed_training_algorithms"] or None,
        blocked_training_algorithms=training["blocked_training_algorithms"] or None,
    )
    featurization = spec.get("featurization")
    if featurization:
        job.set_featurization(
            mode=featurization["mode"],
            blocked_transformers=featurization["blocked_transformers"] or None,
            column_name_and_types=featurization["column_name_and_types"] or None,
            transformer_params={
                key: [ColumnTransformer(**entry) for entry in entries]
                for key, entries in featurization["transformer_params"].items()
            }
            or None,
        )
    job._status = view["status"]
    job._creation_context = view_system_data(view["creation_context"])
    job._id = view["id"]
    return job
