"""AutoML jobs end to end: real scikit-learn trials as child jobs on a compute cluster, via the SDK and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from azure.ai.ml import Input, automl
from azure.ai.ml.entities import AmlCompute, ComputeInstance, ManagedOnlineDeployment, ManagedOnlineEndpoint, Model

from emulator.errors import ValidationError
from tests.conftest import SAMPLES

IRIS = SAMPLES / "iris"
MLTABLE = IRIS / "iris-mltable"


def cluster(ml_client, name="cpu-cluster"):
    return ml_client.compute.begin_create_or_update(
        AmlCompute(name=name, size="Standard_DS3_v2", min_instances=0, max_instances=2)
    ).result()


def classification(compute="cpu-cluster", **kwargs):
    job = automl.classification(
        compute=compute,
        experiment_name="iris-automl",
        training_data=Input(type="mltable", path=str(MLTABLE)),
        target_column_name="species",
        primary_metric="accuracy",
        n_cross_validations=3,
        enable_model_explainability=False,
        **kwargs,
    )
    job.set_limits(max_trials=3, max_concurrent_trials=2, timeout_minutes=10)
    return job


def test_iris_classification_on_a_cluster_picks_a_servable_best_model(ml_client, store):
    cluster(ml_client)
    job = classification()
    job.set_training(
        enable_onnx_compatible_models=True,
        allowed_training_algorithms=["LogisticRegression", "RandomForest", "KNN", "DecisionTree"],
        blocked_training_algorithms=["DecisionTree"],
    )
    submitted = ml_client.jobs.create_or_update(job)
    assert type(submitted).__name__ == "ClassificationJob"
    ml_client.jobs.stream(submitted.name)

    done = ml_client.jobs.get(submitted.name)
    assert done.status == "Completed" and type(done).__name__ == "ClassificationJob"
    best = done.properties["best_child_run_id"]
    trials = sorted(ml_client.jobs.list(parent_job_name=submitted.name), key=lambda j: j.name)
    assert [t.name for t in trials] == [f"{submitted.name}_{i}" for i in range(3)]
    assert all(t.status == "Completed" and t.compute == "cpu-cluster" for t in trials)
    assert sorted(t.properties["run_algorithm"] for t in trials) == ["KNN", "LogisticRegression", "RandomForest"]
    assert best in {t.name for t in trials}
    assert done.properties["run_algorithm"] == ml_client.jobs.get(best).properties["run_algorithm"]
    assert 0.85 < float(done.properties["score"]) <= 1.0

    from emulator.tracking import filestore

    logged = {t.name: filestore.read_run(store.mlflow_run_dir("iris-automl", t.name))["metrics"] for t in trials}
    assert {
        "accuracy",
        "AUC_weighted",
        "norm_macro_recall",
        "precision_score_weighted",
        "average_precision_score_weighted",
    } <= set(logged[best])
    assert logged[best]["accuracy"] == max(m["accuracy"] for m in logged.values())
    assert float(done.properties["score"]) == pytest.approx(logged[best]["accuracy"])
    tags = filestore.read_run(store.mlflow_run_dir("iris-automl", submitted.name))["tags"]
    assert tags["automl_best_child_run_id"] == best  # where Azure's samples find the best trial with MLflow
    ended = dict(zip(tags["iteration_000"].split(";"), tags["score_000"].split(";")))
    assert sorted(ended) == ["0", "1", "2"] and float(ended[best.rsplit("_", 1)[1]]) == logged[best]["accuracy"]
    for trial in trials:  # every trial, not only the best, has its MLflow model, as on Azure
        assert (store.job_dir(trial.name) / "artifacts" / "outputs" / "mlflow-model" / "MLmodel").is_file()

    model = ml_client.models.create_or_update(
        Model(name="iris-automl", path=f"azureml://jobs/{best}/outputs/artifacts/paths/outputs/", type="custom_model")
    )
    files = sorted(p.name for p in Path(model.path).iterdir())
    assert {"model.onnx", "model.pkl", "model.json"} <= set(files)

    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="automl-ep")).result()
    ml_client.online_deployments.begin_create_or_update(
        ManagedOnlineDeployment(name="blue", endpoint_name="automl-ep", model=model, instance_count=1)
    ).result()
    answer = ml_client.online_endpoints.invoke(
        endpoint_name="automl-ep", deployment_name="blue", request_file=str(IRIS / "sample-request.json")
    )
    assert json.loads(answer) == [0, 1, 2]

    import onnxruntime as ort

    session = ort.InferenceSession(str(Path(model.path) / "model.onnx"), providers=["CPUExecutionProvider"])
    label, _ = session.run(None, {"input": np.array([[5.1, 3.5, 1.4, 0.2], [6.2, 3.4, 5.4, 2.3]], np.float32)})
    assert label.tolist() == [0, 2]

    # as Azure's AutoML docs deploy the best model: its MLflow folder, no scoring script, no environment (the
    # environment comes from the model's conda.yaml, which pins what is installed here)
    mlflow_model = ml_client.models.create_or_update(
        Model(
            name="iris-automl-mlflow",
            path=f"azureml://jobs/{best}/outputs/artifacts/outputs/mlflow-model/",
            type="mlflow_model",
        )
    )
    requirements = (Path(mlflow_model.path) / "requirements.txt").read_text()
    assert "mlflow-skinny==" in requirements and "mlflow==" not in requirements
    ml_client.online_deployments.begin_create_or_update(
        ManagedOnlineDeployment(name="green", endpoint_name="automl-ep", model=mlflow_model, instance_count=1)
    ).result()
    columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    body = {"input_data": {"columns": columns, "index": [0, 1], "data": [[5.1, 3.5, 1.4, 0.2], [6.2, 3.4, 5.4, 2.3]]}}
    request = Path(store.root) / "mlflow-request.json"
    request.write_text(json.dumps(body))
    answer = ml_client.online_endpoints.invoke(
        endpoint_name="automl-ep", deployment_name="green", request_file=str(request)
    )
    assert json.loads(answer) == [0, 2]


def test_automl_needs_a_compute_cluster(ml_client, store):
    ml_client.compute.begin_create_or_update(ComputeInstance(name="dev-box", size="Standard_DS3_v2")).result()
    with pytest.raises(ValidationError, match="needs a compute cluster .*'dev-box' is a compute instance"):
        ml_client.jobs.create_or_update(classification(compute="dev-box"))
    with pytest.raises(ValidationError, match="needs a compute cluster.*has no compute"):
        ml_client.jobs.create_or_update(classification(compute=None))
    assert store.list_jobs() == []


def test_regression_with_validation_data_minimises_its_metric(ml_client, store):
    cluster(ml_client)
    job = automl.regression(
        compute="cpu-cluster",
        experiment_name="iris-automl",
        training_data=Input(type="mltable", path=str(MLTABLE)),
        validation_data=Input(type="uri_file", path=str(MLTABLE / "iris.csv")),
        target_column_name="petal_width",
        primary_metric="normalized_root_mean_squared_error",
    )
    job.set_limits(max_trials=2, max_concurrent_trials=2)
    job.set_training(allowed_training_algorithms=["ElasticNet", "GradientBoosting"])
    done = ml_client.jobs.get(ml_client.jobs.create_or_update(job).name)
    ml_client.jobs.stream(done.name)
    done = ml_client.jobs.get(done.name)
    assert done.status == "Completed" and type(done).__name__ == "RegressionJob"
    assert done.properties["run_algorithm"] == "GradientBoosting"  # fits the training rows it is scored on best
    assert float(done.properties["score"]) < 0.1  # normalized RMSE: minimised
    from emulator.tracking import filestore

    tags = filestore.read_run(store.mlflow_run_dir("iris-automl", done.name))["tags"]
    assert tags["automl_best_child_run_id"] == done.properties["best_child_run_id"]
    assert min(float(s) for s in tags["score_000"].split(";")) == float(done.properties["score"])


def test_trials_that_all_fail_fail_the_job_with_the_first_reason(ml_client, store, tmp_path):
    cluster(ml_client)
    (tmp_path / "pets.csv").write_text("colour,weight,kind\n" + "red,3.5,cat\nblue,20.1,dog\n" * 10)
    job = automl.classification(
        compute="cpu-cluster",
        experiment_name="pets",
        training_data=Input(type="uri_file", path=str(tmp_path / "pets.csv")),
        target_column_name="kind",
    )
    job.set_limits(max_trials=2, max_concurrent_trials=2)
    job.set_featurization(mode="off")  # refuses the text column instead of one-hot encoding it
    name = ml_client.jobs.create_or_update(job).name
    assert ml_client.jobs.get(name).featurization.mode == "off"
    with pytest.raises(Exception, match="ended Failed: No trial produced the primary metric"):
        ml_client.jobs.stream(name)
    record = store.get_job(name)
    assert record["status"] == "Failed"
    assert f"No trial produced the primary metric accuracy. The first, {name}_0 (LogisticRegression)" in record["error"]
    trial_log = (store.job_dir(f"{name}_0") / "artifacts" / "user_logs" / "std_log.txt").read_text()
    assert "colour are not numeric; with featurization mode off" in trial_log
    from emulator.tracking import filestore

    assert not {"automl_best_child_run_id", "iteration_000"} & set(
        filestore.read_run(store.mlflow_run_dir("pets", name))["tags"]
    )  # no trial ended with the metric: no best trial to name


def test_exit_score_starts_no_more_trials(ml_client, store):
    cluster(ml_client)
    job = classification()
    job.set_limits(max_trials=5, max_concurrent_trials=1, exit_score=0.5)
    name = ml_client.jobs.create_or_update(job).name
    ml_client.jobs.stream(name)
    done = ml_client.jobs.get(name)
    assert done.status == "Completed" and done.properties["total_trials"] == "1"
    assert done.properties["stopped_because"] == f"trial {name}_0 reached limits.exit_score (0.5)"


def test_cancel_stops_the_trials(ml_client, store):
    from emulator.jobs import lifecycle

    cluster(ml_client)
    job = classification()
    job.set_limits(max_trials=6, max_concurrent_trials=2)
    name = ml_client.jobs.create_or_update(job).name
    lifecycle.cancel(store, name)
    done = lifecycle.wait(store, name, timeout=60)
    assert done["status"] == "Canceled"
    for trial in store.list_jobs(name):
        assert lifecycle.wait(store, trial["name"], timeout=60)["status"] in ("Canceled", "Completed")


def test_cli_yaml_run(cli, tmp_path):
    cli.run("compute", "create", "--name", "cpu-cluster", "--type", "amlcompute", "--max-instances", "2")
    job = cli.json(
        "job", "create", "--file", str(IRIS / "automl-classification.yml"), "--stream", "--set", "limits.max_trials=3"
    )
    assert job["type"] == "automl" and job["task"] == "classification" and job["status"] == "Completed"
    assert job["primary_metric"] == "accuracy" and job["limits"]["max_trials"] == 3
    assert job["best_child_run_id"] == job["properties"]["best_child_run_id"]
    assert len(job["trials"]) == 3 and all(t["status"] == "Completed" for t in job["trials"])
    assert job["metrics"]["accuracy"] == pytest.approx(float(job["properties"]["score"]))
    children = cli.json("job", "list", "--parent-job-name", job["name"])
    assert sorted(c["name"] for c in children) == [f"{job['name']}_{i}" for i in range(3)]

    refused = cli.run(
        "job",
        "create",
        "--file",
        str(IRIS / "automl-classification.yml"),
        "--set",
        "primary_metric=r2_score",
        check=False,
    )
    assert refused.returncode != 0 and "primary_metric" in refused.stderr  # azure-ai-ml's own schema check
    assert len(cli.json("job", "list")) == 1  # the refused job left nothing behind


def test_early_termination_stops_after_20_trials_without_improvement(ml_client, store, tmp_path):
    rows = [f"{x},{x % 7},{'low' if x < 100 else 'high'}" for x in [*range(20), *range(100, 120)]]
    (tmp_path / "separable.csv").write_text("x,noise,label\n" + "\n".join(rows) + "\n")
    cluster(ml_client)
    job = automl.classification(
        compute="cpu-cluster",
        experiment_name="stall",
        training_data=Input(type="uri_file", path=str(tmp_path / "separable.csv")),
        target_column_name="label",
        primary_metric="accuracy",
        n_cross_validations=2,
    )
    job.set_limits(max_trials=40, max_concurrent_trials=2)  # enable_early_termination: Azure's default, on
    name = ml_client.jobs.create_or_update(job).name
    ml_client.jobs.stream(name)
    done = ml_client.jobs.get(name)
    assert done.status == "Completed" and done.limits.enable_early_termination is True
    # every model separates the classes: the first trial's 1.0 is never beaten, so the 21st to end stops it
    assert done.properties["stopped_because"] == (
        "early termination: accuracy did not improve over the last 20 trials (limits.enable_early_termination)"
    )
    assert done.properties["total_trials"] in ("21", "22")  # the one still running when the 21st ended finishes
    assert float(done.properties["score"]) == 1.0
    trials = store.list_jobs(name)
    algorithms = {t["spec"]["properties"]["run_algorithm"] for t in trials}
    assert len(algorithms) == 10  # every classifier, then settings sampled from their search spaces


def test_featurization_encodes_a_categorical_column_imputes_gaps_and_exports_a_multi_input_onnx(
    ml_client, store, tmp_path
):
    rng = np.random.default_rng(1)
    colour = rng.choice(["red", "green", "blue"], 60)
    weight = [("" if i % 6 == 0 else f"{w:.2f}") for i, w in enumerate(rng.normal(10, 3, 60))]  # gaps, no signal
    rows = [f"pet-{i},{c},{w},{'cat' if c == 'red' else 'dog'}" for i, (c, w) in enumerate(zip(colour, weight))]
    (tmp_path / "pets.csv").write_text("id,colour,weight,kind\n" + "\n".join(rows) + "\n")
    cluster(ml_client)
    job = automl.classification(
        compute="cpu-cluster",
        experiment_name="pets",
        training_data=Input(type="uri_file", path=str(tmp_path / "pets.csv")),
        target_column_name="kind",
        primary_metric="accuracy",
        n_cross_validations=3,
    )
    job.set_limits(max_trials=2, max_concurrent_trials=2)
    job.set_training(enable_onnx_compatible_models=True)
    name = ml_client.jobs.create_or_update(job).name
    ml_client.jobs.stream(name)
    done = ml_client.jobs.get(name)
    assert done.status == "Completed" and float(done.properties["score"]) > 0.8

    outputs = store.job_dir(done.properties["best_child_run_id"]) / "artifacts" / "outputs"
    summary = {s["RawFeatureName"]: s for s in json.loads((outputs / "featurization_summary.json").read_text())}
    assert (summary["id"]["TypeDetected"], summary["id"]["Dropped"]) == ("Hashes", "Yes")
    assert summary["colour"]["TypeDetected"] == "Categorical" and summary["colour"]["EngineeredFeatureCount"] == 3
    assert summary["weight"]["Transformations"][0] == "SimpleImputer(mean)"
    log = (store.job_dir(done.properties["best_child_run_id"]) / "artifacts" / "user_logs" / "std_log.txt").read_text()
    assert "colour: Categorical, SimpleImputer(most_frequent) + OneHotEncoder" in log

    from emulator.serving.model_inputs import feeds_from_body
    from emulator.serving.onnx_scorer import OnnxScorer

    scorer = OnnxScorer(str(outputs / "model.onnx"), max_rows=100)  # the built-in scorer's own code path
    assert [i.name for i in scorer.inputs] == ["colour", "weight"]
    body = {"input_data": {"columns": ["colour", "weight"], "data": [["red", 9.0], ["blue", 12.5], ["green", 8.0]]}}
    assert scorer.predict(feeds_from_body(body, scorer.inputs, 100)) == ["cat", "dog", "dog"]
