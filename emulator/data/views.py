"""Data assets and datastores as ``az ml`` shows them (``data show|list``, ``datastore show|list``).

Each view carries one amlemu extra, ``local_path``: where the data (or the datastore's folder) is on
this machine, as an environment's view carries ``local_runtime``. The SDK's entities are built from
these views without it.
"""

from __future__ import annotations

from typing import Any

from emulator import arm, config
from emulator.data import assets, datastores
from emulator.errors import EmulatorError
from emulator.store import WorkspaceStore


def data_view(store: WorkspaceStore, record: dict[str, Any]) -> dict[str, Any]:
    """The ``az ml data show`` JSON of a data asset version."""
    try:
        local = str(assets.local_path(store, record))
    except EmulatorError:  # a URL: nothing local to point at
        local = None
    view = {
        "creation_context": arm.creation_context(record["created_at"], None, record["updated_at"]),
        "description": record.get("description"),
        "id": arm.arm_id(store.name, f"data/{record['name']}/versions/{record['version']}"),
        "name": record["name"],
        "path": record["path"],
        "properties": record.get("properties") or {},
        "resourceGroup": config.RESOURCE_GROUP,
        "tags": record.get("tags") or {},
        "type": record["type"],
        "version": record["version"],
        "local_path": local,
    }
    return {k: v for k, v in view.items() if v is not None}


def data_container_view(store: WorkspaceStore, entry: dict[str, Any]) -> dict[str, Any]:
    """One data asset in ``az ml data list`` (no ``--name``): its name and latest version."""
    return {
        "creation_context": arm.creation_context(entry["created_at"], None, entry["updated_at"]),
        "id": arm.arm_id(store.name, f"data/{entry['name']}"),
        "latest_version": entry["latest_version"],
        "name": entry["name"],
        "properties": {},
        "resourceGroup": config.RESOURCE_GROUP,
        "tags": {},
        "type": entry["type"],
    }


def datastore_view(store: WorkspaceStore, datastore: datastores.Datastore) -> dict[str, Any]:
    """The ``az ml datastore show`` JSON of a datastore (credentials are never shown, as ``az ml`` omits them)."""
    view = {
        "account_name": datastore.account_name,
        "container_name": datastore.container_name,
        "credentials": {},
        "endpoint": "core.windows.net",
        "file_share_name": datastore.file_share_name,
        "id": arm.arm_id(store.name, f"datastores/{datastore.name}").removeprefix("azureml:"),
        "name": datastore.name,
        "protocol": "https",
        "resourceGroup": config.RESOURCE_GROUP,
        "tags": {},
        "type": datastore.type,
        "local_path": str(datastore.folder),
    }
    return {k: v for k, v in view.items() if v is not None}
