"""The scoring script of the iris deployment (azureml-inference-server-http's contract: ``init()``, ``run()``).

``init()`` loads ``model.onnx`` from the registered model (``AZUREML_MODEL_DIR``); ``run()`` answers
``{"data": [[sepal_length, sepal_width, petal_length, petal_width], ...]}`` with the predicted classes,
e.g. ``[0, 2]`` (0 setosa, 1 versicolor, 2 virginica).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnxruntime

session: onnxruntime.InferenceSession | None = None


def init() -> None:
    global session
    model_dir = Path(os.environ["AZUREML_MODEL_DIR"])
    found = sorted(model_dir.rglob("model.onnx"))
    if not found:
        raise FileNotFoundError(
            f"no model.onnx under AZUREML_MODEL_DIR={model_dir}: register the folder train.py writes (outputs/model)"
        )
    session = onnxruntime.InferenceSession(str(found[0]), providers=["CPUExecutionProvider"])


def run(raw_data: str) -> list[int]:
    rows = json.loads(raw_data)["data"]
    features = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
    if features.shape[1] != 4:
        raise ValueError(f"each row needs 4 features (sepal and petal length and width), got {features.shape[1]}")
    labels = session.run(["label"], {"input": features})[0]
    return [int(label) for label in labels]
