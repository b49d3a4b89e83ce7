"""Trains iris in Azure's curated scikit-learn environment and saves an MLflow model.

It also imports what that environment is documented to hold (its conda_dependencies list), as
training scripts written for it do.
"""

import argparse
import importlib

import mlflow
import mlflow.sklearn
import pandas as pd
from sklearn.linear_model import LogisticRegression

parser = argparse.ArgumentParser()
parser.add_argument("--data")
parser.add_argument("--model_output")
args = parser.parse_args()

for module in [
    "numpy",
    "scipy",
    "pandas",
    "sklearn",
    "joblib",
    "matplotlib",
    "psutil",
    "tqdm",
    "azureml.core",
    "azureml.mlflow",
    "azureml_inference_server_http",
]:
    loaded = importlib.import_module(module)
    print(f"import {module}: ok {getattr(loaded, '__version__', '')}")

df = pd.read_csv(args.data)
X, y = df.drop(columns=["species"]), df["species"]
model = LogisticRegression(max_iter=500).fit(X, y)
accuracy = model.score(X, y)
mlflow.log_metric("training_accuracy", accuracy)
print(f"scikit-learn {importlib.import_module('sklearn').__version__}")
mlflow.sklearn.save_model(model, args.model_output)
print("saved the MLflow model")
