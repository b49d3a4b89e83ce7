"""The sweep job kind, as the registry (:mod:`emulator.kinds`) finds it."""

from emulator.jobs.kind import JobKind
from emulator.sweeps.service import ORCHESTRATOR, submit_sweep
from emulator.sweeps.views import sweep_view

KIND = JobKind(
    type="sweep", submit=submit_sweep, view=sweep_view, orchestrator=ORCHESTRATOR, sdk="backends.sweep_entities"
)
