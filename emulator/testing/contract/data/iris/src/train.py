"""Train an iris classifier and export it to ONNX.

Runs unchanged on Azure ML and on amlemu: tracking goes to whatever MLflow
server the job environment points at (MLFLOW_TRACKING_URI, MLFLOW_RUN_ID and
MLFLOW_EXPERIMENT_NAME are set by the platform), and everything written to
./outputs is uploaded as the job's output.

Usage:
    python train.py --C 0.5 --max_iter 200 --data ../data/iris.csv
"""

import argparse
import csv
import json
import os
import tempfile

import mlflow
import numpy as np
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASS_NAMES = ["setosa", "versicolor", "virginica"]
OUTPUT_DIR = "outputs"
TARGET_OPSET = 17  # loadable by any onnxruntime >= 1.13


def load_data(path=None):
    """Loads the iris features and labels.

    Args:
        path: Optional CSV with a header row, the four feature columns and an
            integer ``species`` column. When omitted, ``load_iris()`` is used.

    Returns:
        A tuple ``(X, y)``: float32 array of shape (n, 4) and int array (n,).
    """
    if not path:
        data = load_iris()
        return data.data.astype(np.float32), data.target.astype(np.int64)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    X = np.array([[float(r[c]) for c in FEATURES] for r in rows], dtype=np.float32)
    y = np.array([int(float(r["species"])) for r in rows], dtype=np.int64)
    return X, y


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--max_iter", type=int, default=200)
    parser.add_argument("--data", default=None, help="CSV file (default: sklearn's bundled iris)")
    args = parser.parse_args()

    X, y = load_data(args.data)
    print(f"Loaded {len(X)} rows from {args.data or 'sklearn.datasets.load_iris()'}")
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)

    with mlflow.start_run():
        mlflow.log_param("C", args.C)
        mlflow.log_param("max_iter", args.max_iter)

        clf = LogisticRegression(C=args.C, max_iter=args.max_iter)
        model = Pipeline([("scaler", StandardScaler()), ("clf", clf)])
        model.fit(X_train, y_train)
        pred = model.predict(X_test)
        accuracy = accuracy_score(y_test, pred)
        f1_macro = f1_score(y_test, pred, average="macro")
        print(
            f"Trained LogisticRegression(C={args.C}, max_iter={args.max_iter}): "
            f"accuracy={accuracy:.4f} f1_macro={f1_macro:.4f}"
        )
        mlflow.log_metric("accuracy", accuracy)
        mlflow.log_metric("f1_macro", f1_macro)

        with tempfile.TemporaryDirectory() as tmp:
            cm_path = os.path.join(tmp, "confusion_matrix.json")
            with open(cm_path, "w") as f:
                json.dump({"labels": CLASS_NAMES, "matrix": confusion_matrix(y_test, pred).tolist()}, f, indent=2)
            mlflow.log_artifact(cm_path)

        # zipmap=False: the graph outputs plain "label" and "probabilities" tensors.
        onx = to_onnx(
            model,
            initial_types=[("input", FloatTensorType([None, len(FEATURES)]))],
            options={id(clf): {"zipmap": False}},
            target_opset=TARGET_OPSET,
        )
        os.makedirs(OUTPUT_DIR, exist_ok=True)
        with open(os.path.join(OUTPUT_DIR, "model.onnx"), "wb") as f:
            f.write(onx.SerializeToString())
        metadata = {
            "inputs": [{"name": "input", "shape": [None, len(FEATURES)], "dtype": "float32"}],
            "feature_names": FEATURES,
            "classes": [int(c) for c in model.classes_],
            "class_names": CLASS_NAMES,
        }
        with open(os.path.join(OUTPUT_DIR, "model.json"), "w") as f:
            json.dump(metadata, f, indent=2)
        print(f"Wrote {OUTPUT_DIR}/model.onnx and {OUTPUT_DIR}/model.json")


if __name__ == "__main__":
    main()
