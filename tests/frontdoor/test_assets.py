"""Models and environments through the front door: the real ``MLClient`` against a real ``amlemu serve``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from azure.ai.ml.entities import BuildContext, Environment, Model
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

CONDA = """\
name: sklearn-env
channels: [conda-forge]
dependencies:
  - python=3.11
  - pip
  - pip:
      - scikit-learn
"""


def _in_datastore(front_door, workspace: str, source: Path, folder: str) -> str:
    """``source`` put into the workspace's default datastore as a user's earlier upload; its datastore path."""
    target = front_door.home / "workspaces" / workspace / "datastores" / "workspaceblobstore" / folder
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target / source.name)
    return f"azureml://datastores/workspaceblobstore/paths/{folder}/{source.name}"


def test_model_from_a_datastore_path_numbers_lists_and_gets_versions(sdk, front_door, workspace_name, iris_model):
    sdk.workspaces.get(workspace_name)  # the workspace exists before its datastore folder is written
    path = _in_datastore(front_door, workspace_name, iris_model / "model.onnx", "models/iris")
    first = sdk.models.create_or_update(Model(name="iris", path=path, type="custom_model", tags={"stage": "a"}))
    second = sdk.models.create_or_update(Model(name="iris", path=path, description="again"))
    assert (first.version, second.version) == ("1", "2")
    assert first.path.startswith("azureml://subscriptions/00000000-1111-2222-3333-444444444444/resourcegroups/my-rg/")
    assert first.path.endswith("/datastores/workspaceblobstore/paths/models/iris/model.onnx")
    assert first.tags == {"stage": "a"} and second.description == "again"
    assert sdk.models.get("iris", label="latest").version == "2"
    assert sdk.models.get("iris", version="1").id == first.id
    assert sorted(m.version for m in sdk.models.list(name="iris")) == ["1", "2"]
    (container,) = [m for m in sdk.models.list() if m.name == "iris"]
    assert container.latest_version == "2"
    # an explicit version, then one that exists with other contents
    assert sdk.models.create_or_update(Model(name="iris", version="7", path=path)).version == "7"
    assert sdk.models.create_or_update(Model(name="iris", path=path)).version == "8"
    with pytest.raises(ResourceExistsError, match="already exists"):
        sdk.models.create_or_update(Model(name="iris", version="7", path=path, description="other"))


def test_unknown_model_and_environment_are_not_found(sdk, workspace_name):
    missing = f"Model 'nope' version '1' not found in workspace '{workspace_name}'"
    with pytest.raises(ResourceNotFoundError, match=missing):
        sdk.models.get("nope", version="1")
    with pytest.raises(ResourceNotFoundError, match="Environment 'nope' version '3' not found"):
        sdk.environments.get("nope", version="3")


def test_archive_is_refused_as_not_emulated(sdk, front_door, workspace_name, iris_model):
    sdk.workspaces.get(workspace_name)
    path = _in_datastore(front_door, workspace_name, iris_model / "model.onnx", "m")
    sdk.models.create_or_update(Model(name="kept", path=path))
    with pytest.raises(HttpResponseError, match="not emulated") as err:
        sdk.models.archive("kept", version="1")
    assert err.value.status_code == 501
    sdk.models.restore("kept", version="1")  # never archived: restoring it asks for what it holds


def test_environment_from_image_and_conda_file(sdk, tmp_path):
    conda = tmp_path / "conda.yml"
    conda.write_text(CONDA)
    image = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
    env = sdk.environments.create_or_update(Environment(name="sk", image=image, conda_file=str(conda)))
    assert env.version == "1" and env.image == image
    assert env.conda_file["dependencies"][-1] == {"pip": ["scikit-learn"]}
    # the same definition again is the same version (the SDK puts the latest first); another one is the next
    assert sdk.environments.create_or_update(Environment(name="sk", image=image, conda_file=str(conda))).version == "1"
    other = sdk.environments.create_or_update(Environment(name="sk", image=image, description="no conda"))
    assert other.version == "2" and other.conda_file is None
    got = sdk.environments.get("sk", version="1")
    assert got.image == image and got.conda_file == env.conda_file
    assert sdk.environments.get("sk", label="latest").version == "2"
    assert sorted(e.version for e in sdk.environments.list(name="sk")) == ["1", "2"]
    (container,) = [e for e in sdk.environments.list() if e.name == "sk"]
    assert container.latest_version == "2"


def test_curated_environment_by_its_workspace_name(sdk):
    env = sdk.environments.get("AzureML-sklearn-1.5", label="latest")
    assert env.name == "AzureML-sklearn-1.5" and "sklearn-1.5" in env.description
    assert env.tags.get("Python") == "3.10"
    assert sdk.environments.get("AzureML-sklearn-1.5", version=env.version).name == "AzureML-sklearn-1.5"
    with pytest.raises(Exception, match="AzureML-not-a-curated-one"):
        sdk.environments.get("AzureML-not-a-curated-one", label="latest")


def _job_writing_a_model(front_door, workspace: str, iris_model: Path, tmp_path: Path) -> str:
    """A finished command job in the front door's workspace whose outputs/ hold model.onnx (run by the amlemu CLI
    on the same home: the jobs routes are not what this file tests)."""
    spec = tmp_path / "job.yml"
    spec.write_text(
        "command: mkdir -p outputs && cp ${{inputs.model}} outputs/model.onnx\n"
        f"inputs:\n  model: {{type: uri_file, path: {iris_model / 'model.onnx'}}}\n"
        "environment: {image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest}\n"
    )
    env = {**os.environ, "AMLEMU_HOME": str(front_door.home)}
    env.pop("AMLEMU_BACKEND", None)
    out = subprocess.run(
        [sys.executable, "-m", "emulator.cli.main", "job", "create", "-w", workspace, "-f", str(spec), "--stream"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    job = json.loads(out.stdout[out.stdout.index("{") :])
    assert job["status"] == "Completed", out.stdout
    return job["name"]


def test_model_from_a_job_output(sdk, front_door, workspace_name, iris_model, tmp_path):
    job = _job_writing_a_model(front_door, workspace_name, iris_model, tmp_path)
    folder = sdk.models.create_or_update(
        Model(name="from-job", path=f"azureml://jobs/{job}/outputs/artifacts/paths/outputs/", type="custom_model")
    )
    assert folder.job_name == job
    assert folder.path.endswith(f"/datastores/workspaceartifactstore/paths/ExperimentRun/dcid.{job}/outputs/")
    file = sdk.models.create_or_update(Model(name="from-run", path=f"runs:/{job}/outputs/model.onnx"))
    assert file.path.endswith(f"/paths/ExperimentRun/dcid.{job}/outputs/model.onnx") and file.job_name == job
    with pytest.raises(HttpResponseError, match="has no 'outputs/nothing.onnx'"):
        sdk.models.create_or_update(Model(name="from-run", path=f"runs:/{job}/outputs/nothing.onnx"))
    with pytest.raises(HttpResponseError, match="leaves"):  # a job output's path stays inside the output
        sdk.models.create_or_update(Model(name="from-run", path=f"runs:/{job}/../../../../../frontdoor/ca.key"))
    assert [m.version for m in sdk.models.list(name="from-run")] == ["1"]  # refused before anything was kept


def test_environment_from_a_build_context_in_a_datastore(sdk, front_door, workspace_name, tmp_path):
    sdk.workspaces.get(workspace_name)
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.11-slim\nRUN pip install scikit-learn\n")
    path = _in_datastore(front_door, workspace_name, dockerfile, "contexts/sk")
    context = path.rsplit("/", 1)[0] + "/"
    env = sdk.environments.create_or_update(Environment(name="built", build=BuildContext(path=context)))
    assert env.version == "1" and env.image is None
    assert env.build.path.startswith("https://") and ".blob.amlemu.localhost/azureml-blobstore-" in env.build.path
    assert env.build.path.endswith("/contexts/sk/")
    assert env.build.dockerfile_path == "Dockerfile"
    assert sdk.environments.create_or_update(Environment(name="built", build=BuildContext(path=context))).version == "1"
    with pytest.raises(HttpResponseError, match="has no Dockerfile"):
        empty = context.replace("contexts/sk/", "contexts/")
        sdk.environments.create_or_update(Environment(name="built", build=BuildContext(path=empty)))


def _predicts_iris(model_file: Path) -> None:
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
    labels = session.run(None, {session.get_inputs()[0].name: rows})[0]
    assert [int(x) for x in labels] == [0, 2]


def test_model_from_a_local_file_is_uploaded_and_downloads(sdk, iris_model, tmp_path):
    model = sdk.models.create_or_update(Model(name="iris-local", path=str(iris_model / "model.onnx")))
    assert model.version == "1"
    assert "/datastores/workspaceblobstore/paths/LocalUpload/" in model.path and model.path.endswith("/model.onnx")
    assert sdk.models.create_or_update(Model(name="iris-local", path=str(iris_model / "model.onnx"))).version == "2"
    sdk.models.download("iris-local", "1", download_path=str(tmp_path / "dl"))
    _predicts_iris(tmp_path / "dl" / "iris-local" / "model.onnx")


def test_model_folder_from_a_job_output_downloads(sdk, front_door, workspace_name, iris_model, tmp_path):
    job = _job_writing_a_model(front_door, workspace_name, iris_model, tmp_path)
    sdk.models.create_or_update(Model(name="job-folder", path=f"azureml://jobs/{job}/outputs/artifacts/paths/outputs/"))
    sdk.models.create_or_update(Model(name="job-file", path=f"runs:/{job}/outputs/model.onnx"))
    sdk.models.download("job-folder", "1", download_path=str(tmp_path / "dl"))
    _predicts_iris(tmp_path / "dl" / "job-folder" / "outputs" / "model.onnx")
    sdk.models.download("job-file", "1", download_path=str(tmp_path / "dl"))
    _predicts_iris(tmp_path / "dl" / "job-file" / "model.onnx")


def test_environment_from_a_local_build_context_is_uploaded(sdk, tmp_path):
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM python:3.11-slim\nCOPY requirements.txt .\n")
    (context / "requirements.txt").write_text("scikit-learn\n")
    env = sdk.environments.create_or_update(Environment(name="uploaded", build=BuildContext(path=str(context))))
    assert env.version == "1"
    assert ".blob.amlemu.localhost/azureml-blobstore-" in env.build.path and "/LocalUpload/" in env.build.path
    again = sdk.environments.create_or_update(Environment(name="uploaded", build=BuildContext(path=str(context))))
    assert again.version == "1"  # the same content uploads to the same place: the same version
    (context / "requirements.txt").write_text("scikit-learn\nonnx\n")
    changed = sdk.environments.create_or_update(Environment(name="uploaded", build=BuildContext(path=str(context))))
    assert changed.version == "2" and changed.build.path != env.build.path


def test_registries_are_refused_as_not_emulated(front_env):
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    with pytest.raises(HttpResponseError, match="registry 'azureml'.*not emulated") as err:
        MLClient(DefaultAzureCredential(), registry_name="azureml").environments.get("sklearn-1.5", label="latest")
    assert "AzureML-sklearn-1.5" in str(err.value)


def test_a_model_path_of_the_server_machine_is_refused(sdk, front_door, workspace_name):
    from azure.identity import DefaultAzureCredential

    sdk.workspaces.get(workspace_name)
    base = f"https://127.0.0.1:{front_door.port + 1}"
    token = DefaultAzureCredential().get_token(f"{base}/.default").token
    url = (
        f"{base}/subscriptions/s/resourceGroups/r/providers/Microsoft.MachineLearningServices/workspaces/"
        f"{workspace_name}/models/stolen/versions/1?api-version=2024-04-01"
    )
    for uri in ("/etc/hostname", f"file://{front_door.home}/frontdoor/ca.key", "../../frontdoor"):
        r = requests.put(
            url,
            json={"properties": {"modelUri": uri, "modelType": "custom_model"}},
            headers={"Authorization": f"Bearer {token}"},
            verify=front_door.variables["REQUESTS_CA_BUNDLE"],
            timeout=30,
        )
        assert r.status_code == 400 and "neither a datastore path" in r.json()["error"]["message"], r.text


def test_mlflow_model_folder_is_uploaded_and_downloads(sdk, tmp_path):
    folder = Path(__file__).parents[1] / "corpus" / "asset-models" / "mlflow-model"
    model = sdk.models.create_or_update(Model(name="mlflow-folder", path=str(folder), type="mlflow_model"))
    assert model.type == "mlflow_model" and model.path.endswith("/mlflow-model/")
    sdk.models.download("mlflow-folder", model.version, download_path=str(tmp_path))
    assert "python_function" in (tmp_path / "mlflow-folder" / "mlflow-model" / "MLmodel").read_text()
