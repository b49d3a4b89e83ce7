"""Local endpoints: what azure-ai-ml's ``local=True`` (``az ml ... --local``) does, on amlemu's endpoint hosts.

On Azure, ``local=True`` deploys on the caller's machine (a Docker container) instead of in the workspace,
with rules of its own, which these functions keep:

- an endpoint has one deployment, which serves every request: no traffic rules, no keys or tokens, no
  network rules (the gateway reads the record's ``local`` flag);
- creating a deployment replaces the endpoint's other deployment (azure-ai-ml removes the endpoint's
  containers before it starts the new one), and creates the endpoint when there is none;
- the deployment runs one container: one replica, whatever ``instance_count`` says;
- an endpoint without a deployment has no state and no scoring URI, and invoking it answers a sentence
  saying so; a failed deployment refuses invocations;
- a missing local endpoint or deployment raises azure-ai-ml's ``LocalEndpointNotFoundError`` words.

Local and workspace endpoints are apart on Azure; amlemu keeps one endpoint per name, so a name taken by
one kind is refused to the other (:func:`emulator.endpoints.records.create_or_update_endpoint`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.endpoints import records, service
from emulator.endpoints.service import DeploymentFailed
from emulator.errors import ResourceNotFound, ValidationError

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store import WorkspaceStore
    from emulator.store.records import DeploymentRecord, EndpointRecord

#: what azure-ai-ml answers when a local endpoint without a deployment is invoked
NO_DEPLOYMENT_ANSWER = (
    "This local endpoint does not have any deployments, so it cannot be invoked."
    "Please use 'az ml online-deployment create --local' before invoking."
)


class LocalEndpointNotFound(ResourceNotFound):
    """No local endpoint (or local deployment) of that name: azure-ai-ml's ``LocalEndpointNotFoundError``."""

    def __init__(self, endpoint_name: str, deployment_name: str | None = None):
        what = (
            f"Local deployment ({endpoint_name} / {deployment_name})"
            if deployment_name
            else f"Local endpoint ({endpoint_name})"
        )
        super().__init__(f"{what} does not exist.")
        self.endpoint_name, self.deployment_name = endpoint_name, deployment_name


class LocalDeploymentFailed(DeploymentFailed):
    """A local deployment that did not come up: azure-ai-ml's ``LocalEndpointInFailedStateError``, with the reason."""

    def __init__(self, endpoint_name: str, deployment_name: str, reason: str | None):
        super().__init__(
            f"Local deployment ({endpoint_name} / {deployment_name}) is in failed state. Try getting logs to debug "
            "scoring script." + (f"\n{reason}" if reason else "")
        )
        self.endpoint_name, self.deployment_name = endpoint_name, deployment_name


def _endpoint_record(store: WorkspaceStore, name: str) -> EndpointRecord:
    try:
        record = records.get_endpoint(store, name)
    except ResourceNotFound:
        raise LocalEndpointNotFound(name) from None
    if not record.get("local"):
        raise LocalEndpointNotFound(name)
    return record


def workspace_endpoint(store: WorkspaceStore, name: str) -> None:
    """Refuse a local endpoint to a call without ``local=True`` (``--local``): as on Azure, local endpoints are not
    in the workspace. A missing endpoint passes: the call itself says so, in its own words."""
    try:
        record = records.get_endpoint(store, name)
    except ResourceNotFound:
        return
    if record.get("local"):
        raise ResourceNotFound(
            f"Online endpoint '{name}' is a local endpoint (created with local=True / --local); as on Azure, only "
            "calls with local=True (--local) reach it. Pass local=True (--local)."
        )


def _shown(deployment: DeploymentRecord) -> DeploymentRecord:
    """A local deployment as azure-ai-ml shows it: ``instance_type: local``."""
    return {**deployment, "instance_type": "local"}


def _deployment(store: WorkspaceStore, endpoint: str) -> DeploymentRecord | None:
    """The endpoint's deployment (the newest, while a replacement comes up), or None."""
    deployments = records.list_deployments(store, endpoint)
    return deployments[-1] if deployments else None


# -- endpoints ------------------------------------------------------------------------------------
def create_or_update_endpoint(store: WorkspaceStore, spec: dict[str, Any]) -> EndpointRecord:
    service.create_or_update_endpoint(store, spec, local=True)
    return get_endpoint(store, spec["name"])


