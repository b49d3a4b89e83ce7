"""Train a diabetes progression regressor and export it to ONNX.

Runs unchanged on Azure ML and on amlemu: tracking goes to whatever MLflow
server the job environment points at (MLFLOW_TRACKING_URI, MLFLOW_RUN_ID and
MLFLOW_EXPERIMENT_NAME are set by the platform), and everything written to
./outputs is uploaded as the job's output.

Usage:
    python train.py --alpha 0.5 [--data diabetes.csv]
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
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
OUTPUT_DIR = "outputs"
TARGET_OPSET = 17  # loadable by any onnxruntime >= 1.13


def load_data(path=None):
    """Loads the diabetes features and target.

    Args:
        path: Optional CSV with a header row, the ten feature columns and a
            ``target`` column. When omitted, ``load_diabetes()`` is used.

    Returns:
        A tuple ``(X, y)``: float32 array of shape (n, 10) and float array (n,).
    """
    if not path:
        data = load_diabetes()
        return data.data.astype(np.float32), data.target.astype(np.float64)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    X = np.array([[float(r[c]) for c in FEATURES] for r in rows], dtype=np.float32)
    y = np.array([float(r["target"]) for r in rows], dtype=np.float64)
    return X, y


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpha", type=float, default=1.0, help="L2 regularisation strength")
    parser.add_argument("--data", default=None, help="CSV file (default: sklearn's bundled diabetes)")
    args = parser.parse_args()

    X, y = load_data(args.data)
    print(f"Loaded {len(X)} rows from {args.data or 'sklearn.datasets.load_diabetes()'}")
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)

    with mlflow.start_run():
        mlflow.log_param("alpha", args.alpha)

        model = Pipeline([("scaler", StandardScaler()), ("ridge", Ridge(alpha=args.alpha))])
        model.fit(X_train, y_train)
        pred = model.predict(X_test)
        r2 = r2_score(y_test, pred)
        rmse = float(np.sqrt(mean_squared_error(y_test, pred)))
        print(f"Trained Ridge(alpha={args.alpha}): r2={r2:.4f} rmse={rmse:.2f}")
        mlflow.log_metric("r2", r2)
        mlflow.log_metric("rmse", rmse)

        with tempfile.TemporaryDirectory() as tmp:
            coef_path = os.path.join(tmp, "coefficients.json")
            ridge = model.named_steps["ridge"]
            with open(coef_path, "w") as f:
                json.dump(
                    {"intercept": float(ridge.intercept_), "coefficients": dict(zip(FEATURES, ridge.coef_.tolist()))},
                    f,
                    indent=2,
                )
            mlflow.log_artifact(coef_path)

        onx = to_onnx(
            model, initial_types=[("input", FloatTensorType([None, len(FEATURES)]))], target_opset=TARGET_OPSET
        )
        os.makedirs(OUTPUT_DIR, exist_ok=True)
        with open(os.path.join(OUTPUT_DIR, "model.onnx"), "wb") as f:
            f.write(onx.SerializeToString())
        metadata = {
            "inputs": [{"name": "input", "shape": [None, len(FEATURES)], "dtype": "float32"}],
            "feature_names": FEATURES,
            "classes": None,
        }
        with open(os.path.join(OUTPUT_DIR, "model.json"), "w") as f:
            json.dump(metadata, f, indent=2)
        print(f"Wrote {OUTPUT_DIR}/model.onnx and {OUTPUT_DIR}/model.json")


if __name__ == "__main__":
    main()
