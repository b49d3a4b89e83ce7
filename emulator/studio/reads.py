"""The reads the studio's pages need beyond the concepts' views, shaped so that a page stays fast.

Every job shown is read as ``amlemu job show`` reads it (:func:`emulator.jobs.lifecycle.get`, which notices a
lost job, then the kind's view); what is added here is what a browser needs and the CLI does not:

- a **page** of top-level jobs, filtered by experiment and status, newest first (a workspace may hold
  thousands: the page asks SQLite for its 50 names, then reads those jobs only);
- **metric series** one metric at a time, for a chart, downsampled to at most :data:`MAX_POINTS` points
  a run (the job page lists metric names; the browser asks for the series it draws);
- the **files** of a job's outputs, and a **log tail** from a byte offset (the live log).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

from emulator import kinds
from emulator.errors import ResourceNotFound
from emulator.jobs import lifecycle
from emulator.jobs import outputs as job_outputs
from emulator.naming import confined_join
from emulator.store import WorkspaceStore
from emulator.store.db import ACTIVE, TERMINAL
from emulator.tracking import filestore

PER_PAGE = 50
#: points drawn per run and metric: above this a series is reduced to each bucket's first, min and max
MAX_POINTS = 600
#: a log tail starts this many bytes before the end
LOG_TAIL_BYTES = 64 * 1024
MAX_FILES = 500
STATUSES = ("NotStarted", "Queued", "Preparing", "Running", "Finalizing", "CancelRequested", *TERMINAL)


# -- jobs ------------------------------------------------------------------------------------------------------------
def duration(job: dict[str, Any], now: float | None = None) -> float | None:
    """Seconds the job ran (so far, while it runs), as Azure's Duration column shows it."""
    start = job.get("started_at")
    if not start:
        return None
    return max(0.0, (job.get("ended_at") or (now or time.time())) - start)


def job_row(store: WorkspaceStore, job: dict[str, Any]) -> dict[str, Any]:
    """One line of the Jobs list: the job's ``az ml job show`` view (without tracking), its times."""
    view = kinds.view(store, job, tracking=False)
    return {
        "name": job["name"],
        "display_name": view.get("display_name") or job["name"],
        "type": job["type"],
        "experiment": job["experiment_name"],
        "status": job["status"],
        "compute": view.get("compute") or "local",
        "created_at": job["created_at"],
        "duration": duration(job),
        "active": job["status"] in ACTIVE,
    }


def _where(experiment: str | None, status: str | None) -> tuple[str, tuple]:
    sql, args = "parent_job_name IS NULL", ()
    if experiment:
        sql, args = sql + " AND experiment_name = ?", (*args, experiment)
    if status:
        sql, args = sql + " AND status = ?", (*args, status)
    return sql, args


