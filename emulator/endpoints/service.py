"""Online endpoints and deployments, as the front doors (SDK, CLI) call them.

Writes go to the store first; the endpoint's host process is then told to
reload. The host is started on demand by any call that needs it (an emulator
restart brings endpoints back on their old ports with their old keys), and a
deployment create waits until the host reports ``Succeeded`` or ``Failed``.
"""

from __future__ import annotations

import fcntl
import glob
import http.client
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.endpoints import keys, records
from emulator.endpoints.host import host_file
from emulator.errors import EmulatorError, ValidationError
from emulator.runtime.proctree import is_alive, kill_tree
from emulator.store import WorkspaceStore

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import DeploymentRecord, EndpointRecord

HOST_START_TIMEOUT_S = 30.0
_children: list[subprocess.Popen] = []


class DeploymentFailed(EmulatorError):
    code = "DeploymentFailed"
    status = 400


# -- the host process ------------------------------------------------------------------------------
def host_state(store: WorkspaceStore, name: str) -> dict[str, Any] | None:
    """The live host of an endpoint (pid, port), or None."""
    try:
        info = json.loads(host_file(store, name).read_text())
    except (OSError, ValueError):
        return None
    return info if is_alive(info.get("pid"), info.get("start")) else None


def ensure_host(store: WorkspaceStore, name: str) -> dict[str, Any]:
    """Start the endpoint's host unless it runs; wait until it answers."""
    info = host_state(store, name)
    if info:
        return info
    folder = records.endpoint_dir(store, name)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "host.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        info = host_state(store, name)
        if info:
            return info
        host_file(store, name).unlink(missing_ok=True)
        for child in list(_children):
            if child.poll() is not None:
                _children.remove(child)
        with open(folder / "host.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "emulator.endpoints.host", str(store.root), name],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                cwd=str(folder),
            )
        _children.append(proc)
        deadline = time.monotonic() + HOST_START_TIMEOUT_S
        while time.monotonic() < deadline:
            info = host_state(store, name)
            if info:
                return info
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        tail = (folder / "host.log").read_text(errors="replace").strip().splitlines()[-10:]
        raise EmulatorError(
            f"The host of endpoint '{name}' did not start.\nLast lines of its log:\n" + "\n".join(tail),
            code="EndpointHostFailed",
            status=500,
        )


def control(
    store: WorkspaceStore, endpoint: EndpointRecord, route: str, method: str = "POST", timeout: float = 60
) -> dict[str, Any]:
    """Call a host control route (``reload``, ``status``, ``stop``)."""
    conn = http.client.HTTPConnection("127.0.0.1", endpoint["port"], timeout=timeout)
    try:
        conn.request(method, f"/.amlemu/{route}", headers={"x-amlemu-admin": endpoint["credentials"]["admin"]})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise EmulatorError(
            f"Endpoint host answered {response.status} to {route}: {body[:200]!r}",
            code="EndpointHostFailed",
            status=500,
        )
    return json.loads(body)


def stop_host(store: WorkspaceStore, name: str, timeout: float = 30) -> bool:
    info = host_state(store, name)
    if not info:
        return False
    try:
        control(store, records.get_endpoint(store, name), "stop", timeout=5)
    except (OSError, EmulatorError):
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and is_alive(info["pid"], info["start"]):
        time.sleep(0.05)
    if is_alive(info["pid"], info["start"]):
        kill_tree(info["pid"])
    return True


def _reload(store: WorkspaceStore, name: str) -> EndpointRecord:
    ensure_host(store, name)
    endpoint = records.get_endpoint(store, name)
    control(store, endpoint, "reload")
    return endpoint


# -- endpoints ---------------------------------------------------------------------------------------
def create_or_update_endpoint(store: WorkspaceStore, spec: dict[str, Any], local: bool = False) -> EndpointRecord:
    record, _ = records.create_or_update_endpoint(store, spec, local)
    _reload(store, record["name"])
    return get_endpoint(store, record["name"])


def get_endpoint(store: WorkspaceStore, name: str) -> EndpointRecord:
    """The endpoint record, its host brought up if it was down (after a restart)."""
    record = records.get_endpoint(store, name)
    ensure_host(store, name)
    record["scoring_uri"] = records.scoring_uri(record)
    record["openapi_uri"] = record["scoring_uri"].removesuffix("/score") + "/swagger.json"
    return record


