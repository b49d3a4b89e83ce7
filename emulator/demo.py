"""The end-to-end demo: train iris, register its model, deploy it behind an online endpoint, call it.

Run it with ``./run demo``. It uses the backend the configuration selects
(the local emulator unless ``AMLEMU_BACKEND`` says otherwise) and the same
azure-ai-ml calls a notebook on Azure ML would make.
"""

from __future__ import annotations

import json
import logging
import sys
import urllib.request
from pathlib import Path

import mlflow
from azure.ai.ml import Input, command
from azure.ai.ml.entities import CodeConfiguration, ManagedOnlineDeployment, ManagedOnlineEndpoint, Model

from backends import connect

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models" / "iris"


def main() -> int:
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)

    ml_client = connect()
    print(f"== amlemu demo on {ml_client!r}\n")

    print("== 1. train: a command job running sample_models/iris/src/train.py")
    job = ml_client.jobs.create_or_update(
        command(
            code=str(SAMPLES / "src"),
            command="python train.py --C ${{inputs.C}} --data ${{inputs.iris_csv}}",
            inputs={"C": 0.5, "iris_csv": Input(type="uri_file", path=str(SAMPLES / "data" / "iris.csv"))},
            environment="AzureML-sklearn-1.5@latest",
            experiment_name="iris-demo",
            display_name="iris-logreg-demo",
        )
    )
    ml_client.jobs.stream(job.name)

    mlflow.set_tracking_uri(ml_client.workspaces.get().mlflow_tracking_uri)
    run = mlflow.get_run(job.name)
    print(f"\nmetrics (from MLflow): {json.dumps(run.data.metrics)}")

    print("\n== 2. register the model from the job's outputs")
    model = ml_client.models.create_or_update(
        Model(
            name="iris-demo",
            type="custom_model",
            path=f"azureml://jobs/{job.name}/outputs/artifacts/paths/outputs/",
            description="iris logistic regression, ONNX",
        )
    )
    print(f"registered model {model.name}:{model.version} ({model.path})")

    print("\n== 3. deploy it behind an online endpoint (key auth, scoring script, 2 replicas)")
    endpoint = ManagedOnlineEndpoint(name="iris-demo-ep", auth_mode="key", description="amlemu demo endpoint")
    ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    try:
        ml_client.online_deployments.begin_create_or_update(
            ManagedOnlineDeployment(
                name="blue",
                endpoint_name="iris-demo-ep",
                model=model,
                instance_count=2,
                environment="azureml:AzureML-sklearn-1.5@latest",
                code_configuration=CodeConfiguration(code=str(SAMPLES / "score"), scoring_script="score.py"),
            )
        ).result()
        endpoint.traffic = {"blue": 100}
        ml_client.online_endpoints.begin_create_or_update(endpoint).result()
        endpoint = ml_client.online_endpoints.get("iris-demo-ep")
        print(f"scoring URI {endpoint.scoring_uri}  traffic {endpoint.traffic}")

        print("\n== 4. call the endpoint over HTTP with its key")
        key = ml_client.online_endpoints.get_keys("iris-demo-ep").primary_key
        body = (SAMPLES / "sample-request.json").read_bytes()
        request = urllib.request.Request(
            endpoint.scoring_uri,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            labels = json.loads(response.read())
            served_by = response.headers["azureml-model-deployment"]
        rows = json.loads(body)["data"]
        names = json.loads((Path(model.path) / "model.json").read_text()).get("class_names") or []
        print(f"answered by deployment '{served_by}':")
        for row, label in zip(rows, labels):
            print(f"  {row} -> {int(label)}" + (f" ({names[int(label)]})" if names else ""))
    finally:
        ml_client.online_endpoints.begin_delete(name="iris-demo-ep").result()
        print("\nendpoint iris-demo-ep deleted (nothing left running)")
    print("\ndemo complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
