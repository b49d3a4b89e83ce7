"""The call sequence of Azure's "train a scikit-learn SVM on the Iris dataset" notebook, then what a
user reads back: the job's status, its MLflow metrics and its artifacts. Prints a JSON summary."""

import json
import os

import mlflow
from azure.ai.ml import Input, command

import amlemu

ml_client = amlemu.connect()

job = command(
    code="./src",  # local path where the code is stored
    command=(
        "python main.py --iris-csv ${{inputs.iris}} --C ${{inputs.C}}"
        " --kernel ${{inputs.kernel}} --coef0 ${{inputs.coef0}}"
    ),
    inputs={
        "iris": Input(type="uri_file", path="../_data/iris.csv"),
        "C": 0.8,
        "kernel": "rbf",
        "coef0": 0.1,
    },
    environment="AzureML-sklearn-1.5@latest",
    display_name="sklearn-iris-example",
)
returned_job = ml_client.create_or_update(job)
ml_client.jobs.stream(returned_job.name)

finished = ml_client.jobs.get(returned_job.name)
mlflow.set_tracking_uri(ml_client.workspaces.get().mlflow_tracking_uri)
run = mlflow.get_run(returned_job.name)
ml_client.jobs.download(returned_job.name, download_path="downloaded", all=True)
downloaded = sorted(
    os.path.relpath(os.path.join(folder, name), "downloaded")
    for folder, _, names in os.walk("downloaded")
    for name in names
)
print(
    json.dumps(
        {
            "status": finished.status,
            "display_name": finished.display_name,
            "studio_url": returned_job.studio_url,
            "inputs": {name: str(value) for name, value in finished.inputs.items()},
            "params": run.data.params,
            "metrics": run.data.metrics,
            "downloaded": downloaded,
        }
    )
)
