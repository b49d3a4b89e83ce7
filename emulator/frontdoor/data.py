"""Data assets: versions (put, get, list) and the assets themselves (Azure's data containers).

``ml_client.data.create_or_update(Data(path=<local path>))`` uploads the file or folder to the
default datastore first, through the blob service (:mod:`.blobs`, reached host-style through
the proxy), then puts the version with the ``azureml://datastores/...`` path it uploaded to; the
engine (:mod:`emulator.data.assets`) registers it, checking the data is there and of its type.
Archiving is a put of the version with ``isArchived`` (what the SDK's ``archive`` sends).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from emulator import arm
from emulator.data import assets
from emulator.errors import ValidationError
from emulator.frontdoor import resources
from emulator.store import WorkspaceStore

blueprint = Blueprint("data", __name__)
blueprint.url_value_preprocessor(resources.take_scope)

DATA = resources.WORKSPACE + "/data"


def version_view(store: WorkspaceStore, record: dict[str, Any]) -> Any:
    """A data version as ARM answers it: the SDK's REST model of the backend's ``Data`` entity, with the service's
    read-only fields."""
    from backends.data_entities import record_to_data  # on first use: it imports azure-ai-ml (~1.4 s at start)

    rest = record_to_data(store, record)._to_rest_object()
    tail = f"data/{record['name']}/versions/{record['version']}"
    resources.envelope(rest, store.name, tail, record["created_at"], record["updated_at"])
    rest["properties"]["isArchived"] = bool(record.get("is_archived"))
    return rest


def _next_version(store: WorkspaceStore, name: str) -> str:
    with store.transaction() as db:
        return store.next_version(db, assets.KIND, name)


def container_view(store: WorkspaceStore, entry: dict[str, Any]) -> Any:
    """A data asset as a whole (``DataContainer``): its type, latest and next version."""
    from azure.ai.ml._restclient.arm_ml_service.models import DataContainer, DataContainerProperties  # on first use

    rest = DataContainer(
        properties=DataContainerProperties(
            data_type=entry["type"],
            latest_version=entry["latest_version"],
            next_version=_next_version(store, entry["name"]),
            is_archived=bool(entry.get("is_archived")),
            tags={},
            properties={},
        )
    )
    return resources.envelope(rest, store.name, f"data/{entry['name']}", entry["created_at"], entry["updated_at"])


def _view_type() -> str:
    return request.args.get("listViewType") or "ActiveOnly"


@blueprint.get(DATA)
def list_assets():
    store = resources.backend().store
    return resources.answer(resources.page([container_view(store, e) for e in assets.list_assets(store, _view_type())]))


@blueprint.get(DATA + "/<name>")
def get_asset(name: str):
    store = resources.backend().store
    found = [e for e in assets.list_assets(store, "All") if e["name"] == name]
    if not found:
        assets.latest(store, name)  # raises ResourceNotFound, saying how to create it
    return resources.answer(container_view(store, found[0]))


@blueprint.get(DATA + "/<name>/versions")
def list_versions(name: str):
    store = resources.backend().store
    found = assets.list_versions(store, name, _view_type())  # newest first
    if "asc" in request.args.get("$orderBy", "").lower():
        found.reverse()
    top = request.args.get("$top", "")
    if top.isdigit():
        found = found[: int(top)]
    return resources.answer(resources.page([version_view(store, r) for r in found]))


@blueprint.get(DATA + "/<name>/versions/<version>")
def get_version(name: str, version: str):
    store = resources.backend().store
    return resources.answer(version_view(store, assets.get(store, name, version)))


@blueprint.put(DATA + "/<name>/versions/<version>")
def create_or_update_version(name: str, version: str):
    """Register the version the body describes (the SDK's ``DataVersionBase``), through the backend's
    ``data.create_or_update``; ``isArchived`` archives or restores it."""
    from azure.ai.ml._restclient.arm_ml_service.models import DataVersionBase  # on first use (SDK import)
    from azure.ai.ml.entities import Data

    body = resources.body()
    properties = body.get("properties")
    if not isinstance(properties, dict) or not properties.get("dataUri") or not properties.get("dataType"):
        raise ValidationError(f"Data '{name}' version '{version}' needs properties.dataUri and properties.dataType.")
    store = resources.backend().store
    rest = DataVersionBase({**body, "id": arm.resource_id(store.name, f"data/{name}/versions/{version}")})
    entity = Data._from_rest_object(rest)
    resources.backend().data.create_or_update(entity)
    archived = bool(properties.get("isArchived"))
    if bool(assets.get(store, name, version).get("is_archived")) != archived:
        assets.set_archived(store, name, archived, version)
    return resources.answer(version_view(store, assets.get(store, name, version)))
