"""The pipeline orchestrator: runs a pipeline job's steps as child jobs, detached from its submitter.

Run as ``python -m emulator.pipelines.orchestrator <workspace-dir> <pipeline-name>``
(started by ``emulator.jobs.submission.start``), on the lifecycle every parent job
shares (:class:`emulator.jobs.orchestrator.ParentOrchestrator`). Steps start as soon as every
step they take an output from has completed, so independent steps run in parallel.
A failed step stops its dependants; unless ``settings.continue_on_step_failure`` is
set, the steps still running are canceled, as Azure ML does. SIGTERM (sent by
``cancel``) cancels the running steps and records Canceled. Progress goes to the
pipeline's ``user_logs/std_log.txt``.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from emulator.errors import EmulatorError
from emulator.jobs import lifecycle, submission
from emulator.jobs.command import submit_command
from emulator.jobs.orchestrator import NEVER_STARTED, ParentOrchestrator
from emulator.jobs.outputs import output_dir
from emulator.pipelines.bindings import resolve_inputs
from emulator.pipelines.graph import StepGraph
from emulator.pipelines.service import STEP_PROPERTY
from emulator.store import WorkspaceStore
from emulator.store.db import TERMINAL

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import PipelineJobSpec  # noqa: F401 (named in a string: the generic base's type argument)

#: how long a canceled step may take to stop before the pipeline stops waiting for it
STEP_STOP_TIMEOUT_S = 60.0
#: how often a step that has not stopped yet is asked again
CANCEL_REPEAT_S = 2.0


def _summary(error: str | None) -> str:
    """The first line of a child job's error, without the log tail it may announce."""
    lines = (error or "").strip().splitlines()
    return re.sub(r"\s*Last lines of \S+:$", "", lines[0]) if lines else "no reason recorded"


