"""Train StandardScaler + LogisticRegression on prep's train.csv; write model.onnx to the output folder.

Tracks with MLflow as on Azure ML (the platform sets MLFLOW_TRACKING_URI and MLFLOW_RUN_ID).

Usage: python train.py --prepared <folder> --C 0.5 --max_iter 200 --model <folder>
"""

import argparse
import csv
import json
import os

import mlflow
import numpy as np
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    X = np.array([[float(r[c]) for c in FEATURES] for r in rows], dtype=np.float32)
    return X, np.array([int(float(r["species"])) for r in rows], dtype=np.int64)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", required=True, help="prep's output folder (train.csv)")
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--max_iter", type=int, default=200)
    parser.add_argument("--model", required=True, help="the output folder for model.onnx")
    args = parser.parse_args()
    X, y = load(os.path.join(args.prepared, "train.csv"))
    clf = LogisticRegression(C=args.C, max_iter=args.max_iter)
    model = Pipeline([("scaler", StandardScaler()), ("clf", clf)]).fit(X, y)
    accuracy = float((model.predict(X) == y).mean())
    with mlflow.start_run():
        mlflow.log_params({"C": args.C, "max_iter": args.max_iter})
        mlflow.log_metric("train_accuracy", accuracy)
    onx = to_onnx(
        model,
        initial_types=[("input", FloatTensorType([None, len(FEATURES)]))],
        options={id(clf): {"zipmap": False}},
        target_opset=17,
    )
    os.makedirs(args.model, exist_ok=True)
    with open(os.path.join(args.model, "model.onnx"), "wb") as f:
        f.write(onx.SerializeToString())
    with open(os.path.join(args.model, "model.json"), "w") as f:
        json.dump(
            {
                "inputs": [{"name": "input", "shape": [None, len(FEATURES)], "dtype": "float32"}],
                "feature_names": FEATURES,
                "classes": [int(c) for c in model.classes_],
            },
            f,
            indent=2,
        )
    print(f"train: {len(y)} rows, train accuracy {accuracy:.4f} -> {args.model}/model.onnx")


if __name__ == "__main__":
    main()
