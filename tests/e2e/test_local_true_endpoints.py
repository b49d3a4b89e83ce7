"""``local=True`` endpoints, as azure-ai-ml runs them: one deployment per endpoint serving every request without
traffic rules or keys, found only by local calls. The first test is the call sequence of Azure's SDK notebook
for a simple deployment (create the endpoint locally, deploy locally, check, read the logs, invoke without a
deployment name), with the real azure-ai-ml entities on amlemu's local backend."""

from __future__ import annotations

import json

import pytest
import requests
from azure.ai.ml.entities import CodeConfiguration, Environment, ManagedOnlineDeployment, ManagedOnlineEndpoint, Model
from azure.ai.ml.exceptions import LocalEndpointInFailedStateError, LocalEndpointNotFoundError
from azure.core.exceptions import ResourceNotFoundError

from tests.conftest import SAMPLES

IRIS = SAMPLES / "iris"
CURATED = "azureml:AzureML-sklearn-1.5@latest"


def _deployment(name, endpoint, model, environment=CURATED, code=IRIS / "score", **kwargs):
    """A deployment of ``model``; without ``code``, amlemu's built-in ONNX scorer serves it (no environment)."""
    return ManagedOnlineDeployment(
        name=name,
        endpoint_name=endpoint,
        model=model,
        environment=environment if code else None,
        code_configuration=CodeConfiguration(code=str(code), scoring_script="score.py") if code else None,
        instance_type="Standard_DS2_v2",
        instance_count=kwargs.pop("instance_count", 1),
        **kwargs,
    )


