"""The pipeline job kind, as the registry (:mod:`emulator.kinds`) finds it."""

from emulator.jobs.kind import JobKind
from emulator.pipelines.service import ORCHESTRATOR, submit_pipeline
from emulator.pipelines.spec import check_steps
from emulator.pipelines.views import pipeline_view

# check_steps before the SDK validates a YAML file: clearer than the SDK's list of every step type
KIND = JobKind(
    type="pipeline",
    submit=submit_pipeline,
    view=pipeline_view,
    orchestrator=ORCHESTRATOR,
    sdk="backends.pipeline_entities",
    precheck=check_steps,
)
