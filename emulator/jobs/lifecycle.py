"""Reads that notice lost jobs (and restart a lost parent job's orchestrator), cancel and wait.

Reads check that an active job's supervisor still lives; a job whose supervisor died is marked
``Failed`` with the reason, so nothing stays ``Running`` forever. A parent job (sweep, AutoML,
pipeline) whose orchestrator was lost gets a new one instead, which resumes it: the module to
restart is the one recorded on the job at submit (:func:`emulator.jobs.submission.record_and_start`).
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
from typing import TYPE_CHECKING

from emulator.jobs import submission
from emulator.runtime import proctree
from emulator.runtime.liveness import lost_reason
from emulator.store import WorkspaceStore
from emulator.store.db import ACTIVE, TERMINAL

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import JobRecord

MAX_RESUMES = 3


def orchestrator(job: JobRecord) -> str | None:
    """The module a parent job runs as (restarted when lost), or None for a command job. A parent job recorded
    by amlemu before 0.2 (no ``spec["orchestrator"]``) is not resumed: when lost, it is marked Failed."""
    return (job.get("spec") or {}).get("orchestrator")


def refresh(store: WorkspaceStore, job: JobRecord) -> JobRecord:
    """Notice a lost job: active, but its supervisor is gone. A parent job gets a new orchestrator,
    which resumes it; a lost command job is marked Failed."""
    reason = lost_reason(job)
    if reason is None:
        return job
    if job["status"] == "Running":
        if job.get("spec") is None:  # a partial row (compute's queue): read the whole record
            job = store.get_job(job["name"])
        if orchestrator(job):
            resumed = _resume(store, job)
            if resumed is not None:
                return resumed
            reason += f" Its orchestrator was restarted {MAX_RESUMES} times already."
    status = "Failed"
    if job["status"] == "CancelRequested":  # SIGTERM may land before the supervisor can catch it
        status, reason = "Canceled", "Canceled by the user."
    if store.update_job(
        job["name"], only_if_status=(job["status"],), status=status, ended_at=time.time(), error=reason
    ):
        # the supervisor's module is what every job process imports: no extra start-up cost here
        from emulator.jobs.supervisor import end_tracking

        if job.get("run_pid"):  # the job's own processes outlived their supervisor: stop them
            proctree.kill_tree(job["run_pid"], grace=1.0)

        end_tracking(store, job["name"], status)
        # a lost parent job's orchestrator: its child jobs go with it (a command job has none)
        for child in store.list_jobs(job["name"]):
            if child["status"] in ACTIVE:
                cancel(store, child["name"])
    return store.get_job(job["name"])


def _resume(store: WorkspaceStore, job: JobRecord) -> JobRecord | None:
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
        proc = submission.spawn(store, job["name"], orchestrator(current))
        store.update_job(
            job["name"], only_if_status=("Running",), pid=proc.pid, pid_start=proctree.start_time(proc.pid)
        )
    return store.get_job(job["name"])


def get(store: WorkspaceStore, name: str) -> JobRecord:
    return refresh(store, store.get_job(name))


def list_jobs(
    store: WorkspaceStore, parent_job_name: str | None = None, max_results: int | None = None
) -> list[JobRecord]:
    return [refresh(store, job) for job in store.list_jobs(parent_job_name, max_results)]


def cancel(store: WorkspaceStore, name: str) -> JobRecord:
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
        store.update_job(
            name,
            only_if_status=("CancelRequested",),
            status="Canceled",
            ended_at=time.time(),
            error="Canceled by the user before it started.",
        )
    return get(store, name)


def wait(store: WorkspaceStore, name: str, timeout: float | None = None, poll: float = 0.05) -> JobRecord:
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
