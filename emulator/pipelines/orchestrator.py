"""The pipeline orchestrator: runs a pipeline job's steps as child jobs, detached from its submitter.

Run as ``python -m emulator.pipelines.orchestrator <workspace-dir> <pipeline-name>``
(started by ``emulator.jobs.service._start_supervisor``). Steps start as soon as every
step they take an output from has completed, so independent steps run in parallel.
A failed step stops its dependants; unless ``settings.continue_on_step_failure`` is
set, the steps still running are canceled, as Azure ML does. SIGTERM (sent by
``cancel``) cancels the running steps and records Canceled. Progress goes to the
pipeline's ``user_logs/std_log.txt``.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import re
import signal
import sys
import time
from pathlib import Path

from emulator.errors import EmulatorError
from emulator.jobs import service as jobs
from emulator.jobs.supervisor import end_tracking
from emulator.pipelines.bindings import resolve_inputs
from emulator.pipelines.graph import StepGraph
from emulator.pipelines.service import STEP_PROPERTY
from emulator.store import WorkspaceStore
from emulator.store.db import ACTIVE, TERMINAL
from emulator.tracking import filestore

#: how long a canceled step may take to stop before the pipeline stops waiting for it
STEP_STOP_TIMEOUT_S = 60.0
#: how often a step that has not stopped yet is asked again
CANCEL_REPEAT_S = 2.0


def _summary(error: str | None) -> str:
    """The first line of a child job's error, without the log tail it may announce."""
    lines = (error or "").strip().splitlines()
    return re.sub(r"\s*Last lines of \S+:$", "", lines[0]) if lines else "no reason recorded"


