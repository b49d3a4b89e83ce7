"""Online endpoints and deployments through the front door: the real MLClient against `amlemu serve`.

The iris ONNX model is registered in the front door's own AMLEMU_HOME through amlemu's CLI (the engine
the front door serves), and deployed without code: the built-in ONNX scorer serves it, so the SDK sends
only the model's ARM id.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
import requests

from tests.conftest import SAMPLES

SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
REQUEST = SAMPLES / "iris" / "sample-request.json"


def _register_model(front_door, workspace: str, path, name: str = "iris") -> str:
    """Register ``path`` as model ``name`` version 1 in the front door's workspace; its ARM id as the SDK sends it."""
    env = {**os.environ, "AMLEMU_HOME": str(front_door.home)}
    for key in ("AMLEMU_BACKEND", "AMLEMU_WORKSPACE"):
        env.pop(key, None)
    subprocess.run(
        [sys.executable, "-m", "emulator.cli.main", "model", "create", "-w", workspace, "--name", name]
        + ["--version", "1", "--path", str(path), "--type", "custom_model", "-o", "none"],
        env=env,
        check=True,
        capture_output=True,
    )
    return (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/my-rg/providers/Microsoft.MachineLearningServices"
        f"/workspaces/{workspace}/models/{name}/versions/1"
    )


@pytest.fixture
def endpoint_name(sdk):
    """A fresh endpoint name; the endpoint (its host and replicas) is deleted after the test if it still exists."""
    from azure.core.exceptions import ResourceNotFoundError

    name = f"ep-{uuid.uuid4().hex[:8]}"
    yield name
    try:
        sdk.online_endpoints.begin_delete(name=name).result()
    except ResourceNotFoundError:
        pass


def _score(uri: str, key: str) -> requests.Response:
    body = json.loads(REQUEST.read_text())
    return requests.post(uri, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def test_endpoint_and_deployment_lifecycle(sdk, front_door, workspace_name, iris_model, endpoint_name):
    from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    model_id = _register_model(front_door, workspace_name, iris_model)
    name = endpoint_name

    created = sdk.online_endpoints.begin_create_or_update(
        ManagedOnlineEndpoint(name=name, auth_mode="key", description="iris", tags={"team": "ml"})
    ).result()
    assert created.provisioning_state == "Succeeded"
    assert created.scoring_uri.startswith("http://127.0.0.1:") and created.scoring_uri.endswith("/score")
    endpoint = sdk.online_endpoints.get(name)
    assert (endpoint.name, endpoint.auth_mode, endpoint.description, endpoint.tags) == (
        name,
        "key",
        "iris",
        {"team": "ml"},
    )
    assert endpoint.id == (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/my-rg/providers/Microsoft.MachineLearningServices"
        f"/workspaces/{workspace_name}/onlineEndpoints/{name}"
    )
    assert endpoint.openapi_uri.endswith("/swagger.json")
    assert name in [e.name for e in sdk.online_endpoints.list()]

    blue = ManagedOnlineDeployment(name="blue", endpoint_name=name, model=model_id, instance_count=1)
    deployment = sdk.online_deployments.begin_create_or_update(blue).result()
    assert deployment.provisioning_state == "Succeeded"
    assert deployment.model == model_id and deployment.instance_count == 1
    assert [d.name for d in sdk.online_deployments.list(name)] == ["blue"]
    assert sdk.online_endpoints.get(name).traffic == {"blue": 0}  # the SDK lists a deployment without traffic as 0

    endpoint.traffic = {"blue": 100}
    sdk.online_endpoints.begin_create_or_update(endpoint).result()
    assert sdk.online_endpoints.get(name).traffic == {"blue": 100}

    keys = sdk.online_endpoints.get_keys(name)
    assert keys.primary_key and keys.secondary_key and keys.primary_key != keys.secondary_key
    answer = sdk.online_endpoints.invoke(endpoint_name=name, request_file=str(REQUEST))
    assert json.loads(answer) == [0, 1, 2]
    pinned = sdk.online_endpoints.invoke(endpoint_name=name, request_file=str(REQUEST), deployment_name="blue")
    assert json.loads(pinned) == [0, 1, 2]

    sdk.online_endpoints.begin_regenerate_keys(name, key_type="primary").result()
    renewed = sdk.online_endpoints.get_keys(name)
    assert renewed.primary_key != keys.primary_key and renewed.secondary_key == keys.secondary_key
    assert _score(endpoint.scoring_uri, keys.primary_key).status_code == 401
    assert _score(endpoint.scoring_uri, renewed.primary_key).json() == [0, 1, 2]

    logs = sdk.online_deployments.get_logs("blue", name, lines=200)
    assert "POST /score" in logs or "score" in logs.lower()
    events = sdk.online_deployments.get_logs("blue", name, lines=50, container_type="storage-initializer")
    assert events.strip() and events != logs

    with pytest.raises(HttpResponseError, match="still gets traffic"):  # as on Azure: route traffic away first
        sdk.online_deployments.begin_delete("blue", name).result()
    endpoint.traffic = {}
    sdk.online_endpoints.begin_create_or_update(endpoint).result()
    sdk.online_deployments.begin_delete("blue", name).result()
    with pytest.raises(ResourceNotFoundError):
        sdk.online_deployments.get("blue", name)
    sdk.online_endpoints.begin_delete(name=name).result()
    with pytest.raises(ResourceNotFoundError):
        sdk.online_endpoints.get(name)
    with pytest.raises(requests.ConnectionError):
        _score(endpoint.scoring_uri, renewed.primary_key)  # the host and its gateway are gone


def test_failed_deployment_raises_with_the_engines_reason(sdk, front_door, workspace_name, tmp_path, endpoint_name):
    from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint
    from azure.core.exceptions import HttpResponseError

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.onnx").write_bytes(b"not an onnx model")
    model_id = _register_model(front_door, workspace_name, broken, name="broken")
    sdk.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=endpoint_name)).result()

    poller = sdk.online_deployments.begin_create_or_update(
        ManagedOnlineDeployment(name="bad", endpoint_name=endpoint_name, model=model_id, instance_count=1)
    )
    with pytest.raises(HttpResponseError) as failure:
        poller.result()
    message = str(failure.value)
    assert "DeploymentFailed" in message and "'bad'" in message
    assert "onnx" in message.lower()  # the scorer's own words from the replica's log tail
    assert sdk.online_deployments.get("bad", endpoint_name).provisioning_state == "Failed"


