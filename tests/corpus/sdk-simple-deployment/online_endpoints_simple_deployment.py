"""The call sequence of Azure's "deploy and score a machine learning model by using an online
endpoint" notebook: a local endpoint first (local=True), then a managed one with key auth.

The only change for amlemu is how the client is obtained; the model folder was written by a
training job beforehand (see expect.yml). Prints a JSON summary of what each call returned.
"""

import datetime
import json

from azure.ai.ml.entities import (
    CodeConfiguration,
    Environment,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    Model,
)

import amlemu

ml_client = amlemu.connect()
summary = {}

# --- local endpoint and deployment
local_endpoint_name = "local-" + datetime.datetime.now().strftime("%m%d%H%M%f")
endpoint = ManagedOnlineEndpoint(name=local_endpoint_name, description="this is a sample local endpoint")
ml_client.online_endpoints.begin_create_or_update(endpoint, local=True).result()

model = Model(path="model-1/model/")
env = Environment(
    conda_file="../_shared/model-1/environment/conda.yaml",
    image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest",
)
blue_deployment = ManagedOnlineDeployment(
    name="blue",
    endpoint_name=local_endpoint_name,
    model=model,
    environment=env,
    code_configuration=CodeConfiguration(code="../_shared/model-1/onlinescoring", scoring_script="score.py"),
    instance_type="Standard_DS2_v2",
    instance_count=1,
)
ml_client.online_deployments.begin_create_or_update(deployment=blue_deployment, local=True).result()

local_endpoint = ml_client.online_endpoints.get(name=local_endpoint_name, local=True)
local_logs = ml_client.online_deployments.get_logs(name="blue", endpoint_name=local_endpoint_name, local=True, lines=50)
local_answer = ml_client.online_endpoints.invoke(
    endpoint_name=local_endpoint_name,
    request_file="../_shared/model-1/sample-request.json",
    local=True,
)
summary["local"] = {
    "provisioning_state": local_endpoint.provisioning_state,
    "answer": json.loads(local_answer),
    "logs": local_logs,
}

# --- managed online endpoint
online_endpoint_name = "endpoint-" + datetime.datetime.now().strftime("%m%d%H%M%f")
endpoint = ManagedOnlineEndpoint(
    name=online_endpoint_name,
    description="this is a sample online endpoint",
    auth_mode="key",
    tags={"foo": "bar"},
)
ml_client.online_endpoints.begin_create_or_update(endpoint).result()

blue_deployment = ManagedOnlineDeployment(
    name="blue",
    endpoint_name=online_endpoint_name,
    model=Model(path="model-1/model/"),
    environment=Environment(
        conda_file="../_shared/model-1/environment/conda.yaml",
        image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest",
    ),
    code_configuration=CodeConfiguration(code="../_shared/model-1/onlinescoring", scoring_script="score.py"),
    instance_type="Standard_DS2_v2",
    instance_count=1,
)
ml_client.online_deployments.begin_create_or_update(blue_deployment).result()

endpoint.traffic = {"blue": 100}
ml_client.online_endpoints.begin_create_or_update(endpoint).result()

answer = ml_client.online_endpoints.invoke(
    endpoint_name=online_endpoint_name,
    deployment_name="blue",
    request_file="../_shared/model-1/sample-request.json",
)
endpoint = ml_client.online_endpoints.get(name=online_endpoint_name)
logs = ml_client.online_deployments.get_logs(name="blue", endpoint_name=online_endpoint_name, lines=50)
summary["cloud"] = {
    "traffic": endpoint.traffic,
    "scoring_uri": endpoint.scoring_uri,
    "auth_mode": endpoint.auth_mode,
    "tags": endpoint.tags,
    "answer": json.loads(answer),
    "logs": logs,
}

ml_client.online_endpoints.begin_delete(name=online_endpoint_name).result()
ml_client.online_endpoints.begin_delete(name=local_endpoint_name, local=True).result()
summary["endpoints_left"] = [e.name for e in ml_client.online_endpoints.list()]
print(json.dumps(summary))
