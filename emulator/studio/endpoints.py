"""The Endpoints area: the list, and an endpoint's page with its deployments, traffic, Test and Consume tabs and
deployment logs.

Reads are the CLI's (``online-endpoint show`` brings a stopped host back, as every read of an endpoint does).
Keys leave the server only in the answer to a POST carrying the page's CSRF token (the Consume tab's
"Show keys", the Postman download); the Test tab's request is sent from here with the endpoint's key
(:func:`emulator.endpoints.service.invoke`, as ``online-endpoint invoke`` sends it), so the page never holds one.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

from flask import Blueprint, jsonify, render_template, request, send_file

from emulator.endpoints import local_mode, postman, service
from emulator.endpoints.views import deployment_view, endpoint_view
from emulator.errors import EmulatorError, ValidationError
from emulator.studio.app import store

blueprint = Blueprint("endpoints", __name__)
MAX_TEST_BODY = 4 * 1024 * 1024
LOG_LINES = 300


@blueprint.get("/endpoints")
def endpoint_list():
    endpoints = [endpoint_view(store(), r) for r in service.list_endpoints(store()) if not r.get("local")]
    return render_template("endpoints.html", endpoints=endpoints)


def _replicas(name: str) -> dict[str, Any]:
    """Each deployment's replica set as the endpoint's host reports it (``{}`` when the host cannot say)."""
    try:
        return service.status(store(), name).get("deployments") or {}
    except (OSError, EmulatorError):
        return {}


def _sample(endpoint: dict[str, Any]) -> str:
    """The Test tab's starting request: the example in the endpoint's swagger, as the Postman export takes it."""
    credential = service.get_keys(store(), endpoint["name"])
    secret = credential.get("primary_key") or credential["access_token"]
    return postman.sample_body(None, endpoint["openapi_uri"], secret)


def _split(traffic: dict[str, int], mirror: dict[str, int]) -> list[dict[str, Any]]:
    """The traffic bar's segments: each deployment's share of live traffic, then the unassigned rest."""
    segments = [{"deployment": d, "percent": p, "mirror": mirror.get(d, 0)} for d, p in traffic.items() if p]
    rest = 100 - sum(traffic.values())
    if rest > 0:
        segments.append({"deployment": None, "percent": rest, "mirror": 0})
    return segments


@blueprint.get("/endpoints/<name>")
def endpoint_page(name: str):
    local_mode.workspace_endpoint(store(), name)
    endpoint = service.get_endpoint(store(), name)
    view = endpoint_view(store(), endpoint)
    deployments = [deployment_view(store(), d) for d in service.list_deployments(store(), name)]
    return render_template(
        "endpoint.html",
        endpoint=view,
        deployments=deployments,
        replicas=_replicas(name),
        split=_split(view["traffic"], view["mirror_traffic"]),
        sample=_sample(endpoint),
    )


@blueprint.post("/endpoints/<name>/test")
def endpoint_test(name: str):
    """The Test tab's Send: the body POSTed to the scoring URI with the endpoint's key, the answer as it came."""
    asked = request.get_json(silent=True)
    if not isinstance(asked, dict) or not isinstance(asked.get("body"), str):
        raise ValidationError('Send {"body": "<request JSON as text>", "deployment": "<name or empty>"}.')
    body = asked["body"].encode()
    if len(body) > MAX_TEST_BODY:
        raise ValidationError(f"The request body is {len(body)} bytes; the Test tab sends at most {MAX_TEST_BODY}.")
    local_mode.workspace_endpoint(store(), name)
    started = time.perf_counter()
    status, headers, answer = service.invoke(store(), name, body, asked.get("deployment") or None)
    latency = (time.perf_counter() - started) * 1000
    text = answer.decode(errors="replace")
    try:
        text = json.dumps(json.loads(text), indent=2)
    except ValueError:
        pass
    return jsonify(
        {
            "status": status,
            "body": text,
            "latency_ms": round(latency, 1),
            "deployment": headers.get("azureml-model-deployment"),
        }
    )


@blueprint.post("/endpoints/<name>/keys")
def endpoint_keys(name: str):
    """The Consume tab's "Show keys": the endpoint's keys (or a fresh token), only in this answer."""
    credential = service.get_keys(store(), name)
    if credential["auth_mode"] == "key":
        return jsonify({"primary": credential["primary_key"], "secondary": credential["secondary_key"]})
    return jsonify({"primary": credential["access_token"], "secondary": None, "expires": credential["expiry_time_utc"]})


@blueprint.post("/endpoints/<name>/postman")
def endpoint_postman(name: str):
    """The Postman collection (``amlemu online-endpoint export-postman``); it holds the key, so it is a POST."""
    document = postman.collection(store(), name)
    data = io.BytesIO(json.dumps(document, indent=2).encode())
    return send_file(
        data, mimetype="application/json", as_attachment=True, download_name=f"{name}.postman_collection.json"
    )


@blueprint.get("/api/endpoints/<name>/deployments/<deployment>/logs")
def deployment_logs(name: str, deployment: str):
    container = request.args.get("container") or None
    return jsonify({"log": service.get_logs(store(), name, deployment, LOG_LINES, container)})
