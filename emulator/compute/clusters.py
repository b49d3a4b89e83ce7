"""Compute clusters (``AmlCompute``): a pool of nodes between ``min_instances`` and ``max_instances``.

The record holds the scale settings; the nodes live in the store's ``nodes`` table
(:mod:`emulator.compute.nodes`). Creating a cluster adds ``min_instances`` idle nodes;
updating one changes its scale settings (its size is fixed, as in Azure).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from emulator.compute import nodes, sizes
from emulator.errors import ValidationError
from emulator.store import WorkspaceStore

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import ComputeRecord

KIND, V = "compute", "1"
FIELDS = {
    "$schema",
    "name",
    "type",
    "description",
    "size",
    "tier",
    "min_instances",
    "max_instances",
    "idle_time_before_scale_down",
    "location",
    "tags",
    "identity",
    "ssh_public_access_enabled",
    "ssh_settings",
    "network_settings",
    "enable_node_public_ip",
    "id",
    "provisioning_state",
    "created_on",
    "resourceGroup",
}
TIERS = {"dedicated", "low_priority"}


def _whole(spec: dict[str, Any], field: str, default: int) -> int:
    value = spec.get(field)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < 0:
        raise ValidationError(f"{field} must be a whole number >= 0; got {value!r}.")
    return int(value)


def validate(spec: dict[str, Any], existing: Mapping[str, Any] | None) -> dict[str, Any]:
    """The record body of a cluster spec (CLI YAML shape), checked.

    Raises:
        ValidationError: min above max, an unknown size or tier, a size change.
    """
    unknown = set(spec) - FIELDS
    if unknown:
        raise ValidationError(
            f"Unknown compute cluster field(s) {', '.join(sorted(unknown))}; valid fields: "
            f"{', '.join(sorted(FIELDS - {'$schema', 'id', 'provisioning_state', 'created_on', 'resourceGroup'}))}."
        )
    size = sizes.lookup(spec.get("size") or (existing or {}).get("size"))
    if existing and size.name != existing["size"]:
        raise ValidationError(
            f"The size of compute cluster '{existing['name']}' is {existing['size']} and cannot be "
            f"changed to {size.name}; create another cluster with that size."
        )
    minimum = _whole(spec, "min_instances", 0)
    maximum = _whole(spec, "max_instances", 4)
    if maximum < 1:
        raise ValidationError(f"max_instances must be at least 1; got {maximum}.")
    if minimum > maximum:
        raise ValidationError(
            f"min_instances ({minimum}) is greater than max_instances ({maximum}). Set "
            f"min_instances <= max_instances, e.g. min_instances: 0, max_instances: {maximum}."
        )
    tier = str(spec.get("tier") or "dedicated").lower().replace("lowpriority", "low_priority")
    if tier not in TIERS:
        raise ValidationError(f"tier '{spec.get('tier')}' is not valid; use dedicated or low_priority.")
    return {
        "type": "amlcompute",
        "size": size.name,
        "tier": tier,
        "min_instances": minimum,
        "max_instances": maximum,
        "idle_time_before_scale_down": _whole(spec, "idle_time_before_scale_down", 120),
        "description": spec.get("description"),
        "tags": dict(spec.get("tags") or {}),
        "location": spec.get("location") or "local",
        "ssh_public_access_enabled": False,  # nodes expose no SSH
        "provisioning_state": "Succeeded",
        "created_on": (existing or {}).get("created_on") or time.time(),
    }


def create_or_update(
    store: WorkspaceStore, name: str, spec: dict[str, Any], existing: ComputeRecord | None
) -> ComputeRecord:
    body = validate(spec, existing)
    store.put_asset(KIND, name, V, body)
    record = store.get_asset(KIND, name, V)
    nodes.sync(store, name)  # min_instances nodes now; scale settings applied to the pool
    return record
