"""Data assets and datastores between azure-ai-ml entities and the engine.

``data_to_spec`` gives the data YAML dict the engine validates (a local path made absolute, as
the SDK resolves it against the entity's base path); ``record_to_data`` and ``record_to_datastore``
build the SDK's ``Data``, ``AzureBlobDatastore`` and ``AzureFileDatastore`` from the
``az ml data|datastore show`` views, so a field shown there is the field the SDK sees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from azure.ai.ml.entities import AzureBlobDatastore, AzureFileDatastore, Data

from backends.entities import entity_base_path, is_local_path, view_system_data
from emulator.data import datastores
from emulator.data.views import data_container_view, data_view, datastore_view
from emulator.store import WorkspaceStore


def data_to_spec(data: Any) -> tuple[dict[str, Any], Path]:
    """A ``Data`` entity as the data YAML dict, and the folder its relative paths start from."""
    base = entity_base_path(data)
    path = data.path
    if path is not None and is_local_path(path):
        path = str((base / str(path)).resolve())
    datastore = getattr(data, "datastore", None)
    spec = {
        "name": data.name,
        "version": data.version,
        "type": data.type,
        "path": str(path) if path is not None else None,
        "description": data.description,
        "tags": dict(data.tags or {}),
        "properties": dict(data.properties or {}),
        "datastore": str(datastore) if datastore else None,
    }
    return {k: v for k, v in spec.items() if v is not None}, base


def record_to_data(store: WorkspaceStore, record: dict[str, Any]) -> Any:
    """The SDK's ``Data`` of a data version, built from its ``az ml data show`` view."""
    view = data_view(store, record)
    return Data(
        name=view["name"],
        version=view["version"],
        path=view["path"],
        type=view["type"],
        description=view.get("description"),
        tags=view["tags"],
        properties=view["properties"],
        creation_context=view_system_data(view["creation_context"]),
        id=view["id"].removeprefix("azureml:"),
    )


def entry_to_data(store: WorkspaceStore, entry: dict[str, Any]) -> Any:
    """The SDK's ``Data`` of a whole data asset (a container, as ``ml_client.data.list()`` gives it)."""
    view = data_container_view(store, entry)
    data = Data(
        name=view["name"],
        type=view["type"],
        tags=view["tags"],
        properties=view["properties"],
        creation_context=view_system_data(view["creation_context"]),
    )
    data.latest_version = view["latest_version"]
    return data


def record_to_datastore(store: WorkspaceStore, datastore: datastores.Datastore) -> Any:
    """The SDK's ``AzureBlobDatastore`` or ``AzureFileDatastore``, built from the ``az ml datastore show`` view."""
    view = datastore_view(store, datastore)
    common = {"name": view["name"], "account_name": view["account_name"], "id": view["id"], "tags": view["tags"]}
    if view["type"] == "azure_file":
        return AzureFileDatastore(file_share_name=view["file_share_name"], **common)
    return AzureBlobDatastore(container_name=view["container_name"], **common)
