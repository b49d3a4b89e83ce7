"""Iris classes from a numpy array of measurements, with the input and output declared by inference-schema."""

import logging
import os

import joblib
import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema

model = None
category_list = np.array(["Setosa", "Versicolor", "Virginica"])


def init():
    global model
    model = joblib.load(os.path.join(os.getenv("AZUREML_MODEL_DIR", ""), "models", "iris.pkl"))


@input_schema(param_name="iris", param_type=NumpyParameterType(np.array([[7.2, 3.2, 6.0, 1.8]])))
@output_schema(output_type=StandardPythonParameterType({"Category": ["Virginica"]}))
def run(iris):
    logging.info("scoring %s", type(iris))
    best = np.argmax(model.predict_proba(iris), axis=1)
    return {"Category": np.choose(best, category_list).flatten().tolist()}
