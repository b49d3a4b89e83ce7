"""Job submission, reads that notice lost jobs, and cancellation.

A submitted job gets its own detached supervisor process
(:mod:`emulator.jobs.supervisor`), so it keeps running after the CLI call
that created it returns. Reads check that an active job's supervisor still
lives; a job whose supervisor died is marked ``Failed`` with the reason,
so nothing stays ``Running`` forever.
"""

from __future__ import annotations

import fcntl
import getpass
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from emulator.compute import service as compute
from emulator.environments import registry as environments
from emulator.errors import ResourceNotFound, ValidationError
from emulator.jobs import forking, snapshot as snapshots
from emulator.jobs.naming import generate_job_name
from emulator.jobs.spec import normalize_command_job
from emulator import config, naming
from emulator.naming import confined_join
from emulator.runtime import proctree
from emulator.runtime.base import check_runtime
from emulator.store import WorkspaceStore, staging as stagings
from emulator.store.db import ACTIVE, TERMINAL

LOCAL_COMPUTES = {None, "", "local", "azureml:local"}
#: a job still without a supervisor this long after submission was lost at submit time
UNSTARTED_GRACE_S = 60.0
_children: list[subprocess.Popen | forking.ForkedChild] = []  # reaped on each submit
#: parent jobs whose lost orchestrator is restarted (and resumes) on the next read: type -> module
RESUMABLE = {"sweep": "emulator.sweeps.orchestrator", "automl": "emulator.automl.orchestrator",
             "pipeline": "emulator.pipelines.orchestrator"}
MAX_RESUMES = 3


def _resolve_compute(store: WorkspaceStore, compute: str | None) -> str | None:
    if compute in LOCAL_COMPUTES:
        return None
    name = str(compute).removeprefix("azureml:")
    try:
        store.get_asset("compute", name, "1")
    except ResourceNotFound:
        raise ResourceNotFound(
            f"Compute '{name}' not found in workspace '{store.name}'. Remove 'compute:' (or set "
            "compute: local) to run on this machine; compute clusters and instances are "
            "created with `amlemu compute create`.") from None
    return name


def submit(store: WorkspaceStore, data: dict[str, Any], base_path: Path,
           parent_job_name: str | None = None, fork: bool = False) -> dict[str, Any]:
    """Validate a command job, record it, snapshot its code and start its supervisor.

    Everything is checked before the first write: bad input leaves nothing behind.
    Sweep and pipeline jobs go to their own orchestrators (``emulator.sweeps``,
    ``emulator.pipelines``), which submit their trials and steps back here as child jobs,
    with ``fork``: the supervisor is forked from the orchestrator (:mod:`emulator.jobs.forking`).
    """
    kind = (data.get("type") or "command") if isinstance(data, dict) else "command"
    if kind == "sweep":
        from emulator.sweeps.service import submit_sweep

        return submit_sweep(store, data, Path(base_path))
    if kind == "pipeline":
        from emulator.pipelines.service import submit_pipeline

        return submit_pipeline(store, data, Path(base_path))
    if kind == "automl":
        from emulator.automl.service import submit_automl

        return submit_automl(store, data, Path(base_path))
    spec = normalize_command_job(data, Path(base_path))
    spec["compute"] = _resolve_compute(store, spec["compute"])
    compute.placement(store, spec["compute"], spec["resources"]["instance_count"])
    spec["environment_resolved"] = environments.resolve(store, spec["environment"], Path(base_path))
    spec["runtime"] = check_runtime(config.runtime_name())
    name_job(spec)

    def fill(staging: Path) -> None:
        snapshot_code(spec["code"], staging / "snapshot")
        (staging / "outputs").mkdir()

    return record_and_start(store, spec, "command", fill, parent_job_name, fork=fork)


def name_job(spec: dict[str, Any]) -> str:
    """Fill in a new job's name, experiment, display name and creator."""
    name = spec["name"] = spec.get("name") or generate_job_name()
    spec["experiment_name"] = spec.get("experiment_name") or Path.cwd().name or "Default"
    spec["display_name"] = spec.get("display_name") or name
    spec["created_by"] = getpass.getuser()
    return name


def snapshot_code(code: str | None, snapshot: Path) -> None:
    """Copy a job's code folder (or file) to ``snapshot``, as Azure snapshots it at submit
    (bounded, honouring ``.amlignore``: see :mod:`emulator.jobs.snapshot`)."""
    if code:
        snapshots.copy(Path(code), snapshot)
    else:
        snapshot.mkdir()


