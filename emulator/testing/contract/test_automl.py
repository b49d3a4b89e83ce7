"""AutoML jobs: a classification on the iris MLTable, its trials as child jobs, the best one's MLflow model registered.

AutoML needs a compute cluster (Azure refuses a job without one): the trials run on one the test makes.
"""

from __future__ import annotations

import pytest
from azure.ai.ml import Input, automl
from azure.ai.ml.automl import ClassificationPrimaryMetrics
from azure.ai.ml.entities import Model

from emulator.testing.contract import IRIS

#: the iris data as an MLTable folder (``MLTable`` and ``iris.csv``), as AutoML takes its training data
IRIS_MLTABLE = IRIS.parent / "iris-mltable"


def test_classification_with_two_trials_and_the_best_model_registered(ml_client, cluster, tmp_path, unique_name):
    job = automl.classification(
        compute=cluster,
        experiment_name="contract-automl",
        training_data=Input(type="mltable", path=str(IRIS_MLTABLE)),
        target_column_name="species",
        primary_metric="accuracy",
        n_cross_validations=2,
        enable_model_explainability=False,
    )
    job.set_limits(max_trials=2, max_concurrent_trials=2, timeout_minutes=5)
    job.set_training(allowed_training_algorithms=["LogisticRegression", "KNN"])
    submitted = ml_client.jobs.create_or_update(job)
    assert type(submitted).__name__ == "ClassificationJob" and submitted.name
    ml_client.jobs.stream(submitted.name)

    done = ml_client.jobs.get(submitted.name)
    assert done.status == "Completed" and type(done).__name__ == "ClassificationJob"
    assert done.primary_metric == ClassificationPrimaryMetrics.ACCURACY and done.n_cross_validations == 2
    assert (done.limits.max_trials, done.limits.max_concurrent_trials) == (2, 2)
    assert sorted(str(a.value) for a in done.training.allowed_training_algorithms) == ["KNN", "LogisticRegression"]
    trials = list(ml_client.jobs.list(parent_job_name=submitted.name))
    assert len(trials) == 2 and {t.status for t in trials} == {"Completed"}
    assert {t.compute for t in trials} == {cluster} and {t.experiment_name for t in trials} == {"contract-automl"}
    assert sorted(t.properties["run_algorithm"] for t in trials) == ["KNN", "LogisticRegression"]
    algorithms = {t.name: t.properties["run_algorithm"] for t in trials}

    # the best trial, found with MLflow as Azure's AutoML samples find it: the parent run's tag
    import mlflow.pyfunc
    from mlflow import MlflowClient

    tracking = MlflowClient(tracking_uri=ml_client.workspaces.get().mlflow_tracking_uri)
    parent_run = tracking.get_run(submitted.name)
    best = parent_run.data.tags["automl_best_child_run_id"]
    best_run = tracking.get_run(best)
    accuracies = {t.name: tracking.get_run(t.name).data.metrics["accuracy"] for t in trials}
    assert best_run.info.run_id == best and accuracies[best] == max(accuracies.values())
    assert 0.85 < accuracies[best] <= 1.0 and best_run.data.tags["mlflow.parentRunId"] == submitted.name
    assert parent_run.data.tags["run_algorithm_000"].split(";") == [
        algorithms[f"{submitted.name}_{i}"] for i in parent_run.data.tags["iteration_000"].split(";")
    ]
    assert done.properties["best_child_run_id"] == best and done.properties["run_algorithm"] == algorithms[best]
    assert float(done.properties["score"]) == pytest.approx(accuracies[best])

    # every trial has an MLflow model folder; the best one's is registered as an mlflow_model and loads with pyfunc
    name = unique_name("model", "iris-automl")
    model = ml_client.models.create_or_update(
        Model(
            name=name,
            path=f"azureml://jobs/{best_run.info.run_id}/outputs/artifacts/paths/outputs/mlflow-model/",
            type="mlflow_model",
        )
    )
    assert model.version == "1" and model.type == "mlflow_model"
    ml_client.models.download(name, "1", download_path=str(tmp_path))
    folder = tmp_path / name / "mlflow-model"
    import yaml

    assert "sklearn" in yaml.safe_load((folder / "MLmodel").read_text())["flavors"]
    assert {"MLmodel", "model.pkl", "conda.yaml", "python_env.yaml", "requirements.txt"} <= {
        p.name for p in folder.iterdir()
    }
    import pandas as pd

    rows = pd.DataFrame(
        [[5.1, 3.5, 1.4, 0.2], [6.7, 3.1, 4.7, 1.5]],
        columns=["sepal_length", "sepal_width", "petal_length", "petal_width"],
    )
    labels = mlflow.pyfunc.load_model(str(folder)).predict(rows)
    assert len(labels) == 2 and set(labels.tolist()) <= {0, 1, 2}
