"""Online endpoints and their deployments: ARM's ``onlineEndpoints`` routes over the local backend.

Requests are parsed into the SDK's REST models and entities (``OnlineEndpoint._from_rest_object``,
``OnlineDeployment._from_rest_object``) and handed to ``online_endpoints`` / ``online_deployments`` of
the workspace's local backend, as ``amlemu.connect()`` users call them; answers are those entities'
REST objects with the read-only fields the engine knows (provisioning state, scoring URI, swagger URI).

Creates, updates, deletes and key regenerations are long-running operations, as on Azure: the answer
carries ``Azure-AsyncOperation`` and the work runs in the background. While one runs, the resource shows
``Creating``, ``Updating`` or ``Deleting``; a deployment that does not come up fails its operation with
the engine's reason and its scoring server's log tail, so ``begin_create_or_update(...).result()``
raises with it. The scoring URI is the endpoint's gateway on loopback (plain HTTP), which
``online_endpoints.invoke`` calls with the key or token as a bearer token.

References arrive as ARM ids: a model's or an environment's (``.../models/<n>/versions/<v>``) becomes
the engine's ``azureml:<n>:<v>``, a code asset's (``.../codes/<n>/versions/<v>``) the folder its upload
landed in, which the engine snapshots. Nothing a client sends is read as a local path.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Blueprint, g

from emulator import errors
from emulator.endpoints import records
from emulator.endpoints import service as endpoint_service
from emulator.frontdoor import codes, resources

blueprint = Blueprint("endpoints", __name__)
blueprint.url_value_preprocessor(resources.take_scope)

ENDPOINTS = f"{resources.WORKSPACE}/onlineEndpoints"
ENDPOINT = f"{ENDPOINTS}/<endpoint>"
DEPLOYMENTS = f"{ENDPOINT}/deployments"
DEPLOYMENT = f"{DEPLOYMENTS}/<deployment>"
ENDPOINT_TYPE = f"{resources.PROVIDER}/workspaces/onlineEndpoints"
DEPLOYMENT_TYPE = f"{ENDPOINT_TYPE}/deployments"

#: getLogs' container types (REST spelling) as the engine names them
_CONTAINERS = {"inferenceserver": "inference-server", "storageinitializer": "storage-initializer"}


# --- what is in flight ------------------------------------------------------------------------------------------


class _InFlight:
    """Endpoints and deployments with an operation running in this process: the state they show meanwhile
    (``Creating``, ``Updating``, ``Deleting``) and, for one not yet in the store, the body the request gave."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ops: dict[tuple[str, ...], tuple[int, str, dict[str, Any] | None]] = {}
        self._tickets = itertools.count(1)

    def begin(self, key: tuple[str, ...], state: str, body: dict[str, Any]) -> int:
        with self._lock:
            ticket = next(self._tickets)
            self._ops[key] = (ticket, state, body)
            return ticket

    def end(self, key: tuple[str, ...], ticket: int) -> None:
        with self._lock:
            if self._ops.get(key, (None,))[0] == ticket:  # a later operation on the same resource keeps its mark
                del self._ops[key]

    def state(self, key: tuple[str, ...]) -> str | None:
        with self._lock:
            found = self._ops.get(key)
            return found[1] if found else None

    def body(self, key: tuple[str, ...]) -> dict[str, Any]:
        """The body of the request whose operation runs on ``key`` (``{}`` for none, or a delete)."""
        with self._lock:
            found = self._ops.get(key)
            return found[2] if found else {}

    def pending(self, prefix: tuple[str, ...]) -> dict[tuple[str, ...], dict[str, Any]]:
        """Bodies of resources being created under ``prefix`` (the key minus its last part)."""
        with self._lock:
            return {k: body for k, (_, state, body) in self._ops.items() if k[:-1] == prefix and state == "Creating"}


_in_flight = _InFlight()


def _key(endpoint: str, deployment: str | None = None) -> tuple[str, ...]:
    return (g.workspace, endpoint) if deployment is None else (g.workspace, endpoint, deployment)


def _long_running(
    key: tuple[str, ...], state: str, work: Callable[[], Any], answer: dict[str, Any] | None, status: int
) -> Any:
    """Start ``work`` as an LRO, ``key`` showing ``state`` until it ends; answer ``status`` with the LRO headers."""
    ticket = _in_flight.begin(key, state, answer or {})

    def run() -> None:
        try:
            work()
        finally:
            _in_flight.end(key, ticket)

    op_id = resources.start_operation(run)
    location = resources.operation_url(op_id) if status == 202 else None
    return resources.answer(answer or {}, status, resources.lro_headers(op_id, location))


