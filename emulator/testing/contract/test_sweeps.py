"""Sweep jobs: a grid over two values, its trials as child jobs, the best trial in the sweep's properties."""

from __future__ import annotations

from azure.ai.ml import command
from azure.ai.ml.sweep import Choice

from emulator.testing.contract import CURATED


def test_grid_sweep_with_two_trials_and_the_best_one(ml_client):
    trial = command(
        command="python -c 'import mlflow; mlflow.log_metric(\"acc\", ${{inputs.c}})'",
        inputs={"c": 0.5},
        environment=CURATED,
        experiment_name="contract-sweep",
    )
    sweep = trial(c=Choice([0.1, 0.2])).sweep(sampling_algorithm="grid", primary_metric="acc", goal="maximize")
    sweep.set_limits(max_total_trials=2, max_concurrent_trials=2)
    job = ml_client.jobs.create_or_update(sweep)
    assert job.type == "sweep" and job.name
    ml_client.jobs.stream(job.name)

    done = ml_client.jobs.get(job.name)
    assert done.status == "Completed" and done.type == "sweep"
    trials = list(ml_client.jobs.list(parent_job_name=job.name))
    assert len(trials) == 2 and {t.status for t in trials} == {"Completed"}
    best = done.properties["best_child_run_id"]
    assert best in [t.name for t in trials]

    from mlflow import MlflowClient

    tracking = MlflowClient(tracking_uri=ml_client.workspaces.get().mlflow_tracking_uri)
    assert tracking.get_run(best).data.metrics["acc"] == 0.2  # maximize: the trial with c = 0.2
    assert sorted(tracking.get_run(t.name).data.metrics["acc"] for t in trials) == [0.1, 0.2]
