"""Logs a parameter, a metric and an artifact with MLflow, inside an Azure ML job."""

import random

import mlflow

mlflow.log_param("hello_param", "world")
mlflow.log_metric("hello_metric", random.random())
with open("helloworld.txt", "w") as f:
    f.write("hello world\n")
mlflow.log_artifact("helloworld.txt")
