"""The workspace's MLflow tracking store, written and read without importing MLflow.

Azure ML hands every job ``MLFLOW_TRACKING_URI`` and ``MLFLOW_RUN_ID`` (the run id
is the job name). amlemu does the same over MLflow's file store, whose on-disk
layout is frozen (MLflow keeps it in maintenance mode), so the job supervisor
can create the run in a few milliseconds instead of paying MLflow's ~1 s import.
Tests check that real MLflow reads what this module writes, and the reverse.

The run's artifact location is the job's ``artifacts`` folder, so
``mlflow.log_artifact`` lands beside ``outputs/`` and ``user_logs/``, as in Azure.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import yaml

# mlflow.entities.RunStatus
RUN_STATUS = {"RUNNING": 1, "SCHEDULED": 2, "FINISHED": 3, "FAILED": 4, "KILLED": 5}
_STATUS_NAME = {v: k for k, v in RUN_STATUS.items()}
SOURCE_TYPE_JOB = 2

#: Set for every job so MLflow accepts the file store.
TRACKING_ENV = {"MLFLOW_ALLOW_FILE_STORE": "true"}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _write_yaml(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(yaml.safe_dump(data, default_flow_style=False))
    os.replace(tmp, path)


def ensure_experiment(mlruns: Path, experiment_id: int | str, name: str) -> Path:
    """Create the experiment folder (and MLflow's Default experiment) if missing."""
    for exp_id, exp_name in (("0", "Default"), (str(experiment_id), name)):
        folder = mlruns / exp_id
        meta = folder / "meta.yaml"
        if meta.exists():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        now = _now_ms()
        _write_yaml(
            meta,
            {
                "artifact_location": folder.as_uri(),
                "creation_time": now,
                "effective_trace_archival_retention": None,
                "experiment_id": exp_id,
                "last_update_time": now,
                "lifecycle_stage": "active",
                "name": exp_name,
                "trace_location": None,
                "workspace": "default",
            },
        )
    (mlruns / ".trash").mkdir(exist_ok=True)
    return mlruns / str(experiment_id)


def create_run(
    mlruns: Path,
    experiment_id: int | str,
    run_id: str,
    *,
    run_name: str,
    artifact_dir: Path,
    user: str,
    tags: dict[str, str] | None = None,
) -> Path:
    """Create run ``run_id`` in status RUNNING with its artifacts in ``artifact_dir``."""
    run_dir = mlruns / str(experiment_id) / run_id
    for sub in ("metrics", "params", "tags", "artifacts"):  # MLflow checks all exist
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    artifact_dir.mkdir(parents=True, exist_ok=True)
    all_tags = {
        "mlflow.runName": run_name,
        "mlflow.user": user,
        "mlflow.source.type": "JOB",
        "mlflow.source.name": "amlemu",
    }
    all_tags.update(tags or {})
    for key, value in all_tags.items():
        (run_dir / "tags" / key).write_text(str(value))
    _write_yaml(
        run_dir / "meta.yaml",
        {
            "artifact_uri": artifact_dir.as_uri(),
            "end_time": None,
            "entry_point_name": "",
            "experiment_id": str(experiment_id),
            "lifecycle_stage": "active",
            "run_id": run_id,
            "run_name": run_name,
            "source_name": "",
            "source_type": SOURCE_TYPE_JOB,
            "source_version": "",
            "start_time": _now_ms(),
            "status": RUN_STATUS["RUNNING"],
            "tags": [],
            "user_id": user,
        },
    )
    return run_dir


def set_tags(run_dir: Path, tags: dict[str, str]) -> None:
    """Set (or overwrite) tags on an existing run, as ``MlflowClient.set_tag`` does: one file a tag."""
    folder = run_dir / "tags"
    if not folder.is_dir():
        raise FileNotFoundError(f"{run_dir} is not an MLflow run (it has no tags folder)")
    for key, value in tags.items():
        # written in place, as MLflow's file store does: a temporary file beside it would be read as a tag
        (folder / key).write_text(str(value))


def end_run(run_dir: Path, status: str) -> None:
    """Mark the run FINISHED, FAILED or KILLED (what the job's status maps to)."""
    meta_path = run_dir / "meta.yaml"
    if not meta_path.exists():
        return
    meta = yaml.safe_load(meta_path.read_text())
    meta["status"] = RUN_STATUS[status]
    meta["end_time"] = _now_ms()
    _write_yaml(meta_path, meta)


def read_run(run_dir: Path) -> dict:
    """Latest metrics, params, tags and status of a run, as plain dicts."""
    result: dict = {"metrics": {}, "params": {}, "tags": {}, "status": None}
    if not run_dir.is_dir():
        return result
    metrics_dir = run_dir / "metrics"
    for path in sorted(metrics_dir.rglob("*")) if metrics_dir.is_dir() else []:
        if path.is_file():
            history = _parse_metric(path.read_text())
            if history:  # MLflow's latest value: highest step, then newest timestamp, then largest value
                ts, value, step = max(history, key=lambda row: (row[2], row[0], row[1]))
                result["metrics"][str(path.relative_to(metrics_dir))] = value
    for kind in ("params", "tags"):
        folder = run_dir / kind
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file():
                result[kind][str(path.relative_to(folder))] = path.read_text()
    meta_path = run_dir / "meta.yaml"
    if meta_path.exists():
        result["status"] = _STATUS_NAME.get(yaml.safe_load(meta_path.read_text()).get("status"))
    return result


def metric_history(run_dir: Path, key: str) -> list[tuple[int, float, int]]:
    """Every (timestamp, value, step) logged for ``key``, oldest first."""
    path = run_dir / "metrics" / key
    return _parse_metric(path.read_text()) if path.is_file() else []


def _parse_metric(text: str) -> list[tuple[int, float, int]]:
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            rows.append((int(parts[0]), float(parts[1]), int(parts[2]) if len(parts) > 2 else 0))
    return rows


def metric_keys(run_dir: Path) -> list[str]:
    """The names of the metrics a run logged, without reading their histories (a chart reads one at a time)."""
    folder = run_dir / "metrics"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def read_params(run_dir: Path) -> dict[str, str]:
    """A run's params alone (:func:`read_run` reads every metric's history too)."""
    folder = run_dir / "params"
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}
