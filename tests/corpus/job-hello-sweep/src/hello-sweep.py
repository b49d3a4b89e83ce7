"""One sweep trial: logs its hyperparameters and a random metric for the sweep to minimise."""

import argparse
import random

import mlflow

parser = argparse.ArgumentParser()
parser.add_argument("--A", type=float, default=0.5)
parser.add_argument("--B", type=str, default="hello world")
parser.add_argument("--C", type=float, default=1.0)
args = parser.parse_args()

print(f"A: {args.A}\nB: {args.B}\nC: {args.C}")
mlflow.log_param("A", args.A)
mlflow.log_param("B", args.B)
mlflow.log_param("C", args.C)
mlflow.log_metric("random_metric", random.random())