class PipelineOrchestrator(ParentOrchestrator["PipelineJobSpec"]):
    kind = "pipeline"

    def __init__(self, store: WorkspaceStore, name: str):
        super().__init__(store, name)
        self.graph = StepGraph({step: node["needs"] for step, node in self.spec["jobs"].items()})
        self.children: dict[str, str] = {}  # step -> child job name, once submitted
        self.running: set[str] = set()
        self.completed: set[str] = set()
        self.failed: dict[str, str] = {}  # step -> what happened, one line
        self.stopped: set[str] = set()  # steps that will not start: an upstream step failed

    # -- the parent job's lifecycle (emulator.jobs.orchestrator) ----------------------
    def _prepare(self) -> None:
        os.environ["AMLEMU_RUNTIME"] = self.spec.get("runtime") or "process"  # as when it was submitted
        self.start_tracking()
        waves = " | ".join(", ".join(wave) for wave in self.graph.levels())
        self.log(f"Pipeline {self.name}: {len(self.graph.steps)} steps, in dependency order: {waves}")

    def _resume(self) -> None:
        """Take up the steps submitted before the orchestrator was lost: the first pass of the loop
        reads those that ended as they ended; a step never started is submitted again."""
        for child in self.children_to_resume():
            step = (child["spec"].get("properties") or {}).get(STEP_PROPERTY)
            if step not in self.spec["jobs"] or (child["status"] == "Canceled" and child["error"] == NEVER_STARTED):
                continue
            self.children[step] = child["name"]
            self.running.add(step)

    def _stop_active(self, reason: str) -> None:
        self._cancel_running(reason)

    def _conclude(self, forced: tuple[str, str] | None = None) -> None:
        if forced:
            status, error = forced
        elif self.failed:
            status, error = "Failed", self._failure_message()
        else:
            status, error = "Completed", None
        for key in self.spec["outputs"]:  # an output whose step never completed is empty
            path = self.dir / "outputs" / key
            if not path.exists() and not path.is_symlink():
                path.mkdir(parents=True)
        self.log(f"Pipeline {status.lower()}." + (f" {error}" if error else ""))
        self._record_end(status, error)

    # -- steps -----------------------------------------------------------------------
    def _submit(self, step: str) -> None:
        node = self.spec["jobs"][step]["job"]

        def output_path(upstream: str, output: str) -> str:
            return str(output_dir(self.store, self.children[upstream], output))

        data = {
            **node,
            "inputs": resolve_inputs(node.get("inputs") or {}, self.spec["inputs"], output_path),
            "display_name": node.get("display_name") or step,
            "experiment_name": self.job["experiment_name"],
            "properties": {**(node.get("properties") or {}), STEP_PROPERTY: step},
        }
        try:
            child = submit_command(self.store, data, Path(self.spec["base_path"]), parent_job_name=self.name, fork=True)
        except EmulatorError as exc:  # e.g. its environment was deleted since the pipeline was submitted
            self.log(f"Step '{step}' could not be submitted: {exc.message}")
            return self._step_failed(step, f"Step '{step}' could not be submitted: {exc.message}")
        self.children[step] = child["name"]
        self.running.add(step)
        self.log(f"Step '{step}' started: job {child['name']}.")

    def _step_ended(self, step: str, child: dict) -> None:
        self.running.discard(step)
        if child["status"] == "Completed":
            self.completed.add(step)
            self._publish_outputs(step)
            self.log(f"Step '{step}' completed: job {child['name']}.")
            return
        self.log(
            f"Step '{step}' failed: job {child['name']} ended {child['status']}.\n"
            + "\n".join(f"    {line}" for line in (child["error"] or "").splitlines())
        )
        self._step_failed(
            step, f"Step '{step}' (job {child['name']}) ended {child['status']}: {_summary(child['error'])}"
        )

    def _step_failed(self, step: str, reason: str) -> None:
        self.failed[step] = reason
        for dependant in self.graph.downstream(step):
            if dependant not in self.stopped and dependant not in self.children:
                self.stopped.add(dependant)
                self.log(f"Step '{dependant}' will not start: upstream step '{step}' failed.")

    def _publish_outputs(self, step: str) -> None:
        """Pipeline outputs bound to this step's outputs become links to those folders."""
        for key, out in self.spec["outputs"].items():
            if out["step"] == step:
                target = output_dir(self.store, self.children[step], out["output"])
                link = self.dir / "outputs" / key
                if not link.is_symlink():  # a lost orchestrator may have linked it already
                    os.symlink(os.path.relpath(target, link.parent), link, target_is_directory=True)

    def _cancel_running(self, why: str) -> None:
        """Cancel every running step and wait (bounded) until each has stopped."""
        for step in sorted(self.running):
            self.log(f"Canceling step '{step}' (job {self.children[step]}): {why}.")
            lifecycle.cancel(self.store, self.children[step])
        deadline = time.monotonic() + STEP_STOP_TIMEOUT_S
        for step in sorted(self.running):
            child = lifecycle.wait(self.store, self.children[step], timeout=CANCEL_REPEAT_S)
            while child["status"] not in TERMINAL and time.monotonic() < deadline:
                # a step whose supervisor was still starting its command may have missed the first request
                lifecycle.cancel(self.store, child["name"])
                child = lifecycle.wait(self.store, child["name"], timeout=CANCEL_REPEAT_S)
            self.log(f"Step '{step}' {child['status'].lower()}: job {child['name']}.")
        self.running.clear()

    def _not_started(self) -> list[str]:
        return [s for s in self.graph.steps if s not in self.children and s not in self.failed]

    # -- the run ---------------------------------------------------------------------
    def _cancel_pending(self) -> bool:
        return self.cancel_requested or self.store.get_job(self.name)["status"] == "CancelRequested"

    def _loop(self) -> None:
        keep_going = self.spec["settings"]["continue_on_step_failure"]
        poll = 0.05
        while True:
            if self._cancel_pending():
                self._cancel_running("the pipeline was canceled")
                return self._conclude(forced=("Canceled", "Canceled by the user."))
            changed = False
            for step in sorted(self.running):
                child = lifecycle.get(self.store, self.children[step])
                if child["status"] in TERMINAL:
                    self._step_ended(step, child)
                    changed = True
            if self.failed and not keep_going:
                self._cancel_running("a step failed and settings.continue_on_step_failure is false")
                return self._conclude()
            for step in self.graph.ready(self.completed, set(self.children) | set(self.failed) | self.stopped):
                if self._cancel_pending() or (self.failed and not keep_going):
                    break
                self._submit(step)
                changed = True
            if not self.running and not changed:  # nothing runs and nothing more can start
                return self._conclude()
            submission.reap_children()
            poll = 0.05 if changed else min(poll * 1.5, 0.25)
            self.pause(poll)  # a step ending rings the bell

    def _failure_message(self) -> str:
        failed = ", ".join(f"/{step}" for step in self.failed)
        not_started = self._not_started()
        return (
            f"Pipeline has failed child jobs. Failed nodes: {failed}. {' '.join(self.failed.values())}"
            + (f" Not started: {', '.join(not_started)}." if not_started else "")
            + " See a step's log with `amlemu job stream --name <job>`; list the steps with "
            f"`amlemu job list --parent-job-name {self.name}`."
        )


if __name__ == "__main__":
    PipelineOrchestrator.main(sys.argv[1:])
