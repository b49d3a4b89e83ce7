"""An environment version as Azure shows it: the ``az ml environment show`` JSON."""

from __future__ import annotations

from typing import Any

from emulator import arm, config
from emulator.environments.registry import runtime_record
from emulator.store import WorkspaceStore


def environment_view(store: WorkspaceStore, env: dict) -> dict[str, Any]:
    """The ``az ml environment show`` JSON of a registered environment version, with amlemu's
    ``local_runtime`` (what it runs in here)."""
    view = {
        "build": env.get("build"),
        "conda_file": env.get("conda_file"),
        "creation_context": arm.creation_context(env["created_at"], None, env["updated_at"]),
        "description": env.get("description"),
        "id": arm.arm_id(store.name, f"environments/{env['name']}/versions/{env['version']}"),
        "image": env.get("image"),
        "name": env["name"],
        "os_type": env.get("os_type", "linux"),
        "resourceGroup": config.RESOURCE_GROUP,
        "tags": env.get("tags") or {},
        "version": env["version"],
        "local_runtime": runtime_record(f"azureml:{env['name']}:{env['version']}", env)["note"],
    }
    return {k: v for k, v in view.items() if v is not None}
