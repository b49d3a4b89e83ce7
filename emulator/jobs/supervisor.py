"""The per-job supervisor: prepares, runs and records one job, detached from its submitter.

Run as ``python -m emulator.jobs.supervisor <workspace-dir> <job-name>``. It
imports nothing heavy (no azure-ai-ml, no MLflow) so a job starts fast.
SIGTERM (sent by ``cancel``) stops the job's process tree and records Canceled.

A sweep's trial is prepared as soon as it is submitted, then waits at its *slot gate* before its
command starts: the sweep may submit the next trials ahead of a free slot, and gives a trial its
slot (:func:`open_trial_slot`) only when fewer than ``max_concurrent_trials`` trials run. A gated
trial ends Canceled, having started nothing, when it is canceled or its sweep ends or is lost.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from emulator import config
from emulator.compute import distribution, nodes, sizes
from emulator.compute import service as computes
from emulator.errors import EmulatorError
from emulator.jobs import faults
from emulator.jobs.spec import input_texts, output_path, render_command
from emulator.runtime import Prepared, RunRequest, select
from emulator.runtime.logs import log_tail
from emulator.runtime.proctree import is_alive, kill_tree, start_time
from emulator.store import WorkspaceStore
from emulator.store.db import ACTIVE
from emulator.store.secrets import JOB_TOKEN_ENV, job_token, workspace_secret
from emulator.tracking import filestore

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import (
        CommandJobSpec,  # noqa: F401 (named in a string: the generic base's type argument)
        ComputeRecord,
        JobRecord,
        JobSpecHeader,
    )

_STATUS_TO_RUN = {"Completed": "FINISHED", "Failed": "FAILED", "Canceled": "KILLED"}
SLOT_FLAG, SLOT_BELL = ".trial-slot", ".trial-slot-bell"  # in a sweep trial's job folder
CHILD_BELL = ".child-ended-bell"  # in a parent job's folder: its children ring it as they end
#: folders Azure creates in a job's working directory and uploads as its artifacts when the job ends
WORKING_DIR_FOLDERS = ("outputs", "logs")
SWEEP_CHECK_S = 0.5  # how often a gated trial checks that its sweep still lives


def open_trial_slot(job_dir: Path) -> None:
    """Give a sweep's trial its slot: it starts its command (now, or once prepared)."""
    (Path(job_dir) / SLOT_FLAG).touch()
    nodes.GrantBell.ring(job_dir, SLOT_BELL)  # after the flag: a trial that looks finds it


def end_tracking(store: WorkspaceStore, name: str, status: str) -> None:
    """Close the job's MLflow run to match the job's final status."""
    job = store.get_job(name)
    filestore.end_run(store.mlflow_run_dir(job["experiment_name"], name), _STATUS_TO_RUN[status])


#: the spec type of the job a JobProcess runs (CommandJobSpec, SweepJobSpec, ...)
JobSpecT = TypeVar("JobSpecT", bound="JobSpecHeader")


class JobProcess(Generic[JobSpecT]):
    """What a job's own process (a supervisor, or a parent job's orchestrator) knows of its job."""

    def __init__(self, store: WorkspaceStore, name: str):
        self.store, self.name = store, name
        self.job: JobRecord[JobSpecT] = store.get_job(name)
        self.spec: JobSpecT = self.job["spec"]
        self.dir = store.job_dir(name)
        self.log_path = self.dir / "artifacts" / "user_logs" / "std_log.txt"
        self.cancel_requested = False

    def start_tracking(self, keep_existing: bool = False) -> int:
        """The job's own MLflow run, in its experiment (``keep_existing``: a resumed job keeps the run it has);
        returns the experiment's id."""
        experiment_id = self.store.experiment_id(self.job["experiment_name"])
        filestore.ensure_experiment(self.store.mlruns_dir, experiment_id, self.job["experiment_name"])
        if keep_existing and self.store.mlflow_run_dir(self.job["experiment_name"], self.name).is_dir():
            return experiment_id
        filestore.create_run(
            self.store.mlruns_dir,
            experiment_id,
            self.name,
            run_name=self.spec["display_name"],
            artifact_dir=self.dir / "artifacts",
            user=self.spec.get("created_by") or getpass.getuser(),
            tags=self.spec["tags"],
        )
        return experiment_id

    @staticmethod
    def me() -> dict[str, Any]:
        """This process, as a job record names it (``pid``, ``pid_start``: a reused pid is not it)."""
        return {"pid": os.getpid(), "pid_start": start_time(os.getpid())}


