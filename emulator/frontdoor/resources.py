"""What every route shares: the workspace scope of a URL, its backend, ARM errors, JSON answers, LROs.

Routes live under ``/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/
workspaces/{w}``. Any subscription and resource group are accepted; the workspace name picks
the local workspace (created on first use unless ``--no-auto-create``), and every id in an
answer names the subscription and resource group the request used.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from flask import Response, current_app, g, request

from emulator import arm, config, errors, naming
from emulator.frontdoor.settings import FrontDoor

PROVIDER = "Microsoft.MachineLearningServices"
WORKSPACE = f"/subscriptions/<subscription>/resourceGroups/<resource_group>/providers/{PROVIDER}/workspaces/<workspace>"

_backends: dict[str, Any] = {}
_backends_lock = threading.Lock()


def front() -> FrontDoor:
    return current_app.config["FRONT_DOOR"]


def take_scope(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """A blueprint's ``url_value_preprocessor``: the scope leaves the route's arguments for ``g``."""
    if values is not None and "workspace" in values:
        g.subscription = values.pop("subscription")
        g.resource_group = values.pop("resource_group")
        g.workspace = values.pop("workspace")


def workspace_exists(name: str) -> bool:
    return config.workspace_dir(name).is_dir()


def backend(workspace: str | None = None) -> Any:
    """The local backend of the request's workspace (one per workspace per process): the engine ``connect()`` uses."""
    name = workspace or g.workspace
    with _backends_lock:
        found = _backends.get(name)
        if found is None:
            if not front().auto_create and not workspace_exists(name):
                raise errors.ResourceNotFound(
                    f"Workspace '{name}' not found: `amlemu serve --no-auto-create` serves existing workspaces only. "
                    f"Create it first (for example `amlemu workspace create -n {name}`, or any `amlemu -w {name}` "
                    "command), or restart `amlemu serve` without --no-auto-create."
                )
            from backends.local import LocalBackend

            found = _backends[name] = LocalBackend(workspace=name)
        return found


def workspace_path(workspace: str | None = None) -> str:
    """The ARM path of the request's workspace, as the request spelled its subscription and resource group."""
    return (
        f"/subscriptions/{g.subscription}/resourceGroups/{g.resource_group}/providers/{PROVIDER}"
        f"/workspaces/{workspace or g.workspace}"
    )


# --- references: the ids a client names an asset or resource by -------------------------------------------------
_ARM_ID = re.compile(
    rf"^(?:azureml:)?/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<resource_group>[^/]+)"
    rf"/providers/{re.escape(PROVIDER)}/workspaces/(?P<workspace>[^/]+)"
    r"/(?P<kind>[^/]+)/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+)|/labels/(?P<label>[^/]+))?/?$",
    re.IGNORECASE,  # ARM ids are case-blind: the SDK itself writes resourcegroups in places
)
_REGISTRY_ID = re.compile(
    r"^azureml://registries/(?P<registry>[^/]+)"
    r"/(?P<kind>[^/]+)/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+)|/labels/(?P<label>[^/]+))?/?$",
    re.IGNORECASE,
)
_SHORT = re.compile(r"^azureml:(?P<name>[^:@/]+)(?::(?P<version>[^:@/]+)|@(?P<label>[^:@/]+))$")
#: what each kind is called in a message, and the rule of emulator.naming its names follow (computes: below)
_KINDS = {
    "models": ("model", "model"),
    "environments": ("environment", "environment"),
    "data": ("data asset", "data"),
    "codes": ("code", "data"),
    "jobs": ("job", "job"),
    "computes": ("compute", None),
    "onlineEndpoints": ("online endpoint", "endpoint"),
    "datastores": ("datastore", "datastore"),
}
_COMPUTE_RULES = ("amlcompute", "computeinstance", "kubernetes")


class ArmReference(NamedTuple):
    """An asset or resource of a workspace (or a registry) as a request names it.

    ``kind`` is ARM's collection (``models``, ``environments``, ``codes``, ``data``, ``computes``, ``jobs``...);
    the short forms (``azureml:<name>:<version>``) carry no workspace: they name the request's own."""

    kind: str | None
    name: str
    version: str | None = None
    label: str | None = None
    workspace: str | None = None
    subscription: str | None = None
    resource_group: str | None = None
    registry: str | None = None

    @property
    def short(self) -> str:
        """``azureml:<name>:<version>`` or ``azureml:<name>@<label>`` (``@latest`` for none): what the engine
        resolves in its workspace."""
        if self.version:
            return f"azureml:{self.name}:{self.version}"
        return f"azureml:{self.name}@{self.label or 'latest'}"


def is_arm_id(value: Any) -> bool:
    """Whether ``value`` is spelled as an ARM id (``[azureml:]/subscriptions/...``), as the SDK resolves the
    references it sends; anything else (a local path, a URL, a short form) is not."""
    return isinstance(value, str) and value.lower().removeprefix("azureml:").startswith("/subscriptions/")