def get_endpoint(store: WorkspaceStore, name: str) -> EndpointRecord:
    """The local endpoint as azure-ai-ml shows it: the state and scoring URI are its deployment's (none without)."""
    _endpoint_record(store, name)
    record = service.get_endpoint(store, name)
    deployment = _deployment(store, name)
    record["provisioning_state"] = deployment["provisioning_state"] if deployment else None  # type: ignore[typeddict-item]
    if not deployment:
        record.pop("scoring_uri", None)
    record.pop("openapi_uri", None)
    return record


def list_endpoints(store: WorkspaceStore) -> list[EndpointRecord]:
    return [get_endpoint(store, r["name"]) for r in records.list_endpoints(store) if r.get("local")]


def delete_endpoint(store: WorkspaceStore, name: str) -> None:
    _endpoint_record(store, name)
    service.delete_endpoint(store, name)


def invoke(
    store: WorkspaceStore, name: str, body: bytes, deployment: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """POST ``body`` to the local endpoint's deployment, without credentials (a local endpoint takes none)."""
    _endpoint_record(store, name)
    current = _deployment(store, name)
    if current is None or deployment not in (None, current["deployment_name"]):
        return 200, {"content-type": "text/plain"}, NO_DEPLOYMENT_ANSWER.encode()  # azure-ai-ml's answer, not an error
    if current["provisioning_state"] == "Failed":
        raise LocalDeploymentFailed(name, current["deployment_name"], current.get("error"))
    return service.invoke(store, name, body, deployment, authorize=False)


# -- deployments ------------------------------------------------------------------------------------
def create_or_update_deployment(store: WorkspaceStore, spec: dict[str, Any], base_path: Path) -> DeploymentRecord:
    """Deploy locally: the endpoint is created if missing, the endpoint's other deployment is replaced."""
    endpoint, name = spec.get("endpoint_name"), spec.get("name")
    if not endpoint:
        raise ValidationError("The deployment needs 'endpoint_name'.")
    try:
        records.get_endpoint(store, str(endpoint))
        created = False
    except ResourceNotFound:
        service.create_or_update_endpoint(store, {"name": endpoint}, local=True)  # validates the name
        created = True
    _endpoint_record(store, str(endpoint))
    others = [
        d["deployment_name"] for d in records.list_deployments(store, str(endpoint)) if d["deployment_name"] != name
    ]
    try:
        record = service.create_or_update_deployment(store, {**spec, "instance_count": 1}, base_path)
    except DeploymentFailed as exc:
        _remove(store, str(endpoint), others)
        raise LocalDeploymentFailed(str(endpoint), str(name), exc.message) from None
    except Exception:
        if created:  # bad input leaves nothing behind, not even the endpoint made for it
            service.delete_endpoint(store, str(endpoint))
        raise
    _remove(store, str(endpoint), others)
    return _shown(record)


def _remove(store: WorkspaceStore, endpoint: str, deployments: list[str]) -> None:
    for other in deployments:
        service.delete_deployment(store, endpoint, other)


def get_deployment(store: WorkspaceStore, endpoint: str, name: str) -> DeploymentRecord:
    try:
        _endpoint_record(store, endpoint)
        return _shown(service.get_deployment(store, endpoint, name))
    except ResourceNotFound:
        raise LocalEndpointNotFound(endpoint, name) from None


def list_deployments(store: WorkspaceStore) -> list[DeploymentRecord]:
    """Every local deployment, of every local endpoint: azure-ai-ml's ``list(endpoint_name, local=True)`` lists
    them all, whatever endpoint it is given."""
    return [
        _shown(d)
        for e in records.list_endpoints(store)
        if e.get("local")
        for d in records.list_deployments(store, e["name"])
    ]


def delete_deployment(store: WorkspaceStore, endpoint: str, name: str) -> None:
    get_deployment(store, endpoint, name)
    service.delete_deployment(store, endpoint, name)


def get_logs(store: WorkspaceStore, endpoint: str, name: str, lines: int = 100) -> str:
    """The deployment's container log: its scoring server's output."""
    get_deployment(store, endpoint, name)
    return service.get_logs(store, endpoint, name, lines)