def test_the_simple_deployment_notebook_runs_on_a_local_endpoint(ml_client, iris_model, tmp_path):
    name = "local-0101120000"
    endpoint = ManagedOnlineEndpoint(name=name, description="this is a sample local endpoint")
    created = ml_client.online_endpoints.begin_create_or_update(endpoint, local=True).result()
    assert created.name == name and created.description == "this is a sample local endpoint"
    assert created.provisioning_state is None and created.scoring_uri is None  # no deployment yet, as on Azure

    conda = tmp_path / "conda.yml"  # the notebook's environment: an image and a conda file
    conda.write_text(
        "name: model-env\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy\n  - pip\n"
        "  - pip:\n    - onnxruntime\n"
    )
    environment = Environment(conda_file=str(conda), image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest")
    blue = _deployment("blue", name, Model(path=str(iris_model / "model.onnx")), environment, instance_count=2)
    deployed = ml_client.online_deployments.begin_create_or_update(deployment=blue, local=True).result()
    assert deployed.provisioning_state == "Succeeded" and deployed.instance_type == "local"
    assert deployed.instance_count == 1  # one container locally, whatever instance_count asks

    shown = ml_client.online_endpoints.get(name=name, local=True)
    assert shown.provisioning_state == "Succeeded" and shown.location == "local"
    assert shown.scoring_uri.startswith("http://127.0.0.1:") and shown.scoring_uri.endswith("/score")
    assert shown.traffic == {}  # no traffic rules locally: the one deployment serves everything

    logs = ml_client.online_deployments.get_logs(name="blue", endpoint_name=name, local=True, lines=50)
    assert logs.strip() and len(logs.splitlines()) <= 50

    answer = ml_client.online_endpoints.invoke(
        endpoint_name=name, request_file=str(IRIS / "sample-request.json"), local=True
    )
    assert json.loads(answer) == [0, 1, 2]
    # the scoring URI as curl calls it in Azure's local how-to: no key
    response = requests.post(shown.scoring_uri, json={"data": [[5.1, 3.5, 1.4, 0.2]]}, timeout=30)
    assert response.status_code == 200 and response.json() == [0]

    # a local endpoint is seen by local calls only, as on Azure
    assert [e.name for e in ml_client.online_endpoints.list(local=True)] == [name]
    assert list(ml_client.online_endpoints.list()) == []
    with pytest.raises(ResourceNotFoundError, match="local=True"):
        ml_client.online_endpoints.get(name=name)
    with pytest.raises(ResourceNotFoundError, match="local=True"):
        ml_client.online_endpoints.invoke(endpoint_name=name, request_file=str(IRIS / "sample-request.json"))

    ml_client.online_endpoints.begin_delete(name=name, local=True)
    with pytest.raises(LocalEndpointNotFoundError, match=rf"Local endpoint \({name}\) does not exist"):
        ml_client.online_endpoints.get(name=name, local=True)
    assert requests_refused(shown.scoring_uri)


def requests_refused(uri: str) -> bool:
    try:
        requests.post(uri, json={}, timeout=5)
    except requests.ConnectionError:
        return True
    return False


def test_a_second_local_deployment_replaces_the_first(ml_client, iris_model):
    model = Model(path=str(iris_model))
    # no endpoint first: a local deployment creates its endpoint, as azure-ai-ml does
    ml_client.online_deployments.begin_create_or_update(_deployment("blue", "solo", model, code=None), local=True)
    assert ml_client.online_endpoints.get("solo", local=True).provisioning_state == "Succeeded"
    green = ml_client.online_deployments.begin_create_or_update(
        _deployment("green", "solo", model, code=None), local=True
    )
    assert green.name == "green" and green.provisioning_state == "Succeeded"
    with pytest.raises(LocalEndpointNotFoundError, match=r"Local deployment \(solo / blue\) does not exist"):
        ml_client.online_deployments.get(name="blue", endpoint_name="solo", local=True)
    assert [d.name for d in ml_client.online_deployments.list(endpoint_name="solo", local=True)] == ["green"]
    uri = ml_client.online_endpoints.get("solo", local=True).scoring_uri
    response = requests.post(uri, json={"data": [[6.7, 3.1, 4.7, 1.5]]}, timeout=30)
    assert response.status_code == 200 and response.headers["azureml-model-deployment"] == "green"
    # naming the deployment works too; another name gets azure-ai-ml's answer for a missing deployment
    request = str(IRIS / "sample-request.json")
    assert json.loads(
        ml_client.online_endpoints.invoke(
            endpoint_name="solo", request_file=request, deployment_name="green", local=True
        )
    ) == [0, 1, 2]
    missing = ml_client.online_endpoints.invoke(
        endpoint_name="solo", request_file=request, deployment_name="blue", local=True
    )
    assert missing.startswith("This local endpoint does not have any deployments")
    ml_client.online_deployments.begin_delete(name="green", endpoint_name="solo", local=True)
    assert ml_client.online_endpoints.invoke(endpoint_name="solo", request_file=request, local=True).startswith(
        "This local endpoint does not have any deployments"
    )
    with pytest.raises(LocalEndpointNotFoundError):
        ml_client.online_deployments.begin_delete(name="green", endpoint_name="solo", local=True)


def test_a_failed_local_deployment_raises_azure_ai_ml_s_error_and_shows_its_log(ml_client, iris_model, tmp_path):
    code = tmp_path / "bad-score"
    code.mkdir()
    (code / "score.py").write_text(
        "def init():\n    raise RuntimeError('cannot load the model: boom')\n\ndef run(raw):\n    return raw\n"
    )
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="broken"), local=True)
    with pytest.raises(LocalEndpointInFailedStateError, match=r"(?s)Local deployment \(broken / blue\).*boom"):
        ml_client.online_deployments.begin_create_or_update(
            _deployment("blue", "broken", Model(path=str(iris_model)), code=code), local=True
        )
    assert ml_client.online_endpoints.get("broken", local=True).provisioning_state == "Failed"
    assert ml_client.online_deployments.get("blue", "broken", local=True).provisioning_state == "Failed"
    assert "boom" in ml_client.online_deployments.get_logs("blue", "broken", 100, local=True)
    with pytest.raises(LocalEndpointInFailedStateError):
        ml_client.online_endpoints.invoke(
            endpoint_name="broken", request_file=str(IRIS / "sample-request.json"), local=True
        )