def _listed(found: list[dict[str, Any]], prefix: tuple[str, ...]) -> Any:
    """A list answer: the views of the stored resources under ``prefix``, and of those whose create still runs
    (the body their request gave)."""
    names = {b["name"] for b in found}
    found += [b for k, b in _in_flight.pending(prefix).items() if k[-1] not in names]
    return resources.answer({"value": found})


def _got(view: Callable[[], dict[str, Any]], key: tuple[str, ...]) -> Any:
    """The answer to a GET of ``key``: its ``view``, or while its create runs the body its request gave (a resource
    not in the store yet), else 404."""
    pending = _in_flight.pending(key[:-1]).get(key)
    try:
        return resources.answer(view())
    except errors.ResourceNotFound:
        if pending is None:
            raise
        return resources.answer(pending)


def _exists(get: Callable[[], Any]) -> bool:
    try:
        get()
        return True
    except errors.ResourceNotFound:
        return False


# --- references: ARM ids in, the engine's azureml:<name>:<version> out, and back -----------------------------


def _asset(ref: str, kind: str, field: str) -> str:
    """``azureml:<n>:<v>`` of a ``kind`` asset version of this workspace named by ``ref`` (its ARM id), or a 400."""
    asset = resources.parse_reference(ref, (kind,), workspace=g.workspace, field=f"'{field}'")
    if asset.version is None:
        raise errors.ValidationError(
            f"'{field}' must name a {kind[:-1]} version ({resources.workspace_path()}/{kind}/<name>/versions/"
            f"<version>); got '{ref}'."
        )
    return asset.short


def _model_reference(ref: str | None) -> str | None:
    if not ref or ref.startswith("azureml://registries/"):
        return ref  # a registry model: the engine says it is not emulated
    return _asset(ref, "models", "properties.model")


def _environment_reference(ref: str | None) -> str | None:
    """A workspace environment's ARM id becomes ``azureml:<n>:<v>``; a curated one (``azureml:AzureML-...``
    or ``azureml://registries/azureml/...``, as the SDK sends them) goes to the engine as it is."""
    if not ref or ref.startswith(("azureml://registries/", "azureml:AzureML-")):
        return ref
    return _asset(ref, "environments", "properties.environmentId")


def _code_folder(ref: str) -> str:
    """The folder a code asset version's upload landed in (the engine snapshots it), from its ARM id."""
    return str(codes.code_folder_of(resources.backend().store, ref))


#: beside a deployment's files: which code asset each snapshot of its code came from (``{snapshot: codeId}``)
_CODE_IDS = "frontdoor-code-ids.json"


def _code_ids(endpoint: str, deployment: str) -> Path:
    return records.deployment_dir(resources.backend().store, endpoint, deployment) / _CODE_IDS


def _remember_code_id(path: Path, entity: Any, code_id: str) -> None:
    """Record that the deployment's code snapshot came from ``code_id`` (the engine keeps only the snapshot)."""
    code = entity.code_configuration.code if entity.code_configuration else None
    if not code:
        return
    known = json.loads(path.read_text()) if path.is_file() else {}
    known.setdefault(str(code), code_id)  # a snapshot kept for unchanged code keeps its first asset
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{threading.get_ident()}")
    staged.write_text(json.dumps(known))
    staged.replace(path)  # a reader never sees half a file


def _code_id(path: Path, snapshot: str, in_flight: dict[str, Any]) -> str:
    """The ``codeId`` to answer for a deployment's code snapshot: the asset it came from, as far as known."""
    pending = (in_flight.get("properties") or {}).get("codeConfiguration") or {}
    if pending.get("codeId"):
        return pending["codeId"]
    known = json.loads(path.read_text()) if path.is_file() else {}
    return known.get(snapshot, snapshot)


def _arm_asset(ref: str | None, kind: str) -> str | None:
    """The request-scoped ARM id of the engine's ``azureml:<n>:<v>`` (curated and registry ones stay)."""
    if not ref or not ref.startswith("azureml:") or ref.startswith(("azureml://", "azureml:AzureML-")):
        return ref
    asset = resources.parse_reference(ref, (kind,))
    return f"{resources.workspace_path()}/{kind}/{asset.name}/versions/{asset.version}" if asset.version else ref


def _compute_name(ref: str | None) -> str | None:
    """A compute's ARM id becomes the engine's ``azureml:<name>``; anything else goes to the engine as it is."""
    if not resources.is_arm_id(ref):
        return ref
    compute = resources.parse_reference(ref, ("computes",), workspace=g.workspace, field="'compute'")
    return f"azureml:{compute.name}"


