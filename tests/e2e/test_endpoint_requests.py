"""Requests to one online endpoint over real HTTP on loopback: a catalogue of malformed requests (each
answered with the right status and a message naming the problem, the endpoint healthy afterwards), a
soak through the scoring URI, the Postman export run as Postman would run it, and the OpenAPI document.

The endpoint is built once for the module: ``iris-ep`` (key auth) with deployment ``blue`` served by the
built-in ONNX scorer. Azure ML's status rule applies throughout: the gateway's own checks answer their
own 4xx; a non-2xx answer from the model becomes 424 with ``ms-azureml-model-error-statuscode`` and the
model's JSON body.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint, Model

from emulator.endpoints import http11, keys
from emulator.testing.load import run_load
from tests.conftest import Cli, local_home

ROW = [5.1, 3.5, 1.4, 0.2]  # an iris setosa: class 0
VALID = json.dumps({"data": [ROW]}).encode()
JSON = "application/json"
MODEL_STATUS = "ms-azureml-model-error-statuscode"


@dataclass
class Endpoint:
    """One endpoint under test and a credential it accepts."""

    name: str
    uri: str
    openapi_uri: str
    credential: str

    @property
    def port(self) -> int:
        return int(self.uri.split(":")[2].split("/")[0])

    def url(self, path: str) -> str:
        return self.uri.removesuffix("/score") + path

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}


@dataclass
class Workspace:
    home: Path
    ml_client: Any
    store: Any
    model: Any
    iris: Endpoint


def _create_endpoint(ml_client, model, name: str, auth_mode: str, **deployment) -> None:
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=name, auth_mode=auth_mode)).result()
    ml_client.online_deployments.begin_create_or_update(
        ManagedOnlineDeployment(name="blue", endpoint_name=name, model=model, instance_count=1, **deployment)
    ).result()
    ml_client.online_endpoints.begin_create_or_update(
        ManagedOnlineEndpoint(name=name, auth_mode=auth_mode, traffic={"blue": 100})
    ).result()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, iris_model):
    """A home of its own for the module, with iris-ep serving; its hosts are stopped at the end."""
    import backends
    from emulator.store import open_store

    with local_home(tmp_path_factory.mktemp("endpoint-requests") / "amlemu-home") as home:
        ml_client = backends.connect("local")
        model = ml_client.models.create_or_update(Model(name="iris", path=str(iris_model)))
        _create_endpoint(ml_client, model, "iris-ep", "key")
        endpoint = ml_client.online_endpoints.get("iris-ep")
        iris = Endpoint(
            "iris-ep",
            endpoint.scoring_uri,
            endpoint.openapi_uri,
            ml_client.online_endpoints.get_keys("iris-ep").primary_key,
        )
        yield Workspace(home, ml_client, open_store(), model, iris)


@pytest.fixture(scope="module")
def token_endpoint(workspace) -> Endpoint:
    """tok-ep (auth_mode aml_token) with the same model; its credential is a fresh token."""
    client = workspace.ml_client
    _create_endpoint(client, workspace.model, "tok-ep", "aml_token")
    endpoint = client.online_endpoints.get("tok-ep")
    return Endpoint(
        "tok-ep", endpoint.scoring_uri, endpoint.openapi_uri, client.online_endpoints.get_keys("tok-ep").access_token
    )


@pytest.fixture(scope="module")
def old_secondary_key(workspace) -> str:
    """iris-ep's secondary key from before a regeneration (the primary key keeps working)."""
    client = workspace.ml_client
    before = client.online_endpoints.get_keys("iris-ep")
    client.online_endpoints.begin_regenerate_keys(name="iris-ep", key_type="secondary").result()
    after = client.online_endpoints.get_keys("iris-ep")
    assert after.primary_key == before.primary_key and after.secondary_key != before.secondary_key
    fresh = requests.post(
        workspace.iris.uri,
        data=VALID,
        timeout=10,
        headers={"Authorization": f"Bearer {after.secondary_key}", "Content-Type": JSON},
    )
    assert fresh.status_code == 200, fresh.text
    return before.secondary_key


