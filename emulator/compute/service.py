"""Computes of a workspace: clusters, instances and attached Kubernetes clusters.

One record per compute (``assets`` kind ``compute``), whatever its type; the front
doors (CLI, Python client) call this module, which hands each type to its own:
:mod:`clusters`, :mod:`instances`, :mod:`kubernetes`. :func:`placement` is what a
job submission asks before it records a job on a compute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator import config, naming
from emulator.compute import clusters, faults, instances, kubernetes, nodes, sizes
from emulator.errors import NotEmulated, ResourceNotFound, ValidationError
from emulator.runtime.liveness import lost_reason
from emulator.store import WorkspaceStore
from emulator.store.db import ACTIVE

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import ComputeRecord

KIND, V = "compute", "1"
TYPES = ("amlcompute", "computeinstance", "kubernetes")


def _existing(store: WorkspaceStore, name: str) -> ComputeRecord | None:
    try:
        return store.get_asset(KIND, name, V)
    except ResourceNotFound:
        return None


def get(store: WorkspaceStore, name: str) -> ComputeRecord:
    record = _existing(store, name)
    if record is None:
        raise ResourceNotFound(
            f"Compute '{name}' not found in workspace '{store.name}'. List computes with `amlemu compute list`."
        )
    return record


def list_computes(store: WorkspaceStore) -> list[ComputeRecord]:
    return store.list_assets(KIND)


def create_or_update(store: WorkspaceStore, spec: dict[str, Any]) -> ComputeRecord:
    """Create a compute from its CLI YAML shape (or update a cluster's scale settings)."""
    compute_type = str(spec.get("type") or "").lower()
    if compute_type not in TYPES:
        raise NotEmulated(
            f"compute of type '{compute_type or '?'}'",
            "amlemu emulates type amlcompute (clusters), computeinstance and kubernetes (attached).",
        )
    name = str(spec.get("name") or "")
    existing = _existing(store, name) if name else None
    if existing and existing["type"] != compute_type:
        raise ValidationError(
            f"Compute '{name}' already exists (type {existing['type']}); pick another name or delete it first."
        )
    if compute_type == "kubernetes":
        return kubernetes.create_or_update(store, spec)
    naming.check(compute_type, name)
    if existing is None:  # aml_faults: Azure's quota error for a new cluster or instance
        faults.refuse_over_quota(store, compute_type, name, spec)
    if compute_type == "amlcompute":
        return clusters.create_or_update(store, name, spec, existing)
    return instances.create(store, name, spec, existing)


def active_jobs(store: WorkspaceStore, name: str) -> list[str]:
    """Jobs waiting for or running on compute ``name``, oldest first; a lost job (its supervisor gone) is not
    one of them (the next read of it marks it Failed or resumes it)."""
    rows = store.query(
        f"SELECT * FROM jobs WHERE status IN ({','.join('?' * len(ACTIVE))}) "
        "AND json_extract(spec, '$.compute') = ? ORDER BY created_at",
        (*ACTIVE, name),
    )
    return [r["name"] for r in rows if lost_reason(dict(r)) is None]


def delete(store: WorkspaceStore, name: str) -> None:
    """Delete a compute; refused while jobs wait for or run on it (they would be lost)."""
    record = get(store, name)
    if record["type"] == "kubernetes":
        return kubernetes.delete(store, name)
    busy = active_jobs(store, name)
    if busy:
        raise ValidationError(
            f"Compute '{name}' has active job(s) {', '.join(busy[:5])}"
            f"{' ...' if len(busy) > 5 else ''}; deleting it would lose them. Cancel them "
            f"(`amlemu job cancel --name {busy[0]}`) or wait for them to end, then delete it."
        )
    with store.transaction() as db:
        nodes.drop(db, name)
        db.execute("DELETE FROM assets WHERE kind = ? AND name = ?", (KIND, name))
    if record["type"] == "computeinstance":
        instances.remove_home(store, name)


def _instance(store: WorkspaceStore, name: str, verb: str) -> ComputeRecord:
    record = get(store, name)
    if record["type"] != "computeinstance":
        raise ValidationError(
            f"'{verb}' applies to compute instances; '{name}' is a {record['type']}"
            + (
                " that scales itself between min_instances and max_instances."
                if record["type"] == "amlcompute"
                else "."
            )
        )
    return record


def start(store: WorkspaceStore, name: str) -> ComputeRecord:
    return instances.transition(store, _instance(store, name, "start"), "start", [])


def stop(store: WorkspaceStore, name: str) -> ComputeRecord:
    return instances.transition(store, _instance(store, name, "stop"), "stop", active_jobs(store, name))


def restart(store: WorkspaceStore, name: str) -> ComputeRecord:
    return instances.transition(store, _instance(store, name, "restart"), "restart", active_jobs(store, name))


def list_nodes(store: WorkspaceStore, name: str) -> list[dict[str, Any]]:
    record = get(store, name)
    if record["type"] == "kubernetes":
        raise ValidationError(
            f"Compute '{name}' is an attached Kubernetes cluster; list-nodes applies to compute clusters and instances."
        )
    return nodes.list_nodes(store, record)


def placement(store: WorkspaceStore, name: str | None, instance_count: int) -> ComputeRecord | None:
    """Check that a job asking for ``instance_count`` nodes can run on compute ``name``.

    Returns the compute record, or None when the job runs on this machine with no compute.

    Raises:
        ValidationError: a stopped instance, more nodes than the compute can have, a GPU size here.
    """
    if name is None:
        if instance_count > 1:
            raise ValidationError(
                f"resources.instance_count is {instance_count}, but the job has no compute: a "
                "multi-node job runs on a compute cluster. Create one (`amlemu compute create "
                "--name cpu-cluster --type amlcompute --max-instances 4`) and set "
                "compute: azureml:cpu-cluster."
            )
        return None
    record = get(store, name)
    if record["type"] == "kubernetes":
        return record
    if record["type"] == "computeinstance":
        if record["state"] != "Running":
            raise ValidationError(
                f"Compute instance '{name}' is {record['state']}; a job can run on it only while "
                f"it is Running. Start it with `amlemu compute start --name {name}`."
            )
        if instance_count > 1:
            raise ValidationError(
                f"Compute instance '{name}' is one node, and the job asks for "
                f"resources.instance_count {instance_count}; use a compute cluster."
            )
    elif instance_count > record["max_instances"]:
        raise ValidationError(
            f"The job asks for {instance_count} nodes (resources.instance_count), but compute "
            f"cluster '{name}' has max_instances {record['max_instances']}. Lower instance_count "
            f"or raise max_instances (`amlemu compute update --name {name} --max-instances "
            f"{instance_count}`)."
        )
    sizes.check_gpus(name, sizes.lookup(record["size"]))
    return record


# -- sizes and quota usage ------------------------------------------------------------------------------------
WORKSPACE_LOCATION = "local"  # what the local workspace reports as its region
# amlemu's quotas (fixed, not Azure's per-subscription numbers, and not enforced: a cluster may scale past them)
FAMILY_VCPU_LIMIT = 100  # dedicated vCPUs per VM family
REGIONAL_VCPU_LIMIT = 100  # dedicated vCPUs over all families, and low-priority vCPUs
CLUSTER_LIMIT = 200  # clusters and instances


def list_sizes(compute_type: str | None = None) -> list[dict[str, Any]]:
    """The VM sizes, as ``list-sizes`` shows them; ``compute_type`` (case-insensitive) keeps those it supports."""
    views = [sizes.size_view(s) for s in sizes.SIZES.values()]
    if not compute_type:
        return views
    return [v for v in views if compute_type.lower() in (t.lower() for t in v["supported_compute_types"])]


def _usage(tail: str, kind: str, name: str, current: int, limit: int, location: str) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{config.SUBSCRIPTION_ID}/usages{tail}",
        "aml_workspace_location": location,
        "type": f"Microsoft.MachineLearningServices/{kind}/usages",
        "unit": "Count",
        "current_value": current,
        "limit": limit,
        "name": {"value": name, "localized_value": name},
    }


