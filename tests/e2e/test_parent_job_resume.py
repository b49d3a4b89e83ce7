"""A lost AutoML orchestrator is restarted by the next read and the job resumes (sweeps: test_sweep_jobs.py)."""

from __future__ import annotations

import os
import signal

from azure.ai.ml import Input, automl
from azure.ai.ml.entities import AmlCompute

from emulator.jobs import lifecycle
from emulator.runtime import proctree
from tests.conftest import SAMPLES, processes_mentioning, wait_for


def test_a_killed_automl_orchestrator_is_restarted_and_the_job_resumes(ml_client, store):
    ml_client.compute.begin_create_or_update(
        AmlCompute(name="cpu-cluster", size="Standard_DS3_v2", min_instances=0, max_instances=2)
    ).result()
    job = automl.classification(
        compute="cpu-cluster",
        experiment_name="resume",
        training_data=Input(type="mltable", path=str(SAMPLES / "iris" / "iris-mltable")),
        target_column_name="species",
        primary_metric="accuracy",
        n_cross_validations=3,
    )
    job.set_limits(max_trials=4, max_concurrent_trials=2)
    name = ml_client.jobs.create_or_update(job).name
    # both trials started (a trial the orchestrator recorded but had not started yet would count Canceled)
    wait_for(lambda: sum(1 for t in store.list_jobs(name) if t["pid"]) >= 2, "two trials to start")
    before = store.get_job(name)
    os.kill(before["pid"], signal.SIGKILL)  # as a machine restart would, for the orchestrator
    wait_for(lambda: not proctree.is_alive(before["pid"], before["pid_start"]), "the orchestrator to die")
    resumed = lifecycle.get(store, name)  # the read restarts it
    assert resumed["status"] == "Running" and resumed["pid"] != before["pid"]
    ml_client.jobs.stream(name)
    done = ml_client.jobs.get(name)
    assert done.status == "Completed" and done.properties["total_trials"] == "4"
    trials = store.list_jobs(name)
    assert sorted(t["name"] for t in trials) == [f"{name}_{i}" for i in range(4)]
    assert all(t["status"] == "Completed" for t in trials)
    assert done.properties["best_child_run_id"] in {t["name"] for t in trials}
    log = (store.job_dir(name) / "artifacts" / "user_logs" / "std_log.txt").read_text()
    assert "orchestrator was lost and restarted: resuming with" in log
    wait_for(lambda: not processes_mentioning(str(store.root)), "every process to end")