def record_and_start(store: WorkspaceStore, spec: dict[str, Any], job_type: str, fill: Callable[[Path], None],
                     parent_job_name: str | None = None, module: str = "emulator.jobs.supervisor",
                     fork: bool = False) -> dict[str, Any]:
    """Record a validated job and start its process.

    The job's folder is built in a staging folder (``fill`` adds what the job type needs), the
    record is inserted, and only then is the folder moved into place: a failure leaves nothing.
    """
    name = spec["name"]
    target = store.job_dir(name)  # refused here, before any write, if the name would leave the store
    staging = stagings.make(target.parent)
    try:
        fill(staging)
        for sub in ("artifacts/user_logs", "artifacts/system_logs"):
            (staging / sub).mkdir(parents=True, exist_ok=True)
        store.insert_job({"name": name, "type": job_type, "experiment_name": spec["experiment_name"],
                          "parent_job_name": parent_job_name, "status": "NotStarted", "spec": spec,
                          "created_at": time.time()})
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.replace(staging, target)
    _start_supervisor(store, name, module, fork)
    return store.get_job(name)


def _start_supervisor(store: WorkspaceStore, name: str, module: str = "emulator.jobs.supervisor",
                      fork: bool = False) -> None:
    """Start the detached process that runs job ``name`` (``module``: a command job's supervisor,
    or a sweep's or pipeline's orchestrator) and record it; the job moves to Queued. With
    ``fork`` (from a single-threaded orchestrator), it is forked rather than started anew."""
    try:
        proc = _spawn(store, name, module, fork)
    except OSError as exc:
        store.update_job(name, only_if_status=("NotStarted",), status="Failed", ended_at=time.time(),
                         error=f"Could not start the job's supervisor: {exc}")
        return
    store.update_job(name, only_if_status=("NotStarted",), status="Queued", pid=proc.pid,
                     pid_start=proctree.start_time(proc.pid))


def _spawn(store: WorkspaceStore, name: str, module: str, fork: bool = False):
    """Start ``python -m <module> <workspace-dir> <name>`` detached (forked when ``fork`` and safe),
    logging to the job's ``system_logs/supervisor.txt``; this process reaps it."""
    reap_children()
    log_path = store.job_dir(name) / "artifacts" / "system_logs" / "supervisor.txt"
    if fork and forking.can_fork():
        proc = forking.fork_main(store, module, name, log_path)
    else:
        with open(log_path, "ab") as err:
            proc = subprocess.Popen([sys.executable, "-m", module, str(store.root), name],
                                    stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True,
                                    close_fds=True, cwd=store.root)
    _children.append(proc)
    return proc


def reap_children() -> None:
    """Reap the supervisors and orchestrators this process started that have ended."""
    for child in list(_children):
        if child.poll() is not None:
            _children.remove(child)


def lost_reason(job: dict[str, Any]) -> str | None:
    """Why an active job is lost (its supervisor is gone), or None while it is not."""
    if job["status"] not in ACTIVE:
        return None
    if job["pid"]:
        if proctree.is_alive(job["pid"], job["pid_start"]):
            return None
        return (f"The job's supervisor process (pid {job['pid']}) ended unexpectedly while the job "
                f"was {job['status']}; the job was lost. Submit it again.")
    if time.time() - job["created_at"] > UNSTARTED_GRACE_S:
        return "The job was recorded but its supervisor never started; submit it again."
    return None


def refresh(store: WorkspaceStore, job: dict[str, Any]) -> dict[str, Any]:
    """Notice a lost job: active, but its supervisor is gone. A sweep, AutoML or pipeline job gets a
    new orchestrator, which resumes it; a lost command job is marked Failed."""
    reason = lost_reason(job)
    if reason is None:
        return job
    if job["type"] in RESUMABLE and job["status"] == "Running":
        resumed = _resume(store, job)
        if resumed is not None:
            return resumed
        reason += f" Its orchestrator was restarted {MAX_RESUMES} times already."
    status = "Failed"
    if job["status"] == "CancelRequested":  # SIGTERM may land before the supervisor can catch it
        status, reason = "Canceled", "Canceled by the user."
    if store.update_job(job["name"], only_if_status=(job["status"],), status=status,
                        ended_at=time.time(), error=reason):
        from emulator.jobs.supervisor import end_tracking

        if job.get("run_pid"):  # the job's own processes outlived their supervisor: stop them
            proctree.kill_tree(job["run_pid"], grace=1.0)

        end_tracking(store, job["name"], status)
        if job["type"] != "command":  # a lost sweep or pipeline orchestrator: its child jobs go with it
            for child in store.list_jobs(job["name"]):
                if child["status"] in ACTIVE:
                    cancel(store, child["name"])
    return store.get_job(job["name"])


