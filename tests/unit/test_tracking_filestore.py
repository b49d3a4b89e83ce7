"""The hand-written MLflow file store must be what real MLflow reads and writes."""

from __future__ import annotations

import pytest

from emulator.tracking import filestore

EXPERIMENT_ID = "7"
RUN_ID = "sincere_lemon_8xq2r3kfpz"


@pytest.fixture
def mlruns(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "mlruns"


@pytest.fixture
def run(mlruns, tmp_path):
    """(run folder, artifact folder) of a RUNNING run created by amlemu."""
    filestore.ensure_experiment(mlruns, EXPERIMENT_ID, "train-exp")
    artifacts = tmp_path / "job" / "artifacts"
    run_dir = filestore.create_run(
        mlruns,
        EXPERIMENT_ID,
        RUN_ID,
        run_name="sincere_lemon",
        artifact_dir=artifacts,
        user="alice",
        tags={"team": "ml"},
    )
    return run_dir, artifacts


@pytest.fixture
def client(mlruns):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=mlruns.as_uri())


def test_mlflow_reads_the_run(run, client):
    run_dir, artifacts = run
    got = client.get_run(RUN_ID)
    assert got.info.status == "RUNNING"
    assert got.info.run_name == "sincere_lemon"
    assert got.info.experiment_id == EXPERIMENT_ID
    assert got.info.artifact_uri == artifacts.as_uri()
    assert got.data.tags["team"] == "ml"
    assert got.data.tags["mlflow.user"] == "alice"
    assert got.data.tags["mlflow.runName"] == "sincere_lemon"
    assert client.get_experiment(EXPERIMENT_ID).name == "train-exp"


def test_read_run_sees_what_mlflow_logged(run, client):
    run_dir, _ = run
    client.log_metric(RUN_ID, "accuracy", 0.91, step=0)
    client.log_param(RUN_ID, "C", "0.8")
    result = filestore.read_run(run_dir)
    assert result["metrics"] == {"accuracy": 0.91}
    assert result["params"] == {"C": "0.8"}
    assert result["tags"]["team"] == "ml"
    assert result["status"] == "RUNNING"


def test_end_run_is_seen_by_mlflow(run, client):
    run_dir, _ = run
    filestore.end_run(run_dir, "FINISHED")
    got = client.get_run(RUN_ID)
    assert got.info.status == "FINISHED"
    assert got.info.end_time is not None and got.info.end_time >= got.info.start_time
    assert filestore.read_run(run_dir)["status"] == "FINISHED"


def test_start_run_resumes_the_job_run(run, client, mlruns, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlruns.as_uri())
    monkeypatch.setenv("MLFLOW_RUN_ID", RUN_ID)
    with mlflow.start_run() as active:
        assert active.info.run_id == RUN_ID
        mlflow.log_metric("loss", 0.25)
    runs = client.search_runs([EXPERIMENT_ID, "0"])
    assert [r.info.run_id for r in runs] == [RUN_ID]
    assert filestore.read_run(run[0])["metrics"] == {"loss": 0.25}


def test_metric_history_returns_every_step(run, client):
    run_dir, _ = run
    for step, value in enumerate([0.5, 0.4, 0.3]):
        client.log_metric(RUN_ID, "loss", value, step=step)
    history = filestore.metric_history(run_dir, "loss")
    assert [(value, step) for _, value, step in history] == [(0.5, 0), (0.4, 1), (0.3, 2)]
    assert [m.value for m in client.get_metric_history(RUN_ID, "loss")] == [0.5, 0.4, 0.3]
    assert filestore.metric_history(run_dir, "missing") == []


def test_read_run_latest_metric_matches_mlflow(run, client):
    run_dir, _ = run
    client.log_metric(RUN_ID, "accuracy", 0.9, step=5)
    client.log_metric(RUN_ID, "accuracy", 0.1, step=2)
    assert client.get_run(RUN_ID).data.metrics["accuracy"] == 0.9
    assert filestore.read_run(run_dir)["metrics"]["accuracy"] == 0.9
