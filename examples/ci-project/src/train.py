"""Train an iris classifier (scaler + logistic regression), log its accuracy with MLflow, export it to ONNX.

On Azure ML (and on amlemu) the job's environment points MLflow at the workspace, and whatever the script writes
to ./outputs becomes the job's output: the model lands in outputs/model/model.onnx.

    python train.py --C 0.5 --data ../data/iris.csv

The tests import ``train`` and ``export`` to make a model without a job (MLflow is imported by ``main`` only).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
MODEL_DIR = Path("outputs") / "model"


def load(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The features (float32, n x 4) and labels (0, 1, 2) of a CSV with a header and a ``species`` column."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    features = np.array([[float(row[name]) for name in FEATURES] for row in rows], dtype=np.float32)
    labels = np.array([int(float(row["species"])) for row in rows], dtype=np.int64)
    return features, labels


def train(features: np.ndarray, labels: np.ndarray, C: float = 1.0) -> tuple[Pipeline, float]:
    """The fitted model and its accuracy on a held-out fifth of the rows."""
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.2, random_state=42, stratify=labels
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500))
    model.fit(x_train, y_train)
    return model, float(model.score(x_test, y_test))


def export(model: Pipeline, folder: str | Path = MODEL_DIR) -> Path:
    """Write the model as ONNX (``model.onnx``: input ``input``, float32 n x 4; output ``label``) into ``folder``."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    onnx_model = to_onnx(
        model,
        initial_types=[("input", FloatTensorType([None, len(FEATURES)]))],
        options={id(model.steps[-1][1]): {"zipmap": False}},  # plain label and probability tensors
        target_opset=17,
    )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    path.write_bytes(onnx_model.SerializeToString())
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the iris classifier.")
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--data", required=True, help="the iris CSV")
    args = parser.parse_args()

    import mlflow  # the job's environment points it at the workspace's tracking server

    features, labels = load(args.data)
    with mlflow.start_run():
        mlflow.log_param("C", args.C)
        model, accuracy = train(features, labels, args.C)
        mlflow.log_metric("accuracy", accuracy)
        path = export(model)
    print(f"accuracy={accuracy:.4f}; wrote {path}")


if __name__ == "__main__":
    main()
