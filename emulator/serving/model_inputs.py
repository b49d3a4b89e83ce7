"""An ONNX model's input signature, and request bodies checked against it.

The built-in scorer answers a malformed request with a 400 that names the exact
problem (which row, which column, which value) instead of passing it to ONNX
Runtime. The common case stays cheap: ``numpy.array`` builds the whole batch in
C, and only when the result does not fit the signature does a slower walk over
the JSON find the first offending value to name it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import BadRequest, StartupError

DATA_KEYS = ("input_data", "data", "inputs")

ELEMENT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
    "tensor(string)": "string",
}
# What numpy.array(...) may infer for a well-formed batch of each kind of element.
_FITTING_KINDS = {"number": "iuf", "integer": "iuf", "boolean": "b", "string": ""}


@dataclass(frozen=True)
class ModelInput:
    """One input of the model.

    Attributes:
        name: the input's name in the graph (``input`` for skl2onnx models).
        dims: the shape; None for a free dimension (the batch, or a symbolic one).
        element_type: ``float32``, ``int64``, ``bool``, ``string`` ...
    """

    name: str
    dims: tuple[int | None, ...]
    element_type: str

    @classmethod
    def from_onnx(cls, node_arg: Any) -> ModelInput:
        """Builds it from an ``onnxruntime.NodeArg``; StartupError for inputs that are not tensors."""
        element_type = ELEMENT_TYPES.get(node_arg.type)
        if element_type is None:
            raise StartupError(
                f"model input {node_arg.name!r} has type {node_arg.type}, which the built-in "
                "scorer cannot build from JSON: add a scoring script with code_configuration"
            )
        dims = tuple(d if isinstance(d, int) and d > 0 else None for d in (node_arg.shape or ()))
        return cls(node_arg.name, dims, element_type)

    @property
    def kind(self) -> str:
        """``number``, ``integer``, ``boolean`` or ``string``: what a JSON value must be."""
        if self.element_type.startswith("float"):
            return "number"
        if self.element_type in ("bool", "string"):
            return {"bool": "boolean", "string": "string"}[self.element_type]
        return "integer"

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(object if self.element_type == "string" else self.element_type)

    @property
    def shape_text(self) -> str:
        """``[N, 4]``: N for a free batch dimension, ``?`` for other free ones."""
        names = ["N" if d is None and i == 0 else "?" if d is None else str(d) for i, d in enumerate(self.dims)]
        return f"[{', '.join(names)}]"

    def describe(self) -> str:
        return f"input {self.name!r} ({self.element_type} tensor of shape {self.shape_text})"

    def example(self) -> Any:
        """A one-row value of the right shape and type (zeros), for messages and swagger."""
        leaf = {"number": 0.0, "integer": 0, "boolean": False, "string": ""}[self.kind]
        value: Any = leaf
        for d in reversed(self.dims):
            value = [value] * (d or 1)
        return value

    def to_array(self, value: Any, where: str, max_rows: int, maybe_bools: bool = True) -> np.ndarray:
        """Checks one input's JSON value against the signature and converts it.

        Args:
            value: the decoded JSON value for this input.
            where: how messages name the value (``"data"``, ``input "petal_width"``).
            max_rows: the most rows (first dimension) accepted.
            maybe_bools: False when the request body holds no ``true``/``false`` token,
                which lets a numeric batch skip the exact walk (numpy reads True as 1).

        Returns:
            An array of the input's dtype and shape.

        Raises:
            BadRequest: naming the first problem found.
        """
        if not isinstance(value, list):
            raise BadRequest(
                "InvalidInputShape",
                f"{where} must be a list of rows, e.g. {_json(self.example())}; got {_describe(value)}",
            )
        if not value:
            raise BadRequest(
                "InvalidInputShape", f"{where} is an empty list: send at least one row, e.g. {_json(self.example())}"
            )
        if len(value) > max_rows:
            raise BadRequest(
                "TooManyRows",
                f"{where} has {len(value)} rows; the limit is {max_rows} rows per "
                "request (AMLEMU_MAX_ROWS): split the batch into smaller requests",
            )
        try:
            array = np.array(value)
        except (ValueError, TypeError, OverflowError):  # ragged or mixed nesting
            array = None
        if array is None or not self._fits(array) or (maybe_bools and self.kind != "boolean"):
            problem = self._find_problem(value, ())
            if problem:
                raise BadRequest(problem[0], f"{where}: {problem[1]}")
            if array is None:
                raise BadRequest("InvalidInputShape", f"{where} does not fit {self.describe()}")
        return self._convert(array, where)

    # -- the fast path ------------------------------------------------------------------------------
    def _fits(self, array: np.ndarray) -> bool:
        if array.dtype.kind not in _FITTING_KINDS[self.kind] or array.ndim != len(self.dims):
            return False
        return all(want is None or want == got for want, got in zip(self.dims, array.shape))

    def _convert(self, array: np.ndarray, where: str) -> np.ndarray:
        if self.kind == "string":
            return array.astype(object)
        if self.kind == "integer":
            if array.dtype.kind == "f":
                bad = ~np.isfinite(array) | (array != np.floor(array))
                if bad.any():
                    at = tuple(int(i) for i in np.argwhere(bad)[0])
                    raise BadRequest(
                        "InvalidInputValue",
                        f"{where}: {self._at(at)}: {_describe(array[at].item())} "
                        f"is not a whole number; {self.describe()} takes integers",
                    )
            info = np.iinfo(self.dtype)
            bad = (array < info.min) | (array > info.max)
            if bad.any():
                at = tuple(int(i) for i in np.argwhere(bad)[0])
                raise BadRequest(
                    "InvalidInputValue",
                    f"{where}: {self._at(at)}: {_describe(array[at].item())} is out of range for {self.element_type}",
                )
        with np.errstate(over="ignore"):  # an overflow becomes inf, reported just below
            converted = array.astype(self.dtype, copy=False)
        if self.kind == "number" and not np.isfinite(converted).all():
            at = tuple(int(i) for i in np.argwhere(~np.isfinite(converted))[0])
            raise BadRequest(
                "InvalidInputValue",
                f"{where}: {self._at(at)}: {self._leaf_problem(array[at].item()) or 'is not finite'}",
            )
        return converted

    # -- the exact walk, only for bodies that do not fit --------------------------------------------
    def _find_problem(self, value: Any, path: tuple[int, ...]) -> tuple[str, str] | None:
        depth = len(path)
        if depth == 0 and _rank(value) > len(self.dims):  # e.g. [[[...]]]: "got 1 feature" would mislead
            return "InvalidInputShape", (
                f"a {_rank(value)}-D array, but {self.describe()} has rank {len(self.dims)}: "
                f"send e.g. {_json(self.example())}"
            )
        if depth == len(self.dims):
            if isinstance(value, list):
                return "InvalidInputShape", (
                    f"{self._at(path)}: expected {self._leaf_text()}, got a list; "
                    f"{self.describe()} has rank {len(self.dims)}"
                )
            problem = self._leaf_problem(value)
            return ("InvalidInputValue", f"{self._at(path)}: {problem}") if problem else None
        if not isinstance(value, list):
            expected = (
                f"a list of {self.dims[-1]} features" if depth == len(self.dims) - 1 and self.dims[-1] else "a list"
            )
            return "InvalidInputShape", (
                f"{self._at(path)}: expected {expected}, got {_describe(value)}; "
                f"{self.describe()} takes e.g. {_json(self.example())}"
            )
        if depth == 0 and self.dims[0] is not None and len(value) != self.dims[0]:
            return "InvalidInputShape", f"{len(value)} rows, but {self.describe()} takes exactly {self.dims[0]}"
        if depth + 1 < len(self.dims):
            problem = self._length_problem(value, path)
            if problem:
                return "InvalidInputShape", problem
        for i, item in enumerate(value):
            problem = self._find_problem(item, path + (i,))
            if problem:
                return problem
        return None

    def _length_problem(self, value: list, path: tuple[int, ...]) -> str | None:
        """Children of ``value`` that are lists must all have the input's length at that level."""
        want = self.dims[len(path) + 1]
        lengths = [(i, len(v)) for i, v in enumerate(value) if isinstance(v, list)]
        uniform = len({n for _, n in lengths}) <= 1
        unit = "features per row" if len(self.dims) == 2 else "values"
        if uniform:
            if want is not None and lengths and lengths[0][1] != want:
                return f"expected {want} {unit}, got {lengths[0][1]}; {self.describe()}"
            return None
        expected = want if want is not None else lengths[0][1]
        i, n = next((i, n) for i, n in lengths if n != expected)
        j, m = next((j, m) for j, m in lengths if m != n)
        return f"ragged rows: {self._at(path + (i,))} has {n} values but {self._at(path + (j,))} has {m}; " + (
            f"expected {want} {unit}" if want is not None else "every row needs the same length"
        )

    def _leaf_problem(self, value: Any) -> str | None:
        kind = self.kind
        if kind == "string":
            return None if isinstance(value, str) else f"expected a string, got {_describe(value)}"
        if kind == "boolean":
            return None if isinstance(value, bool) else f"expected true or false, got {_describe(value)}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected {self._leaf_text()}, got {_describe(value)}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{_describe(value)} is not a finite number: NaN and Infinity are not valid input"
        if kind == "integer":
            if isinstance(value, float) and not value.is_integer():
                return f"{_describe(value)} is not a whole number; {self.describe()} takes integers"
            info = np.iinfo(self.dtype)
            if not info.min <= value <= info.max:
                return f"{_describe(value)} is out of range for {self.element_type}"
            return None
        if abs(value) > float(np.finfo(self.dtype).max):
            return f"{_describe(value)} is out of range for {self.element_type}"
        return None

    def _leaf_text(self) -> str:
        return {"number": "a number", "integer": "an integer", "boolean": "true or false", "string": "a string"}[
            self.kind
        ]

    def _at(self, path: tuple[int, ...]) -> str:
        if len(self.dims) <= 2 and path:
            names = ("row", "column")
            return ", ".join(f"{names[k]} {i}" for k, i in enumerate(path))
        return "at " + "".join(f"[{i}]" for i in path) if path else "value"


