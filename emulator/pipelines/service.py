"""Pipeline job submission, and the step → child job mapping reads use.

A pipeline job is a parent job run by a detached orchestrator
(:mod:`emulator.pipelines.orchestrator`), started and watched exactly as a command
job's supervisor is (:mod:`emulator.jobs.submission`), so reads notice a lost orchestrator
and ``cancel`` reaches it. Its steps are child command jobs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator import config
from emulator.environments import registry as environments
from emulator.jobs import lifecycle, submission
from emulator.pipelines.spec import in_step, normalize_pipeline_job
from emulator.runtime.base import check_runtime
from emulator.store import WorkspaceStore

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import CommandJobSpec, JobRecord, PipelineJobSpec

ORCHESTRATOR = "emulator.pipelines.orchestrator"
#: the child job property naming the pipeline step it runs
STEP_PROPERTY = "amlemu.pipeline_step"


def submit_pipeline(store: WorkspaceStore, data: dict[str, Any], base_path: Path) -> JobRecord[PipelineJobSpec]:
    """Validate a pipeline job, record it and start its orchestrator.

    Every step is checked as the command job it becomes (fields, code, command references,
    compute, environment) and every binding against what it names, before the first write:
    bad input leaves nothing behind.
    """
    spec = normalize_pipeline_job(data, Path(base_path), store)
    spec["runtime"] = check_runtime(config.runtime_name())
    for step, node in spec["jobs"].items():
        with in_step(step):
            submission.resolve_compute(store, node["job"].get("compute"))
            environments.resolve(store, node["job"].get("environment"), Path(base_path))
    submission.name_job(spec)
    return submission.record_and_start(
        store, spec, "pipeline", lambda staging: (staging / "outputs").mkdir(), orchestrator=ORCHESTRATOR
    )


def step_jobs(store: WorkspaceStore, pipeline: JobRecord[PipelineJobSpec]) -> dict[str, JobRecord[CommandJobSpec]]:
    """The child job of each step that has started, by step name (refreshed, as reads are).

    Steps that have no child job did not start (Azure ML shows them NotStarted).
    """
    children = {}
    for child in lifecycle.list_jobs(store, parent_job_name=pipeline["name"]):
        step = child["spec"].get("properties", {}).get(STEP_PROPERTY)
        if step and step not in children:  # newest first: a step has one child job
            children[step] = child
    return children
