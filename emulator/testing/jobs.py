"""``aml_run_job``: submit a job (YAML path or SDK entity), wait for it, and hand back what a test asserts on.

The job comes back as the SDK's own entity with three more attributes: ``metrics`` and ``params`` (read
with MLflow from the workspace's tracking URI, as Azure's documentation reads them) and ``outputs_dir``
(the job's outputs and logs downloaded as ``az ml job download --all`` lays them out: ``artifacts/outputs``,
``artifacts/user_logs/std_log.txt``, ``named-outputs/<name>``). A job that does not complete fails the test
with its status and the tail of its log.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emulator.testing.workspace import AmlTestFailure, ScopedWorkspace, one_line

#: the statuses after which a job changes no more (azure-ai-ml's RunHistoryConstants.TERMINAL_STATUSES)
TERMINAL = ("Completed", "Failed", "Canceled", "NotResponding", "Paused")
LOG_TAIL_LINES = 40
#: where a job's log lands in a download, Azure's layout first
_LOGS = ("artifacts/user_logs/std_log.txt", "artifacts/azureml-logs/70_driver_log.txt", "artifacts/system_logs")


def _set(entity: Any, dotted: str, value: Any) -> None:
    """``--set inputs.C=0.5`` on an entity: walk attributes and mapping keys, set the last one."""
    *path, last = dotted.split(".")
    target = entity
    for part in path:
        target = target[part] if isinstance(target, Mapping) else getattr(target, part)
    if isinstance(target, Mapping):
        target[last] = value
    else:
        setattr(target, last, value)


def load(ws: ScopedWorkspace, job: Any, overrides: Mapping[str, Any] | None) -> Any:
    """The job entity to submit: a YAML file loaded by azure-ai-ml's ``load_job`` with ``overrides`` as its
    ``params_override``, or the entity given with ``overrides`` set on it."""
    if not isinstance(job, (str, os.PathLike)):
        for key, value in (overrides or {}).items():
            try:
                _set(job, key, value)
            except (AttributeError, KeyError, TypeError) as exc:
                raise AmlTestFailure(
                    f"aml_run_job: cannot set '{key}' on the {type(job).__name__} ({one_line(exc, 300)}). "
                    "Fix the key: a dotted path of the job's fields, such as 'inputs.C'."
                ) from None
        return job
    from azure.ai.ml import load_job

    path = ws.path(job, "job file", "aml_run_job")
    if not path.is_file():
        raise AmlTestFailure(f"aml_run_job: '{job}' is a folder ({path}). Fix: give the job's YAML file.")
    try:
        return load_job(path, params_override=[{k: v} for k, v in (overrides or {}).items()])
    except Exception as exc:  # YAML syntax, the schema's ValidationException, a missing code folder, ...
        raise AmlTestFailure(
            f"aml_run_job: the job file {path} is not a valid job: {one_line(exc)}. Fix the YAML "
            "(azure-ai-ml's load_job must accept it; `amlemu job create --file` shows the same error)."
        ) from None


def _wait(ws: ScopedWorkspace, name: str, timeout: float, stream: bool) -> Any:
    jobs = ws.client.jobs
    if stream:
        try:
            jobs.stream(name)  # prints the log; raises when the job failed: the status below says so
        except Exception:
            pass
        return jobs.get(name)
    wait = getattr(jobs, "wait", None)  # the local backend blocks on the store; the SDK has only get
    if wait is not None:
        return wait(name, timeout=timeout)
    deadline, pause = time.monotonic() + timeout, 1.0
    job = jobs.get(name)
    while job.status not in TERMINAL and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 1.5, 15.0)
        job = jobs.get(name)
    return job


def _download(ws: ScopedWorkspace, name: str) -> tuple[Path, str]:
    """The job's outputs and logs in a folder of the test's, and why the download failed ("" when it did not)."""
    folder = ws.tmp / "jobs" / name
    folder.mkdir(parents=True, exist_ok=True)
    try:
        ws.client.jobs.download(name, download_path=str(folder), all=True)
    except Exception as exc:
        return folder, f"its outputs could not be downloaded: {one_line(exc, 500)}"
    return folder, ""


def log_tail(folder: Path, lines: int = LOG_TAIL_LINES) -> tuple[Path | None, str]:
    """The last ``lines`` lines of the job's log in a download folder (the user log, else the system log)."""
    for relative in _LOGS:
        path = folder / relative
        if path.is_dir():
            path = next(iter(sorted(path.glob("*.txt"))), path)
        if path.is_file() and path.stat().st_size:
            text = path.read_text(errors="replace").rstrip("\n").splitlines()
            return path, "\n".join(text[-lines:])
    return None, ""


def _tracking(ws: ScopedWorkspace, name: str) -> tuple[dict[str, float], dict[str, str]]:
    """The run's metrics (latest values) and params, through MLflow on the workspace's tracking URI."""
    from mlflow import MlflowClient  # MLflow costs ~1.5 s to import: only a test reading a job pays for it

    try:
        run = MlflowClient(tracking_uri=ws.tracking_uri).get_run(name)
    except Exception as exc:
        raise AmlTestFailure(
            f"aml_run_job: job '{name}' completed but its metrics could not be read from {ws.tracking_uri}: "
            f"{one_line(exc, 500)}. Fix: on Azure, install azureml-mlflow (the azureml:// tracking scheme)."
        ) from None
    return dict(run.data.metrics), dict(run.data.params)


def run_job(
    ws: ScopedWorkspace,
    job: Any,
    set: Mapping[str, Any] | None = None,  # noqa: A002 - the name az ml and the fixture's users know (--set)
    *,
    timeout: float = 3600.0,
    stream: bool = False,
    download: bool = True,
    **fields: Any,
) -> Any:
    """Submit ``job`` (``set``: overrides, as ``az ml job create --set``), wait until it ends, download its outputs;
    the completed job with ``metrics``, ``params`` and ``outputs_dir`` (None with ``download=False``: large
    outputs on Azure). ``fields`` go to ``jobs.create_or_update`` (``experiment_name``, ``compute``, ...)."""
    entity = load(ws, job, set)
    try:
        created = ws.client.jobs.create_or_update(entity, **fields)
    except Exception as exc:
        raise AmlTestFailure(f"aml_run_job: the job was refused: {one_line(exc)}") from None
    name = created.name
    ws.on_teardown(f"job {name}", lambda: _cancel_if_running(ws, name))
    final = _wait(ws, name, timeout, stream)
    folder, problem = _download(ws, name) if download or final.status != "Completed" else (None, "")
    if final.status != "Completed":
        log, tail = log_tail(folder)
        no_log = f"It left no log ({problem})." if problem else "It left no log."
        shown = f"Last lines of its log ({log}):\n{tail}" if tail else no_log
        ended = "did not end" if final.status not in TERMINAL else "ended"
        raise AmlTestFailure(
            f"aml_run_job: job '{name}' {ended} {final.status}"
            + (f" within {timeout:g} s" if final.status not in TERMINAL else "")
            + f".\n{shown}\nFix the job's command or code (the log above says why), then run the test again."
        )
    if problem:
        raise AmlTestFailure(
            f"aml_run_job: job '{name}' completed, but {problem}. Fix: pass download=False to skip the download."
        )
    final.metrics, final.params = _tracking(ws, name)
    final.outputs_dir = folder
    return final


def _cancel_if_running(ws: ScopedWorkspace, name: str) -> None:
    """Teardown of an interrupted wait: a job still running is canceled (on Azure it holds compute)."""
    if ws.client.jobs.get(name).status not in TERMINAL:
        ws.wait(ws.client.jobs.begin_cancel(name))