def feeds_from_body(
    body: Any, inputs: list[ModelInput], max_rows: int, maybe_bools: bool = True
) -> dict[str, np.ndarray]:
    """Finds the model's inputs in a decoded request body and converts each one.

    Accepted shapes::

        {"data": [[...], ...]}                     one input, a list of rows
        {"input_data": [[...], ...]}               the same
        {"input_data": {"columns": [...], "index": [...], "data": [[...], ...]}}
                                                   MLflow's split orientation; with several
                                                   inputs, columns may name the inputs
        {"input_data": {"<input name>": [...], ...}}   named inputs ("inputs" works too)

    Raises:
        BadRequest: naming the problem and the shape to send.
    """
    if not isinstance(body, dict):
        raise BadRequest(
            "InvalidRequestBody",
            f"request body must be a JSON object such as {_json(example_body(inputs))}; got {_describe(body)}",
        )
    keys = [k for k in DATA_KEYS if k in body]
    if not keys:
        got = ", ".join(f'"{k}"' for k in list(body)[:10]) or "none"
        raise BadRequest(
            "MissingInputData",
            f"request body has no input data: expected one of the keys "
            f"{_or(DATA_KEYS)}; got keys {got}. "
            f"Example: {_json(example_body(inputs))}",
        )
    if len(keys) > 1:
        raise BadRequest("InvalidRequestBody", f"request body has both {_or(keys, 'and')}: send only one of them")
    key = keys[0]
    payload = body[key]
    if isinstance(payload, list):
        if len(inputs) > 1:
            raise BadRequest(
                "InvalidRequestBody",
                f"the model has {len(inputs)} inputs "
                f"({', '.join(i.name for i in inputs)}): send an object keyed "
                f"by input name, e.g. {_json(example_body(inputs))}",
            )
        return {inputs[0].name: inputs[0].to_array(payload, f'"{key}"', max_rows, maybe_bools)}
    if not isinstance(payload, dict):
        raise BadRequest(
            "InvalidRequestBody",
            f'"{key}" must be a list of rows or an object; '
            f"got {_describe(payload)}. Example: {_json(example_body(inputs))}",
        )
    if "data" in payload or "columns" in payload or "index" in payload:
        return _split_orientation(payload, key, inputs, max_rows, maybe_bools)
    return _named_inputs(payload, key, inputs, max_rows, maybe_bools)