class Supervisor(JobProcess["CommandJobSpec"]):
    def __init__(self, store: WorkspaceStore, name: str):
        super().__init__(store, name)
        self.handles: list = []  # one per process (several for a distributed job)
        self.compute = self._compute_record()  # a cluster or instance: the job holds its nodes
        self.nodes: list[dict] = []
        self.mpirun: str | None = None  # an MPI job's launcher, when its environment has one

    def _compute_record(self) -> ComputeRecord | None:
        name = self.spec.get("compute")
        record = computes.get(self.store, name) if name else None
        return record if record and record["type"] in ("amlcompute", "computeinstance") else None

    def _on_sigterm(self, *_):
        self.cancel_requested = True
        for handle in self.handles:  # no Popen.wait here: the main thread holds its lock
            kill_tree(handle.pid)

    def _log(self, line: str) -> None:
        with open(self.log_path, "a") as f:
            f.write(line + "\n")

    def _finish(
        self, status: str, *, exit_code: int | None = None, error: str | None = None, lost_nodes: tuple[str, ...] = ()
    ) -> None:
        snapshot = self.dir / "snapshot"
        for folder in WORKING_DIR_FOLDERS:  # Azure uploads ./outputs and ./logs as job artifacts
            src = snapshot / folder
            if src.is_dir() and not src.is_symlink() and not any(src.iterdir()):
                src.rmdir()  # left empty: Azure lists no such folder among the artifacts
            elif src.is_dir() and not src.is_symlink():
                dst = self.dir / "artifacts" / folder
                if dst.exists():
                    shutil.copytree(src, dst, dirs_exist_ok=True)
                    shutil.rmtree(src, ignore_errors=True)
                else:
                    shutil.move(src, dst)
        if status == "Completed" and (unregistered := self._register_outputs()):
            status, error = "Failed", unregistered
        self.store.update_job(
            self.name, only_if_status=ACTIVE, status=status, ended_at=time.time(), exit_code=exit_code, error=error
        )
        if self.compute is not None:  # after the status: a terminal job is never granted its nodes again
            nodes.release(self.store, self.compute["name"], self.name, lost_nodes)
        if self.job["parent_job_name"]:  # after the nodes: the parent's next child can have them
            nodes.GrantBell.ring(self.store.job_dir(self.job["parent_job_name"]), CHILD_BELL)
        end_tracking(self.store, self.name, status)

    def _register_outputs(self) -> str | None:
        """Register each output given a ``name`` as a data asset version, as Azure does when a job completes;
        why one could not be, else None."""
        named = {k: v for k, v in self.spec.get("outputs", {}).items() if v.get("name")}
        if not named:
            return None
        from emulator.data import assets  # only registered outputs need it (~5 ms at a supervisor's start)

        for key, output in named.items():
            spec = {"name": output["name"], "version": output.get("version"), "type": output["type"]}
            try:
                record = assets.create_or_update(self.store, {**spec, "path": output["path"]}, self.dir)
            except EmulatorError as exc:
                return (
                    f"The job's command completed, but its output '{key}' could not be registered as data asset "
                    f"'{output['name']}': {exc.message}"
                )
            self._log(f"[amlemu] output '{key}' registered as data asset {record['name']}:{record['version']}")
        return None

    def _environment(self, experiment_id: int) -> dict[str, str]:
        spec, store = self.spec, self.store
        # a process inherits the caller's environment, as a local run does; a container gets only the job's own
        inherited = os.environ.items() if self.runtime.shares_host else ()
        env = {k: v for k, v in inherited if not k.startswith("MLFLOW_")}
        env.update(filestore.TRACKING_ENV)
        env.update(
            {
                "MLFLOW_TRACKING_URI": store.tracking_uri,
                "MLFLOW_RUN_ID": self.name,
                "MLFLOW_EXPERIMENT_NAME": self.job["experiment_name"],
                "MLFLOW_EXPERIMENT_ID": str(experiment_id),
                "AZUREML_RUN_ID": self.name,
                JOB_TOKEN_ENV: job_token(workspace_secret(store.root), self.name),
                "AZUREML_ARM_SUBSCRIPTION": config.SUBSCRIPTION_ID,
                "AZUREML_ARM_RESOURCEGROUP": config.RESOURCE_GROUP,
                "AZUREML_ARM_WORKSPACE_NAME": store.name,
                "AZUREML_ARM_PROJECT_NAME": self.job["experiment_name"],
                "AZUREML_CR_EXECUTION_WORKING_DIR_PATH": str(self.dir / "snapshot"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        for key, text in input_texts(spec["inputs"]).items():
            env[f"AZURE_ML_INPUT_{key}"] = text
        for key, path in self._outputs().items():
            env[f"AZURE_ML_OUTPUT_{key}"] = str(path)
        env.update(spec["environment_variables"])
        return env

    def _outputs(self) -> dict[str, Path]:
        """Where each output is written: its datastore path, else the job's ``outputs/<name>``."""
        return {k: output_path(self.store, self.dir, k, v) for k, v in self.spec["outputs"].items()}

    def _output_folders(self, datastore_only: bool = False) -> list[Path]:
        """The folders the outputs need (a uri_file written to a datastore path: the file's folder); with
        ``datastore_only``, those outside the job's own folder (a container mounts them too)."""
        folders = []
        for key, path in self._outputs().items():
            output = self.spec["outputs"][key]
            if output.get("path"):
                folders.append(path.parent if output["type"] == "uri_file" else path)
            elif not datastore_only:
                folders.append(path)
        return folders

    def _make_working_dir(self) -> None:
        """The command's working directory (the code snapshot, empty without ``code:``) holds ``./outputs`` and
        ``./logs``, as Azure's does; a file of that name in the code is left as it is."""
        for folder in WORKING_DIR_FOLDERS:
            path = self.dir / "snapshot" / folder
            if not path.exists() and not path.is_symlink():
                path.mkdir()

    def _instance_home(self) -> Path | None:
        """A compute instance's persistent home folder: its jobs' HOME."""
        is_instance = self.compute is not None and self.compute["type"] == "computeinstance"
        return Path(self.compute["home"]) if is_instance else None

    def _hold_nodes(self) -> bool:
        """Wait (Queued) until the job holds its nodes; False if it was canceled meanwhile."""
        if self.compute is None:
            return True
        self.nodes = nodes.wait_for_nodes(self.store, self.compute, self.name, lambda: self.cancel_requested) or []
        if not self.nodes:
            self._finish(
                "Canceled", error=f"Canceled by the user while it waited for compute '{self.compute['name']}'."
            )
        return bool(self.nodes)

    def _wait_for_slot(self) -> str | None:
        """A sweep's trial waits for its slot; None once it has it, else why it will not run."""
        sweep = self.job["parent_job_name"]
        next_check = 0.0
        with nodes.GrantBell(self.dir, SLOT_BELL) as bell:  # before the flag is looked at: no ring is missed
            while not self.cancel_requested:
                if (self.dir / SLOT_FLAG).exists():
                    return None
                if time.monotonic() >= next_check:  # a lost sweep never opens the gate
                    parent = self.store.get_job(sweep)
                    if parent["status"] not in ACTIVE or not (
                        parent["pid"] and is_alive(parent["pid"], parent["pid_start"])
                    ):
                        return f"Canceled: its sweep {sweep} ended or was lost before the trial got its slot."
                    next_check = time.monotonic() + SWEEP_CHECK_S
                bell.wait(0.1)
        return "Canceled by the user."

    def _requests(self, command: str, env: dict[str, str], prepared: Prepared) -> list[RunRequest]:
        """One run request per process; a distributed job's processes log to std_log_process_<rank>.txt."""
        processes = distribution.plan(len(self.nodes) or 1, self.spec.get("distribution"))
        home = self._instance_home()
        if home:
            env = {**env, "HOME": str(home)}
        labels = {"workspace": self.store.name, "job": self.name}
        bin_dir = prepared.bin_dir
        # a container sees the folders it needs at their host paths: the job's, the tracking store, an instance's
        # home (read-write) and the inputs (read-only); a local process sees them anyway
        where = {
            "image": prepared.image,
            "mounts": [
                self.dir,
                self.store.mlruns_dir,
                *([home] if home else []),
                *self._output_folders(datastore_only=True),
            ],
            "readonly": [Path(v["path"]) for v in self.spec["inputs"].values() if v["type"] != "literal"],
        }
        # mpirun from the environment, as Azure runs MPI jobs; in a container the processes start directly
        mpi = (self.spec.get("distribution") or {}).get("type") == "mpi" and self.runtime.shares_host
        self.mpirun = distribution.find_mpirun(bin_dir) if mpi else None
        if self.mpirun:  # one mpirun starts every process, as on Azure; it logs to system_logs/mpirun.txt
            shared = {
                k: v for k, v in processes[0].env.items() if not k.startswith("OMPI_") and k != "AZ_BATCHAI_TASK_INDEX"
            }  # mpirun sets the per-rank ones
            requests = [
                RunRequest(
                    command=distribution.mpirun_command(self.mpirun, len(processes), command, self.log_path.parent),
                    cwd=self.dir / "snapshot",
                    env={**env, **shared},
                    bin_dir=bin_dir,
                    labels=labels,
                    log_path=self.dir / "artifacts" / "system_logs" / "mpirun.txt",
                    **where,
                )
            ]
            self.processes = [processes[0]]
        else:
            requests = []
            for process in processes:
                log = self.log_path
                if len(processes) > 1:
                    log = self.log_path.with_name(f"std_log_process_{process.rank}.txt")
                requests.append(
                    RunRequest(
                        command=command,
                        cwd=self.dir / "snapshot",
                        env={**env, **process.env},
                        log_path=log,
                        bin_dir=bin_dir,
                        labels=labels,
                        **where,
                    )
                )
            self.processes = processes
        if len(processes) > 1:  # `job stream` follows process 0, as az ml job stream does
            first = self.log_path.with_name("std_log_process_0.txt")
            if self.log_path.exists():
                os.replace(self.log_path, first)
            self.log_path.symlink_to(first.name)
        self.requests = requests
        return requests

    def _start(self, requests: list[RunRequest]) -> None:
        size = sizes.lookup(self.compute["size"]) if self.compute else None
        if size and size.gpus:  # checked at submit too, but GPUs can go between submit and start
            sizes.check_gpus(self.compute["name"], size)
        if size:  # a node's cores, memory and GPUs: a container gets them; a local process shares this machine's
            limits = sizes.node_limits(size)
            for request in requests:
                for field, value in limits.items():
                    setattr(request, field, value)
        for request in requests:
            handle = self.runtime.start(request)
            self.handles.append(handle)
            if self.cancel_requested:  # SIGTERM landed while this process was starting: nothing killed it
                kill_tree(handle.pid)
            for warning in handle.warnings:  # e.g. an engine without swap accounting: say so, run on
                self._log(warning)

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_sigterm)
        # a sweep's trial is prepared first, stays Queued until its sweep gives it a slot, then takes
        # its node: a slot freed is a node freed, and the node is all the trial still waits for
        gated = bool(self.spec.get("slot_gated")) and bool(self.job["parent_job_name"])
        if not gated and not self._hold_nodes():
            return
        if not self.store.update_job(
            self.name, only_if_status=("NotStarted", "Queued"), status="Queued" if gated else "Preparing", **self.me()
        ):
            if self.store.get_job(self.name)["status"] == "CancelRequested":
                self._finish("Canceled", error="Canceled by the user before it started.")
            elif self.compute is not None:
                nodes.release(self.store, self.compute["name"], self.name)
            return
        try:
            experiment_id = self.start_tracking()
            faults.fail_at_start(self.store, self.name)  # aml_faults: Azure's error for a job that fails at start
            self.runtime = select(self.spec.get("runtime"), self._log)
            prepared = self.runtime.prepare(self.spec["environment_resolved"], self._log)
            outputs = {k: str(path) for k, path in self._outputs().items()}
            for path in self._output_folders():
                path.mkdir(parents=True, exist_ok=True)
            command = render_command(self.spec["command"], input_texts(self.spec["inputs"]), outputs)
            self._make_working_dir()
            env = self._environment(experiment_id)
            if gated:
                why = self._wait_for_slot()
                if why or self.cancel_requested:
                    return self._finish("Canceled", error=why or "Canceled by the user.")
                if not self._hold_nodes():
                    return
            self._start(self._requests(command, env, prepared))
            faults.lose_node_later(self.store, self.compute, self.handles)  # aml_faults: a node lost mid-job
            # on a compute, started_at is when the job got its nodes (see emulator.compute.nodes); a
            # sweep's trial starts when its command does, so its sweep's concurrency shows in the records
            started = {} if self.compute and not gated else {"started_at": time.time()}
            self.store.update_job(
                self.name,
                only_if_status=("Queued", "Preparing"),
                status="Running",
                run_pid=self.handles[0].pid,
                **started,
            )
        except Exception as exc:  # preparation failed: the job fails with the reason
            self._stop_running()
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            self._log(f"[amlemu] preparing the job failed: {message}")
            return self._finish("Failed", error=message)
        self._wait()

    def _first_exit(self, timeout: float | None) -> tuple[int, int | None]:
        """(index, exit code) of the first process to fail, or of the last one to end; code None at timeout."""
        if len(self.handles) == 1:
            return 0, self.handles[0].wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        pending, last = list(range(len(self.handles))), 0
        while pending:
            for index in list(pending):
                code = self.handles[index].wait(0)
                if code is None:
                    continue
                pending.remove(index)
                if code != 0:
                    return index, code
                last = index
            if pending and deadline is not None and time.monotonic() > deadline:
                return pending[0], None
            time.sleep(0.05)
        return last, 0

    def _wait(self) -> None:
        timeout = self.spec.get("limits", {}).get("timeout")
        index, code = self._first_exit(float(timeout) if timeout else None)
        self._stop_running()  # one process failing (or the timeout) stops the others
        if code is None:  # limits.timeout passed
            return self._finish(
                "Failed",
                error=f"The job ran past limits.timeout ({timeout} s) and was "
                "stopped. Raise the limit or speed the job up.",
            )
        if self.cancel_requested:
            return self._finish("Canceled", exit_code=code, error="Canceled by the user.")
        if code == 0:
            return self._finish("Completed", exit_code=0)
        process, log = self.processes[index], self.requests[index].log_path
        node = self.nodes[process.node_index]["node_id"] if self.nodes else None
        where = f" (process {process.rank} on node {node})" if node else ""
        if self.mpirun:
            where = f" (mpirun, {self.spec['resources']['instance_count']} node(s))"
        lost: tuple[str, ...] = ()
        if code < 0 and node:  # killed from outside: the node is lost, and replaced in the pool
            reason = (
                f"Node {node} was lost: the job's process {process.rank} on it was killed by signal "
                f"{signal.Signals(-code).name}."
            )
            lost = (node,)
        elif code < 0:
            reason = f"The job's process was killed by signal {signal.Signals(-code).name}."
        elif code > 128 and code - 128 in signal.Signals._value2member_map_:
            reason = (
                f"The job's command{where} exited with code {code} (killed by signal "
                f"{signal.Signals(code - 128).name}; on the docker runtime: the container was stopped)."
            )
        else:
            reason = f"The job's command{where} exited with code {code}."
        if len(self.handles) > 1:
            reason += " The job's other processes were stopped."
        tail = log_tail(log)
        self._finish(
            "Failed",
            exit_code=code,
            lost_nodes=lost,
            error=reason + (f" Last lines of {log.relative_to(self.dir / 'artifacts')}:\n{tail}" if tail else ""),
        )

    def _stop_running(self) -> None:
        for handle in self.handles:
            if handle.wait(0) is None:  # a finished process's pid may belong to someone else by now
                handle.stop()


def main(argv: list[str]) -> None:
    root, name = Path(argv[0]), argv[1]
    Supervisor(WorkspaceStore(root, root.name), name).run()


if __name__ == "__main__":
    main(sys.argv[1:])
