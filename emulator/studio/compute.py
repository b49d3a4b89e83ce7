"""The Compute area: instances with their state and Start/Stop/Restart, clusters with their nodes and queue,
attached Kubernetes clusters with the endpoints on them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template

from emulator.compute import service as computes
from emulator.compute.views import compute_view
from emulator.endpoints import records as endpoint_records
from emulator.errors import ValidationError
from emulator.studio.app import store

blueprint = Blueprint("compute", __name__)
#: the instance buttons, each the engine call ``amlemu compute <verb>`` makes
INSTANCE_VERBS = {"start": computes.start, "stop": computes.stop, "restart": computes.restart}


def _cluster(record: dict[str, Any]) -> dict[str, Any]:
    """A cluster with its nodes (a listing runs the scheduling pass, as ``compute list-nodes`` does) and the jobs
    waiting for nodes, first in line first."""
    nodes = computes.list_nodes(store(), record["name"])
    holding = {n.get("current_job_name") for n in nodes}
    queue = [j for j in computes.active_jobs(store(), record["name"]) if j not in holding]
    counts = {state: sum(1 for n in nodes if n["node_state"] == state) for state in ("idle", "preparing", "running")}
    return {**compute_view(store(), record), "nodes": nodes, "queue": queue, "counts": counts}


@blueprint.get("/compute")
def compute_list():
    records = computes.list_computes(store())
    endpoints = endpoint_records.list_endpoints(store())
    return render_template(
        "compute.html",
        instances=[compute_view(store(), r) for r in records if r["type"] == "computeinstance"],
        clusters=[_cluster(r) for r in records if r["type"] == "amlcompute"],
        kubernetes=[
            {**compute_view(store(), r), "endpoints": [e["name"] for e in endpoints if e.get("compute") == r["name"]]}
            for r in records
            if r["type"] == "kubernetes"
        ],
    )


@blueprint.post("/compute/<name>/<verb>")
def instance_verb(name: str, verb: str):
    """Start, stop or restart a compute instance; refused as the CLI refuses it (a job on it, not an instance)."""
    if verb not in INSTANCE_VERBS:
        raise ValidationError(f"Unknown compute action '{verb}'; use {', '.join(INSTANCE_VERBS)}.")
    INSTANCE_VERBS[verb](store(), name)
    view = compute_view(store(), computes.get(store(), name))
    return jsonify({"name": name, "state": view.get("state"), "last_operation": view.get("last_operation")})
