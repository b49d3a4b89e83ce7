"""Injected faults of a workspace: what Azure should get wrong next, kept in the workspace's store.

A test (the ``aml_faults`` fixture, :mod:`emulator.testing.faults`) records a fault; the engine meets it where
Azure would misbehave — the endpoint gateway answers 429, 503 or a timeout, a job fails at start, a cluster's
creation runs out of quota, a node is lost under a running job — and the test clears it at teardown.

A fault is a row of the store's ``faults`` table, so every process of the workspace (the test, the endpoint
hosts, the job supervisors, ``amlemu serve``) sees the same faults, and :func:`take` uses one up in a write
transaction: two supervisors starting at once never both take the last one. The table is created by the first
fault: a workspace that never had one pays one failed lookup per :func:`take` (a job's start, a compute's
creation), nothing on an endpoint's requests (its host reads the faults when told, see
:mod:`emulator.endpoints.faults`).

Fields:
    kind: ``endpoint``, ``job_start``, ``compute_quota`` or ``node_lost``.
    target: the endpoint, compute or cluster it applies to; None: any of its kind.
    detail: what the fault answers (a status, an error code and message, a delay), a JSON object.
    remaining: how many more times it applies; None: until cleared.
    scope: who set it (a test's id): :func:`clear` removes a scope's faults.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from emulator.errors import ValidationError
from emulator.store.db import WorkspaceStore

KINDS = ("endpoint", "job_start", "compute_quota", "node_lost")
SCHEMA = """
CREATE TABLE IF NOT EXISTS faults (
    id TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL,
    remaining INTEGER,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS faults_by_kind ON faults(kind, target);
"""
_ACTIVE = "(remaining IS NULL OR remaining > 0)"


@dataclass(frozen=True)
class Fault:
    """One injected fault (a row of ``faults``)."""

    id: str
    kind: str
    target: str | None
    detail: dict[str, Any] = field(default_factory=dict)
    remaining: int | None = None
    scope: str = ""


def _row(row: sqlite3.Row) -> Fault:
    return Fault(row["id"], row["kind"], row["target"], json.loads(row["detail"]), row["remaining"], row["scope"])


def _missing_table(exc: sqlite3.OperationalError) -> bool:
    return "no such table" in str(exc)


def inject(
    store: WorkspaceStore,
    kind: str,
    *,
    scope: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    count: int | None = 1,
) -> Fault:
    """Record a fault that applies ``count`` times (None: until cleared) to ``target`` (None: any)."""
    if kind not in KINDS:
        raise ValidationError(f"Unknown fault kind '{kind}'; known kinds: {', '.join(KINDS)}.")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValidationError(f"A fault's count must be a whole number >= 1 (or None: until cleared); got {count!r}.")
    fault = Fault(f"fault-{secrets.token_hex(6)}", kind, target, dict(detail or {}), count, scope)
    with store.transaction() as db:
        for statement in SCHEMA.strip().split(";\n"):
            db.execute(statement)
        db.execute(
            "INSERT INTO faults (id, scope, kind, target, detail, remaining, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (fault.id, scope, kind, target, json.dumps(fault.detail), count, time.time()),
        )
    return fault


def active(store: WorkspaceStore, kind: str | None = None, target: str | None = None) -> list[Fault]:
    """Faults still to apply, oldest first: of ``kind`` (None: every kind) for ``target`` (or for any target)."""
    sql, args = f"SELECT * FROM faults WHERE {_ACTIVE}", []
    if kind is not None:
        sql += " AND kind = ?"
        args.append(kind)
    if target is not None:
        sql += " AND (target IS NULL OR target = ?)"
        args.append(target)
    try:
        return [_row(r) for r in store.query(sql + " ORDER BY created_at, id", tuple(args))]
    except sqlite3.OperationalError as exc:
        if _missing_table(exc):
            return []
        raise


def take(store: WorkspaceStore, kind: str, target: str | None = None) -> Fault | None:
    """Use up one application of the oldest fault of ``kind`` for ``target``; the fault as it was, or None.

    A plain read first: with no fault set (the usual case) this takes no write lock."""
    if not active(store, kind, target):
        return None
    match = "kind = ? AND (target IS NULL OR target = ?)"
    with store.transaction() as db:
        row = db.execute(
            f"SELECT * FROM faults WHERE {match} AND {_ACTIVE} ORDER BY created_at, id LIMIT 1", (kind, target)
        ).fetchone()
        if row is None:  # another process took the last one meanwhile
            return None
        if row["remaining"] is not None:
            db.execute("UPDATE faults SET remaining = remaining - 1 WHERE id = ?", (row["id"],))
    return _row(row)


def clear(store: WorkspaceStore, scope: str | None = None) -> list[Fault]:
    """Remove the faults of ``scope`` (None: every fault of the workspace); returns those still active."""
    sql, args = "SELECT * FROM faults", ()
    if scope is not None:
        sql, args = sql + " WHERE scope = ?", (scope,)
    try:
        with store.transaction() as db:
            rows = db.execute(sql, args).fetchall()
            db.execute(sql.replace("SELECT *", "DELETE", 1), args)
    except sqlite3.OperationalError as exc:
        if _missing_table(exc):
            return []
        raise
    return [f for f in map(_row, rows) if f.remaining is None or f.remaining > 0]
