"""SQLite-backed records of one workspace.

The database runs in WAL mode with a generous busy timeout, so several
processes (CLI calls, job supervisors, the Python client) can write at once
without losing anything. Write paths that read-then-write run inside
``BEGIN IMMEDIATE`` so two writers never interleave.

Jobs have their own table (their status moves); versioned assets (models,
environments) and named resources (computes, endpoints) share ``assets``. The
nodes of compute clusters and instances have their own table (``nodes``): which
job holds each one, and since when it is idle (see :mod:`emulator.compute.nodes`).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from emulator import config
from emulator.errors import ResourceExists, ResourceNotFound
from emulator.naming import confined_join

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import JobRecord, NewJobRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    experiment_name TEXT NOT NULL,
    parent_job_name TEXT,
    status TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    pid INTEGER,
    pid_start TEXT,
    run_pid INTEGER,
    exit_code INTEGER,
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs(created_at);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status);  -- compute queues read the waiting jobs
CREATE TABLE IF NOT EXISTS assets (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (kind, name, version)
);
CREATE TABLE IF NOT EXISTS nodes (
    compute TEXT NOT NULL,
    node_id TEXT NOT NULL,
    state TEXT NOT NULL,
    job_name TEXT,
    job_rank INTEGER,
    created_at REAL NOT NULL,
    idle_since REAL,
    PRIMARY KEY (compute, node_id)
);
CREATE INDEX IF NOT EXISTS nodes_by_job ON nodes(job_name);
CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT UNIQUE NOT NULL,
    created_at REAL NOT NULL
);
"""

TERMINAL = ("Completed", "Failed", "Canceled")
ACTIVE = ("NotStarted", "Queued", "Preparing", "Running", "CancelRequested", "Finalizing")

_JOB_COLUMNS = (
    "name",
    "type",
    "experiment_name",
    "parent_job_name",
    "status",
    "spec",
    "created_at",
    "started_at",
    "ended_at",
    "pid",
    "pid_start",
    "run_pid",
    "exit_code",
    "error",
)