def test_local_and_workspace_endpoints_do_not_see_each_other(ml_client):
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="cloudy", auth_mode="key")).result()
    with pytest.raises(LocalEndpointNotFoundError, match=r"Local endpoint \(cloudy\) does not exist"):
        ml_client.online_endpoints.get("cloudy", local=True)
    with pytest.raises(LocalEndpointNotFoundError):
        ml_client.online_endpoints.begin_delete(name="cloudy", local=True)
    with pytest.raises(Exception, match="one endpoint per name"):
        ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="cloudy"), local=True)
    assert ml_client.online_endpoints.get("cloudy").auth_mode == "key"  # untouched
    assert list(ml_client.online_endpoints.list(local=True)) == []
    with pytest.raises(LocalEndpointNotFoundError, match=r"Local endpoint \(nowhere\) does not exist"):
        ml_client.online_endpoints.invoke(
            endpoint_name="nowhere", request_file=str(IRIS / "sample-request.json"), local=True
        )


def test_bad_input_to_a_local_deployment_leaves_no_endpoint(ml_client, iris_model, tmp_path):
    deployment = _deployment("blue", "half", Model(path=str(iris_model)), code=tmp_path / "missing-code")
    with pytest.raises(Exception, match="missing-code"):
        ml_client.online_deployments.begin_create_or_update(deployment, local=True)
    assert list(ml_client.online_endpoints.list(local=True)) == []
    with pytest.raises(LocalEndpointNotFoundError):
        ml_client.online_endpoints.get("half", local=True)


def test_az_ml_local_script_through_the_cli(cli, iris_model, tmp_path):
    """The az ml calls of Azure's local-endpoint script: --local everywhere, curl without a key."""
    (tmp_path / "endpoint.yml").write_text("name: my-endpoint\nauth_mode: key\n")
    (tmp_path / "blue.yml").write_text(
        f"name: blue\nendpoint_name: my-endpoint\nmodel:\n  path: {iris_model}\n"
        "instance_type: Standard_DS3_v2\ninstance_count: 1\n"
    )
    cli.run("online-endpoint", "create", "--local", "-n", "endpt-1", "-f", str(tmp_path / "endpoint.yml"))
    deployed = cli.json(
        "online-deployment",
        "create",
        "--local",
        "-n",
        "blue",
        "--endpoint",
        "endpt-1",
        "-f",
        str(tmp_path / "blue.yml"),
    )
    assert deployed["provisioning_state"] == "Succeeded" and deployed["instance_type"] == "local"
    shown = cli.json("online-endpoint", "show", "--local", "--name", "endpt-1")
    assert shown["provisioning_state"] == "Succeeded" and shown["traffic"] == {}
    shown_deployment = cli.json("online-deployment", "show", "--local", "--name", "blue", "--endpoint", "endpt-1")
    assert shown_deployment["provisioning_state"] == "Succeeded"
    request = str(IRIS / "sample-request.json")
    assert cli.json("online-endpoint", "invoke", "--local", "--name", "endpt-1", "--request-file", request) == [0, 1, 2]
    body, json_type = (IRIS / "sample-request.json").read_bytes(), {"Content-Type": "application/json"}
    response = requests.post(shown["scoring_uri"], data=body, headers=json_type, timeout=30)
    assert response.status_code == 200 and response.json() == [0, 1, 2]  # curl without a key, as the script does
    logs = cli.run("online-deployment", "get-logs", "--local", "-n", "blue", "--endpoint", "endpt-1").stdout
    assert logs.strip()
    # without --local the workspace's endpoints only, as on Azure
    assert cli.json("online-endpoint", "list") == []
    hidden = cli.run("online-endpoint", "show", "--name", "endpt-1", check=False)
    assert hidden.returncode != 0 and "--local" in hidden.stderr
    cli.run("online-endpoint", "delete", "--local", "--name", "endpt-1", "--yes")
    assert cli.json("online-endpoint", "list", "--local") == []