def example_body(inputs: list[ModelInput]) -> dict:
    """The smallest valid request body for the model."""
    if len(inputs) == 1:
        return {"input_data": inputs[0].example()}
    return {"input_data": {i.name: i.example() for i in inputs}}


def _split_orientation(
    payload: dict, key: str, inputs: list[ModelInput], max_rows: int, maybe_bools: bool
) -> dict[str, np.ndarray]:
    where = f'"{key}"'
    if "data" not in payload:
        raise BadRequest(
            "MissingInputData",
            f'{where} has "columns" or "index" but no "data": send '
            '{"columns": [...], "index": [...], "data": [[...], ...]}',
        )
    data, columns, index = payload["data"], payload.get("columns"), payload.get("index")
    for name, value in (("columns", columns), ("index", index)):
        if value is not None and not isinstance(value, list):
            raise BadRequest("InvalidRequestBody", f'{where} "{name}" must be a list; got {_describe(value)}')
    if index is not None and isinstance(data, list) and len(index) != len(data):
        raise BadRequest(
            "InvalidInputShape", f'{where} "index" has {len(index)} labels but "data" has {len(data)} rows'
        )
    names = {i.name for i in inputs}
    if len(inputs) > 1:
        if columns is None or set(columns) != names or len(columns) != len(names):
            raise BadRequest(
                "InvalidRequestBody",
                f'the model has {len(inputs)} inputs: {where} "columns" must '
                f"name each of them once ({', '.join(sorted(names))}); got "
                f"{_json(columns)}",
            )
        if not isinstance(data, list) or not all(isinstance(r, list) and len(r) == len(columns) for r in data):
            raise BadRequest(
                "InvalidInputShape",
                f'{where} "data" must be a list of rows with one value per column ({len(columns)} columns)',
            )
        by_name = {i.name: i for i in inputs}
        feeds = {}
        for j, name in enumerate(columns):
            spec = by_name[name]
            column = [row[j] for row in data]
            value = [[v] for v in column] if len(spec.dims) == 2 else column
            feeds[name] = spec.to_array(value, f'input "{name}" (column {j})', max_rows, maybe_bools)
        return feeds
    spec = inputs[0]
    if columns is not None and len(spec.dims) == 2 and spec.dims[1] and len(columns) != spec.dims[1]:
        raise BadRequest(
            "InvalidInputShape",
            f'{where} "columns" names {len(columns)} columns but the model '
            f"expects {spec.dims[1]} features per row; {spec.describe()}",
        )
    return {spec.name: spec.to_array(data, f'{where} "data"', max_rows, maybe_bools)}