# --- rendering ------------------------------------------------------------------------------------------------


def _system_data(entity: Any) -> dict[str, Any]:
    """ARM's ``systemData`` of an entity; ``lastModifiedAt`` always set (the SDK's parser formats it)."""
    data = getattr(entity, "_system_data", None) or getattr(entity, "creation_context", None)
    if data is None or data.created_at is None:
        return {}
    created = data.created_at.isoformat().replace("+00:00", "Z")
    modified = (data.last_modified_at or data.created_at).isoformat().replace("+00:00", "Z")
    by = data.created_by or "local user"
    return {
        "createdAt": created,
        "createdBy": by,
        "createdByType": "User",
        "lastModifiedAt": modified,
        "lastModifiedBy": by,
        "lastModifiedByType": "User",
    }


def _endpoint_json(entity: Any, state: str | None = None, current: Any = None) -> dict[str, Any]:
    """ARM's JSON of ``entity``, its URIs those of ``current`` (the stored endpoint, when ``entity`` is a request)."""
    rest = entity._to_rest_online_endpoint(location="local")
    props = rest.properties
    props.scoring_uri = (current or entity).scoring_uri
    props.swagger_uri = (current or entity).openapi_uri
    props.provisioning_state = state or str(entity.provisioning_state or "Succeeded")
    compute = getattr(entity, "compute", None)
    if compute:
        props.compute = f"{resources.workspace_path()}/computes/{str(compute).removeprefix('azureml:')}"
    body = rest.as_dict()
    body.update(
        id=f"{resources.workspace_path()}/onlineEndpoints/{entity.name}",
        name=entity.name,
        type=ENDPOINT_TYPE,
        kind="K8S" if compute else "Managed",
        systemData=_system_data(entity),
    )
    return body


def _endpoint_view(name: str) -> dict[str, Any]:
    entity = resources.backend().online_endpoints.get(name)
    return _endpoint_json(entity, _in_flight.state(_key(name)))


def _deployment_json(entity: Any, state: str | None = None) -> dict[str, Any]:
    entity = copy.copy(entity)  # the references change for the answer only
    entity.model = _arm_asset(entity.model, "models")
    entity.environment = _arm_asset(entity.environment, "environments")
    rest = entity._to_rest_object(location="local")
    rest.properties.provisioning_state = state or str(entity.provisioning_state or "Succeeded")
    body = rest.as_dict()
    body["sku"] = {**body.get("sku", {}), "tier": "Standard"}
    body["properties"].setdefault("scaleSettings", {"scaleType": "Default"})  # the SDK's parser needs one
    body.update(
        id=f"{resources.workspace_path()}/onlineEndpoints/{entity.endpoint_name}/deployments/{entity.name}",
        name=entity.name,
        type=DEPLOYMENT_TYPE,
        systemData=_system_data(entity),
    )
    return body


def _deployment_view(entity: Any) -> dict[str, Any]:
    """A stored deployment's JSON, the state and code of an operation running on it in front."""
    key = _key(entity.endpoint_name, entity.name)
    if entity.code_configuration is not None and entity.code_configuration.code:
        entity.code_configuration.code = _code_id(
            _code_ids(entity.endpoint_name, entity.name), str(entity.code_configuration.code), _in_flight.body(key)
        )
    return _deployment_json(entity, _in_flight.state(key))


# --- parsing --------------------------------------------------------------------------------------------------


def _parse(what: str, build: Callable[[], Any]) -> Any:
    """An entity from a request body, or a 400 saying why the SDK's own parser refused it."""
    try:
        return build()
    except errors.EmulatorError:
        raise
    except Exception as exc:  # the SDK's models and entities raise many kinds on a malformed body
        raise errors.ValidationError(f"The body is not a valid {what}: {type(exc).__name__}: {exc}") from None


def _endpoint_from_body(name: str, body: dict[str, Any]) -> Any:
    # azure-ai-ml on first use: `amlemu serve` starts without its ~1.4 s import
    from azure.ai.ml._restclient.arm_ml_service.models import OnlineEndpoint as RestOnlineEndpoint
    from azure.ai.ml.entities import OnlineEndpoint

    if not isinstance(body.get("properties"), dict):
        raise errors.ValidationError("The online endpoint's body needs 'properties' (with at least 'authMode').")
    entity = _parse("online endpoint", lambda: OnlineEndpoint._from_rest_object(RestOnlineEndpoint(body)))
    entity.name = name
    if getattr(entity, "compute", None):
        entity.compute = _compute_name(entity.compute)
    return entity


