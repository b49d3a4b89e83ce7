"""Computes: azure-ai-ml entities (``AmlCompute``, ``ComputeInstance``, ``KubernetesCompute``) to
YAML-shaped specs and back, nodes as ``AmlComputeNodeInfo``, sizes as ``VmSize`` and quota usage as ``Usage``."""

from __future__ import annotations

from typing import Any

from azure.ai.ml.entities import (
    AmlCompute,
    AmlComputeNodeInfo,
    ComputeInstance,
    KubernetesCompute,
    Usage,
    UsageName,
    VmSize,
)

from emulator.compute.views import compute_view
from emulator.store import WorkspaceStore


def compute_to_spec(compute: Any) -> dict[str, Any]:
    """The CLI YAML shape of a compute entity (what ``az ml compute create --file`` reads)."""
    spec = dict(compute._to_dict())
    for key in (
        "id",
        "provisioning_state",
        "created_on",
        "state",
        "last_operation",
        "services",
        "os_image_metadata",
        "provisioning_errors",
    ):
        spec.pop(key, None)
    return spec


def record_to_compute(store: WorkspaceStore, record: dict[str, Any]):
    """The SDK entity of a compute record, as ``ml_client.compute.get`` returns it.

    Built from the ``az ml compute show`` view, so the CLI and the client show the same fields.
    """
    view = compute_view(store, record)
    common = {k: view.get(k) for k in ("name", "description", "id", "provisioning_state")}
    if record["type"] == "kubernetes":
        return KubernetesCompute(namespace=view["namespace"], properties=view["properties"], **common)
    common.update({k: view.get(k) for k in ("size", "tags", "location", "created_on")})
    if record["type"] == "amlcompute":
        return AmlCompute(
            **common,
            **{
                k: view[k]
                for k in (
                    "tier",
                    "min_instances",
                    "max_instances",
                    "idle_time_before_scale_down",
                    "ssh_public_access_enabled",
                )
            },
        )
    return ComputeInstance(**common, state=view["state"], last_operation=view["last_operation"])


def node_info(node: dict[str, Any]):
    """One node as the SDK's ``AmlComputeNodeInfo``."""
    info = AmlComputeNodeInfo()
    info.node_id, info.private_ip_address = node["node_id"], node["private_ip_address"]
    info.node_state, info.run_id = node["node_state"], node.get("current_job_name")
    return info


def vm_size(view: dict[str, Any]):
    """One ``list-sizes`` entry as the SDK's ``VmSize``."""
    return VmSize(**view)


def usage(entry: dict[str, Any]):
    """One ``list-usage`` entry as the SDK's ``Usage`` (its ``name`` a ``UsageName``)."""
    return Usage(**{**entry, "name": UsageName(**entry["name"])})
