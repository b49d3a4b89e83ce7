"""Computes over ARM: clusters (``AmlCompute``), instances and attached Kubernetes clusters; VM sizes and usage.

HTTP glue only: a body is parsed into the SDK's own REST model (``ComputeResource``) and entity
(``Compute._from_rest_object``), the workspace's local backend does the work (``ml_client.compute``
of ``connect()``), and the answer is the entity's ``_to_rest_object()`` with the read-only fields the
engine knows filled in (provisioning state, an instance's state and last operation, a cluster's node
counts, creation time).

The local engine creates and updates a compute at once, so a ``PUT`` (``begin_create_or_update``,
``begin_update``) answers with the final resource (201 when it created it, 200 when it updated it):
ARM's synchronous completion, which the SDK's poller accepts without polling, and which reports bad
input as a 400 carrying amlemu's message. Delete, start, stop and restart are long-running operations
as on Azure (202, ``Azure-AsyncOperation`` and ``Location``): the backend's call runs in the background
and its failure (an instance in the wrong state, a cluster with active jobs) fails the operation.

VM sizes and quota usage hang off a location of the subscription, not a workspace: sizes are the
engine's catalogue; usage adds up every local workspace's computes, as Azure's quota spans the
subscription's workspaces in a region.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, request

from emulator import config, errors
from emulator.compute import service as computes
from emulator.frontdoor import resources, workspaces

blueprint = Blueprint("computes", __name__)
blueprint.url_value_preprocessor(resources.take_scope)

COMPUTES = f"{resources.WORKSPACE}/computes"
COMPUTE = f"{COMPUTES}/<name>"
LOCATION = f"/subscriptions/<subscription>/providers/{resources.PROVIDER}/locations/<location>"
RESOURCE_TYPE = f"{resources.PROVIDER}/workspaces/computes"
#: what ``underlyingResourceAction`` takes: delete a compute, or detach an attached one (the same locally)
DELETE_ACTIONS = ("Delete", "Detach")
#: ARM's ``nodeStateCounts`` field of each node state the engine reports
_NODE_COUNTS = {
    "idle": "idle_node_count",
    "running": "running_node_count",
    "preparing": "preparing_node_count",
    "unusable": "unusable_node_count",
    "leaving": "leaving_node_count",
    "preempted": "preempted_node_count",
}


# --- workspace computes -------------------------------------------------------------------------------------


@blueprint.put(COMPUTE)
def create_or_update(name: str):
    compute = _parse(name, resources.body())
    operations = resources.backend().compute
    existed = _exists(operations, name)
    done = operations.begin_create_or_update(compute).result()
    return resources.answer(_render(operations, done), 200 if existed else 201)


@blueprint.patch(COMPUTE)
def update(name: str):
    """ARM's cluster update: new scale settings (``ClusterUpdateParameters``) for a compute cluster."""
    from azure.ai.ml._restclient.arm_ml_service.models import ClusterUpdateParameters

    params = ClusterUpdateParameters(resources.body())
    scale = params.properties.properties.scale_settings if params.properties and params.properties.properties else None
    if scale is None:
        raise errors.ValidationError(
            f"PATCH {request.path} needs properties.properties.scaleSettings (maxNodeCount, minNodeCount, "
            "nodeIdleTimeBeforeScaleDown): it updates the scale settings of a compute cluster."
        )
    operations = resources.backend().compute
    compute = operations.get(name)
    if compute.type != "amlcompute":
        raise errors.ValidationError(
            f"Compute '{name}' is a {compute.type}; PATCH updates the scale settings of compute clusters "
            "(AmlCompute) only."
        )
    if scale.min_node_count is not None:
        compute.min_instances = scale.min_node_count
    if scale.max_node_count is not None:
        compute.max_instances = scale.max_node_count
    if scale.node_idle_time_before_scale_down is not None:
        compute.idle_time_before_scale_down = int(scale.node_idle_time_before_scale_down.total_seconds())
    done = operations.begin_update(compute).result()
    return resources.answer(_render(operations, done))


@blueprint.get(COMPUTE)
def get(name: str):
    operations = resources.backend().compute
    return resources.answer(_render(operations, operations.get(name)))


@blueprint.get(COMPUTES)
def list_computes():
    """Every compute of the workspace (the SDK filters ``compute_type`` itself)."""
    operations = resources.backend().compute
    return resources.answer({"value": [_render(operations, c) for c in operations.list()]})


@blueprint.delete(COMPUTE)
def delete(name: str):
    given = request.args.get("underlyingResourceAction", "")
    action = next((a for a in DELETE_ACTIONS if a.lower() == given.lower()), None)
    if action is None:
        raise errors.ValidationError(
            f"DELETE {request.path} needs the query parameter underlyingResourceAction=Delete or Detach; "
            f"got {given or 'none'!r}."
        )
    operations = resources.backend().compute
    operations.get(name)  # a missing compute is a 404 now, not a failed operation
    return _long_running(lambda: operations.begin_delete(name, action=action).result())


@blueprint.post(f"{COMPUTE}/start")
def start(name: str):
    return _instance_verb(name, "start")


@blueprint.post(f"{COMPUTE}/stop")
def stop(name: str):
    return _instance_verb(name, "stop")


@blueprint.post(f"{COMPUTE}/restart")
def restart(name: str):
    return _instance_verb(name, "restart")


@blueprint.post(f"{COMPUTE}/listNodes")
def list_nodes(name: str):
    from azure.ai.ml._restclient.arm_ml_service.models import AmlComputeNodeInformation

    nodes = []
    for node in resources.backend().compute.list_nodes(name):
        rest = AmlComputeNodeInformation()
        rest.node_id, rest.private_ip_address = node.node_id, node.private_ip_address
        rest.node_state, rest.run_id = node.node_state, node.run_id
        nodes.append(rest.as_dict())
    return resources.answer({"nodes": nodes})


