"""A model version as Azure shows it: the ``az ml model show`` JSON and the ARM resource JSON."""

from __future__ import annotations

from typing import Any

from emulator import arm, config
from emulator.models.registry import files
from emulator.store import WorkspaceStore


def model_view(store: WorkspaceStore, model: dict) -> dict[str, Any]:
    """The ``az ml model show`` JSON of a registered model version."""
    view = {
        "creation_context": arm.creation_context(model["created_at"], None, model["updated_at"]),
        "description": model.get("description"),
        "id": arm.arm_id(store.name, f"models/{model['name']}/versions/{model['version']}"),
        "job_name": model.get("job_name"),
        "name": model["name"],
        "path": model["path"],
        "properties": model.get("properties") or {},
        "resourceGroup": config.RESOURCE_GROUP,
        "stage": model.get("stage"),
        "tags": model.get("tags") or {},
        "type": model["type"],
        "version": model["version"],
    }
    return {k: v for k, v in view.items() if v is not None}


def model_resource(store: WorkspaceStore, model: dict) -> dict[str, Any]:
    """The ARM resource JSON of a model version, as the Azure ML REST API returns it (``ModelVersion``).

    ``modelUri`` is where the files are here, as ``ml_client.models.get`` gives the path.
    """
    view = model_view(store, model)
    properties = {
        "description": view.get("description"),
        "tags": view["tags"],
        "properties": view["properties"],
        "isAnonymous": False,
        "isArchived": False,
        "flavors": {},
        "jobName": view.get("job_name"),
        "modelType": view["type"],
        "modelUri": str(files(store, model)),
        "stage": view.get("stage"),
    }
    return {
        "id": view["id"].removeprefix("azureml:"),
        "name": view["version"],
        "type": "Microsoft.MachineLearningServices/workspaces/models/versions",
        "properties": {k: v for k, v in properties.items() if v is not None},
        "systemData": arm.system_data(model["created_at"], None, model["updated_at"]),
    }