def test_deployment_with_a_scoring_script(sdk, front_door, workspace_name, iris_model, endpoint_name, tmp_path):
    """The SDK uploads the code folder as a code asset and sends its ARM id; the deployment answers with that id."""
    from azure.ai.ml.entities import CodeConfiguration, ManagedOnlineDeployment, ManagedOnlineEndpoint
    from azure.core.exceptions import HttpResponseError

    model_id = _register_model(front_door, workspace_name, iris_model)
    sdk.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=endpoint_name)).result()
    blue = ManagedOnlineDeployment(
        name="blue",
        endpoint_name=endpoint_name,
        model=model_id,
        environment="AzureML-sklearn-1.5@latest",
        code_configuration=CodeConfiguration(code=str(SAMPLES / "iris" / "score"), scoring_script="score.py"),
        instance_count=1,
    )
    created = sdk.online_deployments.begin_create_or_update(blue).result()
    code_id = created.code_configuration.code
    assert "/codes/" in code_id and code_id.startswith(f"/subscriptions/{SUBSCRIPTION}/resourceGroups/my-rg/")
    got = sdk.online_deployments.get("blue", endpoint_name)
    assert (got.code_configuration.code, got.code_configuration.scoring_script) == (code_id, "score.py")
    assert got.environment == "azureml:AzureML-sklearn-1.5@latest"
    answer = sdk.online_endpoints.invoke(endpoint_name=endpoint_name, request_file=str(REQUEST), deployment_name="blue")
    assert json.loads(answer) == [0, 1, 2]

    broken = tmp_path / "broken-score"
    broken.mkdir()
    (broken / "score.py").write_text(
        "def init():\n    raise RuntimeError('no weights here: boom-42')\n\n\ndef run(raw_data):\n    return raw_data\n"
    )
    green = ManagedOnlineDeployment(
        name="green",
        endpoint_name=endpoint_name,
        model=model_id,
        environment="AzureML-sklearn-1.5@latest",
        code_configuration=CodeConfiguration(code=str(broken), scoring_script="score.py"),
        instance_count=1,
    )
    with pytest.raises(HttpResponseError) as failure:
        sdk.online_deployments.begin_create_or_update(green).result()
    assert "DeploymentFailed" in str(failure.value) and "boom-42" in str(failure.value)  # init()'s own error
    failed = sdk.online_deployments.get("green", endpoint_name)
    assert failed.provisioning_state == "Failed" and "/codes/" in failed.code_configuration.code
    assert "boom-42" in sdk.online_deployments.get_logs("green", endpoint_name, lines=100)


def test_references_outside_the_workspace_are_refused(sdk, front_door, workspace_name, endpoint_name):
    from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint
    from azure.core.exceptions import HttpResponseError

    sdk.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=endpoint_name)).result()
    foreign = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/my-rg/providers/Microsoft.MachineLearningServices"
        "/workspaces/someone-else/models/iris/versions/1"
    )
    with pytest.raises(HttpResponseError) as refused:
        sdk.online_deployments.begin_create_or_update(
            ManagedOnlineDeployment(name="blue", endpoint_name=endpoint_name, model=foreign, instance_count=1)
        )
    assert refused.value.status_code == 400 and "someone-else" in str(refused.value)


