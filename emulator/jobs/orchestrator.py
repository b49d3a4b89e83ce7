"""What a parent job's orchestrator (sweep, AutoML, pipeline) shares: start, log, failure, end.

A parent job runs in a detached process started like a command job's supervisor
(:func:`emulator.jobs.submission.record_and_start`); its children are command jobs.
Subclasses fill in ``_prepare`` (set up, plan), ``_loop`` (submit and watch the
children), ``_stop_active`` (cancel the running children with a reason) and
``_conclude`` (record the outcome, ``forced`` when the orchestrator itself failed).

A sweep's or AutoML job's orchestrator that was lost (killed, or the machine restarted) is
started again by the next read of the job (:func:`emulator.jobs.lifecycle.refresh`); it finds
the job ``Running`` and calls ``_resume`` after ``_prepare`` to take up the children already
recorded: those still running are watched, those that ended are counted, and the plan goes on.
"""

from __future__ import annotations

import datetime as dt
import signal
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.compute.nodes import GrantBell
from emulator.jobs import lifecycle
from emulator.jobs.command import submit_command
from emulator.jobs.supervisor import CHILD_BELL, JobProcess, JobSpecT, end_tracking
from emulator.store import WorkspaceStore
from emulator.store.db import ACTIVE

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import CommandJobSpec, JobRecord

#: the error of a child the lost orchestrator recorded but never started
NEVER_STARTED = "Canceled: its parent job's orchestrator was lost before the job started."


class ParentOrchestrator(JobProcess[JobSpecT]):
    #: the job kind in log lines and messages (e.g. AutoML job)
    kind = "parent job"
    #: children are prepared, then wait for their slot (open_trial_slot) before their command starts
    slot_gated_children = False

    def __init__(self, store: WorkspaceStore, name: str):
        super().__init__(store, name)
        self.trials: dict = {}  # child name -> the subclass's record of it
        self.active: list[str] = []  # submitted, not ended, in submission order
        self.bell: GrantBell | None = None
        self.resuming = False

    def elapsed(self) -> float:
        """Seconds since the job started (before any restart of its orchestrator)."""
        return time.time() - (self.job["started_at"] or time.time())

    def start_tracking(self, keep_existing: bool | None = None) -> int:
        """The job's own MLflow run (kept as it is when the orchestrator resumes)."""
        return super().start_tracking(self.resuming if keep_existing is None else keep_existing)

    def children_to_resume(self) -> list[JobRecord[CommandJobSpec]]:
        """The children recorded before the orchestrator was lost, in submission order.

        A child recorded but never started (its supervisor was to be started by the lost
        orchestrator) is canceled; the subclass decides whether such a child counts.
        """
        children = sorted(self.store.list_jobs(self.name), key=lambda c: (c["created_at"], c["name"]))
        for child in children:
            if child["status"] == "NotStarted" and not child["pid"]:
                self.store.update_job(
                    child["name"],
                    only_if_status=("NotStarted",),
                    status="Canceled",
                    ended_at=time.time(),
                    error=NEVER_STARTED,
                )
        self.log(
            f"the {self.kind}'s orchestrator was lost and restarted: resuming with {len(children)} "
            "child job(s) already submitted"
        )
        return [lifecycle.get(self.store, c["name"]) for c in children]

    def pause(self, seconds: float) -> None:
        """Sleep until the next poll, or until a child ends."""
        if self.bell is None:
            time.sleep(seconds)
        else:
            self.bell.wait(seconds)

    @classmethod
    def main(cls, argv: list[str]) -> None:
        """``python -m <module> <workspace-dir> <job-name>``: run the orchestrator of that job."""
        root, name = Path(argv[0]), argv[1]
        cls(WorkspaceStore(root, root.name), name).run()

    def _on_sigterm(self, *_):
        self.cancel_requested = True

    def log(self, line: str) -> None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
        with open(self.log_path, "a") as f:
            f.write(f"[{stamp}][amlemu {self.kind.split()[0].lower()}] {line}\n")

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_sigterm)
        me = self.me()
        # Running already: its orchestrator was lost and a read restarted this one (jobs.lifecycle.refresh)
        self.resuming = self.job["status"] == "Running"
        if self.resuming:
            if not self.store.update_job(self.name, only_if_status=("Running",), **me):
                return
        elif not self.store.update_job(
            self.name, only_if_status=("NotStarted", "Queued"), status="Running", started_at=time.time(), **me
        ):
            if self.store.get_job(self.name)["status"] == "CancelRequested":
                self._record_end("Canceled", "Canceled by the user before it started.")
            return
        try:
            with GrantBell(self.dir, CHILD_BELL) as self.bell:  # each child rings it as it ends
                self._prepare()
                if self.resuming:
                    self._resume()
                self._loop()
        except Exception as exc:  # a bug or a vanished resource: stop the children, fail with the reason
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            self.log(f"the {self.kind} failed: {message}")
            with open(self.dir / "artifacts" / "system_logs" / "supervisor.txt", "a") as f:
                traceback.print_exc(file=f)
            self._stop_active(f"Canceled: its {self.kind} failed ({message}).")
            self._conclude(forced=("Failed", f"The {self.kind} failed: {message}"))

    def _submit_child(self, data: dict[str, Any], trial: Any, note: str) -> None:
        """Submit a child command job (``trial.name``) and start tracking it."""
        submit_command(
            self.store,
            {k: v for k, v in data.items() if v is not None},
            Path(self.spec.get("base_path") or self.dir),
            parent_job_name=self.name,
            fork=True,
            slot_gated=self.slot_gated_children,
        )
        self.trials[trial.name] = trial
        self.active.append(trial.name)
        self.log(f"trial {trial.name} submitted: {note}")

    def _record_end(self, status: str, error: str | None) -> None:
        self.store.update_job(self.name, only_if_status=ACTIVE, status=status, ended_at=time.time(), error=error)
        end_tracking(self.store, self.name, status)

    # -- what each kind of parent job does ------------------------------------------------------
    def _prepare(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        raise NotImplementedError

    def _resume(self) -> None:
        """Take up the children recorded before the orchestrator was lost (resumable kinds only)."""
        raise NotImplementedError

    def _stop_active(self, reason: str) -> None:
        raise NotImplementedError

    def _conclude(self, forced: tuple[str, str] | None = None) -> None:
        raise NotImplementedError
