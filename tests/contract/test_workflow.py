"""The experiment-to-model workflow through the azure-ai-ml API, the same on every backend."""

from __future__ import annotations

import json
import time

import pytest
from azure.ai.ml import Input, Output, command, load_job
from azure.ai.ml.entities import BuildContext, Command, CommandJob, Environment, Model
from azure.ai.ml.exceptions import JobException
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.core.polling import LROPoller

from backends.base import Backend
from tests.conftest import SAMPLES


def test_client_shape(ml_client):
    assert isinstance(ml_client, Backend)
    for group in ("jobs", "models", "environments", "compute", "online_endpoints", "online_deployments"):
        assert getattr(ml_client, group) is not None


def test_train_register_and_track(ml_client, tmp_path):
    job = ml_client.jobs.create_or_update(
        command(
            code=str(SAMPLES / "iris" / "src"),
            command="python train.py --C ${{inputs.C}}",
            inputs={"C": 0.5},
            environment="AzureML-sklearn-1.5@latest",
            experiment_name="iris",
            tags={"purpose": "contract"},
        )
    )
    # Azure answers a command job as the SDK's Command node (Job._from_rest_object), the local backend as a CommandJob
    assert isinstance(job, CommandJob | Command) and job.type == "command" and job.name
    assert job.status in ("Queued", "Preparing", "Running", "Completed")
    ml_client.jobs.stream(job.name)
    done = ml_client.jobs.get(job.name)
    assert done.status == "Completed" and done.experiment_name == "iris" and done.tags == {"purpose": "contract"}
    assert done.creation_context.created_at is not None and done.id.endswith(f"/jobs/{job.name}")

    import mlflow

    mlflow.set_tracking_uri(ml_client.workspaces.get().mlflow_tracking_uri)
    run = mlflow.get_run(job.name)
    assert run.data.params["C"] == "0.5" and 0.8 < run.data.metrics["accuracy"] <= 1.0
    assert run.info.status == "FINISHED"

    model = ml_client.models.create_or_update(
        Model(name="iris", path=f"azureml://jobs/{job.name}/outputs/artifacts/paths/outputs/", type="custom_model")
    )
    assert model.version == "1"
    again = ml_client.models.create_or_update(Model(name="iris", path=f"runs:/{job.name}/outputs/model.onnx"))
    assert again.version == "2"
    assert [m.version for m in ml_client.models.list(name="iris")] == ["2", "1"]
    assert ml_client.models.get("iris", version="1").path == model.path
    ml_client.models.download("iris", "1", download_path=str(tmp_path))
    onnx_path = tmp_path / "iris" / "outputs" / "model.onnx"

    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rows = json.loads((SAMPLES / "iris" / "sample-request.json").read_text())["data"]
    labels = session.run(None, {"input": np.asarray(rows, dtype=np.float32)})[0]
    assert list(labels) == [0, 1, 2]


def test_load_job_yaml_and_outputs(ml_client, tmp_path):
    job = load_job(SAMPLES / "iris" / "job.yml")
    created = ml_client.jobs.create_or_update(job, experiment_name="iris-yaml")
    ml_client.jobs.stream(created.name)
    assert ml_client.jobs.get(created.name).inputs["iris_csv"].path.endswith("iris.csv")
    ml_client.jobs.download(created.name, download_path=str(tmp_path))
    assert (tmp_path / "artifacts" / "outputs" / "model.onnx").exists()
    assert created.name in [j.name for j in ml_client.jobs.list()]


def test_named_output_and_literal_inputs(ml_client, tmp_path):
    data = tmp_path / "in.txt"
    data.write_text("abc")
    job = ml_client.jobs.create_or_update(
        command(
            command="cp ${{inputs.src}} ${{outputs.out}}/copy.txt && echo ${{inputs.flag}} > ${{outputs.out}}/flag.txt",
            inputs={"src": Input(type="uri_file", path=str(data)), "flag": True},
            outputs={"out": Output(type="uri_folder")},
            environment="azureml:AzureML-sklearn-1.5@latest",
        )
    )
    ml_client.jobs.stream(job.name)
    ml_client.jobs.download(job.name, download_path=str(tmp_path / "dl"), output_name="out")
    assert (tmp_path / "dl" / "named-outputs" / "out" / "copy.txt").read_text() == "abc"
    assert (tmp_path / "dl" / "named-outputs" / "out" / "flag.txt").read_text().strip() == "True"


