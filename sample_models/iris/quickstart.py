"""Azure ML in a day, for the iris model: train, register, deploy, call, clean up.

Written the way Azure ML's documentation writes its quickstart: the SDK builds its own
``MLClient(DefaultAzureCredential(), ...)`` and knows nothing of amlemu. Run it from this
folder against a real workspace (fill in the three names below and `az login`), or against
amlemu unmodified:

    amlemu serve &
    eval "$(amlemu env)"
    python quickstart.py
"""

import json
import uuid

from azure.ai.ml import Input, MLClient, command
from azure.ai.ml.entities import (
    AmlCompute,
    CodeConfiguration,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    Model,
)
from azure.identity import DefaultAzureCredential

# the workspace: from Azure ML studio's top-right menu
subscription_id = "00000000-1111-2222-3333-444444444444"
resource_group = "quickstart-rg"
workspace = "quickstart-ws"

# 1. connect
ml_client = MLClient(DefaultAzureCredential(), subscription_id, resource_group, workspace)
print(f"connected to {ml_client.workspaces.get(workspace).name}")

# 2. a compute cluster that scales to zero
cpu_cluster = AmlCompute(
    name="cpu-cluster",
    type="amlcompute",
    size="STANDARD_DS3_V2",
    min_instances=0,
    max_instances=2,
    idle_time_before_scale_down=180,
    tier="Dedicated",
)
cpu_cluster = ml_client.compute.begin_create_or_update(cpu_cluster).result()
print(f"compute {cpu_cluster.name}: {cpu_cluster.size}, {cpu_cluster.min_instances}-{cpu_cluster.max_instances} nodes")

# 3. a command job: train on the cluster, with the code folder uploaded
job = command(
    code="./src",
    command="python train.py --C ${{inputs.C}} --data ${{inputs.iris_csv}}",
    inputs={"C": 0.5, "iris_csv": Input(type="uri_file", path="./data/iris.csv")},
    environment="AzureML-sklearn-1.5@latest",
    compute="cpu-cluster",
    experiment_name="iris-quickstart",
    display_name="iris-train",
)
returned_job = ml_client.create_or_update(job)
print(f"job {returned_job.name} submitted: {returned_job.studio_url}")
ml_client.jobs.stream(returned_job.name)
assert ml_client.jobs.get(returned_job.name).status == "Completed"

# 4. register the model the job wrote to ./outputs
model = ml_client.models.create_or_update(
    Model(
        name="iris-quickstart",
        path=f"azureml://jobs/{returned_job.name}/outputs/artifacts/paths/outputs/",
        type="custom_model",
        description="iris classifier (ONNX) from the quickstart job",
    )
)
print(f"model {model.name}:{model.version}")

# 5. an online endpoint and a deployment of the model behind it
endpoint_name = "iris-qs-" + uuid.uuid4().hex[:8]
endpoint = ManagedOnlineEndpoint(name=endpoint_name, auth_mode="key", description="iris quickstart")
endpoint = ml_client.online_endpoints.begin_create_or_update(endpoint).result()
print(f"endpoint {endpoint.name}: {endpoint.provisioning_state}")
try:
    blue = ManagedOnlineDeployment(
        name="blue",
        endpoint_name=endpoint_name,
        model=model,
        environment="AzureML-sklearn-1.5@latest",
        code_configuration=CodeConfiguration(code="./score", scoring_script="score.py"),
        instance_type="Standard_DS3_v2",
        instance_count=1,
    )
    ml_client.online_deployments.begin_create_or_update(blue).result()
    endpoint.traffic = {"blue": 100}
    ml_client.online_endpoints.begin_create_or_update(endpoint).result()

    # 6. call it
    answer = ml_client.online_endpoints.invoke(
        endpoint_name=endpoint_name, request_file="./sample-request.json", deployment_name="blue"
    )
    print(f"prediction: {answer}")
    assert json.loads(answer) == [0, 1, 2]
finally:
    # 7. clean up: endpoints cost money on Azure
    ml_client.online_endpoints.begin_delete(name=endpoint_name).result()
print("quickstart complete")
