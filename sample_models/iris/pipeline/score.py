"""Score prep's test.csv with train's model.onnx (ONNX Runtime); write predictions.csv and metrics.json.

Usage: python score.py --model <folder> --prepared <folder> --out <folder>
"""

import argparse
import csv
import json
import os

import numpy as np
import onnxruntime as ort

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="train's output folder (model.onnx)")
    parser.add_argument("--prepared", required=True, help="prep's output folder (test.csv)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(os.path.join(args.prepared, "test.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    X = np.array([[float(r[c]) for c in FEATURES] for r in rows], dtype=np.float32)
    y = np.array([int(float(r["species"])) for r in rows])
    session = ort.InferenceSession(os.path.join(args.model, "model.onnx"), providers=["CPUExecutionProvider"])
    labels = session.run(["label"], {"input": X})[0]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "predictions.csv"), "w", newline="") as f:
        csv.writer(f).writerows([["species", "predicted"], *zip(y.tolist(), labels.tolist())])
    metrics = {"test_rows": len(y), "test_accuracy": float((labels == y).mean())}
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    print(f"score: {metrics}")


if __name__ == "__main__":
    main()