# --- a location of the subscription -------------------------------------------------------------------------


@blueprint.get(f"{LOCATION}/vmSizes")
def vm_sizes(subscription: str, location: str):
    """The VM sizes amlemu knows (the same in every location); the SDK filters ``compute_type`` itself."""
    from azure.ai.ml._restclient.arm_ml_service.models import VirtualMachineSize

    return resources.answer({"value": [_rest_model(VirtualMachineSize, s).as_dict() for s in computes.list_sizes()]})


@blueprint.get(f"{LOCATION}/usages")
def usages(subscription: str, location: str):
    """Quota usage in ``location``: each entry summed over every local workspace (a quota is the subscription's)."""
    from azure.ai.ml._restclient.arm_ml_service.models import Usage, UsageName

    totals: dict[tuple[str, str], dict[str, Any]] = {}
    for workspace in workspaces.names():
        for entry in computes.list_usage(resources.backend(workspace).store, location):
            key = (entry["type"], entry["name"]["value"])
            if key in totals:
                totals[key]["current_value"] += entry["current_value"]
            else:
                totals[key] = entry
    value = []
    for entry in totals.values():
        rest = _rest_model(Usage, {k: v for k, v in entry.items() if k != "name"})
        rest.id = entry["id"].replace(f"/subscriptions/{config.SUBSCRIPTION_ID}/", f"/subscriptions/{subscription}/")
        rest.name = _rest_model(UsageName, entry["name"])
        value.append(rest.as_dict())
    return resources.answer({"value": value})


# --- parsing and rendering ----------------------------------------------------------------------------------


def _parse(name: str, body: dict[str, Any]) -> Any:
    """A ``ComputeResource`` body as the SDK entity it came from, named by the URL."""
    from azure.ai.ml._restclient.arm_ml_service.models import ComputeResource
    from azure.ai.ml.entities import Compute

    kind = (body.get("properties") or {}).get("computeType") if isinstance(body.get("properties"), dict) else None
    if not kind:
        raise errors.ValidationError(
            f"The body of PUT {request.path} has no properties.computeType; send a ComputeResource "
            "(AmlCompute, ComputeInstance or Kubernetes)."
        )
    if str(kind).lower() not in computes.TYPES:
        raise errors.NotEmulated(
            f"compute of type '{kind}'",
            "amlemu emulates AmlCompute (clusters), ComputeInstance and Kubernetes (attached).",
        )
    rest = ComputeResource(body)
    rest.name = name
    compute = Compute._from_rest_object(rest)
    compute.name = name
    return compute


def _exists(operations: Any, name: str) -> bool:
    try:
        operations.get(name)
    except errors.ResourceNotFound:
        return False
    return True


def _render(operations: Any, compute: Any) -> dict[str, Any]:
    """A compute entity as ARM answers it: its REST model plus the read-only fields the engine knows."""
    rest = compute._to_rest_object()
    rest.id, rest.name, rest.type = compute.id, compute.name, RESOURCE_TYPE
    props = rest.properties
    props.provisioning_state = compute.provisioning_state or "Succeeded"
    props.is_attached_compute = compute.type == "kubernetes"
    if compute.created_on:
        props.created_on = dt.datetime.strptime(compute.created_on, "%Y-%m-%dT%H:%M:%S.%f%z")
    if compute.type == "amlcompute":
        props.compute_location = compute.location
        _fill_cluster(props.properties, operations.list_nodes(compute.name))
    elif compute.type == "computeinstance":
        _fill_instance(props.properties, compute)
    return rest.as_dict()


def _fill_cluster(props: Any, nodes: list[Any]) -> None:
    """A cluster's allocation: its nodes now (the engine scales at once, so the target is what it has)."""
    from azure.ai.ml._restclient.arm_ml_service.models import NodeStateCounts

    counts = NodeStateCounts()
    for field in _NODE_COUNTS.values():
        setattr(counts, field, 0)
    for node in nodes:
        field = _NODE_COUNTS.get(str(node.node_state))
        if field:
            setattr(counts, field, getattr(counts, field) + 1)
    props.node_state_counts = counts
    props.current_node_count = props.target_node_count = len(nodes)
    props.allocation_state = "Steady"


def _fill_instance(props: Any, compute: Any) -> None:
    from azure.ai.ml._restclient.arm_ml_service.models import ComputeInstanceLastOperation

    props.state = compute.state
    operation = compute.last_operation
    if operation:
        last = ComputeInstanceLastOperation()
        last.operation_name = operation.get("operation_name")
        last.operation_time = operation.get("operation_time")
        last.operation_status = operation.get("operation_status")
        last.operation_trigger = operation.get("operation_trigger")
        props.last_operation = last


def _rest_model(cls: type, fields: dict[str, Any]) -> Any:
    """A REST model from an engine view whose keys are the model's attribute names (read-only ones included)."""
    model = cls()
    for key, value in fields.items():
        setattr(model, key, value)
    return model


def _instance_verb(name: str, verb: str):
    operations = resources.backend().compute
    operations.get(name)  # a missing compute is a 404 now, not a failed operation
    return _long_running(lambda: getattr(operations, f"begin_{verb}")(name).result())


def _long_running(work) -> Any:
    """202 and the operation's headers; ``work`` runs in the background and its error fails the operation."""
    op_id = resources.start_operation(work)
    return Response(status=202, headers=resources.lro_headers(op_id, resources.operation_url(op_id)))