def parse_reference(
    value: Any,
    kinds: Iterable[str],
    *,
    workspace: str | None = None,
    field: str = "The reference",
    registries: bool = False,
) -> ArmReference:
    """The reference ``value`` makes to one of ``kinds``, or a 400 saying what is wrong with it.

    Accepted: ``[azureml:]/subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.MachineLearningServices/
    workspaces/<w>/<kind>/<name>[/versions/<v>|/labels/<l>]``, ``azureml:<name>:<version>``,
    ``azureml:<name>@<label>``, and with ``registries`` ``azureml://registries/<r>/<kind>/<name>/versions/<v>``
    (otherwise NotEmulated). With ``workspace``, an ARM id of another workspace is refused: amlemu resolves a
    reference in the workspace the request is for, and a workspace differing only in case is another folder here,
    so the names are compared as they are. Names and versions follow :mod:`emulator.naming`'s rules, so that
    nothing a client sends can become a path out of its folder. ``field`` starts the messages."""
    kinds = tuple(kinds)
    text = value if isinstance(value, str) else ""
    match = _ARM_ID.match(text) or _REGISTRY_ID.match(text) or _SHORT.match(text)
    if match is None:
        raise errors.ValidationError(
            f"{field} {_shown(value)} is not a reference to {_kinds_text(kinds)}: write {_forms_text(kinds)}."
        )
    found = match.groupdict()
    kind = found.get("kind")
    if kind is None:  # a short form: of the one kind asked for, if one
        kind = kinds[0] if len(kinds) == 1 else None
    else:
        kind = next((k for k in kinds if k.lower() == kind.lower()), None)
        if kind is None:
            raise errors.ValidationError(
                f"{field} {_shown(value)} names {found['kind']}, not {_kinds_text(kinds)}: write {_forms_text(kinds)}."
            )
    reference = ArmReference(kind=kind, **{k: v for k, v in found.items() if k != "kind"})
    _check_names(reference, kinds, field)
    if reference.registry and not registries:
        raise errors.NotEmulated(
            f"{field} from registry '{reference.registry}' ({value})",
            f"Register the {_singular(kind or kinds[0])} in the workspace and name it by "
            f"azureml:{reference.name}:<version>.",
        )
    if workspace is not None and reference.workspace is not None and reference.workspace != workspace:
        raise errors.ValidationError(
            f"{field} names {_singular(kind)} '{reference.name}' of workspace '{reference.workspace}', but the "
            f"request is for workspace '{workspace}': amlemu resolves references in the request's own workspace. "
            f"Register it in '{workspace}', or send the request to '{reference.workspace}'."
        )
    return reference


def _check_names(reference: ArmReference, kinds: tuple[str, ...], field: str) -> None:
    kind = reference.kind or kinds[0]
    what, rule = _KINDS.get(kind, (kind, "job"))  # another kind: ARM's common resource-name rule
    rules = _COMPUTE_RULES if rule is None else (rule,)
    if not any(naming.is_valid(r, reference.name) for r in rules):
        raise errors.ValidationError(
            f"{field}: {what} name {naming.shown(reference.name)} is invalid: Azure ML takes "
            f"{' or '.join(naming.RULES[r].text for r in rules)}."
        )
    for part in ("version", "label"):
        value = getattr(reference, part)
        if value is not None and not naming.is_valid("version", value):
            raise errors.ValidationError(
                f"{field}: {part} {_shown(value)} of {what} '{reference.name}' is invalid: Azure ML takes "
                f"{naming.RULES['version'].text}."
            )


def _shown(value: Any) -> str:
    return naming.shown(value, limit=300)  # an ARM id runs to ~200 characters, its end the telling part


def _singular(kind: str | None) -> str:
    return _KINDS[kind][0] if kind in _KINDS else (kind or "asset")


def _kinds_text(kinds: tuple[str, ...]) -> str:
    return " or ".join(f"a {_singular(k)}" for k in kinds)


def _forms_text(kinds: tuple[str, ...]) -> str:
    kind = "|".join(kinds)
    return (
        f"/subscriptions/<subscription>/resourceGroups/<resource group>/providers/{PROVIDER}/workspaces/<workspace>"
        f"/{kind}/<name>/versions/<version>, azureml:<name>:<version> or azureml:<name>@<label>"
    )


def envelope(rest: Any, workspace: str, tail: str, created_at: float, modified_at: float | None = None) -> Any:
    """``rest`` (an SDK REST model or a dict) with ARM's envelope of ``workspace``'s resource at ``tail``
    (``codes/<n>/versions/<v>``, ``datastores/<n>``...): its id, its name (the last segment), its type (the
    collections on the way) and ``systemData`` of those times."""
    parts = tail.split("/")
    rest["id"] = arm.resource_id(workspace, tail)
    rest["name"] = parts[-1]
    rest["type"] = f"{PROVIDER}/workspaces/{'/'.join(parts[0::2])}"
    rest["systemData"] = arm.system_data(created_at, None, modified_at)
    return rest


