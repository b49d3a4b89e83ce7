"""Injected compute faults: creating a cluster or instance runs out of the subscription's vCPU quota.

The fault is a record of the workspace's store (:mod:`emulator.store.faults`, set by ``aml_faults``); the next
creation of the compute it names (or of any) is refused with Azure ML's own answer: HTTP 400, error code
``ClusterMinNodesExceedCoreQuota``, and the message Azure gives, naming the VM family, its quota and the vCPUs
the requested nodes need (a cluster's ``min_instances``, at least one node; an instance's one VM). Nothing is
created. An update of an existing compute is not refused: Azure checks the quota when it allocates nodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.compute import sizes
from emulator.errors import EmulatorError
from emulator.store import WorkspaceStore
from emulator.store import faults as store_faults

QUOTA_CODE = "ClusterMinNodesExceedCoreQuota"
QUOTA_HELP = "https://docs.microsoft.com/azure/machine-learning/how-to-manage-quotas#request-quota-increases"


class QuotaExceeded(EmulatorError):
    """Azure ML refused to create a compute: the subscription's vCPU quota cannot hold its nodes."""

    code = QUOTA_CODE
    status = 400


def refuse_over_quota(store: WorkspaceStore, compute_type: str, name: str, spec: Mapping[str, Any]) -> None:
    """Raise Azure's quota error for the creation of compute ``name`` if a ``compute_quota`` fault applies to it.

    Raises:
        QuotaExceeded: a fault was set for this compute (or for any).
    """
    if compute_type not in ("amlcompute", "computeinstance"):
        return
    fault = store_faults.take(store, "compute_quota", name)
    if fault is None:
        return
    raise QuotaExceeded(quota_message(compute_type, spec, int(fault.detail.get("vcpu_quota", 0))))


def quota_message(compute_type: str, spec: Mapping[str, Any], quota: int) -> str:
    """Azure ML's message for a compute whose nodes do not fit in a vCPU quota of ``quota``."""
    size = sizes.lookup(spec.get("size") or sizes.DEFAULT_SIZE)
    family = f"Standard {size.family.removeprefix('standard').removesuffix('Family')}"
    if compute_type == "computeinstance":
        return (
            f"The specified subscription has a {family} family vCPU quota of {quota} and is less than the requested "
            f"compute training cluster and/or compute instance's min nodes of 1 which maps to {size.cores} vCPUs. "
            f"Talk to your Subscription Admin or refer to {QUOTA_HELP} to increase the family quota"
        )
    try:
        count = max(int(spec.get("min_instances") or 0), 1)
    except (TypeError, ValueError):  # refused anyway: the quota is what Azure names first
        count = 1
    return (
        f"The specified subscription has a {family} family vCPU quota of {quota} and cannot accomodate for at least "
        f"{count} requested managed compute nodes which maps to {count * size.cores} vCPUs. Talk to your "
        f"Subscription Admin or refer to {QUOTA_HELP} to increase the family quota"
    )
