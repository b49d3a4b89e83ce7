"""Run history: what ``ml_client.jobs.stream`` and child-job listing read, and the job's log files.

``jobs.stream`` GETs the job, then polls ``runs/{name}/details`` while the status is in progress
(or ``Finalizing``) and downloads, without a token, each ``logFiles`` URL the details name. Here
those are the job's own log files (``user_logs/std_log.txt``, ``system_logs/...``) at URLs signed
with a key of the front door's (HMAC-SHA256 over the file and an expiry, as a SAS is), under
``/joblogs/``, a path that takes no token.

The SDK reads logs only while the run is in progress, and a local job often ends before the
first poll. So a job that has ended shows ``Finalizing`` (Azure's status while a run's logs are
collected after its command ended) until its final log has been fetched once, then its final
status: the stream that asks prints the whole log and ends with the job's outcome. A job with no
log to fetch shows its final status at once. Only ``details`` does this; the job's own status
(``jobs/{name}``, ``runs/{name}``) is always the engine's.

``jobs.download`` asks ``rundata`` for the run's outputs: its data outputs, by the asset ids the dataset
data plane resolves to where they are (:mod:`.jobstorage`, :mod:`.dataplane`). Model-typed outputs are
left out: azure-ai-ml 1.35 fails reading the model data plane's answer (``BatchModelPathResponseDto.values``
is a method there), while an output missing from ``rundata`` is found by the SDK at Azure's place for it
in the default datastore, which the blob service serves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, g, request

from emulator import arm, errors, naming
from emulator.frontdoor import jobstorage, resources, tokens
from emulator.jobs import faults, lifecycle
from emulator.store.db import TERMINAL

blueprint = Blueprint("history", __name__)
blueprint.url_value_preprocessor(resources.take_scope)

HISTORY = f"/history/v1.0{resources.WORKSPACE}"
#: the three spellings of a run's path: by run id alone, by experiment name, by experiment id
RUN_PATHS = ("/runs/<run>", "/experiments/<experiment>/runs/<run>", "/experimentids/<experiment>/runs/<run>")
LOG_FOLDERS = ("user_logs", "system_logs")
#: the logs ``jobs.stream`` prints (the SDK's JobLogPattern.COMMON_RUNTIME_STREAM_LOG_PATTERN)
STREAMED_LOG = re.compile(r"user_logs/std_log[\D]*[0]*(?:_ps)?\.txt")
LOG_URL_TTL_S = 3600
_KEY_FILE = "log-url-key"

#: jobs whose final log was fetched after they ended: (workspace, job)
_delivered: set[tuple[str, str]] = set()
_delivered_lock = threading.Lock()


# --- signed log URLs ------------------------------------------------------------------------------------------
def _signature(workspace: str, job: str, log: str, expiry: int) -> str:
    message = f"{workspace}\n{job}\n{log}\n{expiry}".encode()
    digest = hmac.new(tokens.service_key(_KEY_FILE).encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def log_url(workspace: str, job: str, log: str) -> str:
    """The URL of one of a job's log files, readable without a token until it expires."""
    expiry = int(time.time()) + LOG_URL_TTL_S
    sig = _signature(workspace, job, log, expiry)
    return f"{resources.front().https_url}/joblogs/{workspace}/{job}/{quote(log)}?se={expiry}&sig={sig}"


def log_files(store, job: str) -> dict[str, Path]:
    """A job's log files by their name in run history (``user_logs/std_log.txt``, ...)."""
    artifacts = store.job_dir(job) / "artifacts"
    found = {}
    for folder in LOG_FOLDERS:
        root = artifacts / folder
        if root.is_dir():
            found.update({str(p.relative_to(artifacts)): p for p in sorted(root.rglob("*")) if p.is_file()})
    return found


@blueprint.get("/joblogs/<ws>/<job>/<path:log>")
def log_file(ws: str, job: str, log: str):
    workspace = ws  # not <workspace>: that names a workspace scope, which needs a token (resources.take_scope)
    try:
        expiry = int(request.args.get("se", ""))
    except ValueError:
        expiry = 0
    given = request.args.get("sig", "")
    if not hmac.compare_digest(given.encode(), _signature(workspace, job, log, expiry).encode()):
        return resources.arm_error(
            "AuthorizationFailure", "The log URL's signature does not match: ask run history for a new URL.", 403
        )
    if expiry < time.time():
        return resources.arm_error(
            "AuthenticationFailed", "The log URL has expired: ask run history (runs/{name}/details) for a new one.", 403
        )
    store = resources.backend(workspace).store
    record = lifecycle.get(store, job)
    path = naming.confined_join(store.job_dir(job) / "artifacts", log)
    if not path.is_file():
        raise errors.ResourceNotFound(f"Job '{job}' has no log file '{log}'.")
    content = path.read_bytes()
    if record["status"] in TERMINAL and STREAMED_LOG.fullmatch(log):
        with _delivered_lock:  # read after the job ended: this is its final log
            _delivered.add((workspace, job))
    return Response(content, mimetype="text/plain")


# --- runs -------------------------------------------------------------------------------------------------------
def _record(run: str) -> dict[str, Any]:
    return lifecycle.get(resources.backend().store, run)