def _deployment_from_body(endpoint: str, name: str, body: dict[str, Any]) -> Any:
    # azure-ai-ml on first use: `amlemu serve` starts without its ~1.4 s import
    from azure.ai.ml._restclient.arm_ml_service.models import OnlineDeployment as RestOnlineDeployment
    from azure.ai.ml.entities import OnlineDeployment

    props = body.get("properties")
    if not isinstance(props, dict):
        raise errors.ValidationError("The online deployment's body needs 'properties' (with 'endpointComputeType').")
    body = {
        **body,
        "id": f"{resources.workspace_path()}/onlineEndpoints/{endpoint}/deployments/{name}",
        "name": name,
        "sku": body.get("sku") or {"name": "Default"},
        "properties": {"scaleSettings": {"scaleType": "Default"}, **props},
    }
    entity = _parse("online deployment", lambda: OnlineDeployment._from_rest_object(RestOnlineDeployment(body)))
    entity.endpoint_name = endpoint
    entity.model = _model_reference(entity.model)
    entity.environment = _environment_reference(entity.environment)
    if entity.code_configuration is not None and entity.code_configuration.code:
        entity.code_configuration.code = _code_folder(str(entity.code_configuration.code))
    return entity


# --- endpoints ------------------------------------------------------------------------------------------------


@blueprint.get(ENDPOINTS)
def list_endpoints():
    ops = resources.backend().online_endpoints
    return _listed([_endpoint_json(e, _in_flight.state(_key(e.name))) for e in ops.list()], (g.workspace,))


@blueprint.get(ENDPOINT)
def get_endpoint(endpoint: str):
    return _got(lambda: _endpoint_view(endpoint), _key(endpoint))


@blueprint.put(ENDPOINT)
def put_endpoint(endpoint: str):
    entity = _endpoint_from_body(endpoint, resources.body())
    ops = resources.backend().online_endpoints
    try:
        current = ops.get(endpoint)
    except errors.ResourceNotFound:
        current = None
    state = "Updating" if current is not None else "Creating"
    answer = _parse("online endpoint", lambda: _endpoint_json(entity, state, current))
    return _long_running(
        _key(endpoint), state, lambda: ops.begin_create_or_update(entity).result(), answer, 200 if current else 201
    )


@blueprint.delete(ENDPOINT)
def delete_endpoint(endpoint: str):
    ops = resources.backend().online_endpoints
    ops.get(endpoint)  # a missing endpoint: 404 at once
    return _long_running(_key(endpoint), "Deleting", lambda: ops.begin_delete(endpoint).result(), None, 202)


def _credentials(endpoint: str, kind: type, refusal: str, route: str) -> Any:
    """What ``online_endpoints.get_keys`` gives for ``endpoint`` if it is a ``kind`` (keys or a token), else a 400:
    ``refusal`` says why, ``route`` is the one that answers for the endpoint's auth mode."""
    credentials = resources.backend().online_endpoints.get_keys(endpoint)
    if not isinstance(credentials, kind):
        raise errors.ValidationError(
            f"Endpoint '{endpoint}' {refusal} (POST .../onlineEndpoints/{endpoint}/{route}, or "
            "online_endpoints.get_keys in the SDK)."
        )
    return credentials


@blueprint.post(f"{ENDPOINT}/listKeys")
def list_keys(endpoint: str):
    # azure-ai-ml on first use: `amlemu serve` starts without its ~1.4 s import
    from azure.ai.ml.entities import EndpointAuthKeys

    refusal = "uses auth_mode aml_token, so it has no keys: ask for a token"
    return resources.answer(_credentials(endpoint, EndpointAuthKeys, refusal, "token")._to_rest_object())


@blueprint.post(f"{ENDPOINT}/token")
def get_token(endpoint: str):
    # azure-ai-ml on first use: `amlemu serve` starts without its ~1.4 s import
    from azure.ai.ml.entities import EndpointAuthToken

    refusal = "uses auth_mode key, so it issues no tokens: list its keys"
    token = _credentials(endpoint, EndpointAuthToken, refusal, "listKeys")._to_rest_object().as_dict()
    for field in ("expiryTimeUtc", "refreshAfterTimeUtc"):  # epoch seconds, integers on the wire
        token[field] = int(token[field])
    return resources.answer(token)