# -- the catalogue -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One malformed request and what it must be answered with.

    ``raw`` is sent as is over a socket (``{auth}`` becomes the Authorization header line);
    otherwise ``requests`` sends ``method path`` with ``body``. ``auth`` names the credential:
    ``key``, ``none``, ``old-secondary``, ``token``, ``expired-token`` or a literal header value.
    """

    id: str
    status: int
    message: tuple[str, ...]
    model_status: int | None = None
    body: bytes = b""
    content_type: str | None = JSON
    method: str = "POST"
    path: str = "/score"
    auth: str = "key"
    endpoint: str = "iris-ep"
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    half_close: bool = False


def model_error(id: str, body: bytes | str, *message: str, model_status: int = 400, **kw) -> Case:
    """A request the gateway passes on and the built-in scorer refuses: 424 carrying the model's status."""
    return Case(id, 424, message, model_status, body.encode() if isinstance(body, str) else body, **kw)


def gateway(id: str, status: int, *message: str, body: bytes | str = VALID, **kw) -> Case:
    """A request the gateway answers itself."""
    return Case(id, status, message, body=body.encode() if isinstance(body, str) else body, **kw)


def raw(id: str, status: int, head: str, *message: str, body: bytes = b"", **kw) -> Case:
    """A request ``requests`` cannot express: sent byte for byte."""
    return Case(id, status, message, raw=head.encode("latin-1") + body, **kw)


def _rows(rows: list) -> str:
    return json.dumps({"data": rows})


OVERSIZE = b'{"data": [' + b"[5.1, 3.5, 1.4, 0.2], " * 75_000 + b"[5.1, 3.5, 1.4, 0.2]]}"  # 1.65 MB, valid JSON
SCORE = "POST /score HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\n"