def _family_label(family: str) -> str:
    """``standardDSv2Family`` -> ``Standard DSv2 Family``."""
    return f"Standard {family.removeprefix('standard').removesuffix('Family')} Family"


def list_usage(store: WorkspaceStore, location: str | None = None) -> list[dict[str, Any]]:
    """Quota usage as Azure's ``usages`` list (``Usage`` fields, snake_case), from the nodes that exist now.

    A node counts the cores of its compute's size: dedicated nodes toward their VM family and the regional
    dedicated total, low-priority cluster nodes toward the regional low-priority total. Clusters and instances
    count toward ``Clusters``; attached Kubernetes computes toward nothing. Every family amlemu knows is
    listed, used or not, as on Azure. Everything runs on this machine, so ``location`` (default: the
    workspace's, ``local``) only labels the entries. Limits are amlemu's fixed quotas (``FAMILY_VCPU_LIMIT``,
    ``REGIONAL_VCPU_LIMIT``, ``CLUSTER_LIMIT``), reported but not enforced.
    """
    location = location or WORKSPACE_LOCATION
    managed = [r for r in list_computes(store) if r["type"] in ("amlcompute", "computeinstance")]
    for record in managed:
        nodes.sync(store, record["name"])  # frees, tops up and scales down first, as list-nodes does
    counts = {r["compute"]: r["n"] for r in store.query("SELECT compute, COUNT(*) AS n FROM nodes GROUP BY compute")}
    families = dict.fromkeys(s.family for s in sizes.SIZES.values())
    by_family, low_priority = {family: 0 for family in families}, 0
    for record in managed:
        size = sizes.lookup(record["size"])
        machines = counts.get(record["name"], 0)
        if record["type"] == "computeinstance":  # one VM, however many job slots it has
            machines = min(machines, 1)
        cores = size.cores * machines
        if record.get("tier") == "low_priority":
            low_priority += cores
        else:
            by_family[size.family] = by_family.get(size.family, 0) + cores
    usage = [
        _usage("", "totalCores", "Clusters", len(managed), CLUSTER_LIMIT, location),
        _usage(
            "",
            "dedicatedCores",
            "Total Cluster Dedicated Regional vCPUs",
            sum(by_family.values()),
            REGIONAL_VCPU_LIMIT,
            location,
        ),
        _usage(
            "",
            "lowPriorityCores",
            "Total Cluster LowPriority Regional vCPUs",
            low_priority,
            REGIONAL_VCPU_LIMIT,
            location,
        ),
    ]
    for family, cores in by_family.items():
        label = f"{_family_label(family)} Cluster Dedicated vCPUs"
        entry = _usage(f"/{label.replace(' ', '_')}", "vmFamily", family, cores, FAMILY_VCPU_LIMIT, location)
        entry["name"]["localized_value"] = label
        usage.append(entry)
    return usage
