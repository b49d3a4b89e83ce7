"""A Postman collection (schema v2.1) for an endpoint: score, score one deployment, the OpenAPI document.

The scoring URI and the credential are collection variables (``scoring_uri``,
``endpoint_key``); the collection authenticates with ``Bearer {{endpoint_key}}``
as Azure ML endpoints expect. The sample body is the request file given, else
the example in the endpoint's ``/swagger.json``.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
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


def fetch_openapi(openapi_uri: str, secret: str, timeout: float = 30) -> dict[str, Any] | None:
    """The endpoint's OpenAPI document (from its default deployment), or None when it has none or does not answer."""
    request = urllib.request.Request(openapi_uri, headers={"Authorization": f"Bearer {secret}"})
    local = urllib.parse.urlsplit(openapi_uri).hostname in ("127.0.0.1", "::1", "localhost")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({})) if local else urllib.request.build_opener()
    try:
        with opener.open(request, timeout=timeout) as response:  # a local endpoint never goes through a proxy
            return json.loads(response.read())
    except (OSError, ValueError):  # refused, timed out, an HTTP error (URLError and HTTPError are OSErrors), not JSON
        return None


def sample_body(request_file: Path | None, openapi_uri: str, secret: str) -> str:
    """The request body of the collection: the file given, else the example in ``/swagger.json``."""
    if request_file is not None:
        return request_file.read_text()
    example = _find_example(fetch_openapi(openapi_uri, secret) or {})
    return json.dumps(example if example is not None else {"data": [[0.0]]}, indent=2)


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
    """The collection of a local endpoint (its records, its primary key or a fresh token)."""
    endpoint = service.get_endpoint(store, name)
    creds = service.get_keys(store, name)
    secret = creds.get("primary_key") or creds["access_token"]
    deployments = list(endpoint.get("traffic") or {}) or [
        d["deployment_name"] for d in service.list_deployments(store, name)
    ]
    return build_collection(
        name,
        scoring_uri=endpoint["scoring_uri"],
        openapi_uri=endpoint["openapi_uri"],
        secret=secret,
        auth_mode=endpoint["auth_mode"],
        deployments=deployments,
        sample=sample_body(request_file, endpoint["openapi_uri"], secret),
        where=f"amlemu workspace '{store.name}'",
    )


def build_collection(
    name: str,
    *,
    scoring_uri: str,
    openapi_uri: str,
    secret: str,
    auth_mode: str,
    deployments: list[str],
    sample: str,
    where: str,
) -> dict[str, Any]:
    """A collection for any endpoint, local or on Azure, from what every backend can tell of it."""
    json_header = {"key": "Content-Type", "value": "application/json"}
    score = {
        "method": "POST",
        "header": [json_header],
        "body": {"mode": "raw", "raw": sample, "options": {"raw": {"language": "json"}}},
        "url": _url(scoring_uri, "scoring_uri"),
    }
    pinned = json.loads(json.dumps(score))
    pinned["header"].append({"key": "azureml-model-deployment", "value": "{{deployment}}"})
    return {
        "info": {
            "_postman_id": str(uuid.uuid5(uuid.NAMESPACE_URL, scoring_uri)),
            "name": f"amlemu endpoint {name}",
            "schema": SCHEMA,
            "description": f"Online endpoint '{name}' ({auth_mode} auth) in {where}. "
            "Exported by `amlemu online-endpoint export-postman`.",
        },
        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "{{endpoint_key}}", "type": "string"}]},
        "variable": [
            {"key": "scoring_uri", "value": scoring_uri, "type": "string"},
            {"key": "openapi_uri", "value": openapi_uri, "type": "string"},
            {"key": "endpoint_key", "value": secret, "type": "string"},
            {"key": "deployment", "value": deployments[0] if deployments else "", "type": "string"},
        ],
        "item": [
            {"name": "score", "request": score},
            {"name": "score one deployment (azureml-model-deployment header)", "request": pinned},
            {
                "name": "OpenAPI document",
                "request": {"method": "GET", "header": [], "url": _url(openapi_uri, "openapi_uri")},
            },
        ],
    }
