"""The generated scoring script of a no-code MLflow deployment, in the ``init()``/``run()`` contract.

As the script Azure ML generates for an ``mlflow_model`` deployed without ``code_configuration``:
``init()`` loads the model under ``AZUREML_MODEL_DIR`` with ``mlflow.pyfunc.load_model``; ``run()`` takes
the body ``{"input_data": ...}``, where ``input_data`` is

* pandas' split orientation, ``{"columns": [...], "index": [...], "data": [[...]]}`` (``index`` optional);
* a list of rows, ``[[...], ...]``: a DataFrame with the signature's columns when the model's signature
  names columns, else an array;
* a mapping of names to values, ``{"a": [...], "b": [...]}``: the columns of a DataFrame, or named
  tensors for a tensor signature;

and answers the predictions as JSON (an array or series as a list, a DataFrame as a list of records).
A body of another shape is answered 400 naming the expected one; the model refusing the input
(a missing column, a wrong type) is a 400 with MLflow's message.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import load_model

from emulator.serving.errors import BadRequest
from emulator.serving.messages import error_response

logger = logging.getLogger("azmlinfsrv.mlflow_scoring")

SHAPE = (
    'a JSON object {"input_data": ...} with, under input_data, pandas\' split orientation '
    '({"columns": [...], "index": [...], "data": [[...]]}), a list of rows ([[...], ...]) or a mapping of '
    'column names to values ({"<column>": [...]})'
)
model = None
_columns: list[str] | None = None  # the signature's column names; None: a tensor signature or none


def init() -> None:
    """Loads the MLflow model folder under ``AZUREML_MODEL_DIR`` (the folder holding ``MLmodel``)."""
    global model, _columns
    root = os.environ["AZUREML_MODEL_DIR"]
    folder = next((d for d, _, files in os.walk(root, followlinks=True) if "MLmodel" in files), root)
    model = load_model(folder)
    schema = model.metadata.get_input_schema()
    _columns = schema.input_names() if schema is not None and not schema.is_tensor_spec() else None
    if _columns is not None and not all(isinstance(c, str) for c in _columns):
        _columns = None
    logger.info("Loaded the MLflow model in %s (input columns: %s)", folder, _columns or "none named")


def run(raw_data: str) -> Any:
    try:
        features = _features(raw_data)
    except BadRequest as exc:
        return error_response(exc)
    try:
        predictions = model.predict(features)
    except MlflowException as exc:  # the input does not fit the model's signature
        return error_response(BadRequest("InvalidInput", f"The model refused the input: {exc.message}"))
    return _jsonable(predictions)


def _features(raw_data: str) -> Any:
    try:
        body = json.loads(raw_data) if raw_data else None
    except ValueError as exc:
        raise BadRequest("InvalidJson", f"The body is not valid JSON ({exc}); send {SHAPE}.") from None
    if not isinstance(body, dict) or "input_data" not in body:
        raise BadRequest("MissingInputData", f"The body has no top-level key 'input_data'; send {SHAPE}.")
    data = body["input_data"]
    try:
        if isinstance(data, dict) and "data" in data:
            if not isinstance(data["data"], list) or not isinstance(data.get("columns", []), list):
                raise ValueError("'data' and 'columns' must be lists")
            return pd.DataFrame(data=data["data"], columns=data.get("columns"), index=data.get("index"))
        if isinstance(data, list) and data:
            if _columns is None:
                return np.asarray(data)
            return pd.DataFrame(data, columns=_columns)
        if isinstance(data, dict) and data:
            if _columns is None:
                return {str(k): np.asarray(v) for k, v in data.items()}
            return pd.DataFrame({k: v if isinstance(v, list) else [v] for k, v in data.items()})
    except (ValueError, TypeError) as exc:
        width = f" ({len(_columns)} columns: {', '.join(_columns)})" if _columns else ""
        raise BadRequest("InvalidInput", f"input_data does not fit the model{width}: {exc}; send {SHAPE}.") from None
    raise BadRequest("InvalidInput", f"input_data is {type(data).__name__} {json.dumps(data)[:80]}; send {SHAPE}.")


def _jsonable(predictions: Any) -> Any:
    if isinstance(predictions, pd.DataFrame):
        return json.loads(predictions.to_json(orient="records"))
    if isinstance(predictions, (pd.Series, np.ndarray)):
        return np.asarray(predictions).tolist()
    if isinstance(predictions, dict):
        return {k: _jsonable(v) for k, v in predictions.items()}
    return predictions