def list_endpoints(store: WorkspaceStore) -> list[EndpointRecord]:
    return [get_endpoint(store, r["name"]) for r in records.list_endpoints(store)]


def delete_endpoint(store: WorkspaceStore, name: str) -> None:
    records.get_endpoint(store, name)
    stop_host(store, name)
    records.delete_endpoint_record(store, name)


def get_keys(store: WorkspaceStore, name: str) -> dict[str, Any]:
    endpoint = records.get_endpoint(store, name)
    creds = endpoint["credentials"]
    if endpoint["auth_mode"] == "key":
        return {"auth_mode": "key", "primary_key": creds["primary"], "secondary_key": creds["secondary"]}
    token, expiry = keys.issue_token(name, creds["token_secret"])
    return {
        "auth_mode": "aml_token",
        "access_token": token,
        "token_type": "Bearer",
        "expiry_time_utc": expiry,
        "refresh_after_time_utc": expiry - keys.TOKEN_LIFETIME_S / 2,
    }


def regenerate_keys(store: WorkspaceStore, name: str, key_type: str = "primary") -> None:
    records.set_credentials(store, name, key_type)
    _reload(store, name)  # the old key is refused from now on


def invoke(
    store: WorkspaceStore,
    name: str,
    body: bytes,
    deployment: str | None = None,
    timeout: float = 300,
    authorize: bool = True,
) -> tuple[int, dict[str, str], bytes]:
    """POST ``body`` to the endpoint's scoring URI with its credentials (unless not ``authorize``: a local
    endpoint takes none), as a client would."""
    endpoint = get_endpoint(store, name)
    headers = {"Content-Type": "application/json"}
    if authorize:
        credential = get_keys(store, name)
        headers["Authorization"] = f"Bearer {credential.get('primary_key') or credential['access_token']}"
    if deployment:
        headers["azureml-model-deployment"] = deployment
    conn = http.client.HTTPConnection("127.0.0.1", endpoint["port"], timeout=timeout)
    try:
        conn.request("POST", "/score", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


# -- deployments ---------------------------------------------------------------------------------------
def create_or_update_deployment(
    store: WorkspaceStore, spec: dict[str, Any], base_path: Path, endpoint_name: str | None = None, wait: bool = True
) -> DeploymentRecord:
    record, _ = records.create_or_update_deployment(store, spec, Path(base_path), endpoint_name)
    _reload(store, record["endpoint_name"])
    if wait:
        return wait_deployment(store, record["endpoint_name"], record["deployment_name"], record["generation"])
    return record


def wait_deployment(
    store: WorkspaceStore, endpoint: str, name: str, generation: int, timeout: float = 900
) -> DeploymentRecord:
    """Wait until the host reports the outcome of ``generation``; raise with the log tail on Failed."""
    deadline = time.monotonic() + timeout
    while True:
        record = records.get_deployment(store, endpoint, name)
        if record["generation"] != generation:
            return record  # superseded by a newer update
        if record["provisioning_state"] == "Succeeded":
            return record
        if record["provisioning_state"] == "Failed":
            raise DeploymentFailed(
                f"Deployment '{name}' of endpoint '{endpoint}' failed: {record['error']}\n"
                f"Full logs: `amlemu online-deployment get-logs --name {name} "
                f"--endpoint-name {endpoint}`."
            )
        if time.monotonic() > deadline:
            raise DeploymentFailed(
                f"Deployment '{name}' is still {record['provisioning_state']} after {timeout:.0f} s."
            )
        if not host_state(store, endpoint):
            _reload(store, endpoint)  # the host went away: a new one picks the deployment up
        time.sleep(0.05)


def get_deployment(store: WorkspaceStore, endpoint: str, name: str) -> DeploymentRecord:
    """The deployment record; like every read of an endpoint or its deployments, it brings a host that died back
    up, and the new host resumes a deployment left ``Creating`` or ``Updating``."""
    record = records.get_deployment(store, endpoint, name)  # a missing endpoint or deployment: 404, nothing started
    ensure_host(store, endpoint)
    return record


def list_deployments(store: WorkspaceStore, endpoint: str) -> list[DeploymentRecord]:
    records.get_endpoint(store, endpoint)
    ensure_host(store, endpoint)
    return records.list_deployments(store, endpoint)


def delete_deployment(store: WorkspaceStore, endpoint: str, name: str) -> None:
    records.delete_deployment_record(store, endpoint, name)
    if host_state(store, endpoint):
        control(store, records.get_endpoint(store, endpoint), "reload")
    shutil.rmtree(records.deployment_dir(store, endpoint, name), ignore_errors=True)


def status(store: WorkspaceStore, endpoint: str) -> dict[str, Any]:
    ensure_host(store, endpoint)
    return control(store, records.get_endpoint(store, endpoint), "status", method="GET")


def get_logs(
    store: WorkspaceStore, endpoint: str, name: str, lines: int = 100, container_type: str | None = None
) -> str:
    """The last ``lines`` of the newest replica's log (``storage-initializer``: the deployment's events and its
    environment's build). A deployment whose current generation failed before any replica of it started (its
    environment did not build, say) shows that failure first in the default log, and where the full build log is."""
    record = get_deployment(store, endpoint, name)
    if lines is not None and int(lines) < 1:
        raise ValidationError("--lines must be at least 1.")
    lines = int(lines or 100)
    folder = records.deployment_dir(store, endpoint, name) / "logs"
    kind = (container_type or "inference-server").lower().replace("_", "-")
    if kind == "storage-initializer":
        candidates = [folder / "deployment.log"]
    elif kind == "inference-server":
        candidates = sorted(
            (p for p in folder.glob("*.log") if p.name != "deployment.log"), key=lambda p: p.stat().st_mtime
        )
    else:
        raise ValidationError(
            f"container_type '{container_type}' is unknown; use inference-server or storage-initializer."
        )
    failure = _failed_before_start(record, folder, lines) if kind == "inference-server" else ""
    if not candidates or not candidates[-1].exists():
        return failure
    text = candidates[-1].read_text(errors="replace").splitlines()
    return failure + "\n".join(text[-lines:]) + "\n"


_BUILD_LOG = re.compile(r"Full build log: (\S+)")
_BUILDING = re.compile(r"\[amlemu\] building environment ([0-9a-f]+) on ")  # emulator.runtime.venv's first line


def _failed_before_start(record: DeploymentRecord, folder: Path, lines: int) -> str:
    """What the default log shows of a current generation that failed before any of its replicas started: the
    reason, the end of its preparation (the environment's build) and where the whole of it is; else ``""``."""
    generation = record["generation"]
    started = any(folder.glob(f"{glob.escape(record['deployment_name'])}-{generation}-*.log"))
    if record["provisioning_state"] != "Failed" or started:
        return ""
    events_log = folder / "deployment.log"
    events = events_log.read_text(errors="replace").splitlines() if events_log.is_file() else []
    mark = f" generation {generation}: starting "
    first = max((i for i, line in enumerate(events) if mark in line), default=-1) + 1
    preparation = [line for line in events[first:] if f" generation {generation}: Failed: " not in line]
    where = [
        f"[amlemu] The deployment's whole log (events and build): {events_log} (get-logs "
        "--container storage-initializer)."
    ]
    found = _BUILD_LOG.search(record.get("error") or "") or next(
        (m for m in map(_BUILDING.search, reversed(preparation)) if m), None
    )
    if found:
        # the build-log folder's place is the runtime's (~30 ms of imports only a failed deployment's log pays)
        from emulator.runtime.installs import build_logs_dir

        path = Path(found[1]) if found.re is _BUILD_LOG else build_logs_dir() / f"{found[1]}.log"
        if path.is_file():
            where.insert(0, f"[amlemu] Full build log: {path}")
    return "\n".join(
        [
            f"[amlemu] Deployment '{record['deployment_name']}' failed before its scoring server started "
            f"(generation {generation}): {record.get('error') or 'no reason recorded'}",
            *(["[amlemu] Last lines of its preparation:", *preparation[-lines:]] if preparation else []),
            *where,
            "",
        ]
    )


def running_hosts(store: WorkspaceStore) -> list[dict[str, Any]]:
    out = []
    for record in records.list_endpoints(store):
        info = host_state(store, record["name"])
        if info:
            out.append({"endpoint": record["name"], **info})
    return out
