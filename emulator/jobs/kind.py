"""What a job kind is: the ``type`` of a job spec, and how amlemu submits, shows and converts it.

Each kind's package defines one ``KIND`` (``emulator/sweeps/kind.py``, ...); the registry
(:mod:`emulator.kinds`) maps each ``type`` to that module and imports it when the kind is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.store import WorkspaceStore

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import JobRecord

#: ``submit(store, data, base_path)``: validate a spec of this kind, record it, start it; the record
Submit = Callable[[WorkspaceStore, dict[str, Any], Path], "JobRecord"]
#: ``view(store, job, *, tracking=True)``: the job as ``az ml job show`` prints it
View = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class JobKind:
    """One job ``type`` (``command``, ``sweep``, ...) and the pieces that handle it.

    Attributes:
        type: the spec's ``type`` field.
        submit: validates, records and starts a job of this kind.
        view: the ``az ml``-shaped JSON of a record of this kind (``job show``, and the SDK
            entities built from it).
        sdk: the module converting azure-ai-ml entities of this kind, imported by the Python
            client only: ``to_spec(entity, base_path)`` and ``from_view(store, record, view)``.
        orchestrator: the module a parent job runs as (``python -m``), or None for a job run by
            its own supervisor; a lost orchestrator is restarted by the next read.
        fast_fields: the fields a spec may have for the CLI to validate it without azure-ai-ml
            (empty: always validated by the SDK).
        precheck: run on a YAML spec before the SDK's validation, for a clearer message.
    """

    type: str
    submit: Submit
    view: View
    sdk: str
    orchestrator: str | None = None
    fast_fields: frozenset[str] = field(default_factory=frozenset)
    precheck: Callable[[dict[str, Any]], None] | None = None

    @property
    def resumable(self) -> bool:
        """Whether a lost job of this kind is restarted (parent jobs) rather than failed."""
        return self.orchestrator is not None
