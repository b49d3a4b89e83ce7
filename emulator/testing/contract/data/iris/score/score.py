"""Scoring script for the iris ONNX model (azureml-inference-server-http style).

The server calls ``init()`` once, then ``run(raw_data)`` for every request.
Accepted request bodies::

    {"data": [[5.1, 3.5, 1.4, 0.2], ...]}
    {"input_data": {"columns": [...], "data": [[5.1, 3.5, 1.4, 0.2], ...]}}
    {"input_data": [[5.1, 3.5, 1.4, 0.2], ...]}

The response is a list of predicted class labels (ints 0..2).
"""

import glob
import json
import logging
import os

import numpy as np
import onnxruntime as ort

session = None


def init():
    """Loads model.onnx from anywhere under AZUREML_MODEL_DIR."""
    global session
    model_dir = os.environ["AZUREML_MODEL_DIR"]
    matches = sorted(glob.glob(os.path.join(model_dir, "**", "model.onnx"), recursive=True))
    if not matches:
        raise FileNotFoundError(f"no model.onnx found under {model_dir}")
    session = ort.InferenceSession(matches[0], providers=["CPUExecutionProvider"])
    logging.info("Loaded %s", matches[0])


def parse_rows(raw_data, n_features):
    """Extracts a float32 matrix from a request body.

    Args:
        raw_data: JSON text (str or bytes) or an already-decoded dict.
        n_features: The number of columns the model expects.

    Returns:
        A float32 array of shape (n_rows, n_features).

    Raises:
        ValueError: If the body is malformed or has the wrong number of features.
    """
    body = json.loads(raw_data) if isinstance(raw_data, (str, bytes, bytearray)) else raw_data
    if not isinstance(body, dict):
        raise ValueError('expected a JSON object with "data" or "input_data"')
    rows = body.get("data", body.get("input_data"))
    if isinstance(rows, dict):
        rows = rows.get("data")
    if not isinstance(rows, list) or not rows:
        raise ValueError('expected {"data": [[...], ...]} or {"input_data": {"data": [[...], ...]}}')
    try:
        X = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"expected rows of {n_features} numbers each: {exc}") from None
    if X.ndim == 1:
        X = X.reshape(1, -1)
    if X.ndim != 2 or X.shape[1] != n_features:
        got = X.shape[1] if X.ndim == 2 else f"an array of shape {X.shape}"
        raise ValueError(f"expected {n_features} features per row, got {got}")
    return X


def run(raw_data):
    """Predicts iris species.

    Args:
        raw_data: The request body.

    Returns:
        A list of predicted labels (ints).
    """
    model_input = session.get_inputs()[0]
    X = parse_rows(raw_data, model_input.shape[1])
    label = session.run(None, {model_input.name: X})[0]
    return [int(v) for v in label]