def job_page(
    store: WorkspaceStore,
    *,
    experiment: str | None = None,
    status: str | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> tuple[list[dict[str, Any]], int]:
    """The rows of one page of top-level jobs, newest first, and how many jobs match in all."""
    where, args = _where(experiment, status)
    total = store.query(f"SELECT COUNT(*) FROM jobs WHERE {where}", args)[0][0]
    names = store.query(
        f"SELECT name FROM jobs WHERE {where} ORDER BY created_at DESC LIMIT ? OFFSET ?",
        (*args, per_page, (max(page, 1) - 1) * per_page),
    )
    return [job_row(store, lifecycle.get(store, row["name"])) for row in names], total


def page_state(
    store: WorkspaceStore,
    *,
    experiment: str | None = None,
    status: str | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> tuple[str, bool]:
    """A fingerprint of a page of jobs (its names and statuses, and how many match) and whether one of them is
    active: the live list re-renders a page only when it changed or still runs (about 1 ms to tell)."""
    where, args = _where(experiment, status)
    rows = store.query(
        f"SELECT name, status, (SELECT COUNT(*) FROM jobs WHERE {where}) AS total FROM jobs WHERE {where} "
        "ORDER BY created_at DESC LIMIT ? OFFSET ?",
        (*args, *args, per_page, (max(page, 1) - 1) * per_page),
    )
    seen = "|".join(f"{r['name']}={r['status']}" for r in rows) + f"|{rows[0]['total'] if rows else 0}"
    return hashlib.sha1(seen.encode()).hexdigest()[:16], any(r["status"] in ACTIVE for r in rows)


def experiments(store: WorkspaceStore) -> list[str]:
    """The experiments that top-level jobs ran in, for the Jobs list's filter."""
    rows = store.query("SELECT DISTINCT experiment_name FROM jobs WHERE parent_job_name IS NULL ORDER BY 1")
    return [r[0] for r in rows]


def child_rows(store: WorkspaceStore, job: dict[str, Any]) -> list[dict[str, Any]]:
    """The child jobs of a parent job (trials, steps), oldest first."""
    return [job_row(store, child) for child in reversed(lifecycle.list_jobs(store, job["name"]))]


def related_runs(store: WorkspaceStore, job: dict[str, Any], limit: int = 30) -> list[dict[str, Any]]:
    """Runs a chart can compare this one with: its siblings (a sweep's other trials) or, for a top-level job,
    the latest jobs of its experiment."""
    rows = store.query(
        "SELECT name, status FROM jobs WHERE parent_job_name IS ? AND experiment_name = ? AND name != ? "
        "ORDER BY created_at DESC LIMIT ?",
        (job["parent_job_name"], job["experiment_name"], job["name"], limit),
    )
    return [{"name": r["name"], "status": r["status"]} for r in rows]


def run_dir(store: WorkspaceStore, job: dict[str, Any]) -> Path:
    return store.mlflow_run_dir(job["experiment_name"], job["name"])


def best_child(job: dict[str, Any]) -> str | None:
    return (job["spec"].get("properties") or {}).get("best_child_run_id")


# -- metrics ---------------------------------------------------------------------------------------------------------
def downsample(points: list[tuple[int, float]], max_points: int = MAX_POINTS) -> list[tuple[int, float]]:
    """At most about ``max_points`` of ``points`` (step, value), keeping each bucket's first, lowest and highest
    point so spikes stay visible, and the last point."""
    if len(points) <= max_points:
        return points
    buckets = max(1, max_points // 3)
    size = len(points) / buckets
    kept: list[tuple[int, float]] = []
    for b in range(buckets):
        bucket = points[int(b * size) : int((b + 1) * size)]
        if not bucket:
            continue
        by_value = sorted(range(len(bucket)), key=lambda i: bucket[i][1])
        kept.extend(bucket[i] for i in sorted({0, by_value[0], by_value[-1]}))
    if kept[-1] != points[-1]:
        kept.append(points[-1])
    return kept


def metric_series(
    store: WorkspaceStore, job_names: list[str], key: str, max_points: int = MAX_POINTS
) -> list[dict[str, Any]]:
    """One metric of each run, by step (the newest value of a step when it was logged twice), downsampled."""
    series = []
    for name in job_names:
        job = store.get_job(name)
        by_step: dict[int, tuple[int, float]] = {}
        for ts, value, step in filestore.metric_history(run_dir(store, job), _metric_key(key)):
            if step not in by_step or ts >= by_step[step][0]:
                by_step[step] = (ts, value)
        points = [(step, value) for step, (_, value) in sorted(by_step.items()) if math.isfinite(value)]
        kept = downsample(points, max_points)
        series.append(
            {
                "job": name,
                "steps": [p[0] for p in kept],
                "values": [p[1] for p in kept],
                "logged": len(points),
            }
        )
    return series


def _metric_key(key: str) -> str:
    """A metric name as a path under the run's ``metrics`` folder (MLflow allows ``/`` in names, never ``..``)."""
    confined_join(Path("/"), *key.split("/"))  # raises on .., absolute parts, NUL
    return key


# -- files and logs --------------------------------------------------------------------------------------------------
def output_folders(store: WorkspaceStore, job: dict[str, Any]) -> dict[str, Path]:
    """The job's outputs that have a folder here: ``artifacts`` (outputs/, logs) and each named output."""
    found = {"artifacts": store.job_dir(job["name"]) / "artifacts"}
    for name in job["spec"].get("outputs") or {}:
        found[name] = job_outputs.output_dir(store, job["name"], name)
    return found


def list_files(folder: Path, limit: int = MAX_FILES) -> list[dict[str, Any]]:
    """The files under ``folder`` (or the file itself), as relative paths and sizes."""
    if folder.is_file():
        return [{"path": folder.name, "size": folder.stat().st_size}]
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            found.append({"path": str(path.relative_to(folder)), "size": path.stat().st_size})
            if len(found) >= limit:
                break
    return found


def output_file(store: WorkspaceStore, job: dict[str, Any], output: str, path: str) -> Path:
    """A file of a job's output, confined to that output's folder."""
    folders = output_folders(store, job)
    if output not in folders:
        raise ResourceNotFound(f"Job '{job['name']}' has no output '{output}' (outputs: {', '.join(folders)}).")
    folder = folders[output]
    target = folder if folder.is_file() and path == folder.name else confined_join(folder, *path.split("/"))
    if not target.is_file():
        raise ResourceNotFound(f"Output '{output}' of job '{job['name']}' has no file '{path}'.")
    return target


def log_path(store: WorkspaceStore, name: str) -> Path:
    """The log ``amlemu job stream`` follows."""
    return store.job_dir(name) / "artifacts" / "user_logs" / "std_log.txt"


def log_chunk(store: WorkspaceStore, name: str, offset: int) -> tuple[str, int]:
    """The log from byte ``offset`` (negative: its last :data:`LOG_TAIL_BYTES`), and the offset to ask next."""
    path = log_path(store, name)
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            start = max(0, size - LOG_TAIL_BYTES) if offset < 0 or offset > size else offset
            f.seek(start)
            data = f.read(LOG_TAIL_BYTES * 4)
    except FileNotFoundError:
        return "", 0
    return data.decode(errors="replace"), start + len(data)


def pretty(value: Any) -> str:
    """A value of a view as the page shows it: strings as they are, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value, indent=1, default=str)
