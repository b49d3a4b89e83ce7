"""Jobs between azure-ai-ml entities and the engine, for every job kind.

Each kind names its converter module (:attr:`emulator.jobs.kind.JobKind.sdk`), which has
``to_spec(entity, base_path)`` (an entity as the kind's CLI v2 YAML-shaped dict, paths
absolute) and ``from_view(store, record, view)`` (the SDK's job entity, built from the same
view ``az ml job show`` prints). This module only picks the converter.
"""

from __future__ import annotations

import importlib
from typing import Any

from backends.entities import entity_base_path
from emulator import kinds
from emulator.store import WorkspaceStore


def _converter(job_type: str | None):
    return importlib.import_module(kinds.kind(job_type).sdk)


def job_to_spec(job: Any) -> dict[str, Any]:
    """A job entity (``command(...)``, ``CommandJob``, ``SweepJob``, ``PipelineJob``, an AutoML job ...)
    as a job YAML dict with absolute paths."""
    base = entity_base_path(job)  # before _to_job(), which forgets where a YAML file came from
    job_type = getattr(job, "type", None)
    if job_type not in kinds.known():
        raise kinds.not_emulated(f"{type(job).__name__} ({job_type or '?'} jobs)")
    return _converter(job_type).to_spec(job, base)


def record_to_job(store: WorkspaceStore, record: dict[str, Any]):
    """The SDK's job entity of an engine record: status, id and creation context filled in."""
    view = kinds.view(store, record, tracking=False)
    return _converter(record["type"]).from_view(store, record, view)
