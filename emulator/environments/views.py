"""An environment version as Azure shows it: the ``az ml environment show`` JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from emulator import arm, config
from emulator.environments import curated
from emulator.environments.registry import runtime_record
from emulator.runtime import builds
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


def curated_view(name: str, version: str | None = None, label: str | None = None) -> dict[str, Any]:
    """The ``az ml environment show`` JSON of a curated environment (``name`` as a workspace shows it,
    ``AzureML-sklearn-1.5``, or as the ``azureml`` registry does, ``sklearn-1.5``), with what a job on
    it gets here next to what Azure's image holds: ``local_runtime`` (how it runs in the configured
    mode), ``python`` and ``packages`` (each ``{"name", "azure", "local"}``; ``local`` is None until the
    environment is built), the ``substitutions`` its build made, and where Azure's list was read.

    Raises:
        ResourceNotFound: amlemu knows no curated environment of that name.
    """
    key = name[len(curated.PREFIX) :] if name.startswith(curated.PREFIX) else name
    env = curated.require(key)
    mode = curated.mode()
    how = curated.describe(env, mode)
    built = builds.build_record({"requirements": how.requirements, "python": how.python}) if how.requirements else None
    venv = next((b for b in (built or {}).get("builds", []) if b.get("venv")), None)
    if venv is None and how.requirements:  # built by another AMLEMU_HOME: the virtualenv cache is the machine's
        from emulator.runtime import venv as venvs  # only a built curated environment's view needs it

        found = venvs.cached(how.requirements, how.python)
        if found:
            made = json.loads((found / venvs.READY).read_text() or "{}")  # the build's own record of itself
            venv = {"venv": str(found), "python": made.get("python") or how.python or curated.host_python()}
            built = {**(built or {}), "substitutions": made.get("substitutions", [])}
    if how.requirements is None:
        local = curated.host_versions()
        local_python = curated.host_python()
        state = how.summary
    elif venv:
        local = curated.installed_versions(Path(venv["venv"]).glob("lib/python*/site-packages"))
        local_python = venv.get("python")
        state = how.summary
    else:
        local, local_python = {}, None
        state = (
            f"{how.summary}; not built yet: the first job on it builds it, or "
            f"`amlemu environment build --name {env.workspace_name}` now"
        )
    tail = f"versions/{version}" if version else f"labels/{label or 'latest'}"
    view = {
        "name": name,
        "version": version or label or "latest",
        "id": f"azureml://registries/{curated.REGISTRY}/environments/{env.name}/{tail}",
        "description": f"Azure ML's curated environment {env.name}",
        "os_type": "linux",
        "tags": {"Python": env.python} if env.python else {},
        "local_runtime": state,
        "curated_mode": mode,
        "python": {"azure": env.python, "local": local_python},
        "packages": _package_rows(env, local),
        "substitutions": (built or {}).get("substitutions", []),
        "notes": list(env.notes),
        "azure_list": {"source": env.source_url(), "read_on": curated.catalogue()["read_on"]} if env.source else None,
    }
    return {k: v for k, v in view.items() if v is not None}


def _package_rows(env: curated.CuratedEnvironment, local: dict[str, str]) -> list[dict[str, Any]]:
    """One row per package of Azure's list (then amlemu's additions): Azure's specifier and the version here."""
    rows = []
    for name, installed in zip(env.packages, env.distributions()):
        row = {
            "name": name,
            "azure": env.packages[name] or "unpinned",
            "local": local.get(curated.normalize(installed)),
        }
        if name in env.here:
            row["installed_here"] = env.here[name]
        rows.append(row)
    for name in env.adds:
        rows.append({"name": name, "azure": None, "local": local.get(curated.normalize(name)), "added_by": "amlemu"})
    return rows