def test_sdk_exception_types(ml_client):
    with pytest.raises(ResourceNotFoundError):
        ml_client.jobs.get("no-such-job-xyz")
    with pytest.raises(ResourceNotFoundError):
        ml_client.models.get("no-such-model", version="1")
    failing = ml_client.jobs.create_or_update(command(command="exit 7", environment="AzureML-sklearn-1.5@latest"))
    with pytest.raises(JobException):
        ml_client.jobs.stream(failing.name)
    assert ml_client.jobs.get(failing.name).status == "Failed"
    named = command(command="echo once", environment="AzureML-sklearn-1.5@latest", name="only-once-job")
    ml_client.jobs.create_or_update(named)
    with pytest.raises(ResourceExistsError):
        ml_client.jobs.create_or_update(
            command(command="echo twice", environment="AzureML-sklearn-1.5@latest", name="only-once-job")
        )


def test_cancel_returns_a_poller(ml_client):
    job = ml_client.jobs.create_or_update(command(command="sleep 60", environment="AzureML-sklearn-1.5@latest"))
    poller = ml_client.jobs.begin_cancel(job.name)
    assert isinstance(poller, LROPoller)
    poller.result()
    deadline = time.monotonic() + 30
    while ml_client.jobs.get(job.name).status not in ("Canceled", "Failed", "Completed"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert ml_client.jobs.get(job.name).status == "Canceled"


def test_environments(ml_client, tmp_path):
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM python:3.11-slim\n")
    env = ml_client.environments.create_or_update(
        Environment(name="ctx-env", build=BuildContext(path=str(tmp_path / "ctx")))
    )
    assert env.version == "1"
    # the local backend keeps the folder; Azure (and the front door) answer the storage URL the SDK uploaded it to
    assert (
        env.build.path == str(tmp_path / "ctx") if ml_client.name == "local" else env.build.path.startswith("https://")
    )
    env2 = ml_client.environments.create_or_update(
        Environment(
            name="ctx-env",
            image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04",
            conda_file={"dependencies": ["python=3.11", {"pip": ["six"]}]},
        )
    )
    assert env2.version == "2" and env2.conda_file["dependencies"][1] == {"pip": ["six"]}
    assert ml_client.environments.get("ctx-env", label="latest").version == "2"
    assert [e.version for e in ml_client.environments.list(name="ctx-env")] == ["2", "1"]


def test_deploy_and_call_an_online_endpoint(ml_client, iris_model):
    """The tutorial's last steps: endpoint, deployment, traffic, invoke, keys, logs, delete."""
    import requests
    from azure.ai.ml.entities import CodeConfiguration, ManagedOnlineDeployment, ManagedOnlineEndpoint

    model = ml_client.models.create_or_update(Model(name="iris-served", path=str(iris_model)))
    endpoint = ManagedOnlineEndpoint(name="contract-ep", auth_mode="key")
    assert isinstance(ml_client.online_endpoints.begin_create_or_update(endpoint), LROPoller)
    try:
        deployment = ManagedOnlineDeployment(
            name="blue",
            endpoint_name="contract-ep",
            model=model,
            instance_count=1,
            environment="azureml:AzureML-sklearn-1.5@latest",
            code_configuration=CodeConfiguration(code=str(SAMPLES / "iris" / "score"), scoring_script="score.py"),
        )
        ml_client.online_deployments.begin_create_or_update(deployment).result()
        endpoint.traffic = {"blue": 100}
        ml_client.online_endpoints.begin_create_or_update(endpoint).result()
        answer = ml_client.online_endpoints.invoke(
            endpoint_name="contract-ep", request_file=str(SAMPLES / "iris" / "sample-request.json")
        )
        assert json.loads(answer) == [0, 1, 2]
        live = ml_client.online_endpoints.get("contract-ep")
        assert live.traffic == {"blue": 100} and live.scoring_uri
        key = ml_client.online_endpoints.get_keys("contract-ep").primary_key
        rows = json.loads((SAMPLES / "iris" / "sample-request.json").read_text())
        response = requests.post(live.scoring_uri, json=rows, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        assert response.status_code == 200 and response.json() == [0, 1, 2]
        assert (
            ml_client.online_deployments.get(name="blue", endpoint_name="contract-ep").provisioning_state == "Succeeded"
        )
        assert isinstance(
            ml_client.online_deployments.get_logs(name="blue", endpoint_name="contract-ep", lines=20), str
        )
    finally:
        ml_client.online_endpoints.begin_delete(name="contract-ep").result()
    with pytest.raises(ResourceNotFoundError):
        ml_client.online_endpoints.get("contract-ep")