def _named_inputs(
    payload: dict, key: str, inputs: list[ModelInput], max_rows: int, maybe_bools: bool
) -> dict[str, np.ndarray]:
    names = [i.name for i in inputs]
    unknown = [k for k in payload if k not in names]
    missing = [n for n in names if n not in payload]
    if unknown or missing:
        problem = f"unknown input {_json(unknown[0])}" if unknown else f"missing input {_json(missing[0])}"
        raise BadRequest(
            "MissingInputData" if missing and not unknown else "InvalidRequestBody",
            f'"{key}": {problem}; the model\'s inputs are {", ".join(names)}. Example: {_json(example_body(inputs))}',
        )
    return {i.name: i.to_array(payload[i.name], f'input "{i.name}"', max_rows, maybe_bools) for i in inputs}


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {_json(shown)}"
    if isinstance(value, float):
        return (
            "NaN"
            if math.isnan(value)
            else ("Infinity" if value > 0 else "-Infinity")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, int):
        return str(value) if abs(value) < 10**30 else f"{str(value)[:12]}... ({len(str(value))} digits)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _rank(value: Any) -> int:
    """How deeply lists nest, following first elements: ``[[[1, 2]]]`` has rank 3."""
    rank = 0
    while isinstance(value, list):
        rank, value = rank + 1, (value[0] if value else None)
    return rank


def _json(value: Any) -> str:
    return json.dumps(value)


def _or(names, word: str = "or") -> str:
    quoted = [f'"{n}"' for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} {word} {quoted[-1]}"