def _rescope(text: str) -> str:
    """Ids the engine renders name amlemu's fixed subscription and resource group: answer with the request's."""
    if "subscription" not in g:
        return text
    ours = f"/subscriptions/{config.SUBSCRIPTION_ID}/resourceGroups/{config.RESOURCE_GROUP}/"
    theirs = f"/subscriptions/{g.subscription}/resourceGroups/{g.resource_group}/"
    return text.replace(ours, theirs)


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer (``body`` a dict/list, or an SDK REST model, serialized with its read-only fields)."""
    if hasattr(body, "serialize") or hasattr(body, "as_dict"):
        body = rest_dict(body)
    return Response(_rescope(json.dumps(body)), status=status, headers=headers, mimetype="application/json")


def rest_dict(model: Any) -> dict[str, Any]:
    """An SDK REST model as the service sends it: its wire (camelCase) keys, read-only fields included.

    The msrest models serialize; the newer generated ones (``arm_ml_service``, ``runhistory``) are mappings
    of their wire keys already, with read-only fields kept by ``as_dict()``."""
    if hasattr(model, "serialize"):
        return model.serialize(keep_readonly=True)
    return model.as_dict()


def page(items: list[Any]) -> dict[str, Any]:
    """A list answer (ARM's ``{"value": [...]}``, without a next link: every item in one page)."""
    return {"value": [rest_dict(i) if hasattr(i, "serialize") or hasattr(i, "as_dict") else i for i in items]}


def body() -> dict[str, Any]:
    """The request's JSON body, or a 400 naming the problem."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise errors.ValidationError(
            f"The body of {request.method} {request.path} must be a JSON object (Content-Type: application/json)."
        )
    return data


def arm_error(code: str, message: str, status: int) -> Response:
    """ARM's error shape, from which azure-core raises its own exception types with ``message``."""
    return Response(
        json.dumps({"error": {"code": code, "message": message}}), status=status, mimetype="application/json"
    )


def not_emulated(operation: str) -> Response:
    """A refusal for an operation amlemu does not emulate: never a fake success."""
    exc = errors.NotEmulated(operation, "Run it against Azure ML itself.")
    return arm_error(exc.code, exc.message, exc.status)


# --- long-running operations ----------------------------------------------------------------------------------

_operations: dict[str, dict[str, Any]] = {}
_operations_lock = threading.Lock()

#: how long a poll of a running operation (or of a running job's details) is held open for a change before it is
#: answered as still running. Clients are told to poll again at once (``Retry-After: 0``), so an operation that
#: ends is seen as it ends, not at the client's next poll (azure-core would otherwise wait 1-30 s between polls),
#: and a long one costs one request a second.
LONG_POLL_S = 1.0


def operation_url(op_id: str) -> str:
    return (
        f"{front().https_url}/subscriptions/{g.subscription}/providers/{PROVIDER}/locations/local"
        f"/mfeOperationsStatus/{op_id}"
    )


def start_operation(work: Callable[[], Any]) -> str:
    """Run ``work`` in the background as an Azure long-running operation; its status is at :func:`operation_url`.

    The status lives in this process only, as long as Azure keeps one (the resource it acts on is in the store)."""
    op_id = uuid.uuid4().hex
    with _operations_lock:
        _operations[op_id] = {"status": "InProgress", "startTime": time.time(), "done": threading.Event()}
    workspace = g.workspace

    def run() -> None:
        try:
            work()
            result = {"status": "Succeeded"}
        except errors.EmulatorError as exc:
            result = {"status": "Failed", "error": {"code": exc.code, "message": exc.message}}
        except Exception as exc:  # reported on the operation, as Azure reports a failed LRO
            result = {"status": "Failed", "error": {"code": "InternalError", "message": f"{type(exc).__name__}: {exc}"}}
        with _operations_lock:
            _operations[op_id].update(result, endTime=time.time())
            _operations[op_id]["done"].set()

    threading.Thread(target=run, name=f"lro-{workspace}-{op_id[:8]}", daemon=True).start()
    return op_id


def lro_headers(op_id: str, location: str | None = None) -> dict[str, str]:
    """The headers of an LRO's first answer: ``Azure-AsyncOperation`` to poll, ``Location`` for the final GET."""
    headers = {"Azure-AsyncOperation": operation_url(op_id), "Retry-After": "0"}  # the status poll waits: LONG_POLL_S
    if location:
        headers["Location"] = location
    return headers


def operation_status(op_id: str, wait: float = 0.0) -> dict[str, Any] | None:
    """The status of an operation, once it ends or after ``wait`` seconds, whichever is first."""
    with _operations_lock:
        found = _operations.get(op_id)
    if found is None:
        return None
    found["done"].wait(wait)
    with _operations_lock:
        from emulator.arm import iso

        status = {"id": op_id, "name": op_id, "status": found["status"], "startTime": iso(found["startTime"])}
        if "endTime" in found:
            status["endTime"] = iso(found["endTime"])
        if "error" in found:
            status["error"] = found["error"]
        return status