CASES = [
    # the body: the built-in scorer answers 400 (415 for the media type), the gateway 424
    model_error("invalid-json", '{"data": [[5.1, 3.5', "request body is not valid JSON", "line 1"),
    model_error("empty-body", b"", "request body is empty", '"input_data"'),
    model_error("not-utf8", b'{"data": [[5.1, 3.5, 1.4, 0.2]], "note": "\xff\xfe"}', "not UTF-8"),
    model_error("nested-too-deeply", "[" * 100_000, "nested too deeply"),
    model_error(
        "content-type-text-plain",
        VALID,
        "Content-Type must be application/json",
        "got text/plain",
        model_status=415,
        content_type="text/plain",
    ),
    model_error(
        "content-type-form",
        "data=5.1&data=3.5",
        "got application/x-www-form-urlencoded",
        model_status=415,
        content_type="application/x-www-form-urlencoded",
    ),
    model_error(
        "content-type-missing",
        VALID,
        "Content-Type must be application/json",
        "got none",
        model_status=415,
        content_type=None,
    ),
    model_error(
        "charset-latin1",
        VALID,
        "charset=latin-1 is not supported",
        model_status=415,
        content_type="application/json; charset=latin-1",
    ),
    model_error("top-level-array", json.dumps([ROW]), "must be a JSON object", "got a list"),
    model_error("top-level-string", '"5.1, 3.5, 1.4, 0.2"', "must be a JSON object", "got the string"),
    model_error("top-level-number", "42", "must be a JSON object", "got 42"),
    model_error("missing-data-key", json.dumps({"rows": [ROW]}), "no input data", '"input_data"', '"rows"'),
    model_error("two-data-keys", json.dumps({"data": [ROW], "input_data": [ROW]}), "send only one"),
    model_error("data-null", '{"data": null}', '"data" must be a list of rows', "got null"),
    model_error("three-features", _rows([ROW[:3]]), "expected 4 features per row, got 3", "[N, 4]"),
    model_error("five-features", _rows([ROW + [1.0]]), "expected 4 features per row, got 5"),
    model_error("three-d-array", _rows([[ROW]]), "3-D array", "rank 2"),
    model_error("ragged-rows", _rows([ROW, ROW[:3]]), "ragged rows", "row 1 has 3 values"),
    model_error("empty-list", _rows([]), '"data" is an empty list', "at least one row"),
    model_error("row-not-a-list", _rows(ROW), "row 0: expected a list of 4 features, got 5.1"),
    model_error("too-many-rows", _rows([ROW] * 10_001), "10001 rows", "limit is 10000"),
    model_error("strings", _rows([["a", "b", "c", "d"]]), 'row 0, column 0: expected a number, got the string "a"'),
    model_error("numeric-strings", _rows([[str(v) for v in ROW]]), 'expected a number, got the string "5.1"'),
    model_error("object-value", _rows([ROW[:3] + [{"cm": 0.2}]]), "row 0, column 3", "got an object"),
    model_error("booleans", _rows([[True, False, True, False]]), "expected a number, got true"),
    model_error("null-value", _rows([[None] + ROW[1:]]), "row 0, column 0", "got null"),
    model_error("nan", '{"data": [[NaN, 3.5, 1.4, 0.2]]}', "NaN is not a finite number"),
    model_error("infinity", '{"data": [[5.1, Infinity, 1.4, 0.2]]}', "column 1", "Infinity is not a finite number"),
    model_error("minus-infinity", '{"data": [[5.1, 3.5, -Infinity, 0.2]]}', "-Infinity is not a finite number"),
    model_error("out-of-float32-range", _rows([[1e300] + ROW[1:]]), "1e+300 is out of range for float32"),
    model_error("get-without-query", b"", "no input data", method="GET", content_type=None),
    model_error("post-to-swagger", b"", "POST is not allowed on /swagger.json", model_status=405, path="/swagger.json"),
    # the gateway's own checks
    gateway("body-over-1.5MB", 413, "larger than the limit of 1500000 bytes", body=OVERSIZE),
    gateway(
        "unknown-deployment",
        404,
        "Deployment 'purple'",
        "azureml-model-deployment",
        headers={"azureml-model-deployment": "purple"},
    ),
    gateway("no-authorization", 401, "Authorization header missing", auth="none"),
    gateway("wrong-key", 401, "key is not valid", auth="Bearer not-the-key"),
    gateway("regenerated-secondary-key", 401, "regenerated", auth="old-secondary"),
    gateway("basic-auth", 401, "must be 'Bearer", auth="Basic dXNlcjpwYXNzd29yZA=="),
    gateway("bearer-without-key", 401, "must be 'Bearer", auth="Bearer "),
    gateway("token-malformed", 401, "Token rejected", "malformed", auth="Bearer not-a-token", endpoint="tok-ep"),
    gateway(
        "token-forged", 401, "Token rejected", "not valid for this endpoint", auth="forged-token", endpoint="tok-ep"
    ),
    gateway("token-expired", 401, "Token rejected", "expired", auth="expired-token", endpoint="tok-ep"),
    gateway("put-score", 405, "PUT is not allowed on /score", method="PUT"),
    gateway("delete-score", 405, "DELETE is not allowed on /score", method="DELETE", body=b""),
    gateway("unknown-path", 404, "No route /predict", path="/predict"),
    # malformed HTTP, byte for byte
    raw("request-line-without-version", 400, "POST /score\r\nHost: 127.0.0.1\r\n\r\n", "malformed request line"),
    raw("tls-handshake-on-http", 400, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "malformed request line"),
    raw("header-line-without-colon", 400, SCORE + "NoColonHere\r\n\r\n", "malformed header", "Invalid header token"),
    raw(
        "header-block-over-64KiB",
        431,
        SCORE + "".join(f"X-Pad-{i}: {'a' * 1000}\r\n" for i in range(80)) + "\r\n",
        "request head larger than 65536 bytes",
    ),
    raw(
        "content-length-not-a-number", 400, SCORE + "Content-Length: abc\r\n\r\n", "Invalid character in Content-Length"
    ),
    raw("content-length-negative", 400, SCORE + "Content-Length: -5\r\n\r\n", "Invalid character in Content-Length"),
    raw(
        "content-length-with-sign",
        400,
        SCORE + f"Content-Length: +{len(VALID)}\r\n\r\n",
        "Invalid character in Content-Length",
        body=VALID,
    ),
    raw(
        "content-length-twice",
        400,
        SCORE + "Content-Length: 5\r\nContent-Length: 7\r\n\r\n",
        "Duplicate Content-Length",
    ),
    raw(
        "content-length-twice-same",
        400,
        SCORE + f"Content-Length: {len(VALID)}\r\nContent-Length: {len(VALID)}\r\n\r\n",
        "Duplicate Content-Length",
        body=VALID,
    ),
    raw("content-length-list", 400, SCORE + "Content-Length: 5, 5\r\n\r\n", "Invalid character in Content-Length"),
    raw(
        "content-length-and-chunked",
        400,
        SCORE + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "Transfer-Encoding can't be present with Content-Length",
    ),
    raw(
        "chunked-and-content-length",
        400,
        SCORE + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        "Content-Length can't be present with Transfer-Encoding",
    ),
    raw(
        "transfer-encoding-twice",
        400,
        SCORE + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "Transfer-Encoding",
    ),
    raw(
        "transfer-encoding-chunked-then-gzip",
        400,
        SCORE + "Transfer-Encoding: chunked, gzip\r\n\r\n",
        "Transfer-Encoding",
    ),
    raw(
        "transfer-encoding-gzip-then-chunked",
        501,
        SCORE + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "Transfer-Encoding 'gzip, chunked'",
        "not supported",
    ),
    raw(
        "transfer-encoding-space-before-colon",
        400,
        SCORE + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        "Invalid header field char",
    ),
    # CR, LF and NUL in header fields: a bare LF would smuggle a second request to the replica
    raw(
        "header-value-bare-lf-smuggles-a-request",
        400,
        SCORE + "X-Request-Id: a\nContent-Length: 0\n\nGET /swagger.json HTTP/1.1\nHost: r\nX-Pad: z\r\n"
        f"Content-Length: {len(VALID)}\r\n\r\n",
        "malformed header",
        "CR",
        body=VALID,
    ),
    raw(
        "header-value-bare-cr",
        400,
        SCORE + f"X-Request-Id: a\rb\r\nContent-Length: {len(VALID)}\r\n\r\n",
        "malformed header",
        body=VALID,
    ),
    raw(
        "header-value-nul",
        400,
        SCORE + f"X-Request-Id: a\x00b\r\nContent-Length: {len(VALID)}\r\n\r\n",
        "Invalid header value char",
        body=VALID,
    ),
    raw(
        "header-value-control-char",
        400,
        SCORE + f"Accept: a\x01b\r\nContent-Length: {len(VALID)}\r\n\r\n",
        "Invalid header value char",
        body=VALID,
    ),
    raw(
        "header-name-bare-lf",
        400,
        SCORE + f"X-\nRequest-Id: b\r\nContent-Length: {len(VALID)}\r\n\r\n",
        "Invalid header token",
        body=VALID,
    ),
    raw(
        "header-obs-fold",
        400,
        SCORE + f"X-Request-Id: a\r\n b\r\nContent-Length: {len(VALID)}\r\n\r\n",
        "malformed header",
        body=VALID,
    ),
    raw("request-line-bare-lf", 400, "POST /score HTTP/1.1\nHost: 127.0.0.1\r\n\r\n", "malformed request line"),
    raw("target-not-a-path", 400, "POST score HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "malformed request line"),
    raw("http-version-2", 505, "POST /score HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n", "HTTP/2.0 is not supported"),
    raw("host-missing", 400, "POST /score HTTP/1.1\r\n{auth}Content-Length: 0\r\n\r\n", "Host header missing"),
    raw("host-twice", 400, SCORE + "Host: other\r\nContent-Length: 0\r\n\r\n", "more than one Host"),
    raw(
        "upgrade-websocket",
        501,
        SCORE + "Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n",
        "upgrades",
        "not supported",
    ),
    raw("connect-method", 501, "CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "not supported"),
    raw(
        "x-ms-client-request-id-not-ascii",
        400,
        SCORE + f"x-ms-client-request-id: caf\xe9\r\nContent-Length: {len(VALID)}\r\n\r\n",
        "x-ms-client-request-id must be",
        body=VALID,
    ),
    gateway(
        "x-request-id-over-100-characters", 400, "x-request-id must be 1 to 100", headers={"x-request-id": "a" * 101}
    ),
    gateway("x-request-id-with-space", 400, "x-request-id must be", headers={"x-request-id": "a b"}),
    raw(
        "content-length-over-limit",
        413,
        SCORE + "Content-Length: 1600000\r\n\r\n",
        "body of 1600000 bytes",
        "limit of 1500000 bytes",
    ),
    raw(
        "transfer-encoding-gzip",
        501,
        SCORE + "Transfer-Encoding: gzip\r\n\r\n",
        "Transfer-Encoding 'gzip'",
        "not supported",
    ),
    raw(
        "chunk-size-not-hex",
        400,
        SCORE + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        "malformed chunked body",
        "Invalid character in chunk size",
    ),
    raw(
        "chunk-size-negative",
        400,
        SCORE + "Transfer-Encoding: chunked\r\n\r\n-5\r\nabc\r\n0\r\n\r\n",
        "malformed chunked body",
    ),
    raw(
        "chunk-size-hex-overflow",
        400,
        SCORE + "Transfer-Encoding: chunked\r\n\r\n1" + "0" * 16 + "\r\nabc\r\n",
        "malformed chunked body",
        "overflow",
    ),
    raw(
        "chunk-size-with-space",
        400,
        SCORE + "Transfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n",
        "malformed chunked body",
    ),
    raw(
        "chunk-size-line-over-64KiB",
        400,
        SCORE + "Transfer-Encoding: chunked\r\n\r\n" + "0" * 200_000 + "5\r\n",
        "malformed chunked body",
        "over 65536 bytes",
    ),
    raw(
        "chunk-extension-over-64KiB",
        400,
        SCORE + "Transfer-Encoding: chunked\r\n\r\n5;" + "a" * 200_000 + "\r\n",
        "malformed chunked body",
        "over 65536 bytes",
    ),
    raw(
        "chunk-extension-malformed",
        400,
        SCORE + "Transfer-Encoding: chunked\r\n\r\n5;a b\r\nhello\r\n0\r\n\r\n",
        "malformed chunked body",
        "chunk extensions",
    ),
    raw(
        "chunk-without-crlf-after-data",
        400,
        SCORE + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello0\r\n\r\n",
        "malformed chunked body",
    ),
    raw(
        "chunks-over-limit",
        413,
        SCORE + "Transfer-Encoding: chunked\r\n\r\n200000\r\n",
        "larger than the limit",
        body=b"x" * 1_600_000,
    ),
    raw(
        "content-length-shorter-than-body",
        424,
        SCORE + "Content-Length: 10\r\n\r\n",
        "not valid JSON",
        body=VALID,
        model_status=400,
    ),
    raw(
        "content-length-longer-then-close",
        400,
        SCORE + "Content-Length: 100\r\n\r\n",
        f"ended after {len(VALID)} of 100 announced bytes",
        body=VALID,
        half_close=True,
    ),
    raw(
        "content-length-longer-then-wait",
        408,
        SCORE + "Content-Length: 100\r\n\r\n",
        f"did not arrive within {http11.BODY_TIMEOUT_S:g} s",
        body=VALID,
    ),
]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def message(self) -> str:
        return json.loads(self.body)["error"]["message"]


def _authorization(case: Case, request) -> str | None:
    """The Authorization header the case sends (None: no header at all)."""
    fixture = request.getfixturevalue
    if case.auth == "none":
        return None
    if case.auth == "key":
        return f"Bearer {fixture('workspace').iris.credential}"
    if case.auth == "old-secondary":
        return f"Bearer {fixture('old_secondary_key')}"
    if case.auth == "forged-token":  # a valid token with one character of its signature changed
        payload, _, signature = fixture("token_endpoint").credential.partition(".")
        return f"Bearer {payload}.{'B' if signature.startswith('A') else 'A'}{signature[1:]}"
    if case.auth == "expired-token":
        secret = fixture("workspace").store.get_asset("online-endpoint", "tok-ep", "1")["credentials"]["token_secret"]
        return f"Bearer {keys.issue_token('tok-ep', secret, lifetime_s=-1)[0]}"
    return case.auth


def _send_raw(port: int, data: bytes, half_close: bool, timeout: float) -> Answer:
    """Sends ``data`` on a new connection and reads one response (not waiting for the close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway may answer and close before reading everything: its answer is still there
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            assert chunk, f"the connection closed without an answer (got {received!r})"
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return Answer(int(lines[0].split(" ")[1]), headers, body[:length])


def _send(case: Case, endpoint: Endpoint, request) -> Answer:
    authorization = _authorization(case, request)
    if case.raw is not None:
        line = f"Authorization: {authorization}\r\n".encode() if authorization else b""
        return _send_raw(
            endpoint.port, case.raw.replace(b"{auth}", line), case.half_close, timeout=http11.BODY_TIMEOUT_S + 10
        )
    headers = dict(case.headers)
    if authorization:
        headers["Authorization"] = authorization
    if case.content_type:
        headers["Content-Type"] = case.content_type
    response = requests.request(
        case.method, endpoint.url(case.path), data=case.body or None, headers=headers, timeout=30
    )
    return Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_request_is_refused_with_a_message_naming_it(case, workspace, request):
    endpoint = request.getfixturevalue("token_endpoint") if case.endpoint == "tok-ep" else workspace.iris
    answer = _send(case, endpoint, request)
    assert answer.status == case.status, answer
    assert answer.headers.get("content-type", "").startswith(JSON), answer
    message = answer.message()
    for words in case.message:
        assert words in message, f"{words!r} not in {message!r}"
    if case.model_status is None:
        assert MODEL_STATUS not in answer.headers  # the gateway's own answer, not the model's
    else:
        assert answer.headers[MODEL_STATUS] == str(case.model_status), answer.headers
        assert answer.headers["azureml-model-deployment"] == "blue"
    # the endpoint still serves, on a fresh connection
    after = requests.post(endpoint.uri, data=VALID, timeout=10, headers={**endpoint.auth(), "Content-Type": JSON})
    assert after.status_code == 200 and after.json() == [0], after.text


def test_catalogue_is_large_and_its_ids_unique():
    assert len(CASES) >= 25 and len({c.id for c in CASES}) == len(CASES)


# -- soak ----------------------------------------------------------------------------------------------------------
def test_soak_20000_requests_over_32_connections_without_an_error(workspace):
    """Azure ML's default request settings (one request per instance, 500 ms queue wait) on 2 instances."""
    client = workspace.ml_client
    client.online_deployments.begin_create_or_update(
        ManagedOnlineDeployment(name="soak", endpoint_name="iris-ep", model=workspace.model, instance_count=2)
    ).result()
    try:
        result = run_load(
            workspace.iris.uri,
            connections=32,
            requests=20_000,
            keep_samples=3,
            headers={**workspace.iris.auth(), "Content-Type": JSON, "azureml-model-deployment": "soak"},
            body=VALID,
            header_to_count="azureml-model-deployment",
        )
    finally:
        client.online_deployments.begin_delete(name="soak", endpoint_name="iris-ep").result()
    print(f"\nsoak: {result.summary()}")
    assert result.total == 20_000, result.summary()
    assert result.errors == 0 and result.by_status == {200: 20_000}, (result.summary(), result.error_samples)
    assert result.header_counts == {"soak": 20_000}
    assert all(sample.body == b"[0]" for sample in result.samples)


# -- Postman -------------------------------------------------------------------------------------------------------
def _postman_request(collection: dict, item_name: str) -> requests.Response:
    """Runs one request of a collection as Postman would: variables substituted, bearer auth inherited."""
    variables = {v["key"]: v["value"] for v in collection["variable"]}

    def fill(text: str) -> str:
        return re.sub(r"\{\{(\w+)\}\}", lambda m: variables[m.group(1)], text)

    item = next(i for i in collection["item"] if i["name"] == item_name)
    spec = item["request"]
    auth = spec.get("auth") or collection["auth"]
    assert auth["type"] == "bearer"
    token = fill(next(entry["value"] for entry in auth["bearer"] if entry["key"] == "token"))
    headers = {h["key"]: fill(h["value"]) for h in spec.get("header", []) if not h.get("disabled")}
    headers["Authorization"] = f"Bearer {token}"
    body = spec.get("body", {}).get("raw")
    return requests.request(
        spec["method"],
        fill(spec["url"]["raw"]),
        headers=headers,
        data=fill(body).encode() if body else None,
        timeout=10,
    )


def test_postman_export_runs_as_postman_would(workspace, tmp_path):
    collection = Cli(workspace.home, tmp_path).json("online-endpoint", "export-postman", "--name", "iris-ep")
    assert collection["info"]["schema"] == "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
    variables = {v["key"]: v["value"] for v in collection["variable"]}
    assert variables["scoring_uri"] == workspace.iris.uri
    assert variables["endpoint_key"] == workspace.iris.credential
    assert collection["auth"] == {
        "type": "bearer",
        "bearer": [{"key": "token", "value": "{{endpoint_key}}", "type": "string"}],
    }
    score = next(i for i in collection["item"] if i["name"] == "score")["request"]
    assert score["method"] == "POST" and score["url"]["raw"] == "{{scoring_uri}}"
    assert score["url"]["port"] == str(workspace.iris.port) and score["url"]["path"] == ["score"]
    assert {"key": "Content-Type", "value": JSON} in score["header"]
    sample = json.loads(score["body"]["raw"])
    assert score["body"]["options"]["raw"]["language"] == "json"
    assert len(sample["input_data"]) == 1 and len(sample["input_data"][0]) == 4

    scored = _postman_request(collection, "score")
    assert scored.status_code == 200, scored.text
    assert isinstance(scored.json(), list) and len(scored.json()) == 1
    pinned = _postman_request(collection, "score one deployment (azureml-model-deployment header)")
    assert pinned.status_code == 200 and pinned.headers["azureml-model-deployment"] == "blue", pinned.text
    document = _postman_request(collection, "OpenAPI document")
    assert document.status_code == 200 and "/score" in document.json()["paths"]


# -- OpenAPI -------------------------------------------------------------------------------------------------------
def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [node["$ref"]] if isinstance(node.get("$ref"), str) else [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_openapi_document_describes_the_model_signature(workspace):
    iris = workspace.iris
    response = requests.get(iris.openapi_uri, headers=iris.auth(), timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith(JSON)
    doc = response.json()
    assert doc["swagger"] == "2.0" and doc["info"]["title"] and doc["info"]["version"]
    assert doc["paths"]["/score"]["post"]["parameters"][0]["schema"] == {"$ref": "#/definitions/ServiceInput"}
    for ref in _refs(doc):
        assert ref.startswith("#/definitions/") and ref.removeprefix("#/definitions/") in doc["definitions"], ref
    service_input = doc["definitions"]["ServiceInput"]
    assert service_input["x-model-inputs"] == [{"name": "input", "shape": [None, 4], "element_type": "float32"}]
    assert "float32 tensor of shape [N, 4]" in service_input["description"]
    rows = service_input["properties"]["input_data"]
    assert rows["items"] == {
        "type": "array",
        "items": {"type": "number", "format": "float"},
        "minItems": 4,
        "maxItems": 4,
    }
    # the schema is usable as it is: it accepts the example and a real row, refuses three features
    schema = {k: v for k, v in service_input.items() if not k.startswith("x-")}
    jsonschema.Draft4Validator.check_schema(schema)
    validator = jsonschema.Draft4Validator(schema)
    assert validator.is_valid(service_input["example"]) and validator.is_valid({"input_data": [ROW]})
    assert not validator.is_valid({"input_data": [ROW[:3]]})
    answered = requests.post(iris.uri, json=service_input["example"], headers=iris.auth(), timeout=10)
    assert answered.status_code == 200, answered.text

    v3 = requests.get(iris.openapi_uri, params={"version": "3"}, headers=iris.auth(), timeout=10).json()
    assert v3["openapi"].startswith("3.") and "post" in v3["paths"]["/score"]
    assert v3["components"]["schemas"]["ServiceInput"]["x-model-inputs"] == service_input["x-model-inputs"]


def test_openapi_document_needs_the_key(workspace):
    missing = requests.get(workspace.iris.openapi_uri, timeout=10)
    assert missing.status_code == 401 and "Authorization header missing" in missing.json()["error"]["message"]
    wrong = requests.get(workspace.iris.openapi_uri, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401 and "key is not valid" in wrong.json()["error"]["message"]


def test_absolute_form_target_and_allow_header(workspace):
    """RFC 9112: a server accepts an absolute-form target; a 405 names the allowed methods."""
    uri, key = workspace.iris.uri, workspace.iris.credential
    port = int(uri.split(":")[2].split("/")[0])
    request = (
        f"POST {uri} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(VALID)}\r\nConnection: close\r\n\r\n"
    )
    answer = _send_raw(port, request.encode() + VALID, half_close=False, timeout=10)
    assert answer.status == 200, answer.body
    put = requests.put(uri, data=VALID, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert put.status_code == 405 and put.headers["Allow"] == "GET, POST"


# -- replicas answer only the gateway -------------------------------------------------------------------------
def test_replica_refuses_requests_that_skip_the_gateway(workspace):
    """A replica's own loopback port is no way around the key check: without the host's replica secret
    (which only the gateway sends) every route is 403 and nothing is scored."""
    from emulator.endpoints import service

    replicas = service.status(workspace.store, "iris-ep")["deployments"]["blue"]["replicas"]
    assert replicas
    for replica in replicas:
        base = f"http://127.0.0.1:{replica['port']}"
        for headers in ({}, {"x-amlemu-replica-secret": "guess"}, {**workspace.iris.auth()}):
            scored = requests.post(base + "/score", data=VALID, headers={**headers, "Content-Type": JSON}, timeout=10)
            assert scored.status_code == 403 and "answers only its endpoint's gateway" in scored.text, scored.text
            assert "[0]" not in scored.text
        assert requests.get(base + "/", timeout=10).status_code == 403
        assert requests.get(base + "/swagger.json", timeout=10).status_code == 403
    # through the gateway it works, and a client's own copy of the secret header is never forwarded
    through = requests.post(
        workspace.iris.uri,
        data=VALID,
        timeout=10,
        headers={**workspace.iris.auth(), "Content-Type": JSON, "x-amlemu-replica-secret": "x"},
    )
    assert through.status_code == 200 and through.json() == [0], through.text
    assert "AMLEMU_REPLICA_SECRET" not in Path(replicas[0]["log"]).read_text(errors="replace")


def test_pipelined_requests_are_answered_in_order_and_a_smuggled_one_is_not_forwarded(workspace):
    """Two requests in one write are answered in order; a third whose header carries a bare LF is refused
    (400) before anything of it reaches the replica, and the connection is closed."""
    iris = workspace.iris
    one = (
        f"POST /score HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {iris.credential}\r\n"
        f"Content-Type: application/json\r\nx-request-id: first\r\nContent-Length: {len(VALID)}\r\n\r\n"
    ).encode()
    two = one.replace(b"first", b"second")
    smuggled = one.replace(
        b"x-request-id: first", b"x-request-id: a\nContent-Length: 0\n\nGET /swagger.json HTTP/1.1\nHost: r\nX-Pad: z"
    )
    with socket.create_connection(("127.0.0.1", iris.port), timeout=10) as sock:
        sock.sendall(one + VALID + two + VALID + smuggled + VALID)
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    answers = received.split(b"HTTP/1.1 ")[1:]
    assert len(answers) == 3, received
    assert answers[0].startswith(b"200") and b"x-request-id: first" in answers[0] and answers[0].endswith(b"[0]")
    assert answers[1].startswith(b"200") and b"x-request-id: second" in answers[1]
    assert answers[2].startswith(b"400") and b"malformed header" in answers[2] and b"swagger" not in answers[2]
