"""The load generator against a small real HTTP/1.1 server on 127.0.0.1 (no timed assertions)."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from emulator.testing import run_load


class Handler(BaseHTTPRequestHandler):
    """``/ok`` echoes the body length; ``/status/<n>``; ``/close`` answers then closes;
    ``/chunked`` sends a chunked body; ``/split`` names a deployment by request count;
    ``/eof`` sends a body delimited by closing the connection."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body go out as two writes: no delayed-ACK stall between them
    counter = 0
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        path = self.path
        if path == "/ok" or path.startswith("/echo"):
            self._send(200, f"{len(body)}:{self.headers.get('X-Index', '')}".encode())
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"status")
        elif path == "/close":
            self._send(200, b"bye", {"Connection": "close"})
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")
        elif path == "/split":
            with Handler.lock:
                Handler.counter += 1
                name = "blue" if Handler.counter % 4 else "green"
            self._send(200, b"[0]", {"azureml-model-deployment": name})
        elif path == "/eof":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"until the end")
            self.close_connection = True
        else:
            self._send(404, b"no such path")

    do_GET = do_POST

    def _send(self, status: int, body: bytes, headers: dict | None = None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_counts_are_exact_on_keep_alive_connections(server):
    result = run_load(f"{server}/ok", connections=4, requests=203, body=b"abc", keep_samples=2)
    assert result.total == 203
    assert result.by_status == {200: 203}
    assert result.errors == 0 and result.transport_errors == {}
    assert result.reconnects == 0
    assert len(result.latencies_ms) == 203
    assert 0 < result.p50_ms <= result.p90_ms <= result.p99_ms <= result.max_ms
    assert result.throughput > 0 and result.wall_s > 0
    assert result.samples[0].status == 200 and result.samples[0].body == b"3:"


def test_statuses_are_counted_and_non_2xx_are_errors(server):
    result = run_load(f"{server}/status/503", connections=2, requests=10, keep_samples=1)
    missing = run_load(f"{server}/nowhere", connections=1, requests=3)
    assert result.by_status == {503: 10} and result.errors == 10
    assert result.error_samples[0].status == 503 and result.error_samples[0].body == b"status"
    assert missing.by_status == {404: 3} and missing.errors == 3


def test_server_closing_connections_is_followed_by_reconnects(server):
    result = run_load(f"{server}/close", connections=3, requests=30)
    assert result.by_status == {200: 30} and result.errors == 0
    assert result.reconnects == 27  # every request after each connection's first opens a new one


def test_chunked_responses_parse(server):
    result = run_load(f"{server}/chunked", connections=2, requests=20, keep_samples=1)
    assert result.by_status == {200: 20} and result.errors == 0
    assert result.reconnects == 0  # the connection stays usable after the trailer
    assert result.samples[0].body == b"hello chunked world"


def test_body_ending_at_close_parses(server):
    result = run_load(f"{server}/eof", connections=2, requests=6, method="GET", keep_samples=1)
    assert result.by_status == {200: 6} and result.errors == 0
    assert result.samples[0].body == b"until the end"


def test_header_values_are_counted(server):
    Handler.counter = 0
    result = run_load(f"{server}/split", connections=4, requests=400, header_to_count="azureml-model-deployment")
    assert result.header_counts == {"blue": 300, "green": 100}
    absent = run_load(f"{server}/ok", connections=1, requests=5, header_to_count="azureml-model-deployment")
    assert absent.header_counts == {None: 5}


def test_per_request_headers_and_bodies(server):
    result = run_load(
        f"{server}/echo",
        connections=3,
        requests=9,
        keep_samples=9,
        headers={"X-Index": "fixed"},
        make_request=lambda i: ({"X-Index": str(i)}, b"x" * i),
    )
    assert result.by_status == {200: 9}
    assert sorted(s.body for s in result.samples) == sorted(f"{i}:{i}".encode() for i in range(9))


def test_duration_mode_stops_by_itself(server):
    result = run_load(f"{server}/ok", connections=2, duration=0.2)
    assert result.total > 0 and result.total == result.by_status[200]


class RawServer:
    """A socket server whose every connection reads one request and runs ``reply(conn)``."""

    def __init__(self, reply):
        self.reply = reply
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                more = conn.recv(65536)
                if not more:
                    return
                data += more
            self.reply(conn)

    def close(self):
        self.sock.close()


def run_raw(reply, **kwargs):
    server = RawServer(reply)
    try:
        return run_load(server.url, **kwargs)
    finally:
        server.close()


def test_responses_arriving_a_byte_at_a_time_parse():
    response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"

    def trickle(conn):
        for i in range(len(response)):
            conn.sendall(response[i : i + 1])

    result = run_raw(trickle, connections=2, requests=4, method="GET", keep_samples=1)
    assert result.by_status == {200: 4} and result.samples[0].body == b"abcd"


def test_keep_alive_connection_closed_silently_by_the_server_is_reopened():
    # One response per connection, no "Connection: close": the client finds out on reuse.
    result = run_raw(
        lambda conn: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), connections=2, requests=20
    )
    assert result.total == 20 and result.by_status == {200: 20} and result.errors == 0


def test_response_cut_short_is_a_closed_error():
    result = run_raw(
        lambda conn: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"), connections=1, requests=3
    )
    assert result.total == 3 and result.transport_errors == {"closed": 3} and result.by_status == {}


def test_malformed_response_is_a_protocol_error():
    result = run_raw(lambda conn: conn.sendall(b"SMTP ready\r\n\r\n"), connections=1, requests=2)
    assert result.transport_errors == {"protocol": 2}


def test_refused_connections_are_transport_errors():
    with socket.socket() as s:  # a port nobody listens on: bind, then close without listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_load(f"http://127.0.0.1:{port}/", connections=2, requests=5, keep_samples=1)
    assert result.total == 5 and result.transport_errors == {"connect": 5} and result.errors == 5
    assert result.error_samples[0].status is None and result.error_samples[0].error.startswith("connect")


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.1:80/", "http://example.com/", "http://192.168.1.1/", "https://127.0.0.1/", "http://0.0.0.0:80/"],
)
def test_non_loopback_targets_are_refused(url):
    with pytest.raises(ValueError):
        run_load(url, connections=1, requests=1)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(connections=101, requests=1),
        dict(connections=0, requests=1),
        dict(connections=1, requests=1_000_001),
        dict(connections=1),
        dict(connections=1, duration=-1),
    ],
)
def test_bounds_are_enforced(kwargs):
    with pytest.raises(ValueError):
        run_load("http://127.0.0.1:9/", **kwargs)
