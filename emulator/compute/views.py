"""Computes as Azure shows them: the ``az ml compute show`` JSON (the SDK entities' own dump)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from emulator import arm
from emulator.store import WorkspaceStore

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import ComputeRecord


def _created_on(ts: float | None) -> str | None:
    """``created_on`` as the SDK dumps it (``+0000``, not ``Z`` as elsewhere)."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f%z") if ts else None


def compute_view(store: WorkspaceStore, record: ComputeRecord) -> dict[str, Any]:
    """The ``az ml compute show`` JSON of a cluster, an instance or an attached Kubernetes cluster."""
    view: dict[str, Any] = {
        "name": record["name"],
        "id": arm.resource_id(store.name, f"computes/{record['name']}"),
        "type": record["type"],
        "description": record.get("description"),
    }
    if record["type"] == "kubernetes":
        view.update(
            namespace=record.get("namespace"),
            provisioning_state=record.get("provisioning_state"),
            properties=record.get("properties") or {},
            resourceGroup="amlemu",
        )
        return {k: v for k, v in view.items() if v is not None}
    view.update(
        location=record.get("location") or "local",
        tags=record.get("tags") or None,
        created_on=_created_on(record.get("created_on")),
        provisioning_state=record.get("provisioning_state", "Succeeded"),
        size=record["size"],
    )
    if record["type"] == "amlcompute":
        view.update(
            tier=record["tier"],
            min_instances=record["min_instances"],
            max_instances=record["max_instances"],
            idle_time_before_scale_down=record["idle_time_before_scale_down"],
            ssh_public_access_enabled=False,
            enable_node_public_ip=True,
        )
    else:
        operation = record.get("last_operation")
        view.update(
            state=record["state"],
            last_operation={**operation, "operation_time": arm.iso(operation["operation_time"])} if operation else None,
            enable_node_public_ip=True,
            enable_sso=True,
            enable_root_access=True,
            release_quota_on_stop=False,
            enable_os_patching=False,
            state_history=[
                {"state": h["state"], "time": arm.iso(h["time"])}  # amlemu's extra
                for h in record.get("state_history") or []
            ],
            concurrent_jobs=record.get("concurrent_jobs", 1),
        )  # amlemu's extra
    return {k: v for k, v in view.items() if v is not None}
