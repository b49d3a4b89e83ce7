"""A Postman collection (schema v2.1) for an endpoint: score, score one deployment, the OpenAPI document.

The scoring URI and the credential are collection variables (``scoring_uri``,
``endpoint_key``); the collection authenticates with ``Bearer {{endpoint_key}}``
as Azure ML endpoints expect. The sample body is the request file given, else
the example in the endpoint's ``/swagger.json``.
"""

from __future__ import annotations

import http.client
import json
import uuid
from pathlib import Path
from typing import Any

from emulator.endpoints import service
from emulator.store import WorkspaceStore

SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"


def _find_example(node: Any) -> Any:
    if isinstance(node, dict):
        for key in ("example", "x-example"):
            if key in node and isinstance(node[key], (dict, list)):
                return node[key]
        for value in node.values():
            found = _find_example(value)
            if found is not None:
                return found
    elif isinstance(node, list):
        for value in node:
            found = _find_example(value)
            if found is not None:
                return found
    return None


def openapi(store: WorkspaceStore, name: str) -> dict[str, Any] | None:
    """The endpoint's OpenAPI document (from its default deployment), or None if it has none yet."""
    endpoint = service.get_endpoint(store, name)
    creds = service.get_keys(store, name)
    secret = creds.get("primary_key") or creds["access_token"]
    conn = http.client.HTTPConnection("127.0.0.1", endpoint["port"], timeout=30)
    try:
        conn.request("GET", "/swagger.json", headers={"Authorization": f"Bearer {secret}"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _url(uri: str, variable: str) -> dict[str, Any]:
    rest = uri.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    return {
        "raw": f"{{{{{variable}}}}}",
        "protocol": uri.split("://", 1)[0],
        "host": host.split("."),
        "port": port,
        "path": [p for p in path.split("/") if p],
    }


def collection(store: WorkspaceStore, name: str, request_file: Path | None = None) -> dict[str, Any]:
    endpoint = service.get_endpoint(store, name)
    creds = service.get_keys(store, name)
    secret = creds.get("primary_key") or creds["access_token"]
    if request_file is not None:
        sample = request_file.read_text()
    else:
        example = _find_example(openapi(store, name) or {})
        sample = json.dumps(example if example is not None else {"data": [[0.0]]}, indent=2)
    json_header = {"key": "Content-Type", "value": "application/json"}
    score = {
        "method": "POST",
        "header": [json_header],
        "body": {"mode": "raw", "raw": sample, "options": {"raw": {"language": "json"}}},
        "url": _url(endpoint["scoring_uri"], "scoring_uri"),
    }
    pinned = json.loads(json.dumps(score))
    pinned["header"].append({"key": "azureml-model-deployment", "value": "{{deployment}}"})
    deployments = list(endpoint.get("traffic") or {}) or [
        d["deployment_name"] for d in service.list_deployments(store, name)
    ]
    return {
        "info": {
            "_postman_id": str(uuid.uuid5(uuid.NAMESPACE_URL, endpoint["scoring_uri"])),
            "name": f"amlemu endpoint {name}",
            "schema": SCHEMA,
            "description": f"Online endpoint '{name}' ({endpoint['auth_mode']} auth) in amlemu workspace "
            f"'{store.name}'. Exported by `amlemu online-endpoint export-postman`.",
        },
        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "{{endpoint_key}}", "type": "string"}]},
        "variable": [
            {"key": "scoring_uri", "value": endpoint["scoring_uri"], "type": "string"},
            {"key": "openapi_uri", "value": endpoint["openapi_uri"], "type": "string"},
            {"key": "endpoint_key", "value": secret, "type": "string"},
            {"key": "deployment", "value": deployments[0] if deployments else "", "type": "string"},
        ],
        "item": [
            {"name": "score", "request": score},
            {"name": "score one deployment (azureml-model-deployment header)", "request": pinned},
            {
                "name": "OpenAPI document",
                "request": {"method": "GET", "header": [], "url": _url(endpoint["openapi_uri"], "openapi_uri")},
            },
        ],
    }
