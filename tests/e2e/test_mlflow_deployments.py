"""No-code deployment of an MLflow model, as Azure ML's AutoML and MLflow docs deploy one: an ``mlflow_model``
with only ``instance_type`` and ``instance_count``. Its environment is built from the model's own conda.yaml
(a cached virtualenv, offline), the generated scoring script loads it with ``mlflow.pyfunc.load_model`` and
answers ``{"input_data": ...}`` with the predictions. One deployment per module: its environment's first
build takes a while."""

from __future__ import annotations

import importlib.metadata as md
import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import requests
from azure.ai.ml.entities import CodeConfiguration, ManagedOnlineDeployment, ManagedOnlineEndpoint, Model
from azure.ai.ml.exceptions import ValidationException

from emulator.endpoints import records, service
from emulator.store import open_store
from tests.conftest import SAMPLES, local_home

ENDPOINT = "iris-mlflow"
#: the packages the model's conda.yaml pins: the versions installed here, so the build needs no package index
PINNED = ("mlflow-skinny", "scikit-learn", "cloudpickle", "numpy", "pandas", "scipy")
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 3.4, 5.4, 2.3], [5.9, 3.0, 4.2, 1.5]]


def save_mlflow_model(folder, **kwargs):
    """An iris LogisticRegression on named columns, saved with mlflow.sklearn (cloudpickle, as Azure AutoML's)."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    table = pd.read_csv(SAMPLES / "iris" / "data" / "iris.csv")
    features, target = table.drop(columns="species"), table["species"]
    classifier = LogisticRegression(max_iter=500).fit(features, target)
    mlflow.sklearn.save_model(
        classifier,
        str(folder),
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        signature=infer_signature(features, classifier.predict(features)),
        pip_requirements=[f"{name}=={md.version(name)}" for name in PINNED],
        **kwargs,
    )
    return classifier, list(features.columns)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """Endpoint iris-mlflow with deployment blue: the MLflow model alone, taking all traffic."""
    import backends

    with local_home(tmp_path_factory.mktemp("mlflow-home")):
        ml_client = backends.connect("local")
        folder = tmp_path_factory.mktemp("model") / "iris-mlflow-model"
        classifier, columns = save_mlflow_model(folder)
        model = ml_client.models.create_or_update(Model(name="iris-mlflow", path=str(folder), type="mlflow_model"))
        endpoint = ManagedOnlineEndpoint(name=ENDPOINT, auth_mode="key")
        ml_client.online_endpoints.begin_create_or_update(endpoint).result()
        deployment = ml_client.online_deployments.begin_create_or_update(
            ManagedOnlineDeployment(
                name="blue", endpoint_name=ENDPOINT, model=model, instance_type="Standard_DS3_v2", instance_count=1
            )
        ).result()
        endpoint.traffic = {"blue": 100}
        ml_client.online_endpoints.begin_create_or_update(endpoint).result()
        yield ml_client, deployment, classifier, columns


def score(ml_client, body) -> requests.Response:
    endpoint = ml_client.online_endpoints.get(ENDPOINT)
    key = ml_client.online_endpoints.get_keys(ENDPOINT).primary_key
    return requests.post(endpoint.scoring_uri, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_an_mlflow_model_deploys_without_code_or_environment(deployed):
    ml_client, deployment, _, _ = deployed
    assert deployment.provisioning_state == "Succeeded"
    assert deployment.code_configuration is None and deployment.environment is None
    log = ml_client.online_deployments.get_logs(name="blue", endpoint_name=ENDPOINT, lines=200)
    assert "Loaded the MLflow model" in log, log
    # the environment is the model's conda.yaml, built into a cached virtualenv the replica runs in
    store = open_store()
    resolved = records.get_deployment(store, ENDPOINT, "blue")["environment_resolved"]
    assert resolved["reference"] == "mlflow_model:iris-mlflow:1"
    assert f"scikit-learn=={md.version('scikit-learn')}" in resolved["requirements"]
    pid = service.status(store, ENDPOINT)["deployments"]["blue"]["replicas"][0]["pid"]
    environ = dict(item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item)
    assert environ["VIRTUAL_ENV"] != sys.prefix and environ["AZUREML_ENTRY_SCRIPT"] == "score.py"


def test_split_orientation_body_gets_the_models_predictions(deployed, tmp_path):
    ml_client, _, classifier, columns = deployed
    body = {"input_data": {"columns": columns, "index": [0, 1, 2], "data": ROWS}}
    expected = classifier.predict(pd.DataFrame(ROWS, columns=columns)).tolist()
    assert len(set(expected)) > 1  # the rows are of different species: the answer depends on each row
    response = score(ml_client, body)
    assert response.status_code == 200, response.text
    assert response.json() == expected
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(body))
    assert json.loads(ml_client.online_endpoints.invoke(endpoint_name=ENDPOINT, request_file=str(request_file))) == (
        expected
    )


def test_a_list_of_rows_is_read_with_the_signatures_columns(deployed):
    ml_client, _, classifier, columns = deployed
    response = score(ml_client, {"input_data": ROWS})
    assert response.status_code == 200, response.text
    assert response.json() == classifier.predict(pd.DataFrame(ROWS, columns=columns)).tolist()
    by_column = {name: [row[i] for row in ROWS] for i, name in enumerate(columns)}
    assert score(ml_client, {"input_data": by_column}).json() == response.json()


@pytest.mark.parametrize(
    "body, says",
    [
        ({"data": ROWS}, "no top-level key 'input_data'"),
        ({"input_data": "5.1,3.5"}, "input_data is str"),
        ({"input_data": [[5.1, 3.5]]}, "4 columns"),
    ],
)
def test_a_malformed_body_is_a_model_error_400_naming_the_shape(deployed, body, says):
    ml_client, _, _, _ = deployed
    response = score(ml_client, body)
    # the gateway's rule for a model's non-2xx answer (424), with the scorer's status and body kept
    assert response.status_code == 424, response.text
    assert response.headers["ms-azureml-model-error-statuscode"] == "400"
    message = response.json()["message"]
    assert says in message and "split orientation" in message and '"input_data"' in message, message


def test_a_scoring_script_without_environment_is_refused_for_an_mlflow_model(deployed, tmp_path):
    ml_client, deployment, _, _ = deployed
    (tmp_path / "score.py").write_text("def init():\n    pass\n\n\ndef run(raw_data):\n    return raw_data\n")
    with pytest.raises(ValidationException, match="needs an 'environment'"):
        ml_client.online_deployments.begin_create_or_update(
            ManagedOnlineDeployment(
                name="green",
                endpoint_name=ENDPOINT,
                model=deployment.model,
                code_configuration=CodeConfiguration(code=str(tmp_path), scoring_script="score.py"),
                instance_count=1,
            )
        ).result()


def test_an_mlflow_model_without_python_function_or_conda_file_is_refused(deployed, tmp_path):
    ml_client, _, _, _ = deployed
    no_pyfunc = tmp_path / "no-pyfunc"
    no_pyfunc.mkdir()
    (no_pyfunc / "MLmodel").write_text("flavors:\n  sklearn:\n    pickled_model: model.pkl\n")
    no_conda = tmp_path / "no-conda"
    save_mlflow_model(no_conda)
    (no_conda / "conda.yaml").unlink()
    for folder, says in ((no_pyfunc, "no python_function flavor"), (no_conda, "no conda file")):
        model = ml_client.models.create_or_update(Model(name=folder.name, path=str(folder), type="mlflow_model"))
        with pytest.raises(ValidationException, match=says):
            ml_client.online_deployments.begin_create_or_update(
                ManagedOnlineDeployment(name="green", endpoint_name=ENDPOINT, model=model, instance_count=1)
            ).result()
