"""The scoring server (``python -m emulator.serving``), over real HTTP on loopback.

Each server is a real subprocess started once per module; tests talk to it with
``requests``. The iris model is trained and converted to ONNX the way
``sample_models/iris/src/train.py`` does it.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.conftest import ROOT, SAMPLES

IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.1, 4.7, 1.5], [7.7, 3.0, 6.1, 2.3]]
IRIS_LABELS = [0, 1, 2]
JSON = {"Content-Type": "application/json"}
MAX_ROWS = 50
MAX_BYTES = 20_000


# -- models and servers ----------------------------------------------------------------------------------
def _model_dir(root: Path, name: str) -> Path:
    folder = root / "azureml-models" / name / "1"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture(scope="session")
def iris_model_dir(tmp_path_factory) -> Path:
    """``azureml-models/iris/1/model/model.onnx``, converted as train.py converts it."""
    import csv

    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    with open(SAMPLES / "iris" / "data" / "iris.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    X = np.array([[float(r[c]) for c in features] for r in rows], dtype=np.float32)
    y = np.array([int(float(r["species"])) for r in rows], dtype=np.int64)
    clf = LogisticRegression(C=0.5, max_iter=200)
    model = Pipeline([("scaler", StandardScaler()), ("clf", clf)]).fit(X, y)
    onx = to_onnx(
        model,
        initial_types=[("input", FloatTensorType([None, 4]))],
        options={id(clf): {"zipmap": False}},
        target_opset=17,
    )
    folder = _model_dir(tmp_path_factory.mktemp("iris"), "iris")
    (folder / "model").mkdir()  # a subfolder, as `az ml model create --path model/` registers it
    (folder / "model" / "model.onnx").write_bytes(onx.SerializeToString())
    return folder


@pytest.fixture(scope="session")
def mixed_model_dir(tmp_path_factory) -> Path:
    """A two-input model: ``count`` int64 [N, 1] and ``scale`` float32 [N, 1]; output = count * scale."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["count"], ["count_f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["count_f", "scale"], ["product"]),
        ],
        "mixed",
        [
            helper.make_tensor_value_info("count", TensorProto.INT64, [None, 1]),
            helper.make_tensor_value_info("scale", TensorProto.FLOAT, [None, 1]),
        ],
        [helper.make_tensor_value_info("product", TensorProto.FLOAT, [None, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder = _model_dir(tmp_path_factory.mktemp("mixed"), "mixed")
    onnx.save(model, folder / "mixed.onnx")
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replica:
    """One ``python -m emulator.serving`` process; its output goes to files read by tests."""

    def __init__(self, tmp: Path, env: dict[str, str], *args: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout, self.stderr = tmp / "stdout.log", tmp / "stderr.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("AZUREML_", "AML_", "AMLEMU_"))}
        full_env.update(env, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        with open(self.stdout, "wb") as out, open(self.stderr, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "emulator.serving", "--host", "127.0.0.1", "--port", str(self.port), *args],
                env=full_env,
                cwd=tmp,
                stdout=out,
                stderr=err,
            )

    def wait_ready(self, timeout: float = 60) -> Replica:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if requests.get(self.url + "/", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server not ready in {timeout} s:\n{self.logs()}")

    def wait_exit(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def logs(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")


def _start(tmp_path_factory, name: str, env: dict[str, str], *args: str):
    replica = Replica(tmp_path_factory.mktemp(name), env, *args).wait_ready()
    yield replica
    replica.stop()


def _code_dir(tmp_path_factory, name: str, files: dict[str, str]) -> Path:
    folder = tmp_path_factory.mktemp(name)
    for filename, text in files.items():
        (folder / filename).write_text(textwrap.dedent(text))
    return folder


BACKENDS = ["granian", "waitress"]


@pytest.fixture(scope="module", params=BACKENDS)
def onnx_server(request, tmp_path_factory, iris_model_dir):
    """The built-in scorer on each HTTP server (their keep-alive and 413 handling differ)."""
    yield from _start(
        tmp_path_factory,
        "onnx",
        {
            "AZUREML_MODEL_DIR": str(iris_model_dir),
            "AMLEMU_MAX_ROWS": str(MAX_ROWS),
            "AMLEMU_MAX_REQUEST_BYTES": str(MAX_BYTES),
        },
        "--server",
        request.param,
    )


@pytest.fixture(scope="module")
def mixed_server(tmp_path_factory, mixed_model_dir):
    yield from _start(tmp_path_factory, "mixed", {"AZUREML_MODEL_DIR": str(mixed_model_dir)})


@pytest.fixture(scope="module")
def sample_script_server(tmp_path_factory, iris_model_dir):
    code = SAMPLES / "iris" / "score"
    yield from _start(
        tmp_path_factory,
        "sample",
        {"AZUREML_MODEL_DIR": str(iris_model_dir), "AML_APP_ROOT": str(code), "AZUREML_ENTRY_SCRIPT": "score.py"},
    )


BEHAVIOURS = """\
    import json
    import os

    from azureml.contrib.services.aml_response import AMLResponse


    def init():
        print("init ran with", os.path.basename(os.getcwd()), flush=True)


    def run(raw_data, request_headers):
        body = json.loads(raw_data)
        action = body.get("action")
        if action == "raise":
            raise ValueError("boom from run")
        if action == "bytes":
            return b"raw bytes"
        if action == "text":
            return "plain text"
        if action == "none":
            return None
        if action == "response":
            return AMLResponse("custom body", 202, {"X-Custom": "yes"})
        if action == "response503":
            return AMLResponse({"busy": True}, 503, json_str=True)
        if action == "headers":
            return {"trace": request_headers.get("X-Trace")}
        return {"echo": body}
"""


@pytest.fixture(scope="module")
def behaviours_server(tmp_path_factory):
    code = _code_dir(tmp_path_factory, "behaviours", {"behaviours.py": BEHAVIOURS})
    yield from _start(
        tmp_path_factory, "behaviours", {"AML_APP_ROOT": str(code), "AZUREML_ENTRY_SCRIPT": "behaviours.py"}
    )


RAW_HTTP_SCRIPT = """\
    from azureml.contrib.services.aml_request import AMLRequest, rawhttp
    from azureml.contrib.services.aml_response import AMLResponse


    def init():
        pass


    @rawhttp
    def run(request):
        if request.method == "POST":
            return AMLResponse(request.get_data()[::-1], 200, {"Content-Type": "application/octet-stream"})
        return AMLResponse({"method": request.method, "args": dict(request.args)}, 200, json_str=True)
"""


@pytest.fixture(scope="module")
def raw_http_server(tmp_path_factory):
    code = _code_dir(tmp_path_factory, "rawhttp", {"raw.py": RAW_HTTP_SCRIPT})
    yield from _start(tmp_path_factory, "rawhttp", {"AML_APP_ROOT": str(code), "AZUREML_ENTRY_SCRIPT": "raw.py"})


SCHEMA_SCRIPT = """\
    import numpy as np
    from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
    from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
    from inference_schema.schema_decorators import input_schema, output_schema


    def init():
        pass


    @input_schema("data", NumpyParameterType(np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)))
    @input_schema("scale", StandardPythonParameterType(1.0))
    @output_schema(StandardPythonParameterType([10.2]))
    def run(data, scale=1.0):
        return [float(v) for v in data.sum(axis=1) * scale]
"""


@pytest.fixture(scope="module")
def schema_server(tmp_path_factory):
    import inference_schema  # noqa: F401 - a test dependency: missing, the tests fail rather than skip

    code = _code_dir(tmp_path_factory, "schema", {"schema_score.py": SCHEMA_SCRIPT})
    yield from _start(
        tmp_path_factory, "schema", {"AML_APP_ROOT": str(code), "AZUREML_ENTRY_SCRIPT": "schema_score.py"}
    )


@pytest.fixture(scope="module")
def session():
    with requests.Session() as s:
        yield s


def _score(session, server, body, headers=JSON, **kwargs) -> requests.Response:
    data = body if isinstance(body, (str, bytes)) or hasattr(body, "__next__") else json.dumps(body)
    return session.post(server.url + "/score", data=data, headers=headers, timeout=30, **kwargs)


def _error(response) -> tuple[str, str]:
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["message"] == body["error"]["message"]
    return body["error"]["code"], body["message"]


# -- liveness and routes ---------------------------------------------------------------------------------
def test_liveness_answers_healthy(onnx_server, session):
    response = session.get(onnx_server.url + "/", timeout=10)
    assert (response.status_code, response.text) == (200, "Healthy")
    assert response.headers["x-request-id"]


def test_unknown_path_and_method_answer_json(onnx_server, session):
    response = session.get(onnx_server.url + "/predict", timeout=10)
    assert response.status_code == 404
    assert _error(response) == (
        "NotFound",
        "/predict not found: the scoring server answers GET /, GET|POST /score and GET /swagger.json",
    )
    response = session.put(onnx_server.url + "/score", data="{}", headers=JSON, timeout=10)
    assert response.status_code == 405
    assert "PUT is not allowed on /score" in _error(response)[1]


def test_request_ids_are_echoed(onnx_server, session):
    response = session.get(
        onnx_server.url + "/", headers={"x-request-id": "req-1", "x-ms-client-request-id": "client-1"}, timeout=10
    )
    assert response.headers["x-request-id"] == "req-1"
    assert response.headers["x-ms-client-request-id"] == "client-1"
    assert response.headers["x-ms-request-id"] == "client-1"
    response = session.get(onnx_server.url + "/", headers={"x-request-id": "x" * 101}, timeout=10)
    assert response.status_code == 431
    assert _error(response)[1] == "x-request-id must not exceed 100 characters"


# -- the built-in ONNX scorer ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        {"data": IRIS_ROWS},
        {"input_data": IRIS_ROWS},
        json.loads((SAMPLES / "iris" / "sample-request-input-data.json").read_text()),
        {"input_data": {"columns": ["a", "b", "c", "d"], "index": [10, 11, 12], "data": IRIS_ROWS}},
        {"input_data": {"data": IRIS_ROWS}},
        {"input_data": {"input": IRIS_ROWS}},
        {"inputs": {"input": IRIS_ROWS}},
        {"inputs": IRIS_ROWS},
        {"data": [[5, 3, 1, 0], [6.7, 3.1, 4.7, 1.5], [7.7, 3.0, 6.1, 2.3]]},  # ints are numbers too
    ],
    ids=["data", "input_data", "sample", "split", "split-data-only", "named", "inputs-named", "inputs-list", "ints"],
)
def test_builtin_scorer_accepts_each_body_shape(onnx_server, session, body):
    response = _score(session, onnx_server, body)
    assert response.status_code == 200, response.text
    assert response.json() == IRIS_LABELS
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["x-ms-run-function-failed"] == "False"
    assert float(response.headers["x-ms-run-fn-exec-ms"]) >= 0


def test_builtin_scorer_takes_json_with_charset_and_get_query(onnx_server, session):
    response = _score(
        session, onnx_server, {"data": IRIS_ROWS}, headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert response.json() == IRIS_LABELS
    response = session.get(onnx_server.url + "/score", params={"data": json.dumps(IRIS_ROWS[:1])}, timeout=10)
    assert (response.status_code, response.json()) == (200, [0])
    assert session.options(onnx_server.url + "/score", timeout=10).status_code == 200


def test_builtin_scorer_keeps_the_connection_alive(onnx_server):
    connection = http.client.HTTPConnection("127.0.0.1", onnx_server.port, timeout=10)
    sockets = set()
    for _ in range(20):
        connection.request("POST", "/score", body=json.dumps({"data": IRIS_ROWS[:1]}), headers=JSON)
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())) == (200, [0])
        sockets.add(id(connection.sock))
    connection.close()
    assert len(sockets) == 1  # one TCP connection served all 20 requests


BAD_REQUESTS = [
    # (id, body, headers, status, code, message fragment)
    (
        "invalid-json",
        '{"data": [[5.1, 3.5, 1.4, 0.2]',
        JSON,
        400,
        "InvalidJson",
        "request body is not valid JSON: Expecting ',' delimiter at line 1, column 31 (char 30)",
    ),
    (
        "empty-body",
        "",
        JSON,
        400,
        "EmptyBody",
        'request body is empty: send a JSON object such as {"input_data": [[0.0, 0.0, 0.0, 0.0]]}',
    ),
    ("not-utf8", b'{"data": [[1, 2, 3, "\xff"]]}', JSON, 400, "InvalidJson", "not UTF-8"),
    ("top-level-list", IRIS_ROWS, JSON, 400, "InvalidRequestBody", "request body must be a JSON object such as"),
    (
        "missing-key",
        {"rows": IRIS_ROWS},
        JSON,
        400,
        "MissingInputData",
        'expected one of the keys "input_data", "data" or "inputs"; got keys "rows"',
    ),
    (
        "two-keys",
        {"data": IRIS_ROWS, "input_data": IRIS_ROWS},
        JSON,
        400,
        "InvalidRequestBody",
        'request body has both "input_data" and "data"',
    ),
    (
        "data-not-list",
        {"data": "5.1,3.5,1.4,0.2"},
        JSON,
        400,
        "InvalidRequestBody",
        '"data" must be a list of rows or an object',
    ),
    ("empty-data", {"data": []}, JSON, 400, "InvalidInputShape", '"data" is an empty list'),
    (
        "ragged",
        {"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.1, 4.7]]},
        JSON,
        400,
        "InvalidInputShape",
        '"data": ragged rows: row 1 has 3 values but row 0 has 4; expected 4 features per row',
    ),
    (
        "rank-1",
        {"data": [5.1, 3.5, 1.4, 0.2]},
        JSON,
        400,
        "InvalidInputShape",
        '"data": row 0: expected a list of 4 features, got 5.1',
    ),
    ("rank-3", {"data": [IRIS_ROWS]}, JSON, 400, "InvalidInputShape", "has rank 2"),
    (
        "three-features",
        {"data": [[5.1, 3.5, 1.4], [6.7, 3.1, 4.7]]},
        JSON,
        400,
        "InvalidInputShape",
        '"data": expected 4 features per row, got 3',
    ),
    (
        "string",
        {"data": [[5.1, 3.5, "1.4", 0.2]]},
        JSON,
        400,
        "InvalidInputValue",
        '"data": row 0, column 2: expected a number, got the string "1.4"',
    ),
    (
        "boolean",
        {"data": [[5.1, 3.5, 1.4, 0.2], [6.7, True, 4.7, 1.5]]},
        JSON,
        400,
        "InvalidInputValue",
        '"data": row 1, column 1: expected a number, got true',
    ),
    (
        "null",
        {"data": [[5.1, None, 1.4, 0.2]]},
        JSON,
        400,
        "InvalidInputValue",
        '"data": row 0, column 1: expected a number, got null',
    ),
    (
        "nan",
        '{"data": [[5.1, 3.5, NaN, 0.2]]}',
        JSON,
        400,
        "InvalidInputValue",
        '"data": row 0, column 2: NaN is not a finite number',
    ),
    (
        "infinity",
        '{"data": [[5.1, 3.5, 1.4, -Infinity]]}',
        JSON,
        400,
        "InvalidInputValue",
        '"data": row 0, column 3: -Infinity is not a finite number',
    ),
    (
        "float32-overflow",
        {"data": [[5.1, 3.5, 1e39, 0.2]]},
        JSON,
        400,
        "InvalidInputValue",
        '"data": row 0, column 2: 1e+39 is out of range for float32',
    ),
    (
        "too-many-rows",
        {"data": [IRIS_ROWS[0]] * (MAX_ROWS + 1)},
        JSON,
        400,
        "TooManyRows",
        f'"data" has {MAX_ROWS + 1} rows; the limit is {MAX_ROWS} rows per request (AMLEMU_MAX_ROWS)',
    ),
    (
        "split-columns",
        {"input_data": {"columns": ["a", "b", "c"], "data": IRIS_ROWS}},
        JSON,
        400,
        "InvalidInputShape",
        '"columns" names 3 columns but the model expects 4 features per row',
    ),
    (
        "split-index",
        {"input_data": {"index": [0], "data": IRIS_ROWS}},
        JSON,
        400,
        "InvalidInputShape",
        '"index" has 1 labels but "data" has 3 rows',
    ),
    (
        "unknown-input",
        {"input_data": {"petal": IRIS_ROWS}},
        JSON,
        400,
        "InvalidRequestBody",
        '"input_data": unknown input "petal"; the model\'s inputs are input',
    ),
    (
        "text-plain",
        {"data": IRIS_ROWS},
        {"Content-Type": "text/plain"},
        415,
        "UnsupportedMediaType",
        "Content-Type must be application/json; got text/plain",
    ),
    ("no-content-type", {"data": IRIS_ROWS}, {}, 415, "UnsupportedMediaType", "Content-Type must be application/json"),
    (
        "latin-1",
        {"data": IRIS_ROWS},
        {"Content-Type": "application/json; charset=latin-1"},
        415,
        "UnsupportedMediaType",
        "charset=latin-1 is not supported",
    ),
    (
        "too-large",
        {"data": "x" * MAX_BYTES},
        JSON,
        413,
        "PayloadTooLarge",
        "request body of 20012 bytes is larger than the limit of 19.5 KiB (20000 bytes)",
    ),
]


@pytest.mark.parametrize(
    "body,headers,status,code,fragment", [case[1:] for case in BAD_REQUESTS], ids=[case[0] for case in BAD_REQUESTS]
)
def test_builtin_scorer_names_the_problem_and_keeps_serving(
    onnx_server, session, body, headers, status, code, fragment
):
    response = _score(session, onnx_server, body, headers=headers)
    assert response.status_code == status, response.text
    got_code, message = _error(response)
    assert got_code == code
    assert fragment in message
    assert response.headers["x-ms-run-function-failed"] == "False"
    if status == 413:  # an unread body: the server may close this connection (see the chunked test below)
        session = requests.Session()
    after = _score(session, onnx_server, {"data": IRIS_ROWS})
    assert (after.status_code, after.json()) == (200, IRIS_LABELS)


def test_builtin_scorer_refuses_a_chunked_body_over_the_limit(onnx_server, session):
    chunks = (b'{"data": "' + b"x" * 1000 + b'"}' if i == 0 else b" " * 1000 for i in range(30))
    response = _score(session, onnx_server, chunks)  # a generator body goes out chunked
    assert response.status_code == 413
    assert "is larger than the limit of 19.5 KiB (20000 bytes)" in _error(response)[1]
    # the server still serves, on a new connection: after an over-limit chunked body it has not read to its end,
    # granian closes the connection without Connection: close, so a keep-alive client that sends its next
    # request at once can meet the close (seen twice in this stop's runs; waitress refuses a Connection header from
    # the app, so the app cannot say it). The gateway retries a request whose pooled connection closed unanswered.
    with requests.Session() as fresh:
        assert _score(fresh, onnx_server, {"data": IRIS_ROWS}).json() == IRIS_LABELS


def test_builtin_scorer_checks_integer_inputs_of_a_multi_input_model(mixed_server, session):
    body = {"input_data": {"count": [[2], [3]], "scale": [[0.5], [2.0]]}}
    assert _score(session, mixed_server, body).json() == [[1.0], [6.0]]
    split = {"input_data": {"columns": ["scale", "count"], "data": [[0.5, 2], [2.0, 3]]}}
    assert _score(session, mixed_server, split).json() == [[1.0], [6.0]]
    response = _score(session, mixed_server, {"input_data": {"count": [[2], [1.5]], "scale": [[0.5], [2.0]]}})
    assert response.status_code == 400
    assert _error(response) == (
        "InvalidInputValue",
        'input "count": row 1, column 0: 1.5 is not a whole number; '
        "input 'count' (int64 tensor of shape [N, 1]) takes integers",
    )
    response = _score(session, mixed_server, {"input_data": [[2, 0.5]]})
    assert response.status_code == 400
    assert "the model has 2 inputs (count, scale)" in _error(response)[1]
    response = _score(session, mixed_server, {"inputs": {"count": [[2]]}})
    assert _error(response) == (
        "MissingInputData",
        '"inputs": missing input "scale"; the model\'s inputs are '
        'count, scale. Example: {"input_data": {"count": [[0]], '
        '"scale": [[0.0]]}}',
    )


def test_builtin_scorer_swagger_describes_the_model_signature(onnx_server, session):
    doc = session.get(onnx_server.url + "/swagger.json", timeout=10).json()
    assert doc["swagger"] == "2.0"
    service_input = doc["definitions"]["ServiceInput"]
    assert service_input["x-model-inputs"] == [{"name": "input", "shape": [None, 4], "element_type": "float32"}]
    assert service_input["example"] == {"input_data": [[0.0, 0.0, 0.0, 0.0]]}
    rows = service_input["properties"]["input_data"]
    assert rows["items"] == {
        "type": "array",
        "minItems": 4,
        "maxItems": 4,
        "items": {"type": "number", "format": "float"},
    }
    assert "float32 tensor of shape [N, 4]" in service_input["description"]
    assert doc["definitions"]["ServiceOutput"]["items"] == {"type": "integer", "format": "int64"}
    assert set(doc["paths"]) == {"/", "/score", "/swagger.json"}
    # the example really is a valid body
    assert _score(session, onnx_server, service_input["example"]).json() == [0]

    v3 = session.get(onnx_server.url + "/swagger.json", params={"version": "3"}, timeout=10).json()
    assert v3["openapi"] == "3.0.3"
    assert v3["components"]["schemas"]["ServiceInput"] == service_input
    assert session.get(onnx_server.url + "/swagger.json?version=3.1", timeout=10).json()["openapi"] == "3.1.0"
    response = session.get(onnx_server.url + "/swagger.json?version=9", timeout=10)
    assert response.status_code == 404
    assert _error(response)[1] == "Swagger version [9] is not valid. Supported versions: [2, 3, 3.1]."


# -- scoring scripts ---------------------------------------------------------------------------------------
def test_sample_score_script_serves_unchanged(sample_script_server, session):
    for name in ("sample-request.json", "sample-request-input-data.json"):
        body = (SAMPLES / "iris" / name).read_text()
        response = _score(session, sample_script_server, body)
        assert (response.status_code, response.json()) == (200, IRIS_LABELS)
        assert response.headers["x-ms-run-function-failed"] == "False"
    assert "Loaded " in sample_script_server.logs()  # the script's logging.info reaches the log


def test_sample_score_script_failure_is_a_500_with_the_header(sample_script_server, session):
    response = _score(session, sample_script_server, {"data": [[1, 2, 3]]})
    assert response.status_code == 500
    assert response.headers["x-ms-run-function-failed"] == "True"
    code, message = _error(response)
    assert code == "ScoringScriptFailed"
    assert "run() raised ValueError: expected 4 features per row, got 3" in message
    assert _score(session, sample_script_server, {"data": IRIS_ROWS}).json() == IRIS_LABELS


def test_run_exception_returns_500_and_logs_the_traceback(behaviours_server, session):
    response = _score(session, behaviours_server, {"action": "raise"})
    assert response.status_code == 500
    assert response.headers["x-ms-run-function-failed"] == "True"
    assert _error(response) == (
        "ScoringScriptFailed",
        "An unexpected error occurred in scoring script: run() "
        "raised ValueError: boom from run. Check the logs for more "
        "info.",
    )
    logs = behaviours_server.stderr.read_text()
    assert "Traceback (most recent call last)" in logs and 'raise ValueError("boom from run")' in logs


@pytest.mark.parametrize(
    "action,status,body",
    [
        ("text", 200, "plain text"),
        ("none", 200, {}),
        ("echo", 200, {"echo": {"action": "echo"}}),
    ],
)
def test_run_return_values_are_serialised_like_azure(behaviours_server, session, action, status, body):
    response = _score(session, behaviours_server, {"action": action})
    assert (response.status_code, response.json()) == (status, body)
    assert response.headers["Content-Type"] == "application/json"


def test_run_returning_bytes_is_a_clear_500(behaviours_server, session):
    response = _score(session, behaviours_server, {"action": "bytes"})
    assert response.status_code == 500
    code, message = _error(response)
    assert code == "RunOutputNotSerializable"
    assert message.startswith("run() returned builtins.bytes, which JSON cannot carry")


def test_run_may_return_an_aml_response(behaviours_server, session):
    response = _score(session, behaviours_server, {"action": "response"})
    assert (response.status_code, response.text, response.headers["X-Custom"]) == (202, "custom body", "yes")
    assert response.headers["x-ms-run-function-failed"] == "False"
    response = _score(session, behaviours_server, {"action": "response503"})
    assert (response.status_code, response.json()) == (503, {"busy": True})
    assert response.headers["x-ms-run-function-failed"] == "True"


def test_run_gets_request_headers_and_get_query_parameters(behaviours_server, session):
    response = _score(session, behaviours_server, {"action": "headers"}, headers={**JSON, "X-Trace": "t-1"})
    assert response.json() == {"trace": "t-1"}
    response = session.get(behaviours_server.url + "/score", params={"action": "echo", "n": "3"}, timeout=10)
    assert response.json() == {"echo": {"action": "echo", "n": 3}}
    assert session.options(behaviours_server.url + "/score", timeout=10).status_code == 200


def test_init_ran_once_in_the_code_folder(behaviours_server):
    assert behaviours_server.stdout.read_text().count("init ran with behaviours") == 1


def test_undecorated_run_gets_an_open_swagger(behaviours_server, session):
    doc = session.get(behaviours_server.url + "/swagger.json", timeout=10).json()
    assert doc["definitions"]["ServiceInput"] == {"type": "object", "example": {}}
    assert doc["info"]["title"] == "ML service"


def test_rawhttp_run_gets_the_request_itself(raw_http_server, session):
    response = session.post(raw_http_server.url + "/score", data=b"\x00\x01binary", timeout=10)
    assert (response.status_code, response.content) == (200, b"yranib\x01\x00")
    assert response.headers["Content-Type"] == "application/octet-stream"
    response = session.get(raw_http_server.url + "/score", params={"q": "1"}, timeout=10)
    assert response.json() == {"method": "GET", "args": {"q": "1"}}
    assert session.options(raw_http_server.url + "/score", timeout=10).json() == {"method": "OPTIONS", "args": {}}


def test_schema_decorated_run_gets_keyword_arguments(schema_server, session):
    response = _score(session, schema_server, {"data": [[1, 2, 3, 4]]})
    assert (response.status_code, response.json()) == (200, [10.0])
    assert _score(session, schema_server, {"data": [[1, 2, 3, 4]], "scale": 2}).json() == [20.0]
    response = _score(session, schema_server, {"scale": 2})
    assert response.status_code == 400
    assert _error(response)[1] == "A value is not provided for the 'data' parameter."
    response = _score(session, schema_server, "[1, 2]")
    assert _error(response) == ("InvalidRequestBody", "POST body should be a JSON dictionary.")
    response = _score(session, schema_server, {"data": [[1, 2, 3, 4]]}, headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert _error(response)[1] == "Expects Content-Type to be application/json"


def test_schema_decorated_run_gets_its_schema_in_swagger(schema_server, session):
    doc = session.get(schema_server.url + "/swagger.json", timeout=10).json()
    service_input = doc["definitions"]["ServiceInput"]
    assert set(service_input["properties"]) == {"data", "scale"}
    assert service_input["example"]["data"] == [pytest.approx([5.1, 3.5, 1.4, 0.2])]
    assert doc["definitions"]["ServiceOutput"]["example"] == [10.2]


# -- start-up failures and shutdown, on both HTTP servers ----------------------------------------------


def _run_to_exit(tmp_path, env: dict[str, str], *args: str) -> tuple[int, str]:
    replica = Replica(tmp_path, env, *args)
    return replica.wait_exit(), replica.stderr.read_text()


@pytest.mark.parametrize("backend", BACKENDS)
def test_init_raising_exits_3_with_the_message(tmp_path, backend):
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(
        "def init():\n    raise RuntimeError('no GPU here')\n\n\ndef run(data):\n    return data\n"
    )
    exit_code, stderr = _run_to_exit(
        tmp_path, {"AML_APP_ROOT": str(code), "AZUREML_ENTRY_SCRIPT": "score.py"}, "--server", backend
    )
    assert exit_code == 3
    assert "Traceback (most recent call last)" in stderr
    assert (
        "amlemu scoring server failed to start: init() of scoring script score.py failed (score.py, line 2): "
        "RuntimeError: no GPU here"
    ) in stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_non_onnx_model_exits_3_with_the_fix(tmp_path, backend):
    folder = _model_dir(tmp_path, "sk")
    (folder / "model.pkl").write_bytes(b"\x80\x04not onnx")
    exit_code, stderr = _run_to_exit(tmp_path, {"AZUREML_MODEL_DIR": str(folder)}, "--server", backend)
    assert exit_code == 3
    assert "model.pkl is not an ONNX model" in stderr
    assert "register an ONNX model or add a scoring script with code_configuration" in stderr


@pytest.mark.parametrize(
    "setup,fragment",
    [
        ("corrupt", "model.onnx is not an ONNX model ONNX Runtime can load"),
        ("two-models", "2 ONNX models under"),
        ("missing-script", "score.py not found"),
        ("import-error", "importing scoring script score.py failed (score.py, line 1): ModuleNotFoundError"),
        ("nothing", "nothing to serve"),
        ("bad-limit", "AMLEMU_MAX_ROWS='many' is not a positive whole number"),
    ],
)
def test_other_startup_failures_exit_3(tmp_path, setup, fragment):
    folder = _model_dir(tmp_path, "m")
    env = {"AZUREML_MODEL_DIR": str(folder)}
    (folder / "model.onnx").write_bytes(b"\x80\x04 a pickle named model.onnx")
    if setup == "two-models":
        (folder / "model.onnx").write_bytes(b"")
        (folder / "other.onnx").write_bytes(b"")
    elif setup in ("missing-script", "import-error"):
        env.update(AML_APP_ROOT=str(tmp_path), AZUREML_ENTRY_SCRIPT="score.py")
        if setup == "import-error":
            (tmp_path / "score.py").write_text("import not_a_module_anywhere\n")
    elif setup == "nothing":
        env = {}
    elif setup == "bad-limit":
        env["AMLEMU_MAX_ROWS"] = "many"
    exit_code, stderr = _run_to_exit(tmp_path, env)
    assert exit_code == 3, stderr
    assert fragment in stderr


SLOW_SCRIPT = """\
    import pathlib
    import time


    def init():
        pass


    def run(raw_data):
        pathlib.Path("started").write_text("")
        time.sleep(1)
        return "finished"
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_finishes_in_flight_requests_and_exits_0(tmp_path, backend):
    code = tmp_path / "code"
    code.mkdir()
    (code / "slow.py").write_text(textwrap.dedent(SLOW_SCRIPT))
    replica = Replica(
        tmp_path, {"AML_APP_ROOT": str(code), "AZUREML_ENTRY_SCRIPT": "slow.py"}, "--server", backend
    ).wait_ready()
    answers = []
    client = threading.Thread(
        target=lambda: answers.append(requests.post(replica.url + "/score", data="{}", headers=JSON, timeout=30))
    )
    client.start()
    while not (code / "started").exists():
        assert replica.proc.poll() is None
        time.sleep(0.02)
    replica.proc.send_signal(signal.SIGTERM)
    client.join(timeout=30)
    assert replica.wait_exit(timeout=30) == 0, replica.logs()
    assert (answers[0].status_code, answers[0].json()) == (200, "finished")
    with pytest.raises(requests.ConnectionError):
        requests.get(replica.url + "/", timeout=5)


def test_granian_worker_stops_when_its_supervisor_is_killed(tmp_path, iris_model_dir):
    replica = Replica(tmp_path, {"AZUREML_MODEL_DIR": str(iris_model_dir)}, "--server", "granian").wait_ready()
    children = Path(f"/proc/{replica.proc.pid}/task/{replica.proc.pid}/children").read_text().split()
    assert len(children) == 1, children
    replica.proc.kill()
    replica.proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _alive(children[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(children[0]), "the worker outlived its supervisor"


def _alive(pid: str) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# -- the replica secret ------------------------------------------------------------------------------------
SECRET = "s3cret-from-the-endpoint-host-0123456789"


@pytest.fixture(scope="module")
def gated_server(tmp_path_factory, iris_model_dir):
    """A server started as the endpoint host starts replicas: with AMLEMU_REPLICA_SECRET set."""
    replica = Replica(
        tmp_path_factory.mktemp("gated"), {"AZUREML_MODEL_DIR": str(iris_model_dir), "AMLEMU_REPLICA_SECRET": SECRET}
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # readiness, with the secret (as the host's probes send it)
        try:
            if requests.get(replica.url + "/", headers={"x-amlemu-replica-secret": SECRET}, timeout=1).ok:
                break
        except requests.RequestException:
            time.sleep(0.05)
    yield replica
    replica.stop()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-amlemu-replica-secret": "wrong"},
        {"x-amlemu-replica-secret": ""},
        {"x-amlemu-replica-secret": SECRET[:-1]},
        {"x-amlemu-replica-secret": "caf\xe9"},
        {"Authorization": f"Bearer {SECRET}"},
    ],
    ids=["none", "wrong", "empty", "prefix", "not-ascii", "as-bearer"],
)
def test_a_replica_with_a_secret_refuses_requests_without_it(gated_server, session, headers):
    for method, path in (("POST", "/score"), ("GET", "/"), ("GET", "/swagger.json"), ("GET", "/nowhere")):
        response = session.request(
            method,
            gated_server.url + path,
            data=json.dumps({"data": IRIS_ROWS}),
            headers={**JSON, **headers},
            timeout=10,
        )
        assert response.status_code == 403, (path, response.text)
        code, message = _error(response)
        assert code == "Forbidden" and "answers only its endpoint's gateway" in message
        assert SECRET not in response.text and SECRET not in str(response.headers)


def test_a_replica_with_a_secret_serves_requests_carrying_it(gated_server, session):
    scored = _score(session, gated_server, {"data": IRIS_ROWS}, headers={**JSON, "x-amlemu-replica-secret": SECRET})
    assert scored.status_code == 200 and scored.json() == IRIS_LABELS, scored.text
    assert SECRET not in str(scored.headers)
    assert SECRET not in gated_server.logs()


def test_a_standalone_server_has_no_secret_check(onnx_server, session):
    """No AMLEMU_REPLICA_SECRET (a server run on its own, as in these tests): the check is off."""
    assert session.get(onnx_server.url + "/", timeout=10).status_code == 200
