"""The call sequence of Azure's safe-rollout notebook: blue serves model 1, is scaled out, green
(model 2) is tested alone, mirrored, given 10 % of live traffic, then all of it, and blue goes.

Model 1 predicts the sum of the 10 features, model 2 twice that: each answer shows which
deployment served it. The client is amlemu's; every other call is the notebook's, including the
top-level ml_client.begin_create_or_update. Prints a JSON summary.
"""

import collections
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

REQUEST = "../_shared/model-1/sample-request.json"
ml_client = amlemu.connect()
summary = {}


def served_by(answer: str) -> str:
    first = json.loads(answer)[0]
    return "blue" if abs(first - 55) < 0.01 else "green" if abs(first - 110) < 0.01 else f"unknown {first}"


online_endpoint_name = "endpoint-" + datetime.datetime.now().strftime("%m%d%H%M%f")
endpoint = ManagedOnlineEndpoint(
    name=online_endpoint_name,
    description="this is a sample online endpoint",
    auth_mode="key",
    tags={"foo": "bar"},
)
ml_client.begin_create_or_update(endpoint).result()

blue_deployment = ManagedOnlineDeployment(
    name="blue",
    endpoint_name=online_endpoint_name,
    model=Model(path="model-1/model/"),
    environment=Environment(
        conda_file="../_shared/model-1/environment/conda.yaml",
        image="mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04:20210727.v1",
    ),
    code_configuration=CodeConfiguration(code="../_shared/model-1/onlinescoring", scoring_script="score.py"),
    instance_type="Standard_DS2_v2",
    instance_count=1,
)
ml_client.begin_create_or_update(blue_deployment).result()

endpoint.traffic = {"blue": 100}
ml_client.begin_create_or_update(endpoint).result()
summary["blue_answer"] = json.loads(
    ml_client.online_endpoints.invoke(endpoint_name=online_endpoint_name, deployment_name="blue", request_file=REQUEST)
)

# scale the deployment
blue_deployment = ml_client.online_deployments.get(name="blue", endpoint_name=online_endpoint_name)
blue_deployment.instance_count = 2
ml_client.online_deployments.begin_create_or_update(blue_deployment).result()
summary["blue_instance_count"] = ml_client.online_deployments.get(
    name="blue", endpoint_name=online_endpoint_name
).instance_count

endpoint = ml_client.online_endpoints.get(name=online_endpoint_name)
summary["traffic_after_scaling"] = endpoint.traffic
summary["scoring_uri"] = endpoint.scoring_uri

# a new model, no live traffic yet
green_deployment = ManagedOnlineDeployment(
    name="green",
    endpoint_name=online_endpoint_name,
    model=Model(path="model-2/model/"),
    environment=Environment(
        conda_file="../_shared/model-2/environment/conda.yaml",
        image="mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04:20210727.v1",
    ),
    code_configuration=CodeConfiguration(code="../_shared/model-2/onlinescoring", scoring_script="score.py"),
    instance_type="Standard_F2s_v2",
    instance_count=1,
)
ml_client.begin_create_or_update(green_deployment).result()
summary["green_answer"] = json.loads(
    ml_client.online_endpoints.invoke(
        endpoint_name=online_endpoint_name,
        deployment_name="green",
        request_file="../_shared/model-2/sample-request.json",
    )
)

# mirror 10 % of the live traffic to green: clients still get blue's answers
endpoint.mirror_traffic = {"green": 10}
ml_client.begin_create_or_update(endpoint).result()
mirrored = collections.Counter(
    served_by(ml_client.online_endpoints.invoke(endpoint_name=online_endpoint_name, request_file=REQUEST))
    for _ in range(20)
)
summary["answers_while_mirroring"] = dict(mirrored)
endpoint.mirror_traffic = {"green": 0}
ml_client.begin_create_or_update(endpoint).result()

# 10 % of live traffic to green
endpoint.traffic = {"blue": 90, "green": 10}
ml_client.begin_create_or_update(endpoint).result()
split = collections.Counter(
    served_by(ml_client.online_endpoints.invoke(endpoint_name=online_endpoint_name, request_file=REQUEST))
    for _ in range(50)
)
summary["answers_at_90_10"] = dict(split)

# all traffic to green, then blue goes
endpoint.traffic = {"blue": 0, "green": 100}
ml_client.begin_create_or_update(endpoint).result()
summary["answer_at_0_100"] = served_by(
    ml_client.online_endpoints.invoke(endpoint_name=online_endpoint_name, request_file=REQUEST)
)
ml_client.online_deployments.begin_delete(name="blue", endpoint_name=online_endpoint_name).result()
summary["deployments_left"] = sorted(
    d.name for d in ml_client.online_deployments.list(endpoint_name=online_endpoint_name)
)
summary["traffic_at_end"] = ml_client.online_endpoints.get(name=online_endpoint_name).traffic

ml_client.online_endpoints.begin_delete(name=online_endpoint_name).result()
print(json.dumps(summary))
