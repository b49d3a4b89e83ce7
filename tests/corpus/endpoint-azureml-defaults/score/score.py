"""Serves the iris classifier: {"data": [[sepal_length, sepal_width, petal_length, petal_width], ...]}."""

import json
import os

import joblib
import numpy as np


def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "iris_model.pkl"))
    print("iris model loaded")


def run(raw_data):
    rows = np.array(json.loads(raw_data)["data"])
    return {"predictions": model.predict(rows).tolist()}
