"""The per-job supervisor: prepares, runs and records one job, detached from its submitter.

Run as ``python -m emulator.jobs.supervisor <workspace-dir> <job-name>``. It
imports nothing heavy (no azure-ai-ml, no MLflow) so a job starts fast.
SIGTERM (sent by ``cancel``) stops the job's process tree and records Canceled.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from emulator import config
from emulator.environments.registry import interpreter_bin
from emulator.environments.venv import ensure_venv
from emulator.jobs.spec import input_texts, render_command
from emulator.runtime import RunRequest, get_runtime
from emulator.runtime.logs import log_tail
from emulator.runtime.proctree import kill_tree, start_time
from emulator.store import WorkspaceStore
from emulator.store.db import ACTIVE
from emulator.tracking import filestore

_STATUS_TO_RUN = {"Completed": "FINISHED", "Failed": "FAILED", "Canceled": "KILLED"}


def end_tracking(store: WorkspaceStore, name: str, status: str) -> None:
    """Close the job's MLflow run to match the job's final status."""
    job = store.get_job(name)
    filestore.end_run(store.mlflow_run_dir(job["experiment_name"], name), _STATUS_TO_RUN[status])


class Supervisor:
    def __init__(self, store: WorkspaceStore, name: str):
        self.store, self.name = store, name
        self.job = store.get_job(name)
        self.spec = self.job["spec"]
        self.dir = store.job_dir(name)
        self.log_path = self.dir / "artifacts" / "user_logs" / "std_log.txt"
        self.cancel_requested = False
        self.handle = None

    def _on_sigterm(self, *_):
        self.cancel_requested = True
        if self.handle is not None:  # no Popen.wait here: the main thread holds its lock
            kill_tree(self.handle.pid)

    def _log(self, line: str) -> None:
        with open(self.log_path, "a") as f:
            f.write(line + "\n")

    def _finish(self, status: str, *, exit_code: int | None = None, error: str | None = None) -> None:
        snapshot = self.dir / "snapshot"
        for folder in ("outputs", "logs"):  # Azure uploads ./outputs and ./logs as job artifacts
            src = snapshot / folder
            if src.is_dir() and not src.is_symlink():
                dst = self.dir / "artifacts" / folder
                if dst.exists():
                    shutil.copytree(src, dst, dirs_exist_ok=True)
                    shutil.rmtree(src, ignore_errors=True)
                else:
                    shutil.move(src, dst)
        self.store.update_job(self.name, only_if_status=ACTIVE, status=status, ended_at=time.time(),
                              exit_code=exit_code, error=error)
        end_tracking(self.store, self.name, status)

    def _environment(self, experiment_id: int) -> dict[str, str]:
        spec, store = self.spec, self.store
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env.update(filestore.TRACKING_ENV)
        env.update({
            "MLFLOW_TRACKING_URI": store.tracking_uri,
            "MLFLOW_RUN_ID": self.name,
            "MLFLOW_EXPERIMENT_NAME": self.job["experiment_name"],
            "MLFLOW_EXPERIMENT_ID": str(experiment_id),
            "AZUREML_RUN_ID": self.name,
            "AZUREML_ARM_SUBSCRIPTION": config.SUBSCRIPTION_ID,
            "AZUREML_ARM_RESOURCEGROUP": config.RESOURCE_GROUP,
            "AZUREML_ARM_WORKSPACE_NAME": store.name,
            "AZUREML_ARM_PROJECT_NAME": self.job["experiment_name"],
            "AZUREML_CR_EXECUTION_WORKING_DIR_PATH": str(self.dir / "snapshot"),
            "PYTHONUNBUFFERED": "1",
        })
        for key, text in input_texts(spec["inputs"]).items():
            env[f"AZURE_ML_INPUT_{key}"] = text
        for key in spec["outputs"]:
            env[f"AZURE_ML_OUTPUT_{key}"] = str(self.dir / "outputs" / key)
        env.update(spec["environment_variables"])
        return env

    def _pick_runtime(self) -> str:
        name = self.spec.get("runtime") or "process"
        if name == "auto":
            from emulator.runtime.engine import engine_answers

            name = "docker" if engine_answers() else "process"
            if name == "process":
                self._log("[amlemu] runtime auto: no Docker engine answers; running on the process runtime")
        return name

    def _runtime(self, resolved: dict, run_dir: Path):
        if self.runtime_name == "process":
            return get_runtime("process")
        from emulator.runtime.docker import DockerRuntime
        from emulator.runtime.images import environment_image

        image = environment_image(resolved, self._log).tag
        inputs = [Path(v["path"]) for v in self.spec["inputs"].values() if v["type"] != "literal"]
        return DockerRuntime(image, mounts=[self.dir, self.store.mlruns_dir], writable=[self.dir, run_dir],
                             readonly=inputs)

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_sigterm)
        me = {"pid": os.getpid(), "pid_start": start_time(os.getpid())}
        if not self.store.update_job(self.name, only_if_status=("NotStarted", "Queued"),
                                     status="Preparing", **me):
            if self.store.get_job(self.name)["status"] == "CancelRequested":
                self._finish("Canceled", error="Canceled by the user before it started.")
            return
        try:
            experiment_id = self.store.experiment_id(self.job["experiment_name"])
            filestore.ensure_experiment(self.store.mlruns_dir, experiment_id, self.job["experiment_name"])
            run_dir = filestore.create_run(self.store.mlruns_dir, experiment_id, self.name,
                                 run_name=self.spec["display_name"], artifact_dir=self.dir / "artifacts",
                                 user=self.spec.get("created_by") or getpass.getuser(),
                                 tags=self.spec["tags"])
            resolved = self.spec["environment_resolved"]
            reqs = resolved.get("requirements")
            self.runtime_name = self._pick_runtime()
            if self.runtime_name == "process":
                bin_dir = ensure_venv(reqs, self._log) if reqs else interpreter_bin()
            else:
                bin_dir = None
            outputs = {k: str(self.dir / "outputs" / k) for k in self.spec["outputs"]}
            for path in outputs.values():
                Path(path).mkdir(parents=True, exist_ok=True)
            command = render_command(self.spec["command"], input_texts(self.spec["inputs"]), outputs)
            request = RunRequest(command=command, cwd=self.dir / "snapshot",
                                 env=self._environment(experiment_id), log_path=self.log_path,
                                 bin_dir=bin_dir, labels={"workspace": self.store.name, "job": self.name})
            runtime = self._runtime(resolved, run_dir)
            if self.cancel_requested:
                return self._finish("Canceled", error="Canceled by the user.")
            self.handle = runtime.start(request)
            self.store.update_job(self.name, only_if_status=("Preparing",), status="Running",
                                  started_at=time.time(), run_pid=self.handle.pid)
        except Exception as exc:  # preparation failed: the job fails with the reason
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            self._log(f"[amlemu] preparing the job failed: {message}")
            return self._finish("Failed", error=message)
        self._wait()

    def _wait(self) -> None:
        timeout = self.spec.get("limits", {}).get("timeout")
        code = self.handle.wait(float(timeout) if timeout else None)
        if code is None:  # limits.timeout passed
            self.handle.stop()
            return self._finish("Failed", error=f"The job ran past limits.timeout ({timeout} s) and was "
                                                 "stopped. Raise the limit or speed the job up.")
        if self.cancel_requested:
            return self._finish("Canceled", exit_code=code, error="Canceled by the user.")
        if code == 0:
            return self._finish("Completed", exit_code=0)
        if code < 0:
            reason = f"The job's process was killed by signal {signal.Signals(-code).name}."
        elif code > 128 and code - 128 in signal.Signals._value2member_map_:
            reason = (f"The job's command exited with code {code} (killed by signal "
                      f"{signal.Signals(code - 128).name}; on the docker runtime: the container was stopped).")
        else:
            reason = f"The job's command exited with code {code}."
        tail = log_tail(self.log_path)
        self._finish("Failed", exit_code=code,
                     error=reason + (f" Last lines of user_logs/std_log.txt:\n{tail}" if tail else ""))


def main(argv: list[str]) -> None:
    root, name = Path(argv[0]), argv[1]
    Supervisor(WorkspaceStore(root, root.name), name).run()


if __name__ == "__main__":
    main(sys.argv[1:])