class WorkspaceStore:
    """Records and folders of one workspace, safe to share between processes."""

    def __init__(self, root: Path, name: str):
        self.root = Path(root)
        self.name = name
        _private(self.root)
        self.db_path = self.root / "store.db"
        self._local = threading.local()
        # Several processes may open a new workspace at once: switching it to WAL needs the database
        # to itself (SQLite answers "database is locked" without waiting), so first opens take turns.
        with open(os.open(self.root / ".store.lock", os.O_WRONLY | os.O_CREAT, 0o600), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _private_files(self.db_path)
            self._connection().executescript(SCHEMA)  # idempotent; executescript commits by itself

    # -- connections ---------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=60, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (the next query opens a new one)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (``BEGIN IMMEDIATE``)."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        return self._connection().execute(sql, args).fetchall()

    # -- folders ---------------------------------------------------------------
    def job_dir(self, name: str) -> Path:
        return confined_join(self.root, "jobs", name)

    def asset_dir(self, kind: str, name: str, version: str) -> Path:
        return confined_join(self.root, f"{kind}s", name, str(version))

    @property
    def mlruns_dir(self) -> Path:
        return self.root / "mlruns"

    def mlflow_run_dir(self, experiment_name: str, job_name: str) -> Path:
        """The MLflow file-store folder of a job's run (the run id is the job name)."""
        return self.mlruns_dir / str(self.experiment_id(experiment_name)) / job_name

    @property
    def tracking_uri(self) -> str:
        return self.mlruns_dir.as_uri()

    # -- jobs --------------------------------------------------------------------
    def insert_job(self, record: NewJobRecord) -> None:
        row = {k: record.get(k) for k in _JOB_COLUMNS}
        row["spec"] = json.dumps(record["spec"])
        try:
            with self.transaction() as db:
                db.execute(
                    f"INSERT INTO jobs ({','.join(_JOB_COLUMNS)}) VALUES ({','.join('?' * len(_JOB_COLUMNS))})",
                    tuple(row.values()),
                )
        except sqlite3.IntegrityError:
            raise ResourceExists(
                f"A job named '{record['name']}' already exists in workspace '{self.name}'. "
                "Job names are unique: pick another --name, or leave it out to get a generated one."
            )

    def get_job(self, name: str) -> JobRecord:
        rows = self.query("SELECT * FROM jobs WHERE name = ?", (name,))
        if not rows:
            raise ResourceNotFound(
                f"Job '{name}' not found in workspace '{self.name}'. List the jobs with `amlemu job list`."
            )
        return _job_row(rows[0])

    def list_jobs(self, parent_job_name: str | None = None, limit: int | None = None) -> list[JobRecord]:
        sql = "SELECT * FROM jobs WHERE parent_job_name IS ? ORDER BY created_at DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [_job_row(r) for r in self.query(sql, (parent_job_name,))]

    def update_job(self, name: str, *, only_if_status: tuple[str, ...] | None = None, **fields) -> bool:
        """Set fields on a job; with ``only_if_status`` only while it has one of those statuses.

        Returns whether the row changed, so status moves are race-free.
        """
        if "spec" in fields:
            fields["spec"] = json.dumps(fields["spec"])
        sets = ", ".join(f"{k} = ?" for k in fields)
        sql = f"UPDATE jobs SET {sets} WHERE name = ?"
        args: tuple = (*fields.values(), name)
        if only_if_status:
            sql += f" AND status IN ({','.join('?' * len(only_if_status))})"
            args += tuple(only_if_status)
        with self.transaction() as db:
            return db.execute(sql, args).rowcount > 0

    # -- experiments ---------------------------------------------------------------
    def experiment_id(self, name: str) -> int:
        """The id of an experiment, created on first use (a plain read when it exists)."""
        row = self._connection().execute("SELECT id FROM experiments WHERE name = ?", (name,)).fetchone()
        if row:
            return row[0]
        with self.transaction() as db:
            row = db.execute("SELECT id FROM experiments WHERE name = ?", (name,)).fetchone()
            if row:
                return row[0]
            return db.execute("INSERT INTO experiments (name, created_at) VALUES (?, ?)", (name, time.time())).lastrowid

    # -- assets (models, environments, computes, ...) -----------------------------
    def next_version(self, db: sqlite3.Connection, kind: str, name: str) -> str:
        row = db.execute(
            "SELECT MAX(CAST(version AS INTEGER)) FROM assets WHERE kind = ? AND name = ?", (kind, name)
        ).fetchone()
        return str((row[0] or 0) + 1)

    def insert_asset(self, db: sqlite3.Connection, kind: str, name: str, version: str, body: dict) -> None:
        now = time.time()
        try:
            db.execute(
                "INSERT INTO assets VALUES (?, ?, ?, ?, ?, ?)", (kind, name, version, json.dumps(body), now, now)
            )
        except sqlite3.IntegrityError:
            raise ResourceExists(
                f"{kind.capitalize()} '{name}' version '{version}' already exists; versions are "
                f"immutable. Leave the version out to create version "
                f"{self.next_version(db, kind, name)}, or pick an unused one."
            )

    def put_asset(self, kind: str, name: str, version: str, body: dict) -> None:
        """Insert or replace one asset version (for mutable resources)."""
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO assets VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(kind, name, version) "
                "DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                (kind, name, version, json.dumps(body), now, now),
            )

    # an asset's shape is its kind's (EndpointRecord, ComputeRecord, ...): the kind's module types it
    def get_asset(self, kind: str, name: str, version: str | None = None) -> Any:
        if version in (None, "latest"):
            rows = self.query(
                "SELECT * FROM assets WHERE kind = ? AND name = ? ORDER BY CAST(version AS INTEGER) DESC LIMIT 1",
                (kind, name),
            )
        else:
            rows = self.query(
                "SELECT * FROM assets WHERE kind = ? AND name = ? AND version = ?", (kind, name, str(version))
            )
        if not rows:
            what = f"{kind.capitalize()} '{name}'" + (
                f" version '{version}'" if version not in (None, "latest") else ""
            )
            raise ResourceNotFound(
                f"{what} not found in workspace '{self.name}'. List what exists with `amlemu {kind} list`."
            )
        return _asset_row(rows[0])

    def list_assets(self, kind: str, name: str | None = None) -> list[Any]:
        if name:
            rows = self.query(
                "SELECT * FROM assets WHERE kind = ? AND name = ? ORDER BY CAST(version AS INTEGER) DESC", (kind, name)
            )
        else:
            rows = self.query(
                "SELECT * FROM assets WHERE kind = ? ORDER BY name, CAST(version AS INTEGER) DESC", (kind,)
            )
        return [_asset_row(r) for r in rows]


def _private(root: Path) -> None:
    """The workspace folder, 0700 from its creation (a folder an older amlemu left open is closed)."""
    config.private_dir(root)
    if root.stat().st_mode & 0o077:
        os.chmod(root, 0o700)


def _private_files(db_path: Path) -> None:
    """The database made 0600 before SQLite opens it: SQLite gives its -wal and -shm files the same mode."""
    os.close(os.open(db_path, os.O_RDWR | os.O_CREAT, 0o600))
    for path in (db_path, db_path.with_name(db_path.name + "-wal"), db_path.with_name(db_path.name + "-shm")):
        try:
            if path.stat().st_mode & 0o077:  # made by an older amlemu
                os.chmod(path, 0o600)
        except FileNotFoundError:
            pass


def _job_row(row: sqlite3.Row) -> JobRecord:
    record = dict(row)
    record["spec"] = json.loads(record["spec"])
    return cast("JobRecord", record)  # the table's columns are JobRecord's


def _asset_row(row: sqlite3.Row) -> dict[str, Any]:
    body = json.loads(row["body"])
    body.update(name=row["name"], version=row["version"], created_at=row["created_at"], updated_at=row["updated_at"])
    return body


_stores: dict[Path, WorkspaceStore] = {}
_lock = threading.Lock()


def open_store(workspace: str | None = None) -> WorkspaceStore:
    """The store of a workspace (the configured one by default), opened once per process."""
    name = workspace or config.workspace_name()
    root = config.workspace_dir(name)
    with _lock:
        store = _stores.get(root)
        if store is None:
            store = _stores[root] = WorkspaceStore(root, name)
        return store
