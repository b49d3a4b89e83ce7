"""MLflow's REST API on the workspace's tracking URI: MLflow's own server handlers over the workspace's file store.

The workspace hands out ``http://127.0.0.1:<port>/mlflow/v1.0/<workspace ARM path>`` (see
:mod:`.workspaces`; azureml-mlflow turns ``azureml://<host>/mlflow/v2.0/<workspace ARM path>``
into ``https://<host>/mlflow/v2.0/...``). Below either, ``/api/2.0/mlflow/...`` is MLflow's
REST API, answered by ``mlflow.server.handlers`` -- the code ``mlflow server`` runs -- over
the workspace's MLflow file store, the one its jobs write. So plain ``mlflow`` in any
process reads and writes the workspace's runs without ``MLFLOW_ALLOW_FILE_STORE`` or
``AMLEMU_HOME``, and what it logs is what ``amlemu job show`` and ``connect()`` read.

The store is the request's workspace's: MLflow's handlers take their tracking store from
one module global (what ``mlflow server --backend-store-uri`` fills), which here is a
werkzeug ``LocalProxy`` to the store this blueprint binds to the request (``g``). The proxy
passes ``isinstance`` through, so the handlers see the ``FileStore`` they would under
``mlflow server``.

Artifacts are not proxied (no ``mlflow-artifacts``): a run's artifact location stays a
``file://`` folder of the workspace (a job's ``artifacts`` folder, or
``mlruns/<experiment>/<run>/artifacts`` for a run started over HTTP), which the client
writes and reads itself, as any client of a file store does. The front door listens on
loopback, so the client is on this machine, and the local engine reads the same files
whether or not ``amlemu serve`` runs. Model registry routes answer NOT_IMPLEMENTED: Azure ML
models are registered through the workspace (``ml_client.models``, ``amlemu model create``).

These routes take no token (loopback only, the file store's own trust); a bearer token sent
anyway is ignored. Errors have MLflow's shape (``error_code``, ``message``), from which the
client raises ``MlflowException``.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from flask import Blueprint, Response, g, request
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.local import LocalProxy
from werkzeug.routing import Map, Rule

from emulator import errors
from emulator.frontdoor import resources

blueprint = Blueprint("tracking", __name__)
blueprint.url_value_preprocessor(resources.take_scope)

#: the tracking URI's versions: v1.0 is what the workspace hands out, v2.0 what azureml-mlflow builds
ROUTE = f"/mlflow/<any('v1.0','v2.0'):version>{resources.WORKSPACE}/<path:route>"
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

#: MLflow's error codes (databricks_pb2.ErrorCode names) for amlemu's HTTP statuses
_ERROR_CODES = {400: "INVALID_PARAMETER_VALUE", 404: "RESOURCE_DOES_NOT_EXIST", 409: "RESOURCE_ALREADY_EXISTS"}

_routes: tuple[Map, dict[str, Any]] | None = None
_routes_lock = threading.Lock()
_stores: dict[str, Any] = {}
_stores_lock = threading.Lock()


def _mlflow_routes() -> tuple[Map, dict[str, Any]]:
    """MLflow's tracking routes (paths relative to the tracking URI) and their handlers, loaded on first use.

    Imported here, not at module import: MLflow's server handlers take seconds to import, and `amlemu serve`
    should start without them."""
    global _routes
    with _routes_lock:
        if _routes is None:
            from mlflow.protos.service_pb2 import MlflowService
            from mlflow.server import handlers

            endpoints = handlers.get_service_endpoints(MlflowService, handlers.get_handler)
            endpoints += [e for e in handlers.get_endpoints() if e[0].endswith("/mlflow/server-info")]
            rules, by_name = [], {}
            for i, (path, handler, methods) in enumerate(endpoints):
                by_name[f"{i}"] = handler
                rules.append(Rule(path, endpoint=f"{i}", methods=methods))
            handlers._tracking_store = LocalProxy(_request_store)
            _routes = Map(rules), by_name
        return _routes


def _request_store() -> Any:
    store = g.get("mlflow_store")
    if store is None:  # a handler reached outside a tracking request: a bug, said plainly
        raise RuntimeError("MLflow's tracking store is bound only while the front door serves a tracking request")
    return store


def workspace_store(workspace: str) -> Any:
    """The workspace's MLflow store (one per workspace per process), over the ``mlruns`` its jobs write."""
    with _stores_lock:
        found = _stores.get(workspace)
        if found is None:
            from emulator.tracking.workspace_store import WorkspaceFileStore  # imports MLflow: on first use

            store = resources.backend(workspace).store
            found = _stores[workspace] = WorkspaceFileStore(store.mlruns_dir, store.experiment_id)
        return found


@blueprint.route(ROUTE, methods=_METHODS)
def mlflow_api(version: str, route: str):
    routes, handlers = _mlflow_routes()
    try:
        name, args = routes.bind("tracking").match(f"/{route}", method=request.method)
    except MethodNotAllowed:
        return mlflow_error("ENDPOINT_NOT_FOUND", f"{request.method} is not allowed on {route}.", 405)
    except NotFound:
        return _unknown_route(route)
    g.mlflow_store = workspace_store(g.workspace)
    return handlers[name](**args)


def _unknown_route(route: str) -> Response:
    if "registered-models" in route or "model-versions" in route:
        exc = errors.NotEmulated(
            "the MLflow model registry on the workspace's tracking URI",
            "Register models in the workspace instead: ml_client.models.create_or_update(Model(path='runs:/<run>/"
            "<path>', ...)) or `amlemu model create`.",
        )
        return mlflow_error("NOT_IMPLEMENTED", exc.message, exc.status)
    if "mlflow-artifacts" in route:
        return mlflow_error(
            "NOT_IMPLEMENTED",
            "amlemu does not proxy MLflow artifacts: a run's artifact location is a folder on this machine "
            "(its run's artifact_uri), which mlflow reads and writes directly.",
            501,
        )
    return mlflow_error("ENDPOINT_NOT_FOUND", f"No MLflow API at '{route}' on the workspace's tracking URI.", 404)


def mlflow_error(code: str, message: str, status: int) -> Response:
    """MLflow's error shape, from which the MLflow client raises ``MlflowException`` with ``message``."""
    return Response(json.dumps({"error_code": code, "message": message}), status=status, mimetype="application/json")


@blueprint.errorhandler(errors.EmulatorError)
def _engine_error(exc: errors.EmulatorError):
    status = exc.status if exc.status >= 400 else 400
    return mlflow_error(_ERROR_CODES.get(status, "INTERNAL_ERROR"), exc.message, status)
