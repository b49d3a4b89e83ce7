"""The AutoML job kind, as the registry (:mod:`emulator.kinds`) finds it."""

from emulator.automl.service import ORCHESTRATOR, submit_automl
from emulator.automl.views import automl_view
from emulator.jobs.kind import JobKind

KIND = JobKind(
    type="automl", submit=submit_automl, view=automl_view, orchestrator=ORCHESTRATOR, sdk="backends.automl_entities"
)
