"""Scores the regression model (the azureml-inference-server-http contract: init once, run per request)."""

import json
import logging
import os

import joblib
import numpy


def init():
    global model
    # AZUREML_MODEL_DIR is azureml-models/<name>/<version>; a registered folder keeps its name
    path = os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model/sklearn_regression_model.pkl")
    model = joblib.load(path)
    logging.info("model 1: loaded %s", path)


def run(raw_data):
    logging.info("model 1: request received")
    rows = numpy.array(json.loads(raw_data)["data"])
    return model.predict(rows).tolist()