def test_token_endpoint_issues_tokens_not_keys(sdk, endpoint_name):
    from azure.ai.ml.entities import EndpointAuthToken, ManagedOnlineEndpoint
    from azure.ai.ml.exceptions import ValidationException

    token_endpoint = ManagedOnlineEndpoint(name=endpoint_name, auth_mode="aml_token")
    sdk.online_endpoints.begin_create_or_update(token_endpoint).result()
    assert sdk.online_endpoints.get(endpoint_name).auth_mode == "aml_token"
    token = sdk.online_endpoints.get_keys(endpoint_name)
    assert isinstance(token, EndpointAuthToken) and token.access_token
    assert token.expiry_time_utc > token.refresh_after_time_utc > 0
    with pytest.raises(ValidationException):
        sdk.online_endpoints.begin_regenerate_keys(endpoint_name)


def test_bad_traffic_fails_the_operation(sdk, endpoint_name):
    from azure.ai.ml.entities import ManagedOnlineEndpoint
    from azure.core.exceptions import HttpResponseError

    sdk.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=endpoint_name)).result()
    with pytest.raises(HttpResponseError) as failure:
        sdk.online_endpoints.begin_create_or_update(
            ManagedOnlineEndpoint(name=endpoint_name, traffic={"nowhere": 100})
        ).result()
    assert "nowhere" in str(failure.value)
    assert sdk.online_endpoints.get(endpoint_name).traffic == {}


def test_missing_endpoint_is_not_found(sdk):
    from azure.core.exceptions import ResourceNotFoundError

    with pytest.raises(ResourceNotFoundError):
        sdk.online_endpoints.get("no-such-endpoint")
    with pytest.raises(ResourceNotFoundError):
        sdk.online_endpoints.begin_delete(name="no-such-endpoint")
    with pytest.raises(ResourceNotFoundError):
        sdk.online_deployments.get("blue", "no-such-endpoint")


def _arm(front_door, front_env, method: str, path: str, **kwargs) -> requests.Response:
    """A raw ARM call as any REST client makes it, with a token from the front door's managed identity."""
    from azure.identity import DefaultAzureCredential

    base = f"https://127.0.0.1:{front_door.port + 1}"
    token = DefaultAzureCredential().get_token(f"{base}/.default").token
    return requests.request(
        method,
        path if path.startswith("https://") else f"{base}{path}",
        headers={"Authorization": f"Bearer {token}"},
        params={"api-version": "2024-04-01"},
        timeout=60,
        **kwargs,
    )


def test_rest_create_is_a_long_running_operation(front_door, front_env, workspace_name, endpoint_name, sdk):
    from tests.conftest import wait_for

    path = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/my-rg/providers/Microsoft.MachineLearningServices"
        f"/workspaces/{workspace_name}/onlineEndpoints/{endpoint_name}"
    )
    put = _arm(front_door, front_env, "PUT", path, json={"location": "local", "properties": {"authMode": "Key"}})
    assert put.status_code == 201, put.text
    assert put.json()["properties"]["provisioningState"] == "Creating"
    status_url = put.headers["Azure-AsyncOperation"]

    def finished():
        status = _arm(front_door, front_env, "GET", status_url).json()["status"]
        return status if status != "InProgress" else None

    assert wait_for(finished, "the endpoint's create operation", 120) == "Succeeded"
    got = _arm(front_door, front_env, "GET", path).json()
    assert got["properties"]["provisioningState"] == "Succeeded" and got["properties"]["authMode"] == "Key"
    assert got["properties"]["scoringUri"].startswith("http://127.0.0.1:") and got["kind"] == "Managed"

    malformed = _arm(
        front_door, front_env, "PUT", f"{path}/deployments/blue", json={"properties": {"model": 42}, "sku": "x"}
    )
    assert malformed.status_code == 400 and malformed.json()["error"]["message"]
    assert _arm(front_door, front_env, "PATCH", path, json={}).json()["error"]["code"] == "NotEmulated"
    logs = _arm(front_door, front_env, "POST", f"{path}/deployments/none/getLogs", json={"containerType": "Nope"})
    assert logs.status_code == 400 and "InferenceServer" in logs.json()["error"]["message"]

    delete = _arm(front_door, front_env, "DELETE", path)
    assert delete.status_code == 202 and delete.headers["Location"] and delete.headers["Azure-AsyncOperation"]
    wait_for(lambda: _arm(front_door, front_env, "GET", path).status_code == 404, "the endpoint to go", 120)