def _resume(store: WorkspaceStore, job: dict[str, Any]) -> dict[str, Any] | None:
    """Start a new orchestrator for a lost parent job; None once it was restarted MAX_RESUMES times.

    Readers take turns (a lock file in the job's folder), so one lost orchestrator gets one
    successor; the others find it alive.
    """
    folder = store.job_dir(job["name"])
    with open(folder / ".resume.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = store.get_job(job["name"])
        if current["status"] != "Running" or lost_reason(current) is None:
            return current  # ended, or resumed by another reader meanwhile
        lock.seek(0)
        count = len(lock.read())  # one character per restart
        if count >= MAX_RESUMES:
            return None
        lock.write(".")
        lock.flush()
        proc = _spawn(store, job["name"], RESUMABLE[job["type"]])
        store.update_job(job["name"], only_if_status=("Running",), pid=proc.pid,
                         pid_start=proctree.start_time(proc.pid))
    return store.get_job(job["name"])


def get(store: WorkspaceStore, name: str) -> dict[str, Any]:
    return refresh(store, store.get_job(name))


def list_jobs(store: WorkspaceStore, parent_job_name: str | None = None,
              max_results: int | None = None) -> list[dict[str, Any]]:
    return [refresh(store, job) for job in store.list_jobs(parent_job_name, max_results)]


def cancel(store: WorkspaceStore, name: str) -> dict[str, Any]:
    """Ask a job to stop; its supervisor stops the whole process tree and records Canceled."""
    job = get(store, name)
    if job["status"] in TERMINAL:
        return job
    if not store.update_job(name, only_if_status=ACTIVE, status="CancelRequested"):
        return get(store, name)
    if job["pid"] and proctree.is_alive(job["pid"], job["pid_start"]):
        try:
            os.kill(job["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
    else:
        store.update_job(name, only_if_status=("CancelRequested",), status="Canceled",
                         ended_at=time.time(), error="Canceled by the user before it started.")
    return get(store, name)


def wait(store: WorkspaceStore, name: str, timeout: float | None = None, poll: float = 0.05) -> dict:
    """Block until the job is terminal (or ``timeout`` seconds pass) and return it."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        job = get(store, name)
        if job["status"] in TERMINAL:
            return job
        if deadline is not None and time.monotonic() > deadline:
            return job
        time.sleep(poll)
        poll = min(poll * 1.5, 0.5)


def output_dir(store: WorkspaceStore, name: str, output: str) -> Path:
    """The local folder of a job output (``artifacts`` is the default one)."""
    job = store.get_job(name)
    if output in ("artifacts", "default"):
        return store.job_dir(name) / "artifacts"
    if output not in job["spec"]["outputs"]:
        known = ", ".join(["artifacts", *job["spec"]["outputs"]])
        raise ValidationError(f"Job '{name}' has no output '{output}' (outputs: {known}).")
    # a pipeline's output links to its step's output folder: confined to the workspace's jobs, not to this job
    return confined_join(store.job_dir(name).parent, name, "outputs", naming.check("output", output))


def download(store: WorkspaceStore, name: str, download_path: Path, output_name: str | None = None,
             all: bool = False) -> Path:
    """Copy a job's outputs locally, laid out as ``az ml job download`` does."""
    job = get(store, name)
    if job["status"] not in TERMINAL:
        raise ValidationError(f"Job '{name}' is {job['status']}; its outputs are available once it "
                              f"ends. Wait with `amlemu job stream --name {name}`.")
    download_path = Path(download_path)
    targets: list[tuple[Path, Path]] = []
    if output_name in (None, "artifacts", "default") or all:
        targets.append((output_dir(store, name, "artifacts"), confined_join(download_path, "artifacts")))
    names = list(job["spec"]["outputs"]) if all else ([output_name] if output_name not in (None, "artifacts", "default") else [])
    for out in names:
        targets.append((output_dir(store, name, out), confined_join(download_path, "named-outputs", out)))
    for src, dst in targets:
        shutil.copytree(src, dst, dirs_exist_ok=True)
    return download_path
