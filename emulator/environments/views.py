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


def environment_resource(store: WorkspaceStore, env: dict) -> dict[str, Any]:
    """The ARM resource JSON of an environment version, as the Azure ML REST API returns it
    (``EnvironmentVersion``; ``condaFile`` is the YAML text)."""
    import yaml  # here: only the REST shape needs it

    view = environment_view(store, env)
    build = view.get("build")
    conda = view.get("conda_file")
    properties = {
        "description": view.get("description"),
        "tags": view["tags"],
        "properties": env.get("properties") or {},
        "isAnonymous": False,
        "isArchived": False,
        "environmentType": "UserCreated",
        "image": view.get("image"),
        "condaFile": yaml.safe_dump(conda, sort_keys=False) if isinstance(conda, dict) else conda,
        "build": {"contextUri": build["path"], "dockerfilePath": build["dockerfile_path"]} if build else None,
        "osType": view["os_type"].capitalize(),
    }
    return {
        "id": view["id"].removeprefix("azureml:"),
        "name": view["version"],
        "type": "Microsoft.MachineLearningServices/workspaces/environments/versions",
        "properties": {k: v for k, v in properties.items() if v is not None},
        "systemData": arm.system_data(env["created_at"], None, env["updated_at"]),
    }
