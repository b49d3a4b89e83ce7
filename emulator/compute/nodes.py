"""The nodes of compute clusters and instances, and the FIFO queue of jobs waiting for them.

A node is a row of the store's ``nodes`` table, not a process: the job holding it
runs its processes "on" it (its supervisor starts them). There is no scheduler
daemon. :func:`_schedule` runs inside a ``BEGIN IMMEDIATE`` transaction whenever the
picture may change — a job starts waiting, a job releases its nodes, anyone reads
the nodes, a waiting job's periodic check — and there, for one compute, it:

1. frees the nodes of jobs that ended or were lost (their supervisor died);
2. tops the pool up to its minimum (``min_instances``; one node for a running instance);
3. grants nodes to the head of the compute's queue — its waiting jobs holding no node,
   oldest first, lost ones skipped — idle nodes first, new ones up to ``max_instances``;
   a job that does not fit stops the grants, so a later job never overtakes an earlier one;
4. releases nodes idle longer than ``idle_time_before_scale_down``, down to the minimum.

A granted job's ``started_at`` is set in the same transaction: it is when the job
left the queue, so start order is queue order by construction. Once the grant is
committed the granter rings the waiting job's :class:`GrantBell` (a FIFO in its job
folder), so the job starts at once; a slow poll of the store backs the bell up.
"""

from __future__ import annotations

import json
import os
import select
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.runtime.liveness import lost_reason
from emulator.store import WorkspaceStore
from emulator.store.db import TERMINAL

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import ComputeRecord

WAITING = ("NotStarted", "Queued")
SYNC_EVERY_S = 2.0  # a waiting job re-runs the scheduler this often (lost holders, scale-down)
POLL_MAX_S = 0.5  # and checks the store for its grant at least this often, bell or not
# the jobs waiting for nodes: command jobs only (a sweep, pipeline or AutoML job on a cluster holds
# no node itself, as on Azure: its children do)
_QUEUE = (
    "SELECT name, status, pid, pid_start, created_at, "
    "COALESCE(json_extract(spec, '$.resources.instance_count'), 1) AS count FROM jobs "
    "WHERE type = 'command' AND status IN ('NotStarted', 'Queued') AND json_extract(spec, '$.compute') = ? "
    "AND name NOT IN (SELECT job_name FROM nodes WHERE compute = ? AND job_name IS NOT NULL) "
    "ORDER BY created_at, name"
)


def pool_limits(record: ComputeRecord) -> tuple[int, int, float]:
    """(minimum, maximum, idle seconds before scale-down) of a compute's node pool."""
    if record["type"] == "computeinstance":  # one job slot per concurrent job (see emulator.compute.instances)
        slots = int(record.get("concurrent_jobs") or 1)
        return (slots, slots, float("inf")) if record["state"] == "Running" else (0, 0, 0.0)
    return int(record["min_instances"]), int(record["max_instances"]), float(record["idle_time_before_scale_down"])


def _new_node(db: sqlite3.Connection, compute: str, now: float) -> str:
    node_id = f"tvmps_{os.urandom(16).hex()}_d"  # Azure's dedicated-node id shape
    db.execute(
        "INSERT INTO nodes (compute, node_id, state, created_at, idle_since) VALUES (?, ?, 'idle', ?, ?)",
        (compute, node_id, now, now),
    )
    return node_id


def _is_lost(job: sqlite3.Row) -> bool:
    return lost_reason(dict(job)) is not None


def _free_ended(db: sqlite3.Connection, compute: str, now: float) -> None:
    holders = db.execute(
        "SELECT DISTINCT n.job_name AS held_by, j.* FROM nodes n LEFT JOIN jobs j "
        "ON j.name = n.job_name WHERE n.compute = ? AND n.job_name IS NOT NULL",
        (compute,),
    )
    for job in holders.fetchall():
        if job["name"] is None or job["status"] in TERMINAL or _is_lost(job):
            db.execute(
                "UPDATE nodes SET state = 'idle', job_name = NULL, job_rank = NULL, idle_since = ? "
                "WHERE compute = ? AND job_name = ?",
                (now, compute, job["held_by"]),
            )


def _grant(db: sqlite3.Connection, compute: str, maximum: int, now: float) -> list[str]:
    granted: list[str] = []
    for job in db.execute(_QUEUE, (compute, compute)).fetchall():
        if _is_lost(job):  # marked Failed on its next read; it must not block the queue
            continue
        idle = [
            r["node_id"]
            for r in db.execute(
                "SELECT node_id FROM nodes WHERE compute = ? AND state = 'idle' ORDER BY idle_since DESC, node_id",
                (compute,),
            )
        ]
        total = db.execute("SELECT COUNT(*) FROM nodes WHERE compute = ?", (compute,)).fetchone()[0]
        count = int(job["count"])
        if len(idle) + maximum - total < count:
            break  # FIFO: nobody overtakes the head of the queue
        chosen = idle[:count] + [_new_node(db, compute, now) for _ in range(count - len(idle[:count]))]
        for rank, node_id in enumerate(chosen):
            db.execute(
                "UPDATE nodes SET state = 'running', job_name = ?, job_rank = ?, idle_since = NULL "
                "WHERE compute = ? AND node_id = ?",
                (job["name"], rank, compute, node_id),
            )
        db.execute("UPDATE jobs SET started_at = ? WHERE name = ?", (now, job["name"]))
        granted.append(job["name"])
    return granted


