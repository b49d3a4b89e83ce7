"""The blob proxy of `amlemu serve` (``HTTPS_PROXY``): CONNECT tunnels to the TLS listener, anything else refused.

Spoken over raw sockets, as a client's proxy support speaks it, so each answer is the
proxy's own and not a library's interpretation of it.
"""

from __future__ import annotations

import contextlib
import socket
import ssl

import pytest

from emulator.frontdoor import settings

BLOB_HOST = f"{settings.STORAGE_ACCOUNT}.blob.{settings.STORAGE_SUFFIX}"


def _ask(front_door, head: bytes) -> bytes:
    """Send ``head`` to the proxy and read its answer's head."""
    with socket.create_connection(("127.0.0.1", front_door.port + 2), timeout=30) as sock:
        sock.sendall(head)
        return _read_head(sock)


def _read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


@contextlib.contextmanager
def _tunnel(front_door, host: str, server_hostname: str):
    """A CONNECT tunnel to ``host:443`` with TLS on top, checked against amlemu's CA for ``server_hostname``."""
    sock = socket.create_connection(("127.0.0.1", front_door.port + 2), timeout=30)
    try:
        sock.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
        answer = _read_head(sock)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        context = ssl.create_default_context(cafile=front_door.variables["REQUESTS_CA_BUNDLE"])
        with context.wrap_socket(sock, server_hostname=server_hostname) as tls:
            yield tls
    finally:
        sock.close()


def test_connect_to_the_blob_host_reaches_the_tls_listener(front_door):
    with _tunnel(front_door, BLOB_HOST, BLOB_HOST) as tls:
        names = [value for kind, value in tls.getpeercert()["subjectAltName"] if kind == "DNS"]
        assert f"*.blob.{settings.STORAGE_SUFFIX}" in names
        tls.sendall(f"GET /discovery HTTP/1.1\r\nHost: {BLOB_HOST}\r\nConnection: close\r\n\r\n".encode())
        assert _read_head(tls).startswith(b"HTTP/1.1 ")  # an HTTP answer, over the end-to-end TLS


def test_the_tunnel_keeps_the_clients_certificate_check(front_door):
    # the front door's certificate names the storage hosts, not whatever a client asked for
    with pytest.raises(ssl.SSLCertVerificationError), _tunnel(front_door, BLOB_HOST, "login.example.com"):
        pass


def test_a_request_that_is_not_connect_gets_405(front_door):
    answer = _ask(front_door, f"GET http://{BLOB_HOST}/ HTTP/1.1\r\nHost: {BLOB_HOST}\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 405") and b"Allow: CONNECT" in answer


def test_a_malformed_head_gets_400(front_door):
    assert _ask(front_door, b"CON\x01NECT nowhere HTTP/9\r\n\r\n").startswith(b"HTTP/1.1 400")


def test_an_unreachable_target_gets_502(front_door):
    # port 1 on loopback: nothing listens there, the connection is refused at once
    assert _ask(front_door, b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n").startswith(b"HTTP/1.1 502")
