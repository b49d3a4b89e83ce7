"""The built-in scorer: a deployment with an ONNX model and no scoring script.

At start-up it finds the single ``*.onnx`` file under ``AZUREML_MODEL_DIR`` and
loads it once into an ONNX Runtime session. Each request is checked against the
model's input signature (``model_inputs``) before the session runs, and the
answer is the model's first output as a JSON list: for a skl2onnx classifier,
the predicted labels (the probabilities output is not returned).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np
import onnxruntime as ort
from flask import Request, Response

from .errors import ScoringError, StartupError
from .messages import decode_json, json_response, query_parameters, read_body, require_json_content_type
from .model_inputs import ELEMENT_TYPES, ModelInput, example_body, feeds_from_body

FIX = "register an ONNX model or add a scoring script with code_configuration"


def find_onnx_model(model_dir: str | None) -> str:
    """The path of the one ``*.onnx`` file under ``model_dir`` (searched recursively).

    Raises:
        StartupError: no model folder, no ONNX file, or more than one; the message says what to do.
    """
    if not model_dir:
        raise StartupError(
            "nothing to serve: the deployment has neither a scoring script "
            f"(AZUREML_ENTRY_SCRIPT) nor a model (AZUREML_MODEL_DIR): {FIX}"
        )
    if not os.path.isdir(model_dir):
        raise StartupError(f"AZUREML_MODEL_DIR={model_dir} is not a folder: {FIX}")
    found, others = [], []
    for folder, _, files in os.walk(model_dir, followlinks=True):
        for name in sorted(files):
            path = os.path.join(folder, name)
            (found if name.lower().endswith(".onnx") else others).append(path)
    if len(found) == 1:
        return found[0]
    if found:
        names = ", ".join(os.path.relpath(p, model_dir) for p in sorted(found))
        raise StartupError(
            f"{len(found)} ONNX models under {model_dir} ({names}); the built-in scorer serves "
            "exactly one: register a model with a single .onnx file or add a scoring script "
            "with code_configuration"
        )
    if not others:
        raise StartupError(f"the model folder {model_dir} is empty: {FIX}")
    names = ", ".join(os.path.relpath(p, model_dir) for p in others[:5]) + (" ..." if len(others) > 5 else "")
    first = os.path.basename(others[0])
    raise StartupError(
        f"{first} is not an ONNX model (the model folder {model_dir} holds {names}; the "
        f"built-in scorer serves *.onnx files only): {FIX}"
    )


class OnnxScorer:
    """Serves one ONNX model.

    Attributes:
        model_path: the ``.onnx`` file served.
        inputs: the model's input signature.
    """

    raw_http = False  # OPTIONS /score is answered by the server, as for an undecorated run()

    def __init__(self, model_path: str, max_rows: int):
        options = ort.SessionOptions()
        # The server already runs requests in parallel threads; one thread per run avoids
        # oversubscribing the cores (and is the fastest setting for small tabular models).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail / InvalidProtobuf / ... types
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StartupError(
                f"{os.path.basename(model_path)} is not an ONNX model ONNX Runtime can load "
                f"({model_path}: {reason}): {FIX}"
            ) from None
        self.model_path = model_path
        self.max_rows = max_rows
        self.inputs = [ModelInput.from_onnx(arg) for arg in self.session.get_inputs()]
        self.output = self.session.get_outputs()[0]
        self._output_names = [self.output.name]
        self._example = example_body(self.inputs)

    @classmethod
    def from_model_dir(cls, model_dir: str | None, max_rows: int) -> OnnxScorer:
        return cls(find_onnx_model(model_dir), max_rows)

    def describe(self) -> str:
        inputs = ", ".join(i.describe() for i in self.inputs)
        return f"built-in ONNX scorer for {self.model_path}: {inputs}; returns output {self.output.name!r}"

    def score(self, request: Request) -> Response:
        """Answers one ``/score`` request."""
        if request.method == "GET":
            text, exec_ms = self.answer(query_parameters(request), maybe_bools=True)
        else:
            require_json_content_type(request)
            text, exec_ms = self.score_json(read_body(request))
        return json_response(text, exec_ms=exec_ms)

    def score_json(self, raw: bytes) -> tuple[str, float]:
        """The answer to a ``POST /score`` body already checked to be JSON: the JSON text and the milliseconds
        the model ran. Raises ScoringError naming what does not fit."""
        body = decode_json(raw, self._example)
        # numpy reads true as 1: a body without the tokens cannot smuggle booleans into a batch.
        return self.answer(body, maybe_bools=b"true" in raw or b"false" in raw)

    def answer(self, body: Any, maybe_bools: bool) -> tuple[str, float]:
        feeds = feeds_from_body(body, self.inputs, self.max_rows, maybe_bools)
        started = time.perf_counter()
        result = self.predict(feeds)
        elapsed_ms = (time.perf_counter() - started) * 1000
        try:
            return json.dumps(result, allow_nan=False), elapsed_ms
        except ValueError:
            raise ScoringError(
                500,
                "ModelOutputInvalid",
                f"the model's output {self.output.name!r} holds NaN or Infinity, which JSON cannot carry",
            ) from None

    def predict(self, feeds: dict[str, np.ndarray]) -> list:
        """Runs the model; returns its first output as plain Python lists."""
        try:
            output = self.session.run(self._output_names, feeds)[0]
        except Exception as exc:
            name = type(exc).__name__
            status, code = (400, "ModelInputInvalid") if name == "InvalidArgument" else (500, "ModelRunFailed")
            raise ScoringError(status, code, f"ONNX Runtime could not run the model: {exc}") from None
        if isinstance(output, np.ndarray):
            return output.tolist()
        return [dict(item) if isinstance(item, dict) else item for item in output]  # ZipMap: list of dicts

    def service_schemas(self, version: str) -> tuple[dict, dict]:
        """The swagger ``ServiceInput`` and ``ServiceOutput`` schemas, from the model's signature."""
        inputs = self.inputs
        if len(inputs) == 1:
            data = _tensor_schema(inputs[0].dims, inputs[0].element_type)
        else:
            data = {
                "type": "object",
                "required": [i.name for i in inputs],
                "properties": {i.name: _tensor_schema(i.dims, i.element_type) for i in inputs},
            }
        service_input = {
            "type": "object",
            "description": (
                "The model's inputs: " + "; ".join(i.describe() for i in inputs) + ". Send them under "
                '"input_data" (or "data", "inputs"); a single input also takes MLflow\'s split '
                'orientation {"columns": [...], "index": [...], "data": [[...]]}.'
            ),
            "properties": {"input_data": data},
            "required": ["input_data"],
            "example": self._example,
            "x-model-inputs": [{"name": i.name, "shape": list(i.dims), "element_type": i.element_type} for i in inputs],
        }
        output_type = ELEMENT_TYPES.get(self.output.type)
        if output_type:
            dims = tuple(d if isinstance(d, int) and d > 0 else None for d in (self.output.shape or ()))
            service_output = _tensor_schema(dims, output_type)
        else:
            service_output = {"type": "array", "items": {"type": "object"}}
        service_output["description"] = f"The model's output {self.output.name!r} ({self.output.type})."
        return service_input, service_output


_SCHEMA_TYPES = {
    "float32": ("number", "float"),
    "float64": ("number", "double"),
    "float16": ("number", "float"),
    "int32": ("integer", "int32"),
    "int64": ("integer", "int64"),
    "bool": ("boolean", None),
    "string": ("string", None),
}


def _tensor_schema(dims: tuple[int | None, ...], element_type: str) -> dict:
    json_type, fmt = _SCHEMA_TYPES.get(element_type, ("integer", None))
    schema: dict[str, Any] = {"type": json_type}
    if fmt:
        schema["format"] = fmt
    for d in reversed(dims):
        schema = {"type": "array", "items": schema}
        if d:
            schema.update(minItems=d, maxItems=d)
    return schema
