"""Trains the samples' regression model: 10 features, the target `factor` times their sum.

The deployments load it with joblib from `model/sklearn_regression_model.pkl`, so it is written
where the job's outputs are collected (`./outputs/model/`) in the environment the deployment will
use: a pickle is only good for the scikit-learn and numpy it was written with.
"""

import argparse
import os

import joblib
import numpy as np
from sklearn.linear_model import LinearRegression

parser = argparse.ArgumentParser()
parser.add_argument("--factor", type=float, default=1.0)
parser.add_argument("--model-dir", default="outputs/model")
args = parser.parse_args()

rng = np.random.default_rng(7)
features = rng.uniform(0, 10, size=(50, 10))
target = args.factor * features.sum(axis=1)
model = LinearRegression().fit(features, target)

os.makedirs(args.model_dir, exist_ok=True)
joblib.dump(model, os.path.join(args.model_dir, "sklearn_regression_model.pkl"))
print(f"trained: factor {args.factor}, R^2 {model.score(features, target):.4f}, numpy {np.__version__}")
