"""The direct server (``python -m emulator.serving --server direct``): the built-in ONNX scorer without WSGI.

Every test of the built-in scorer's HTTP contract in ``test_scoring_server`` runs here again against
the direct server, and each request of a catalogue gets the same status, body and headers from the
direct server as from the Flask app on granian (the server a scoring script gets), over real HTTP.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import threading

import pytest
import requests

from tests.unit.test_scoring_server import (  # noqa: F401 - fixtures and tests, run here on the direct server
    BAD_REQUESTS,
    IRIS_LABELS,
    IRIS_ROWS,
    JSON,
    MAX_BYTES,
    MAX_ROWS,
    SECRET,
    Replica,
    _error,
    _score,
    _start,
    iris_model_dir,
    session,
    test_a_standalone_server_has_no_secret_check,
    test_builtin_scorer_accepts_each_body_shape,
    test_builtin_scorer_keeps_the_connection_alive,
    test_builtin_scorer_names_the_problem_and_keeps_serving,
    test_builtin_scorer_refuses_a_chunked_body_over_the_limit,
    test_builtin_scorer_swagger_describes_the_model_signature,
    test_builtin_scorer_takes_json_with_charset_and_get_query,
    test_liveness_answers_healthy,
    test_request_ids_are_echoed,
    test_unknown_path_and_method_answer_json,
)

LIMITS = {"AMLEMU_MAX_ROWS": str(MAX_ROWS), "AMLEMU_MAX_REQUEST_BYTES": str(MAX_BYTES)}


@pytest.fixture(scope="module")
def onnx_server(tmp_path_factory, iris_model_dir):  # noqa: F811 - the direct server under the imported tests
    yield from _start(
        tmp_path_factory, "direct", {"AZUREML_MODEL_DIR": str(iris_model_dir), **LIMITS}, "--server", "direct"
    )


@pytest.fixture(scope="module")
def flask_server(tmp_path_factory, iris_model_dir):  # noqa: F811
    yield from _start(
        tmp_path_factory, "granian", {"AZUREML_MODEL_DIR": str(iris_model_dir), **LIMITS}, "--server", "granian"
    )


def test_auto_picks_the_direct_server_for_the_built_in_scorer(tmp_path, iris_model_dir):  # noqa: F811
    replica = Replica(tmp_path, {"AZUREML_MODEL_DIR": str(iris_model_dir)}).wait_ready()
    try:
        assert "(amlemu direct server)" in replica.logs()
        assert "ready for serving traffic: built-in ONNX scorer" in replica.logs()
    finally:
        assert replica.stop() == 0


def test_the_direct_server_refuses_a_scoring_script(tmp_path):
    (tmp_path / "score.py").write_text("def init():\n    pass\n\n\ndef run(data):\n    return data\n")
    replica = Replica(
        tmp_path, {"AML_APP_ROOT": str(tmp_path), "AZUREML_ENTRY_SCRIPT": "score.py"}, "--server", "direct"
    )
    assert replica.wait_exit() == 2
    assert "--server direct serves the built-in ONNX scorer only" in replica.logs()


# (method, path, headers, body): each answered alike by both servers
CATALOGUE = [
    ("POST", "/score", JSON, json.dumps({"data": IRIS_ROWS})),
    (
        "POST",
        "/score",
        {**JSON, "x-request-id": "r-1", "x-ms-client-request-id": "c-1"},
        json.dumps({"data": [[1] * 4]}),
    ),
    ("POST", "/score", {**JSON, "x-ms-request-id": "legacy-1", "TraceId": "t-1"}, json.dumps({"data": [[1] * 4]})),
    ("POST", "/score", {**JSON, "x-request-id": "x" * 101}, json.dumps({"data": IRIS_ROWS})),
    ("POST", "/score", {**JSON, "x-ms-client-request-id": "y" * 101}, "{}"),
    ("POST", "/score", {"Content-Type": "text/plain"}, json.dumps({"data": IRIS_ROWS})),
    ("POST", "/score", {"Content-Type": "application/json; charset=latin-1"}, "{}"),
    ("POST", "/score", {}, json.dumps({"data": IRIS_ROWS})),
    ("POST", "/score", JSON, json.dumps({"data": [[1, 2, 3]]})),
    ("POST", "/score", JSON, json.dumps({"data": [[1, 2, 3, True]]})),
    ("POST", "/score", JSON, json.dumps({"data": [[1.0] * 4] * (MAX_ROWS + 1)})),
    ("POST", "/score", JSON, "x" * (MAX_BYTES + 1)),
    *[("POST", "/score", headers, body) for _, body, headers, *_ in BAD_REQUESTS],
    ("GET", "/score?data=[[1,2,3,4]]", {}, ""),
    ("OPTIONS", "/score", {}, ""),
    ("DELETE", "/score", {}, ""),
    ("POST", "/", JSON, "{}"),
    ("GET", "/swagger.json?version=3", {}, ""),
    ("POST", "/score/", JSON, "{}"),
]
#: headers that differ by nature (the model's run time) or by server software
VARYING = {"x-ms-run-fn-exec-ms", "date", "server", "connection", "keep-alive"}


def _answer(url: str, method: str, path: str, headers: dict, body) -> tuple:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    response = requests.request(method, url + path, headers=headers, data=data, timeout=30)
    kept = {k.lower(): v for k, v in response.headers.items() if k.lower() not in VARYING}
    if "x-ms-run-fn-exec-ms" in response.headers:
        kept["x-ms-run-fn-exec-ms"] = float(response.headers["x-ms-run-fn-exec-ms"]) >= 0
    return response.status_code, kept, response.content


@pytest.mark.parametrize("case", range(len(CATALOGUE)))
def test_the_direct_server_answers_as_the_flask_app_does(onnx_server, flask_server, case):
    method, path, headers, body = CATALOGUE[case]
    direct = _answer(onnx_server.url, method, path, headers, body)
    flask = _answer(flask_server.url, method, path, headers, body)
    if headers.get("x-request-id") is None and direct[0] != 431:  # a generated id: one per answer
        for answer in (direct, flask):
            assert len(answer[1].pop("x-request-id")) == 36
            answer[1].pop("x-ms-request-id", None)
    assert direct == flask


def test_a_head_request_gets_the_get_answer_without_a_body(onnx_server):
    with socket.create_connection(("127.0.0.1", onnx_server.port), timeout=10) as s:
        s.sendall(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 7" in head
    assert rest.startswith(b"HTTP/1.1 200") and rest.endswith(b"\r\n\r\nHealthy")  # nothing between the two


def test_malformed_http_is_a_json_400_and_a_closed_connection(onnx_server):
    with socket.create_connection(("127.0.0.1", onnx_server.port), timeout=10) as s:
        s.sendall(b"POST /score HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 400") and b"Connection: close" in head
    assert json.loads(body)["error"]["code"] == "BadRequest"


@pytest.fixture(scope="module")
def gated_direct(tmp_path_factory, iris_model_dir):  # noqa: F811
    env = {"AZUREML_MODEL_DIR": str(iris_model_dir), "AMLEMU_REPLICA_SECRET": SECRET, "WORKER_COUNT": "3"}
    yield from _start_gated(tmp_path_factory, env, "--threads", "3")


def _start_gated(tmp_path_factory, env, *args):
    replica = Replica(tmp_path_factory.mktemp("gated-direct"), env, "--server", "direct", *args)
    try:
        _wait_ready_with_secret(replica)
        yield replica
    finally:
        replica.stop()


def _wait_ready_with_secret(replica: Replica) -> None:
    for _ in range(600):
        try:
            if requests.get(replica.url + "/", headers={"x-amlemu-replica-secret": SECRET}, timeout=1).ok:
                return
        except requests.RequestException:
            pass
        assert replica.proc.poll() is None, replica.logs()
        threading.Event().wait(0.05)
    raise AssertionError(replica.logs())


@pytest.mark.parametrize("given", [None, "wrong", SECRET[:-1], "caf\xe9"])
def test_the_direct_scoring_path_refuses_requests_without_the_secret(gated_direct, given):
    headers = {**JSON, **({} if given is None else {"x-amlemu-replica-secret": given})}
    response = requests.post(gated_direct.url + "/score", data=json.dumps({"data": IRIS_ROWS}), headers=headers)
    assert response.status_code == 403
    code, message = _error(response)
    assert code == "Forbidden" and "answers only its endpoint's gateway" in message
    assert SECRET not in response.text


def test_several_threads_answer_concurrent_connections_each_in_order(gated_direct):
    def client(n: int, out: list) -> None:
        with requests.Session() as s:
            for i in range(30):
                row = IRIS_ROWS[(n + i) % 3]
                headers = {**JSON, "x-amlemu-replica-secret": SECRET, "x-request-id": f"c{n}-{i}"}
                r = s.post(gated_direct.url + "/score", data=json.dumps({"data": [row]}), headers=headers, timeout=30)
                out.append((r.status_code, r.json(), r.headers["x-request-id"], IRIS_LABELS[(n + i) % 3], f"c{n}-{i}"))

    results: list = []
    threads = [threading.Thread(target=client, args=(n, results)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 180
    assert all(status == 200 and got == [want] and rid == sent for status, got, rid, want, sent in results)


def _raw_exchange(sock: socket.socket, request: bytes) -> tuple[bytes, bytes]:
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(
        next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")).split(b":")[1]
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


def test_the_gateway_channel_is_offered_only_to_the_secret_and_serves_as_the_port(gated_direct, onnx_server):
    offered = requests.get(gated_direct.url + "/", headers={"x-amlemu-replica-secret": SECRET}, timeout=10)
    channel = offered.headers["x-amlemu-replica-channel"]
    assert re.fullmatch(r"@amlemu-replica-[0-9a-f]{32}", channel)
    assert "x-amlemu-replica-channel" not in requests.get(gated_direct.url + "/", timeout=10).headers  # 403
    assert "x-amlemu-replica-channel" not in requests.get(onnx_server.url + "/", timeout=10).headers  # no secret
    body = json.dumps({"data": IRIS_ROWS}).encode()
    request = b"POST /score HTTP/1.1\r\nHost: replica\r\nContent-Type: application/json\r\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect("\0" + channel[1:])
        head, answer = _raw_exchange(sock, request + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        assert head.startswith(b"HTTP/1.1 403")  # the secret is checked on the channel as on the port
        secret = f"x-amlemu-replica-secret: {SECRET}\r\n".encode()
        for _ in range(3):  # keep-alive
            head, answer = _raw_exchange(
                sock, request + secret + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
            )
            assert head.startswith(b"HTTP/1.1 200") and json.loads(answer) == IRIS_LABELS


def test_sigterm_closes_idle_connections_and_exits_0(tmp_path, iris_model_dir):  # noqa: F811
    replica = Replica(tmp_path, {"AZUREML_MODEL_DIR": str(iris_model_dir)}, "--server", "direct").wait_ready()
    idle = socket.create_connection(("127.0.0.1", replica.port), timeout=10)
    head, _ = _raw_exchange(idle, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    replica.proc.send_signal(signal.SIGTERM)
    assert replica.wait_exit(timeout=30) == 0, replica.logs()
    assert idle.recv(10) == b""  # closed by the server
    idle.close()
    with pytest.raises(requests.ConnectionError):
        requests.get(replica.url + "/", timeout=5)
