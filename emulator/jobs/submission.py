"""Recording a validated job and starting the process that runs it.

A submitted job gets its own detached process, so it keeps running after the call that
created it returns: a command job's supervisor (:mod:`emulator.jobs.supervisor`), or a parent
job's orchestrator (the module its kind names), recorded on the job so that a read can restart
it (:mod:`emulator.jobs.lifecycle`). Each kind validates its spec first
(:mod:`emulator.jobs.command`, :mod:`emulator.sweeps.service`, ...) and comes here to record it.
"""

from __future__ import annotations

import contextlib
import contextvars
import getpass
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from emulator.errors import ResourceNotFound
from emulator.jobs import forking
from emulator.jobs import snapshot as snapshots
from emulator.jobs.naming import generate_job_name
from emulator.runtime import proctree
from emulator.store import WorkspaceStore
from emulator.store import staging as stagings

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import JobRecord, JobSpecHeader, SpecT

SUPERVISOR = "emulator.jobs.supervisor"
LOCAL_COMPUTES = {None, "", "local", "azureml:local"}
_children: list[subprocess.Popen | forking.ForkedChild] = []  # reaped on each submit
#: variables the jobs started in this context inherit (see :func:`inherited_environment`)
_inherited: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("inherited", default=None)


@contextlib.contextmanager
def inherited_environment(variables: dict[str, str]):
    """Jobs started in this block (this thread or task) get ``variables`` in their processes' environment.

    For what the platform gives every job rather than what the user asked for (a front door's managed
    identity and cloud, as Azure gives a job ``MSI_ENDPOINT``/``MSI_SECRET``): the variables go to the job's
    supervisor or orchestrator, so to its command (a process runtime inherits the supervisor's environment) and
    to a parent job's children, and never into the job's record or views, since some are secrets. The job's own
    ``environment_variables`` and the variables the supervisor sets still win."""
    token = _inherited.set(dict(variables))
    try:
        yield
    finally:
        _inherited.reset(token)


def resolve_compute(store: WorkspaceStore, compute: str | None) -> str | None:
    """A job's ``compute`` as a compute name in this workspace, or None to run on this machine."""
    if compute in LOCAL_COMPUTES:
        return None
    name = str(compute).removeprefix("azureml:")
    try:
        store.get_asset("compute", name, "1")
    except ResourceNotFound:
        raise ResourceNotFound(
            f"Compute '{name}' not found in workspace '{store.name}'. Remove 'compute:' (or set "
            "compute: local) to run on this machine; compute clusters and instances are "
            "created with `amlemu compute create`."
        ) from None
    return name


def name_job(spec: JobSpecHeader) -> str:
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


def record_and_start(
    store: WorkspaceStore,
    spec: SpecT,
    job_type: str,
    fill: Callable[[Path], None],
    parent_job_name: str | None = None,
    orchestrator: str | None = None,
    fork: bool = False,
) -> JobRecord[SpecT]:
    """Record a validated job and start its process: its supervisor, or its ``orchestrator`` module.

    The job's folder is built in a staging folder (``fill`` adds what the job type needs), the
    record is inserted, and only then is the folder moved into place: a failure leaves nothing.
    A parent job's orchestrator module is kept in its spec, so a read restarts that module when
    the orchestrator is lost.
    """
    name = spec["name"]
    if orchestrator:
        spec["orchestrator"] = orchestrator
    target = store.job_dir(name)  # refused here, before any write, if the name would leave the store
    staging = stagings.make(target.parent)
    try:
        fill(staging)
        for sub in ("artifacts/user_logs", "artifacts/system_logs"):
            (staging / sub).mkdir(parents=True, exist_ok=True)
        store.insert_job(
            {
                "name": name,
                "type": job_type,
                "experiment_name": spec["experiment_name"],
                "parent_job_name": parent_job_name,
                "status": "NotStarted",
                "spec": spec,
                "created_at": time.time(),
            }
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.replace(staging, target)
    start(store, name, orchestrator or SUPERVISOR, fork)
    return store.get_job(name)


def start(store: WorkspaceStore, name: str, module: str = SUPERVISOR, fork: bool = False) -> None:
    """Start the detached process that runs job ``name`` (``module``: a command job's supervisor,
    or a parent job's orchestrator) and record it; the job moves to Queued. With ``fork`` (from a
    single-threaded orchestrator), it is forked rather than started anew."""
    try:
        proc = spawn(store, name, module, fork)
    except OSError as exc:
        store.update_job(
            name,
            only_if_status=("NotStarted",),
            status="Failed",
            ended_at=time.time(),
            error=f"Could not start the job's supervisor: {exc}",
        )
        return
    store.update_job(
        name, only_if_status=("NotStarted",), status="Queued", pid=proc.pid, pid_start=proctree.start_time(proc.pid)
    )


def spawn(store: WorkspaceStore, name: str, module: str, fork: bool = False):
    """Start ``python -m <module> <workspace-dir> <name>`` detached (forked when ``fork`` and safe),
    logging to the job's ``system_logs/supervisor.txt``; this process reaps it."""
    reap_children()
    log_path = store.job_dir(name) / "artifacts" / "system_logs" / "supervisor.txt"
    inherited = _inherited.get()
    if fork and forking.can_fork() and not inherited:
        proc = forking.fork_main(store, module, name, log_path)
    else:
        with open(log_path, "ab") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", module, str(store.root), name],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
                close_fds=True,
                cwd=store.root,
                env={**os.environ, **inherited} if inherited else None,
            )
    _children.append(proc)
    return proc


def reap_children() -> None:
    """Reap the supervisors and orchestrators this process started that have ended."""
    for child in list(_children):
        if child.poll() is not None:
            _children.remove(child)
