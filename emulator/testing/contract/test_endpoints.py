"""Online endpoints and deployments: create, deploy with score.py, traffic, invoke, keys, logs, delete."""

from __future__ import annotations

import json

import pytest
from azure.ai.ml.entities import CodeConfiguration, ManagedOnlineDeployment, ManagedOnlineEndpoint, Model
from azure.core.exceptions import ResourceNotFoundError
from azure.core.polling import LROPoller

from emulator.testing.contract import CURATED, IRIS


def test_deploy_and_call_an_online_endpoint(ml_client, contract_iris_model, unique_name):
    """The tutorial's last steps: endpoint, deployment, traffic, invoke, keys, logs, delete."""
    import requests

    model = Model(name=unique_name("model", "iris-served"), path=str(contract_iris_model))
    model = ml_client.models.create_or_update(model)
    name = unique_name("online_endpoint", "contract-ep")
    endpoint = ManagedOnlineEndpoint(name=name, auth_mode="key")
    assert isinstance(ml_client.online_endpoints.begin_create_or_update(endpoint), LROPoller)
    try:
        deployment = ManagedOnlineDeployment(
            name="blue",
            endpoint_name=name,
            model=model,
            instance_type="Standard_DS3_v2",
            instance_count=1,
            environment=f"azureml:{CURATED}",
            code_configuration=CodeConfiguration(code=str(IRIS / "score"), scoring_script="score.py"),
        )
        ml_client.online_deployments.begin_create_or_update(deployment).result()
        endpoint.traffic = {"blue": 100}
        ml_client.online_endpoints.begin_create_or_update(endpoint).result()
        answer = ml_client.online_endpoints.invoke(endpoint_name=name, request_file=str(IRIS / "sample-request.json"))
        assert json.loads(answer) == [0, 1, 2]
        live = ml_client.online_endpoints.get(name)
        assert live.traffic == {"blue": 100} and live.scoring_uri
        key = ml_client.online_endpoints.get_keys(name).primary_key
        rows = json.loads((IRIS / "sample-request.json").read_text())
        response = requests.post(live.scoring_uri, json=rows, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        assert response.status_code == 200 and response.json() == [0, 1, 2]
        assert ml_client.online_deployments.get(name="blue", endpoint_name=name).provisioning_state == "Succeeded"
        assert isinstance(ml_client.online_deployments.get_logs(name="blue", endpoint_name=name, lines=20), str)
    finally:
        ml_client.online_endpoints.begin_delete(name=name).result()
    with pytest.raises(ResourceNotFoundError):
        ml_client.online_endpoints.get(name)
