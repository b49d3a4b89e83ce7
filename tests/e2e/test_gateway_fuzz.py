"""Differential fuzzing of the endpoint gateway over real sockets on loopback.

One endpoint serves an echo scoring script on 2 replicas. Well-behaved clients (each on its own
keep-alive connection, half of them with the primary key, half with the secondary) send a unique
token and request id per request and must always get back exactly their own, while other threads
send seeded random and adversarial requests, with a valid key, so that anything let through would
reach the replicas: CR, LF and NUL placed anywhere in header names and values, duplicate and
conflicting Content-Length / Transfer-Encoding, chunk extensions, negative, hex-overflowing and
over-long chunk sizes, obs-fold, pipelined requests and random byte flips. Every request known to be
malformed must get a 4xx (501/505 for what is refused as unsupported) or a closed connection, no
answer may carry a token of a well-behaved client, and the host log must hold no traceback.
Seeded, bounded in count and time (about 25 s of load).
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from dataclasses import dataclass

import pytest
import requests
from azure.ai.ml.entities import (
    CodeConfiguration,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    Model,
    OnlineRequestSettings,
)

SEED = 20240610
BUDGET_S = 25.0
MAX_EVIL = 1500
GOOD_CLIENTS = 4
EVIL_CLIENTS = 3
ECHO = "import json\n\ndef init():\n    pass\n\ndef run(raw):\n    return json.loads(raw)\n"
REFUSED = set(range(400, 500)) | {501, 505}


@pytest.fixture
def echo_endpoint(ml_client, iris_model, tmp_path, store):
    code = tmp_path / "echo"
    code.mkdir()
    (code / "score.py").write_text(ECHO)
    model = ml_client.models.create_or_update(Model(name="iris", path=str(iris_model), type="custom_model"))
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="fuzz-ep", auth_mode="key")).result()
    ml_client.online_deployments.begin_create_or_update(
        ManagedOnlineDeployment(
            name="blue",
            endpoint_name="fuzz-ep",
            model=model,
            instance_count=2,
            environment="azureml:AzureML-sklearn-1.5@latest",
            code_configuration=CodeConfiguration(code=str(code), scoring_script="score.py"),
            request_settings=OnlineRequestSettings(
                max_concurrent_requests_per_instance=8, max_queue_wait_ms=10_000, request_timeout_ms=30_000
            ),
        )
    ).result()
    ml_client.online_endpoints.begin_create_or_update(
        ManagedOnlineEndpoint(name="fuzz-ep", auth_mode="key", traffic={"blue": 100})
    ).result()
    keys = ml_client.online_endpoints.get_keys("fuzz-ep")
    uri = ml_client.online_endpoints.get("fuzz-ep").scoring_uri
    from emulator.endpoints import records

    return uri, (keys.primary_key, keys.secondary_key), records.endpoint_dir(store, "fuzz-ep") / "host.log"


# -- the adversarial requests --------------------------------------------------------------------------------
@dataclass
class Evil:
    kind: str
    data: bytes
    malformed: bool  # True: must be refused (4xx / 501 / 505) or the connection closed


def _request(
    key: str,
    body: bytes,
    headers: list[tuple[str, str]] | None = None,
    framing: str | None = None,
    line: str = "POST /score HTTP/1.1",
) -> bytes:
    fields = [
        ("Host", "127.0.0.1"),
        ("Authorization", f"Bearer {key}"),
        ("Content-Type", "application/json"),
        ("x-request-id", "evil-id"),
        *(headers or []),
    ]
    head = line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields)
    head += framing if framing is not None else f"Content-Length: {len(body)}\r\n"
    return head.encode("latin-1") + b"\r\n" + body


def _chunked(body: bytes, size_line=None) -> bytes:
    size_line = f"{len(body):x}" if size_line is None else size_line
    return size_line.encode("latin-1") + b"\r\n" + body + b"\r\n0\r\n\r\n"


INJECTIONS = [
    "\n",
    "\r",
    "\x00",
    "\r\n",
    "\n\n",
    "\r\r\n",
    "\n\r",
    "\x0b",
    "\x7f",
    "\nContent-Length: 0\n\nGET /swagger.json HTTP/1.1\nHost: r\nX-Pad: z",
    "\r\nContent-Length: 0\r\n\r\nGET /swagger.json HTTP/1.1\r\nHost: r\r\nX-Pad: z",
]


def _generate(rng: random.Random, key: str, n: int) -> Evil:
    body = json.dumps({"token": f"evil-{n}"}).encode()
    kind = rng.choice(
        [
            "inject-value",
            "inject-name",
            "cl-te",
            "chunk-size",
            "chunk-ext",
            "obs-fold",
            "pipelined",
            "flip",
            "request-line",
        ]
    )
    if kind == "inject-value":
        name = rng.choice(
            [
                "x-request-id",
                "Content-Type",
                "Accept",
                "x-ms-client-request-id",
                "X-Pad",
                "azureml-model-deployment",
                "Authorization",
            ]
        )
        value = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}.get(name, "value-123")
        cut = rng.randrange(len(value) + 1)
        value = value[:cut] + rng.choice(INJECTIONS) + value[cut:]
        headers = [(name, value)]
        return Evil(kind, _request(key, body, headers), True)
    if kind == "inject-name":
        name = "X-Pad"
        cut = rng.randrange(len(name) + 1)
        return Evil(
            kind, _request(key, body, [(name[:cut] + rng.choice(INJECTIONS + [" ", "\t"]) + name[cut:], "v")]), True
        )
    if kind == "cl-te":
        n_ = len(body)
        framing, data = rng.choice(
            [
                (f"Content-Length: {n_}\r\nContent-Length: {n_ + 1}\r\n", body),
                (f"Content-Length: {n_}\r\nContent-Length: {n_}\r\n", body),
                (f"Content-Length: {n_}, {n_}\r\n", body),
                (f"Content-Length: {n_}\r\nTransfer-Encoding: chunked\r\n", _chunked(body)),
                (f"Transfer-Encoding: chunked\r\nContent-Length: {n_}\r\n", _chunked(body)),
                ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", _chunked(body)),
                ("Transfer-Encoding: chunked, identity\r\n", _chunked(body)),
                ("Transfer-Encoding: identity\r\n", body),
                ("Transfer-Encoding: gzip, chunked\r\n", _chunked(body)),
                ("Transfer-Encoding : chunked\r\n", _chunked(body)),
                ("Transfer-Encoding: xchunked\r\n", _chunked(body)),
                (f"Content-Length: +{n_}\r\n", body),
                (f"Content-Length: -{n_}\r\n", body),
                (f"Content-Length: 0x{n_:x}\r\n", body),
                (f"Content-Length: {n_} \r\nContent-Length:{n_}\r\n", body),
                (f"Content-Length: {'9' * 30}\r\n", body),
            ]
        )
        return Evil(kind, _request(key, data, framing=framing), True)
    if kind == "chunk-size":
        size = rng.choice(
            [
                "-5",
                "-0",
                "1" + "0" * 16,
                "f" * 17,
                "0x10",
                "1 0",
                "g",
                "",
                " 5",
                "5 ",
                "0" * 200_000 + "5",
                "1" * 40,
                "+5",
            ]
        )
        return Evil(kind, _request(key, _chunked(body, size), framing="Transfer-Encoding: chunked\r\n"), True)
    if kind == "chunk-ext":
        ext, bad = rng.choice(
            [
                (";a=b", False),
                (";a", False),
                (';a="x y"', False),
                (";a=b;c=d", False),
                (";a b", True),
                (";=b", False),
                (";a=\x00", True),
                (";" + "a" * 200_000, True),
                (";a=\nb", True),
            ]
        )
        size = f"{len(body):x}{ext}"  # llhttp ignores an empty extension name (";=b"): harmless, not required
        return Evil(kind, _request(key, _chunked(body, size), framing="Transfer-Encoding: chunked\r\n"), bad)
    if kind == "obs-fold":
        headers = [("X-Pad", "a\r\n" + rng.choice([" ", "\t", "  "]) + "b")]
        return Evil(kind, _request(key, body, headers), True)
    if kind == "pipelined":
        second = _request(key, body, [("X-Pad", "a\nContent-Length: 0\n\nGET /swagger.json HTTP/1.1\nHost: r")])
        return Evil(kind, _request(key, body) + second, False)  # the first is answered, the second refused
    if kind == "request-line":
        line, bad = rng.choice(
            [
                ("POST /score", True),
                ("POST /score HTTP/1.1 extra", True),
                ("POST /score HTTP/9.9", True),
                ("POST /sc\nore HTTP/1.1", True),
                ("POST /score HTTP/1.1\n", True),
                ("\x16\x03\x01 /score HTTP/1.1", True),
                ("POST /sc\x00ore HTTP/1.1", True),
                ("POST score HTTP/1.1", True),
                ("POST /score HTTP/1.1\r", True),
                ("POST  /score HTTP/1.1", False),
            ]
        )  # RFC 9112 3: a server may split on whitespace
        return Evil(kind, _request(key, body, line=line), bad)
    data = bytearray(_request(key, body))  # "flip": any outcome but a foreign answer or a traceback
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return Evil(kind, bytes(data), False)


def _exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
        return received


def _statuses(received: bytes) -> list[int]:
    return [int(m) for m in re.findall(rb"(?:^|\n)HTTP/1\.1 (\d{3}) ", received)]


# -- the test ------------------------------------------------------------------------------------------------
def test_malformed_requests_never_disturb_well_behaved_clients(echo_endpoint):
    uri, keys, host_log = echo_endpoint
    port = int(uri.split(":")[2].split("/")[0])
    deadline = time.monotonic() + BUDGET_S
    stop = threading.Event()
    problems: list[str] = []
    good_served = [0] * GOOD_CLIENTS
    evil_seen: dict[str, int] = {}
    lock = threading.Lock()

    def good(i: int) -> None:
        key = keys[i % 2]
        with requests.Session() as session:
            n = 0
            while not stop.is_set():
                n += 1
                token = f"good-{i}-{n}-{random.getrandbits(32):08x}"
                rid = f"rid-{i}-{n}"
                try:
                    response = session.post(
                        uri,
                        data=json.dumps({"token": token}),
                        timeout=30,
                        headers={
                            "Authorization": f"Bearer {key}",
                            "x-request-id": rid,
                            "Content-Type": "application/json",
                        },
                    )
                except requests.RequestException as exc:
                    problems.append(f"client {i}: {exc}")
                    return
                if (
                    response.status_code != 200
                    or response.json() != {"token": token}
                    or response.headers.get("x-request-id") != rid
                ):
                    problems.append(
                        f"client {i} sent {token}/{rid}, got {response.status_code} "
                        f"{response.headers.get('x-request-id')} {response.text[:200]}"
                    )
                    return
                good_served[i] += 1

    def evil(i: int) -> None:
        rng = random.Random(SEED + i)
        n = 0
        while time.monotonic() < deadline and n < MAX_EVIL // EVIL_CLIENTS and not problems:
            n += 1
            case = _generate(rng, keys[n % 2], n * 10 + i)
            received = _exchange(port, case.data)
            statuses = _statuses(received)
            with lock:
                evil_seen[case.kind] = evil_seen.get(case.kind, 0) + 1
            if b"good-" in received:
                problems.append(f"{case.kind}: an answer carried a well-behaved client's token: {received[:300]!r}")
            if case.malformed and statuses and statuses[0] not in REFUSED:
                problems.append(f"{case.kind}: malformed request answered {statuses}: {case.data[:300]!r}")
            if case.kind == "pipelined" and (statuses[:1] != [200] or statuses[1:] not in ([], [400])):
                problems.append(f"pipelined: answered {statuses}")
            if 200 in statuses and b"evil-" not in received and case.kind != "flip":
                problems.append(f"{case.kind}: a 200 without its own token: {received[:300]!r}")

    threads = [threading.Thread(target=good, args=(i,)) for i in range(GOOD_CLIENTS)]
    threads += [threading.Thread(target=evil, args=(i,)) for i in range(EVIL_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads[GOOD_CLIENTS:]:
        thread.join()
    stop.set()
    for thread in threads[:GOOD_CLIENTS]:
        thread.join()
    print(f"\nfuzz: well-behaved answers {good_served}, adversarial by kind {evil_seen}")
    assert not problems, "\n".join(problems[:10])
    assert sum(evil_seen.values()) >= 200 and len(evil_seen) == 9, evil_seen
    assert all(count >= 50 for count in good_served), good_served
    log = host_log.read_text(errors="replace")
    assert "Traceback" not in log and "Unhandled exception" not in log, log[-3000:]
