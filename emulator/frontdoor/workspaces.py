"""Workspaces (get, list) and the status of long-running operations."""

from __future__ import annotations

import uuid

from flask import Blueprint, g

from emulator import config, errors
from emulator.arm import system_data
from emulator.frontdoor import resources, settings

blueprint = Blueprint("workspaces", __name__)
blueprint.url_value_preprocessor(resources.take_scope)


def view(name: str) -> dict:
    """A workspace as ARM answers it (``Microsoft.MachineLearningServices/workspaces``)."""
    backend = resources.backend(name)
    front = resources.front()
    path = resources.workspace_path(name)
    created = backend.store.root.stat().st_ctime
    rg = f"/subscriptions/{g.subscription}/resourceGroups/{g.resource_group}/providers"
    return {
        "id": path,
        "name": name,
        "type": f"{resources.PROVIDER}/workspaces",
        "location": "local",
        "kind": "Default",
        "tags": {},
        "identity": {"type": "SystemAssigned", "principalId": str(uuid.UUID(int=0)), "tenantId": str(uuid.UUID(int=0))},
        "sku": {"name": "Basic", "tier": "Basic"},
        "systemData": system_data(created, None),
        "properties": {
            "friendlyName": name,
            "description": "amlemu local workspace",
            "workspaceId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"amlemu:{config.home()}:{name}")),
            "provisioningState": "Succeeded",
            "discoveryUrl": f"{front.https_url}/discovery",
            "mlFlowTrackingUri": f"{front.http_url}/mlflow/v1.0{path}",
            "storageAccount": f"{rg}/Microsoft.Storage/storageAccounts/{settings.STORAGE_ACCOUNT}",
            "keyVault": f"{rg}/Microsoft.KeyVault/vaults/amlemu-kv",
            "applicationInsights": f"{rg}/Microsoft.Insights/components/amlemu-ai",
            "publicNetworkAccess": "Enabled",
            "hbiWorkspace": False,
            "v1LegacyMode": False,
            "enableDataIsolation": False,
            "creationTime": system_data(created, None)["createdAt"],
        },
    }


def names() -> list[str]:
    """Every local workspace (what a subscription-wide list or quota adds up)."""
    return sorted(p.name for p in (config.home() / "workspaces").glob("*") if p.is_dir())


@blueprint.get(resources.WORKSPACE)
def get():
    return resources.answer(view(g.workspace))


@blueprint.get(
    "/subscriptions/<subscription>/resourceGroups/<resource_group>/providers/Microsoft.MachineLearningServices/workspaces"
)
def list_in_group(subscription: str, resource_group: str):
    g.subscription, g.resource_group = subscription, resource_group
    return resources.answer({"value": [view(n) for n in names()]})


@blueprint.get("/subscriptions/<subscription>/providers/Microsoft.MachineLearningServices/workspaces")
def list_in_subscription(subscription: str):
    return list_in_group(subscription, config.RESOURCE_GROUP)


@blueprint.get(
    "/subscriptions/<subscription>/providers/Microsoft.MachineLearningServices/locations/<location>"
    "/mfeOperationsStatus/<op_id>"
)
def operation(subscription: str, location: str, op_id: str):
    status = resources.operation_status(op_id, wait=resources.LONG_POLL_S)
    if status is None:
        raise errors.ResourceNotFound(
            f"Operation '{op_id}' not found: operation statuses live as long as the `amlemu serve` that started them."
        )
    # azure-core waits Retry-After between polls, else the client's polling_interval (30 s for most SDK calls);
    # this poll was already held open for a change (LONG_POLL_S), so the next one may come at once
    headers = {"Retry-After": "0"} if status["status"] == "InProgress" else None
    return resources.answer(status, headers=headers)
