"""Kubernetes inference clusters (``KubernetesCompute``), attached to the workspace.

In Azure an AKS or Arc cluster is attached as ``type: kubernetes`` and hosts
``KubernetesOnlineEndpoint``s. Locally the attached cluster is a record; its
endpoints' replicas run on the configured runtime with probes, restarts and
target-utilization autoscaling (see :mod:`emulator.endpoints.replicas`).
"""

from __future__ import annotations

import re
from typing import Any

from emulator import naming
from emulator.errors import NotEmulated, ValidationError
from emulator.store import WorkspaceStore

KIND = "compute"
_V = "1"


def create_or_update(store: WorkspaceStore, spec: dict[str, Any]) -> dict[str, Any]:
    compute_type = str(spec.get("type") or "").lower()
    if compute_type != "kubernetes":
        raise NotEmulated(
            f"compute of type '{compute_type or '?'}'",
            "Only Kubernetes inference clusters (type: kubernetes) are emulated so far.",
        )
    name = naming.check("kubernetes", spec.get("name"))
    namespace = str(spec.get("namespace") or "default")
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", namespace, re.ASCII):
        raise ValidationError(
            f"namespace '{namespace}' is not a valid Kubernetes namespace (lower-case letters, digits and '-')."
        )
    body = {
        "type": "kubernetes",
        "namespace": namespace,
        "description": spec.get("description"),
        "properties": dict(spec.get("properties") or {}),
        "provisioning_state": "Succeeded",
    }
    store.put_asset(KIND, name, _V, body)
    return store.get_asset(KIND, name, _V)


def delete(store: WorkspaceStore, name: str) -> None:
    # the endpoints' own records, read in the store (compute sits below endpoints: it may not import them)
    users = [
        r["name"]
        for r in store.query(
            "SELECT name FROM assets WHERE kind = 'online-endpoint' "
            "AND json_extract(body, '$.compute') = ? ORDER BY name",
            (name,),
        )
    ]
    if users:
        raise ValidationError(f"Compute '{name}' hosts online endpoint(s) {', '.join(users)}; delete them first.")
    with store.transaction() as db:
        db.execute("DELETE FROM assets WHERE kind = ? AND name = ?", (KIND, name))