def _error(record: dict[str, Any]):
    from azure.ai.ml._restclient.runhistory.models import RootError, RunHistoryErrorResponse

    if record["status"] not in ("Failed", "Canceled") or not record.get("error"):
        return None
    code = faults.error_code(resources.backend().store, record)
    return RunHistoryErrorResponse(error=RootError(code=code, message=record["error"]))


def _run_fields(record: dict[str, Any]) -> dict[str, Any]:
    """What ``Run`` and ``RunDetails`` share, as their attributes."""
    spec = record["spec"]
    return {
        "run_id": record["name"],
        "parent_run_id": record.get("parent_job_name"),
        "status": record["status"],
        "target": spec.get("compute") or "local",
        "start_time_utc": arm.iso(record.get("started_at")),
        "end_time_utc": arm.iso(record.get("ended_at")),
        "error": _error(record),
        "tags": spec.get("tags") or {},
        "properties": spec.get("properties") or {},
    }


def rest_run(record: dict[str, Any]):
    from azure.ai.ml._restclient.runhistory.models import Compute, Run

    spec = record["spec"]
    return Run(
        **_run_fields(record),
        # what the SDK reads a child job's compute from (``jobs.list(parent_job_name=...)``: an AutoML or sweep trial)
        compute=Compute(target=spec["compute"]) if spec.get("compute") else None,
        display_name=spec.get("display_name") or record["name"],
        description=spec.get("description"),
        experiment_id=record["experiment_name"],
        created_utc=arm.iso(record["created_at"]),
        run_type=record["type"],
        name=record["name"],
    )


def details_status(workspace: str, record: dict[str, Any], logs: dict[str, Path]) -> str:
    """The status ``details`` shows: ``Finalizing`` for an ended job until its final log was fetched once."""
    status = record["status"]
    if status not in TERMINAL or not any(STREAMED_LOG.fullmatch(name) for name in logs):
        return status
    with _delivered_lock:
        return status if (workspace, record["name"]) in _delivered else "Finalizing"


def _route(suffix: str = ""):
    """Register a view under every spelling of a run's path (``experiment`` is ignored: runs are found by id)."""

    def register(view):
        for i, path in enumerate(RUN_PATHS):
            blueprint.add_url_rule(
                f"{HISTORY}{path}{suffix}", f"{view.__name__}_{i}", lambda experiment=None, **kw: view(**kw)
            )
        return view

    return register


def _snapshot(store, run: str) -> tuple[dict[str, Any], dict[str, Path], tuple]:
    record, logs = _record(run), log_files(store, run)
    sizes = tuple(sorted((name, path.stat().st_size) for name, path in logs.items() if path.exists()))
    return record, logs, (record["status"], sizes)


def _changed_or_settled(store, run: str) -> tuple[dict[str, Any], dict[str, Path]]:
    """A running job's record and logs once its status or a log changes, or after ``LONG_POLL_S``: ``amlemu env``
    lets the SDK poll again at once (``AZUREML_RUN_POLLING_INTERVAL_MIN=0``), so output shows as it is written and
    the end of a job as it ends, instead of at the SDK's next poll 2-60 s later."""
    record, logs, seen = _snapshot(store, run)
    deadline = time.monotonic() + resources.LONG_POLL_S
    while record["status"] not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.05)
        record, logs, now = _snapshot(store, run)
        if now != seen:
            break
    return record, logs


@_route("/details")
def details(run: str):
    from azure.ai.ml._restclient.runhistory.models import RunDetails

    store = resources.backend().store
    record, logs = _changed_or_settled(store, run)
    fields = _run_fields(record)
    fields["status"] = details_status(g.workspace, record, logs)
    return resources.answer(
        RunDetails(
            **fields,
            created_time_utc=arm.iso(record["created_at"]),
            log_files={name: log_url(g.workspace, run, name) for name in logs},
        )
    )


@_route()
def get_run(run: str):
    return resources.answer(rest_run(_record(run)))


@_route("/children")
def children(run: str):
    from azure.ai.ml._restclient.runhistory.models import PaginatedRunList

    store = resources.backend().store
    _record(run)  # a missing parent is a 404, not an empty list
    top = request.args.get("$top", type=int)
    found = lifecycle.list_jobs(store, run, top)
    return resources.answer(PaginatedRunList(value=[rest_run(r) for r in found]))


@blueprint.post(f"{HISTORY}/rundata")
def run_data():
    """``RunOperations.get_run_data``: the run, with its data outputs as typed asset references."""
    from azure.ai.ml._restclient.runhistory.models import GetRunDataRequest, GetRunDataResult, TypedAssetReference

    asked = GetRunDataRequest(resources.body())
    if not asked.run_id:
        raise errors.ValidationError("The body of POST rundata has no runId: name the run (the job's name).")
    record = _record(asked.run_id)
    store = resources.backend().store
    run = rest_run(record)
    run.outputs = {
        name: TypedAssetReference(asset_id=jobstorage.output_asset_id(store, record["name"], name), type=kind)
        for name, kind in jobstorage.data_outputs(record).items()
    }
    return resources.answer(GetRunDataResult(run_metadata=run))
