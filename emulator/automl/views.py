"""``az ml``-shaped JSON of an AutoML job."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from emulator import config
from emulator.arm import SCHEMAS
from emulator.jobs.views import job_creation_context, job_id, job_services, job_tracking
from emulator.store import WorkspaceStore
from emulator.tracking import filestore

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import AutoMLJobSpec, JobRecord


def trial_summaries(store: WorkspaceStore, job: dict) -> list[dict[str, Any]]:
    """Each trial: name, status, algorithm, settings and its primary metric."""
    metric = job["spec"]["primary_metric"]
    out = []
    for trial in sorted(store.list_jobs(job["name"]), key=lambda r: r["created_at"]):
        history = filestore.metric_history(store.mlflow_run_dir(trial["experiment_name"], trial["name"]), metric)
        props = trial["spec"]["properties"]
        out.append(
            {
                "name": trial["name"],
                "status": trial["status"],
                "run_algorithm": props.get("run_algorithm"),
                "hyperparameters": json.loads(props.get("hyperparameters", "{}")),
                metric: history[-1][1] if history else None,
            }
        )
    return out


def automl_view(store: WorkspaceStore, job: JobRecord[AutoMLJobSpec], *, tracking: bool = True) -> dict[str, Any]:
    spec = job["spec"]
    training = spec["training"]
    view = {
        "$schema": f"{SCHEMAS}/autoMLJob.schema.json",
        "compute": f"azureml:{spec['compute']}",
        "creation_context": job_creation_context(job),
        "description": spec["description"],
        "display_name": spec["display_name"],
        "experiment_name": job["experiment_name"],
        "id": job_id(store, job["name"]),
        "limits": {k: v for k, v in spec["limits"].items() if v is not None},
        "log_verbosity": "info",
        "name": job["name"],
        "outputs": {},
        "primary_metric": spec["primary_metric"],
        "properties": spec["properties"],
        "resourceGroup": config.RESOURCE_GROUP,
        "services": job_services(store, job["name"]),
        "status": job["status"],
        "tags": spec["tags"],
        "target_column_name": spec["target_column_name"],
        "task": spec["task"],
        "training": {
            k: v
            for k, v in {
                "enable_onnx_compatible_models": training["enable_onnx_compatible_models"],
                "enable_model_explainability": training["enable_model_explainability"],
                "allowed_training_algorithms": training["allowed_training_algorithms"] or None,
                "blocked_training_algorithms": training["blocked_training_algorithms"] or None,
            }.items()
            if v is not None
        },
        "type": "automl",
    }
    for key, value in spec["inputs"].items():
        view[key] = {"type": value["type"], "path": value["path"]}
    validation = spec["validation"]
    if validation["type"] == "cv":
        view["n_cross_validations"] = validation["folds"]
    elif validation["type"] == "holdout":
        view["validation_data_size"] = validation["size"]
    if job["status"] in ("Failed", "Canceled"):
        view["error"] = {"code": "UserError" if job["status"] == "Failed" else "Canceled", "message": job["error"]}
    if spec["properties"].get("best_child_run_id"):
        view["best_child_run_id"] = spec["properties"]["best_child_run_id"]
    if tracking:
        view.update(job_tracking(store, job))
        view["trials"] = trial_summaries(store, job)
    return {k: v for k, v in view.items() if v is not None}