def _scale(db: sqlite3.Connection, compute: str, limits: tuple[int, int, float], now: float, *, top_up: bool) -> None:
    minimum, maximum, idle_s = limits
    total = db.execute("SELECT COUNT(*) FROM nodes WHERE compute = ?", (compute,)).fetchone()[0]
    if top_up:
        for _ in range(minimum - total):
            _new_node(db, compute, now)
        return
    idle = db.execute(
        "SELECT node_id, idle_since FROM nodes WHERE compute = ? AND state = 'idle' ORDER BY idle_since, node_id",
        (compute,),
    ).fetchall()
    for node in idle:
        if total <= minimum or (total <= maximum and now - node["idle_since"] < idle_s):
            break
        db.execute("DELETE FROM nodes WHERE compute = ? AND node_id = ?", (compute, node["node_id"]))
        total -= 1


def _schedule(db: sqlite3.Connection, name: str, now: float) -> list[str]:
    """One scheduling pass over compute ``name``; the jobs granted nodes."""
    row = db.execute("SELECT body FROM assets WHERE kind = 'compute' AND name = ?", (name,)).fetchone()
    if row is None:  # deleted: nothing to schedule
        return []
    limits = pool_limits(json.loads(row["body"]))
    _free_ended(db, name, now)
    _scale(db, name, limits, now, top_up=True)
    granted = _grant(db, name, limits[1], now)
    _scale(db, name, limits, now, top_up=False)
    return granted


class GrantBell:
    """A FIFO in a waiting job's folder that the scheduler rings when it grants the job its nodes.

    ``name`` gives another bell in the same folder (a sweep rings ``.trial-slot-bell`` when it gives a
    prepared trial its slot: see :mod:`emulator.jobs.supervisor`).
    """

    def __init__(self, job_dir: Path, name: str = ".node-grant"):
        self.path = Path(job_dir) / name

    def __enter__(self) -> GrantBell:
        self.path.unlink(missing_ok=True)
        os.mkfifo(self.path, 0o600)
        self.fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)  # read-write: never an EOF to spin on
        return self

    def wait(self, timeout: float) -> None:
        if select.select([self.fd], [], [], timeout)[0]:
            os.read(self.fd, 512)

    def __exit__(self, *_) -> None:
        os.close(self.fd)
        self.path.unlink(missing_ok=True)

    @staticmethod
    def ring(job_dir: Path, name: str = ".node-grant") -> None:
        try:  # no bell (the job is not waiting yet, or any more): the job finds its grant when it looks
            fd = os.open(Path(job_dir) / name, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return
        try:
            os.write(fd, b".")
        except OSError:
            pass
        finally:
            os.close(fd)


def sync(store: WorkspaceStore, compute: str) -> None:
    """Bring a compute's pool up to date (frees, grants, scale-down) now."""
    with store.transaction() as db:
        granted = _schedule(db, compute, time.time())
    for name in granted:  # after the commit, so the woken job sees its grant
        GrantBell.ring(store.job_dir(name))


def held_by(store: WorkspaceStore, job_name: str) -> list[dict[str, Any]]:
    """The nodes a job holds, in rank order."""
    return [dict(r) for r in store.query("SELECT * FROM nodes WHERE job_name = ? ORDER BY job_rank", (job_name,))]


def release(store: WorkspaceStore, compute: str, job_name: str, lost: tuple[str, ...] = ()) -> None:
    """Give a job's nodes back (idle from now); ``lost`` nodes leave the pool and are replaced as needed."""
    now = time.time()
    with store.transaction() as db:
        for node_id in lost:
            db.execute("DELETE FROM nodes WHERE compute = ? AND node_id = ?", (compute, node_id))
        db.execute(
            "UPDATE nodes SET state = 'idle', job_name = NULL, job_rank = NULL, idle_since = ? "
            "WHERE compute = ? AND job_name = ?",
            (now, compute, job_name),
        )
        granted = _schedule(db, compute, now)
    for name in granted:
        GrantBell.ring(store.job_dir(name))


def drop(db: sqlite3.Connection, compute: str) -> None:
    db.execute("DELETE FROM nodes WHERE compute = ?", (compute,))


def wait_for_nodes(
    store: WorkspaceStore, record: ComputeRecord, job_name: str, stop: Callable[[], bool]
) -> list[dict[str, Any]] | None:
    """Block until ``job_name`` holds its nodes (returned in rank order); None when ``stop()`` turns true."""
    held = held_by(store, job_name)  # granted already (e.g. a sweep's trial, queued while it waited for its slot)
    if held:
        return held
    delay, last_sync = 0.02, float("-inf")
    with GrantBell(store.job_dir(job_name)) as bell:
        while not stop():
            if time.monotonic() - last_sync > SYNC_EVERY_S:
                sync(store, record["name"])
                last_sync = time.monotonic()
            held = held_by(store, job_name)
            if held:
                return held
            bell.wait(delay)
            delay = min(delay * 2, POLL_MAX_S)
    return None


def list_nodes(store: WorkspaceStore, record: ComputeRecord) -> list[dict[str, Any]]:
    """The pool's nodes, as ``AmlComputeNodeInfo`` fields: id, state (idle, preparing, running), current job."""
    sync(store, record["name"])
    rows = store.query(
        "SELECT n.*, j.status AS job_status FROM nodes n LEFT JOIN jobs j ON j.name = n.job_name "
        "WHERE n.compute = ? ORDER BY n.created_at, n.node_id",
        (record["name"],),
    )
    nodes = []
    for row in rows:
        state = row["state"]
        if row["job_name"] and row["job_status"] in WAITING + ("Preparing",):
            state = "preparing"
        node = {"node_id": row["node_id"], "private_ip_address": "127.0.0.1", "node_state": state}
        if row["job_name"]:
            node["current_job_name"] = row["job_name"]
        nodes.append(node)
    return nodes