@blueprint.post(f"{ENDPOINT}/regenerateKeys")
def regenerate_keys(endpoint: str):
    # azure-ai-ml on first use: `amlemu serve` starts without its ~1.4 s import
    from azure.ai.ml.entities import EndpointAuthKeys

    request = resources.body()
    key_type = str(request.get("keyType") or "").lower()
    if key_type not in ("primary", "secondary"):
        raise errors.ValidationError("regenerateKeys needs 'keyType': 'Primary' or 'Secondary'.")
    ops = resources.backend().online_endpoints
    keys = ops.get_keys(endpoint)  # a missing endpoint: 404 at once
    if not isinstance(keys, EndpointAuthKeys):
        raise errors.ValidationError(
            f"Endpoint '{endpoint}' uses auth_mode aml_token: keys are regenerated only for auth_mode key; "
            "tokens expire on their own."
        )
    value = request.get("keyValue")
    # the SDK sends the key it replaces; a chosen new value is what the engine cannot set
    if value and value != getattr(keys, f"{key_type}_key"):
        raise errors.NotEmulated(
            "regenerateKeys with a chosen keyValue", "Omit keyValue (or send the current key): amlemu makes the key."
        )
    return _long_running(
        _key(endpoint), "Updating", lambda: ops.begin_regenerate_keys(endpoint, key_type=key_type).result(), None, 202
    )


# --- deployments ----------------------------------------------------------------------------------------------


@blueprint.get(DEPLOYMENTS)
def list_deployments(endpoint: str):
    ops = resources.backend().online_deployments
    return _listed([_deployment_view(d) for d in ops.list(endpoint)], _key(endpoint))


@blueprint.get(DEPLOYMENT)
def get_deployment(endpoint: str, deployment: str):
    ops = resources.backend().online_deployments
    return _got(lambda: _deployment_view(ops.get(deployment, endpoint)), _key(endpoint, deployment))


@blueprint.put(DEPLOYMENT)
def put_deployment(endpoint: str, deployment: str):
    request = resources.body()
    code_id = ((request.get("properties") or {}).get("codeConfiguration") or {}).get("codeId")
    entity = _deployment_from_body(endpoint, deployment, request)
    ops = resources.backend().online_deployments
    resources.backend().online_endpoints.get(endpoint)  # a missing endpoint: 404 at once
    exists = _exists(lambda: ops.get(deployment, endpoint))
    state = "Updating" if exists else "Creating"
    answer = _parse("online deployment", lambda: _deployment_json(entity, state))
    if code_id:
        answer["properties"]["codeConfiguration"]["codeId"] = code_id
    code_ids = _code_ids(endpoint, deployment)

    def work() -> None:
        try:
            ops.begin_create_or_update(entity).result()
        except endpoint_service.DeploymentFailed:  # written, and failed to come up: its code is still that asset
            if code_id:
                _remember_code_id(code_ids, ops.get(deployment, endpoint), code_id)
            raise
        if code_id:
            _remember_code_id(code_ids, ops.get(deployment, endpoint), code_id)

    return _long_running(_key(endpoint, deployment), state, work, answer, 200 if exists else 201)


@blueprint.delete(DEPLOYMENT)
def delete_deployment(endpoint: str, deployment: str):
    ops = resources.backend().online_deployments
    ops.get(deployment, endpoint)  # a missing deployment: 404 at once
    return _long_running(
        _key(endpoint, deployment), "Deleting", lambda: ops.begin_delete(deployment, endpoint).result(), None, 202
    )


@blueprint.post(f"{DEPLOYMENT}/getLogs")
def get_logs(endpoint: str, deployment: str):
    request = resources.body()
    container = request.get("containerType")
    kind = _CONTAINERS.get(str(container).lower()) if container else None
    if container and kind is None:
        raise errors.ValidationError(
            f"containerType '{container}' is unknown; use InferenceServer or StorageInitializer."
        )
    tail = request.get("tail")
    if tail is not None and (isinstance(tail, bool) or not isinstance(tail, int)):
        raise errors.ValidationError(f"'tail' must be a whole number of lines, got {tail!r}.")
    content = resources.backend().online_deployments.get_logs(deployment, endpoint, tail, container_type=kind)
    return resources.answer({"content": content})


@blueprint.get(f"{DEPLOYMENT}/skus")
def list_skus(endpoint: str, deployment: str):
    """The scale a deployment may take: 1 to this machine's replica limit (``AMLEMU_MAX_INSTANCES``)."""
    resources.backend().online_deployments.get(deployment, endpoint)
    sku = {
        "resourceType": DEPLOYMENT_TYPE,
        "sku": {"name": "Default", "tier": "Standard"},
        "capacity": {"minimum": 1, "maximum": records.config_max_instances(), "default": 1, "scaleType": "Manual"},
    }
    return resources.answer({"value": [sku]})
