"""The end-to-end demo: train iris, register its model, score sample rows with ONNX Runtime.

Run it with ``./run demo``. It uses the backend the configuration selects
(the local emulator unless ``AMLEMU_BACKEND`` says otherwise) and the same
azure-ai-ml calls a notebook on Azure ML would make.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models" / "iris"


def main() -> int:
    import logging

    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)
    from azure.ai.ml import Input, command
    from azure.ai.ml.entities import Model

    from backends import connect

    ml_client = connect()
    print(f"== amlemu demo on {ml_client!r}\n")

    print("== 1. train: a command job running sample_models/iris/src/train.py")
    job = ml_client.jobs.create_or_update(command(
        code=str(SAMPLES / "src"),
        command="python train.py --C ${{inputs.C}} --data ${{inputs.iris_csv}}",
        inputs={"C": 0.5, "iris_csv": Input(type="uri_file", path=str(SAMPLES / "data" / "iris.csv"))},
        environment="AzureML-sklearn-1.5@latest", experiment_name="iris-demo",
        display_name="iris-logreg-demo"))
    ml_client.jobs.stream(job.name)

    import mlflow

    mlflow.set_tracking_uri(ml_client.workspaces.get().mlflow_tracking_uri)
    run = mlflow.get_run(job.name)
    print(f"\nmetrics (from MLflow): {json.dumps(run.data.metrics)}")

    print("\n== 2. register the model from the job's outputs")
    model = ml_client.models.create_or_update(Model(
        name="iris-demo", type="custom_model",
        path=f"azureml://jobs/{job.name}/outputs/artifacts/paths/outputs/",
        description="iris logistic regression, ONNX"))
    print(f"registered model {model.name}:{model.version} ({model.path})")

    print("\n== 3. load it with ONNX Runtime and predict the sample rows")
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(Path(model.path) / "model.onnx"), providers=["CPUExecutionProvider"])
    rows = json.loads((SAMPLES / "sample-request.json").read_text())["data"]
    labels = session.run(None, {session.get_inputs()[0].name: np.asarray(rows, dtype=np.float32)})[0]
    names = json.loads((Path(model.path) / "model.json").read_text()).get("class_names") or []
    for row, label in zip(rows, labels):
        print(f"  {row} -> {int(label)}" + (f" ({names[int(label)]})" if names else ""))
    print("\ndemo complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
