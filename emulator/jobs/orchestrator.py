"""What a parent job's orchestrator (sweep, AutoML, pipeline) shares: start, log, failure, end.

A parent job runs in a detached process started like a command job's supervisor
(:func:`emulator.jobs.service.record_and_start`); its children are command jobs.
Subclasses fill in ``_prepare`` (set up, plan), ``_loop`` (submit and watch the
children), ``_stop_active`` (cancel the running children with a reason) and
``_conclude`` (record the outcome, ``forced`` when the orchestrator itself failed).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
import traceback
from pathlib import Path
from typing import Any

from emulator.compute.nodes import GrantBell
from emulator.jobs.supervisor import CHILD_BELL, end_tracking
from emulator.runtime.proctree import start_time
from emulator.store import WorkspaceStore
from emulator.store.db import ACTIVE


class ParentOrchestrator:
    #: the job kind in log lines and messages ("sweep", "AutoML job")
    kind = "parent job"

    def __init__(self, store: WorkspaceStore, name: str):
        self.store, self.name = store, name
        self.job = store.get_job(name)
        self.spec = self.job["spec"]
        self.dir = store.job_dir(name)
        self.log_path = self.dir / "artifacts" / "user_logs" / "std_log.txt"
        self.cancel_requested = False
        self.trials: dict = {}  # child name -> the subclass's record of it
        self.active: list[str] = []  # submitted, not ended, in submission order
        self.bell: GrantBell | None = None

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
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
        with open(self.log_path, "a") as f:
            f.write(f"[{stamp}][amlemu {self.kind.split()[0].lower()}] {line}\n")

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_sigterm)
        me = {"pid": os.getpid(), "pid_start": start_time(os.getpid())}
        if not self.store.update_job(self.name, only_if_status=("NotStarted", "Queued"), status="Running",
                                     started_at=time.time(), **me):
            if self.store.get_job(self.name)["status"] == "CancelRequested":
                self._record_end("Canceled", "Canceled by the user before it started.")
            return
        try:
            with GrantBell(self.dir, CHILD_BELL) as self.bell:  # each child rings it as it ends
                self._prepare()
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
        from emulator.jobs import service as jobs

        jobs.submit(self.store, {k: v for k, v in data.items() if v is not None},
                    Path(self.spec.get("base_path") or self.dir), parent_job_name=self.name, fork=True)
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

    def _stop_active(self, reason: str) -> None:
        raise NotImplementedError

    def _conclude(self, forced: tuple[str, str] | None = None) -> None:
        raise NotImplementedError
