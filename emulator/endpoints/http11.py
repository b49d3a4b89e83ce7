"""A small HTTP/1.1 codec on asyncio streams, shared by the gateway (server side) and its
replica connections (client side). Keep-alive, Content-Length and chunked bodies.

It is deliberately minimal: the gateway is on the request path of every scoring
call, so it parses only what routing, auth and forwarding need.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

MAX_HEAD = 64 * 1024
#: a keep-alive connection with no new request (or a request head that never completes) is closed after this
IDLE_TIMEOUT_S = 120.0
#: how long a client may take to send a request body once its head has arrived (then 408)
BODY_TIMEOUT_S = 10.0
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required",
           413: "Payload Too Large", 415: "Unsupported Media Type", 424: "Failed Dependency",
           429: "Too Many Requests", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
           501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Message:
    """A request (``method``, ``target``) or a response (``status``) with lower-cased headers."""

    method: str = ""
    target: str = ""
    status: int = 0
    version: str = "HTTP/1.1"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def keep_alive(self) -> bool:
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return conn == "keep-alive"
        return conn != "close"


def _parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest(400, f"malformed header line: {line[:80]!r}")
        name = name.strip().lower()
        headers[name] = f"{headers[name]}, {value.strip()}" if name in headers else value.strip()
    return lines[0], headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], limit: int | None,
                     until_close: bool = False) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks, size = [], 0
        while True:
            line = await reader.readline()
            try:
                n = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest(400, "malformed chunked body") from None
            if n == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            size += n
            if limit is not None and size > limit:
                raise BadRequest(413, f"body larger than the limit of {limit} bytes")
            chunks.append(await reader.readexactly(n))
            await reader.readexactly(2)
    length = headers.get("content-length")
    if length is None:
        return await reader.read() if until_close else b""
    if not (length.isascii() and length.isdigit()):  # RFC 9110: 1*DIGIT; int() would take "+5", "-5", "1_0"
        raise BadRequest(400, f"invalid Content-Length {length!r}")
    n = int(length)
    if limit is not None and n > limit:
        raise BadRequest(413, f"body of {n} bytes is larger than the limit of {limit} bytes")
    return await reader.readexactly(n) if n else b""


async def read_request(reader: asyncio.StreamReader, body_limit: int) -> Message | None:
    """The next request on a connection, or None when the client closed it."""
    try:
        async with asyncio.timeout(IDLE_TIMEOUT_S):  # an idle or half-sent head does not hold the connection
            head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, TimeoutError):
        return None
    except asyncio.LimitOverrunError:
        raise BadRequest(431, f"request head larger than {MAX_HEAD} bytes") from None
    first, headers = _parse_head(head)
    parts = first.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise BadRequest(400, f"malformed request line: {first[:80]!r}")
    target = parts[1]
    if target.startswith(("http://", "https://")):  # absolute form (RFC 9112 3.2.2): keep path and query
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    coding = headers.get("transfer-encoding", "").strip().lower()
    if coding and coding not in ("chunked", "identity"):
        raise BadRequest(501, f"Transfer-Encoding '{headers['transfer-encoding']}' is not supported; send the body "
                              "with Content-Length (or Transfer-Encoding: chunked)")
    msg = Message(method=parts[0].upper(), target=target, version=parts[2], headers=headers)
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):  # a Content-Length larger than the body must not hang
            msg.body = await _read_body(reader, headers, body_limit)
    except TimeoutError:
        raise BadRequest(408, f"the request body did not arrive within {BODY_TIMEOUT_S:g} s: send as many bytes "
                              f"as Content-Length announces ({headers.get('content-length', 'chunked')})") from None
    except asyncio.IncompleteReadError as exc:
        raise BadRequest(400, f"the request body ended after {len(exc.partial)} of {exc.expected} announced bytes: "
                              "the client closed the connection before sending all of it") from None
    return msg


async def read_response(reader: asyncio.StreamReader, method: str = "POST") -> Message:
    head = await reader.readuntil(b"\r\n\r\n")
    first, headers = _parse_head(head)
    parts = first.split(" ", 2)
    msg = Message(status=int(parts[1]), version=parts[0], headers=headers)
    if method != "HEAD" and msg.status not in (204, 304):
        msg.body = await _read_body(reader, headers, None, until_close=not msg.keep_alive)
    return msg


def encode_request(method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: replica"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def encode_response(status: int, headers: dict[str, str], body: bytes, keep_alive: bool = True) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
