"""Online endpoints and deployments as Azure shows them: the ``az ml online-endpoint show`` and
``az ml online-deployment show`` JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator import arm
from emulator.store import WorkspaceStore

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import DeploymentRecord, EndpointRecord


def endpoint_view(store: WorkspaceStore, record: EndpointRecord) -> dict[str, Any]:
    """The ``az ml online-endpoint show`` JSON of a managed or Kubernetes endpoint."""
    view = {
        "auth_mode": record["auth_mode"],
        "id": arm.resource_id(store.name, f"onlineEndpoints/{record['name']}"),
        "kind": "K8S" if record["kind"] == "kubernetes" else "Managed",
        "location": "local",
        "mirror_traffic": record.get("mirror_traffic") or {},
        "name": record["name"],
        "openapi_uri": record.get("openapi_uri"),
        "properties": {**(record.get("properties") or {}), "createdAt": arm.iso(record["created_at"])},
        "provisioning_state": record.get("provisioning_state", "Succeeded"),
        "public_network_access": record.get("public_network_access", "enabled"),
        "resourceGroup": "amlemu",
        "scoring_uri": record.get("scoring_uri"),
        "tags": record.get("tags") or {},
        "traffic": record.get("traffic") or {},
    }
    if record.get("description"):
        view["description"] = record["description"]
    if record.get("compute"):
        view["compute"] = f"azureml:{record['compute']}"
    return view


def deployment_view(store: WorkspaceStore, record: DeploymentRecord) -> dict[str, Any]:
    """The ``az ml online-deployment show`` JSON of a deployment, with amlemu's ``runtime``."""
    model = record.get("model")
    view = {
        "app_insights_enabled": False,
        "endpoint_name": record["endpoint_name"],
        "environment": record.get("environment") if isinstance(record.get("environment"), str) else None,
        "environment_variables": record.get("environment_variables") or {},
        "id": arm.resource_id(
            store.name, f"onlineEndpoints/{record['endpoint_name']}/deployments/{record['deployment_name']}"
        ),
        "instance_count": record["instance_count"],
        "instance_type": record.get("instance_type"),
        "liveness_probe": record["liveness_probe"],
        "model": f"azureml:{model['name']}:{model['version']}" if model else None,
        "name": record["deployment_name"],
        "provisioning_state": record["provisioning_state"],
        "readiness_probe": record["readiness_probe"],
        "request_settings": record["request_settings"],
        "scale_settings": record["scale_settings"],
        "tags": record.get("tags") or {},
        "type": record["type"],
        "runtime": record.get("runtime"),
    }
    if record.get("code"):
        view["code_configuration"] = {"code": record["code"], "scoring_script": record["scoring_script"]}
    if record.get("error"):
        view["error"] = record["error"]
    return view
