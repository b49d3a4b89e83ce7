"""Models: register versions from a job's outputs (``azureml://jobs/...`` and ``runs:/...``), list, get, download."""

from __future__ import annotations

import json

import pytest
from azure.ai.ml import command
from azure.ai.ml.entities import Command, CommandJob, Model
from azure.core.exceptions import ResourceNotFoundError

from emulator.testing.contract import CURATED, IRIS


def test_train_register_and_track(ml_client, tmp_path, unique_name):
    job = ml_client.jobs.create_or_update(
        command(
            code=str(IRIS / "src"),
            command="python train.py --C ${{inputs.C}}",
            inputs={"C": 0.5},
            environment=CURATED,
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

    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri=ml_client.workspaces.get().mlflow_tracking_uri).get_run(job.name)
    assert run.data.params["C"] == "0.5" and 0.8 < run.data.metrics["accuracy"] <= 1.0
    assert run.info.status == "FINISHED"

    name = unique_name("model", "iris")
    model = ml_client.models.create_or_update(
        Model(name=name, path=f"azureml://jobs/{job.name}/outputs/artifacts/paths/outputs/", type="custom_model")
    )
    assert model.version == "1"
    again = ml_client.models.create_or_update(Model(name=name, path=f"runs:/{job.name}/outputs/model.onnx"))
    assert again.version == "2"
    assert [m.version for m in ml_client.models.list(name=name)] == ["2", "1"]
    assert ml_client.models.get(name, version="1").path == model.path
    ml_client.models.download(name, "1", download_path=str(tmp_path))
    onnx_path = tmp_path / name / "outputs" / "model.onnx"

    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rows = json.loads((IRIS / "sample-request.json").read_text())["data"]
    labels = session.run(None, {"input": np.asarray(rows, dtype=np.float32)})[0]
    assert list(labels) == [0, 1, 2]


def test_unknown_model_is_not_found(ml_client):
    with pytest.raises(ResourceNotFoundError):
        ml_client.models.get("no-such-model", version="1")