class PipelineOrchestrator:
    def __init__(self, store: WorkspaceStore, name: str):
        self.store, self.name = store, name
        self.job = store.get_job(name)
        self.spec = self.job["spec"]
        self.dir = store.job_dir(name)
        self.log_path = self.dir / "artifacts" / "user_logs" / "std_log.txt"
        self.graph = StepGraph({step: node["needs"] for step, node in self.spec["jobs"].items()})
        self.children: dict[str, str] = {}   # step -> child job name, once submitted
        self.running: set[str] = set()
        self.completed: set[str] = set()
        self.failed: dict[str, str] = {}     # step -> what happened, one line
        self.stopped: set[str] = set()       # steps that will not start: an upstream step failed
        self.cancel_requested = False

    # -- bookkeeping ---------------------------------------------------------------
    def _on_sigterm(self, *_) -> None:
        self.cancel_requested = True

    def _log(self, line: str) -> None:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        with open(self.log_path, "a") as f:
            f.write(f"[{stamp}] {line}\n")

    def _finish(self, status: str, error: str | None = None) -> None:
        for key, out in self.spec["outputs"].items():  # an output whose step never completed is empty
            path = self.dir / "outputs" / key
            if not path.exists() and not path.is_symlink():
                path.mkdir(parents=True)
        self._log(f"Pipeline {status.lower()}." + (f" {error}" if error else ""))
        self.store.update_job(self.name, only_if_status=ACTIVE, status=status, ended_at=time.time(), error=error)
        end_tracking(self.store, self.name, status)

    def _start_tracking(self) -> None:
        experiment = self.job["experiment_name"]
        experiment_id = self.store.experiment_id(experiment)
        filestore.ensure_experiment(self.store.mlruns_dir, experiment_id, experiment)
        filestore.create_run(self.store.mlruns_dir, experiment_id, self.name, run_name=self.spec["display_name"],
                             artifact_dir=self.dir / "artifacts",
                             user=self.spec.get("created_by") or getpass.getuser(), tags=self.spec["tags"])

    # -- steps -----------------------------------------------------------------------
    def _submit(self, step: str) -> None:
        node = self.spec["jobs"][step]["job"]

        def output_path(upstream: str, output: str) -> str:
            return str(jobs.output_dir(self.store, self.children[upstream], output))

        data = {**node, "inputs": resolve_inputs(node.get("inputs") or {}, self.spec["inputs"], output_path),
                "display_name": node.get("display_name") or step,
                "experiment_name": self.job["experiment_name"],
                "properties": {**(node.get("properties") or {}), STEP_PROPERTY: step}}
        try:
            child = jobs.submit(self.store, data, Path(self.spec["base_path"]), parent_job_name=self.name,
                                fork=True)
        except EmulatorError as exc:  # e.g. its environment was deleted since the pipeline was submitted
            self._log(f"Step '{step}' could not be submitted: {exc.message}")
            return self._step_failed(step, f"Step '{step}' could not be submitted: {exc.message}")
        self.children[step] = child["name"]
        self.running.add(step)
        self._log(f"Step '{step}' started: job {child['name']}.")

    def _step_ended(self, step: str, child: dict) -> None:
        self.running.discard(step)
        if child["status"] == "Completed":
            self.completed.add(step)
            self._publish_outputs(step)
            self._log(f"Step '{step}' completed: job {child['name']}.")
            return
        self._log(f"Step '{step}' failed: job {child['name']} ended {child['status']}.\n"
                  + "\n".join(f"    {line}" for line in (child["error"] or "").splitlines()))
        self._step_failed(step, f"Step '{step}' (job {child['name']}) ended {child['status']}: "
                                f"{_summary(child['error'])}")

    def _step_failed(self, step: str, reason: str) -> None:
        self.failed[step] = reason
        for dependant in self.graph.downstream(step):
            if dependant not in self.stopped and dependant not in self.children:
                self.stopped.add(dependant)
                self._log(f"Step '{dependant}' will not start: upstream step '{step}' failed.")

    def _publish_outputs(self, step: str) -> None:
        """Pipeline outputs bound to this step's outputs become links to those folders."""
        for key, out in self.spec["outputs"].items():
            if out["step"] == step:
                target = jobs.output_dir(self.store, self.children[step], out["output"])
                link = self.dir / "outputs" / key
                os.symlink(os.path.relpath(target, link.parent), link, target_is_directory=True)

    def _cancel_running(self, why: str) -> None:
        """Cancel every running step and wait (bounded) until each has stopped."""
        for step in sorted(self.running):
            self._log(f"Canceling step '{step}' (job {self.children[step]}): {why}.")
            jobs.cancel(self.store, self.children[step])
        deadline = time.monotonic() + STEP_STOP_TIMEOUT_S
        for step in sorted(self.running):
            child = jobs.wait(self.store, self.children[step], timeout=CANCEL_REPEAT_S)
            while child["status"] not in TERMINAL and time.monotonic() < deadline:
                # a step whose supervisor was still starting its command may have missed the first request
                jobs.cancel(self.store, child["name"])
                child = jobs.wait(self.store, child["name"], timeout=CANCEL_REPEAT_S)
            self._log(f"Step '{step}' {child['status'].lower()}: job {child['name']}.")
        self.running.clear()

    def _not_started(self) -> list[str]:
        return [s for s in self.graph.steps if s not in self.children and s not in self.failed]

    # -- the run ---------------------------------------------------------------------
    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_sigterm)
        os.environ["AMLEMU_RUNTIME"] = self.spec.get("runtime") or "process"  # as when it was submitted
        if not self.store.update_job(self.name, only_if_status=("NotStarted", "Queued"), status="Running",
                                     started_at=time.time()):
            if self.store.get_job(self.name)["status"] == "CancelRequested":
                self._finish("Canceled", "Canceled by the user before it started.")
            return
        try:
            self._start_tracking()
            waves = " | ".join(", ".join(wave) for wave in self.graph.levels())
            self._log(f"Pipeline {self.name}: {len(self.graph.steps)} steps, in dependency order: {waves}")
            self._loop()
        except Exception as exc:  # a bug or a broken store: stop what runs, fail with the reason
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            self._log(f"The pipeline's orchestrator failed: {message}")
            self._cancel_running("the pipeline's orchestrator failed")
            self._finish("Failed", f"The pipeline's orchestrator failed: {message}")

    def _cancel_pending(self) -> bool:
        return self.cancel_requested or self.store.get_job(self.name)["status"] == "CancelRequested"

    def _loop(self) -> None:
        keep_going = self.spec["settings"]["continue_on_step_failure"]
        poll = 0.05
        while True:
            if self._cancel_pending():
                self._cancel_running("the pipeline was canceled")
                return self._finish("Canceled", "Canceled by the user.")
            changed = False
            for step in sorted(self.running):
                child = jobs.get(self.store, self.children[step])
                if child["status"] in TERMINAL:
                    self._step_ended(step, child)
                    changed = True
            if self.failed and not keep_going:
                self._cancel_running("a step failed and settings.continue_on_step_failure is false")
                return self._finish("Failed", self._failure_message())
            for step in self.graph.ready(self.completed, set(self.children) | set(self.failed) | self.stopped):
                if self._cancel_pending() or (self.failed and not keep_going):
                    break
                self._submit(step)
                changed = True
            if not self.running and not changed:  # nothing runs and nothing more can start
                if self.failed:
                    return self._finish("Failed", self._failure_message())
                return self._finish("Completed")
            poll = 0.05 if changed else min(poll * 1.5, 0.25)
            time.sleep(poll)

    def _failure_message(self) -> str:
        failed = ", ".join(f"/{step}" for step in self.failed)
        not_started = self._not_started()
        return (f"Pipeline has failed child jobs. Failed nodes: {failed}. {' '.join(self.failed.values())}"
                + (f" Not started: {', '.join(not_started)}." if not_started else "")
                + " See a step's log with `amlemu job stream --name <job>`; list the steps with "
                  f"`amlemu job list --parent-job-name {self.name}`.")


def main(argv: list[str]) -> None:
    root, name = Path(argv[0]), argv[1]
    PipelineOrchestrator(WorkspaceStore(root, root.name), name).run()


if __name__ == "__main__":
    main(sys.argv[1:])
