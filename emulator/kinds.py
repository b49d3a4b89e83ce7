"""The job-kind registry: each job ``type`` and the module that defines its :class:`JobKind`.

Adding a job kind is one line here plus its own package (a ``KIND`` in its ``kind`` module:
its submit function, view, orchestrator and SDK converter module). A kind's module is imported
the first time a job of that kind is submitted or shown, so a job's process pays only for its own.
The front doors dispatch through :func:`submit` and :func:`view`; nothing else switches on ``type``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from emulator.errors import NotEmulated
from emulator.jobs.kind import JobKind
from emulator.store import WorkspaceStore

#: job type -> the module whose ``KIND`` handles it
KINDS: dict[str, str] = {
    "command": "emulator.jobs.command",
    "sweep": "emulator.sweeps.kind",
    "pipeline": "emulator.pipelines.kind",
    "automl": "emulator.automl.kind",
}


def known() -> list[str]:
    """The job types amlemu emulates."""
    return list(KINDS)


def not_emulated(what: str) -> NotEmulated:
    """The error for a job type the registry does not know (``what`` names it), listing the known ones."""
    return NotEmulated(what, f"amlemu emulates these job types: {', '.join(KINDS)}.")


def kind(job_type: str | None) -> JobKind:
    """The :class:`JobKind` of ``job_type`` (a spec without ``type`` is a command job)."""
    job_type = job_type or "command"
    module = KINDS.get(job_type) if isinstance(job_type, str) else None
    if module is None:
        raise not_emulated(f"{job_type} jobs")
    return importlib.import_module(module).KIND


def kind_of(data: Any) -> JobKind:
    """The kind of a job spec (a YAML-shaped dict; anything else is left to the command kind to refuse)."""
    return kind(data.get("type") if isinstance(data, dict) else None)


def submit(store: WorkspaceStore, data: dict[str, Any], base_path: Path) -> dict[str, Any]:
    """Validate a job spec of any kind, record it and start it; the new record."""
    return kind_of(data).submit(store, data, Path(base_path))


def view(store: WorkspaceStore, job: dict[str, Any], *, tracking: bool = True) -> dict[str, Any]:
    """A job record as ``az ml job show`` prints it (``tracking``: with metrics, params, artifacts)."""
    return kind(job["type"]).view(store, job, tracking=tracking)
