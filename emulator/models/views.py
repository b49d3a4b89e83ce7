"""A model version as Azure shows it: the ``az ml model show`` JSON and the ARM resource JSON."""

from __future__ import annotations

from typing import Any

from emulator import arm, config
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
