"""HTTP/1.1 for the gateway: its client side (one keep-alive connection to a replica), parsed by llhttp.

The server side (requests from clients, responses to them) is :mod:`emulator.serving.http1`, which the
built-in scorer's server shares; its names are re-exported here for the gateway. This module ties each
replica response to the one request in flight on its connection (:class:`ReplicaConnection`): bytes
nobody asked for, a second response, or a malformed one close the connection for good. Requests are
encoded by hand with the same header checks as responses (every name an RFC 9110 token, no control
character in any value, no whitespace in the target); llhttp only parses.
"""

from __future__ import annotations

import asyncio
import socket

import httptools

from emulator.serving.http1 import (  # noqa: F401 - the server side and the encoders, re-exported for the gateway
    BODY_TIMEOUT_S,
    IDLE_TIMEOUT_S,
    MAX_HEAD,
    REASONS,
    BadRequest,
    Message,
    RequestReader,
    ServerConnection,
    encode_request,
    encode_response,
    merge_field,
)

#: the largest response body the gateway takes from a replica
MAX_RESPONSE_BYTES = 64 * 1024 * 1024


class BadResponse(Exception):
    """A replica answered something that is not one well-formed HTTP/1.1 response to the request."""


# -- client side: one connection to a replica -------------------------------------------------------------
class ReplicaConnection(asyncio.Protocol):
    """A keep-alive connection to a replica carrying one request at a time.

    Each response is tied to the request in flight: bytes that arrive with no request in flight,
    or after the response in the same read, a malformed response, a timeout or a cancellation
    close the connection for good (``reusable`` is then False, and the pool drops it).
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()  # once: each lookup costs Python 3.11 a getpid() system call
        self.transport: asyncio.Transport | None = None
        self.reusable = False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future | None = None
        self._msg: Message | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._head = 0
        self._headers_done = False
        self._framed = True
        self._extra = False

    # -- asyncio ----------------------------------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.reusable = True

    def connection_lost(self, exc) -> None:
        self.reusable = False
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_done and not self._framed:  # a body delimited by the close (RFC 9112 6.3, rule 8)
            self._complete(keep_alive=False)
        else:
            waiter.set_exception(ConnectionResetError("the replica closed the connection before it answered"))

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            self.close()  # bytes no request asked for: this connection is out of step, never use it again
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            self.close()
            if not waiter.done():
                waiter.set_exception(
                    cause
                    if isinstance(cause, BadResponse)
                    else BadResponse(f"the replica answered malformed HTTP: {exc}")
                )
            return
        if self._extra:
            self.close()  # more than one response to one request: answer with the first, then drop the connection

    # -- llhttp callbacks ---------------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self._msg is not None or self._waiter is None or self._waiter.done():
            self._extra = True
            raise BadResponse("the replica sent more than one response to one request")
        self._msg = Message()
        self._chunks, self._size, self._head = [], 0, 0
        self._headers_done, self._framed = False, True

    def on_status(self, status: bytes) -> None:
        self._grow_head(len(status))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._grow_head(len(name) + len(value) + 4)
        if self._headers_done:
            return  # trailers are dropped
        merge_field(self._msg.headers, name, value, lambda problem: BadResponse(f"the replica answered: {problem}"))

    def _grow_head(self, n: int) -> None:
        self._head += n
        if self._head > MAX_HEAD:
            raise BadResponse(f"the replica's response head is larger than {MAX_HEAD} bytes")

    def on_headers_complete(self) -> None:
        self._headers_done = True
        msg, parser = self._msg, self._parser
        msg.status = parser.get_status_code()
        msg.version = "HTTP/" + parser.get_http_version()
        headers = msg.headers
        self._framed = (
            "content-length" in headers
            or "transfer-encoding" in headers
            or msg.status < 200
            or msg.status in (204, 304)
        )

    def on_body(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > MAX_RESPONSE_BYTES:
            raise BadResponse(f"the replica's response body is larger than {MAX_RESPONSE_BYTES} bytes")
        self._chunks.append(data)

    def on_message_complete(self) -> None:
        if 100 <= self._msg.status < 200:  # an interim response (100 Continue): the final one follows
            self._msg = None
            return
        self._complete(keep_alive=self._parser.should_keep_alive())

    def _complete(self, keep_alive: bool) -> None:
        msg, chunks = self._msg, self._chunks
        msg.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        msg.keep_alive = keep_alive
        if not keep_alive:
            self.reusable = False
        self._waiter.set_result(msg)

    # -- use ------------------------------------------------------------------------------------------------
    @property
    def usable(self) -> bool:
        return self.reusable and self.transport is not None and not self.transport.is_closing()

    async def exchange(self, data: bytes, deadline: float | None = None) -> Message:
        """Sends one encoded request and returns its response. ConnectionError: the connection was
        closed before an answer; BadResponse: the answer was not HTTP/1.1; TimeoutError: no answer by
        ``deadline`` (the loop's clock). The connection is closed after any of them.

        The deadline is a timer on the response's future, not ``asyncio.timeout``: that costs a task
        lookup and two loop lookups on every request, and this is on every request's path."""
        if not self.usable:
            raise ConnectionResetError("the connection to the replica is closed")
        self._waiter = waiter = self._loop.create_future()
        timer = None if deadline is None else self._loop.call_at(deadline, _expire, waiter)
        self._msg = None
        self.reusable = False  # until this response ends cleanly
        try:
            self.transport.write(data)
        except (RuntimeError, OSError) as exc:  # uvloop raises RuntimeError on a closed transport
            self._waiter = None
            self.close()
            raise ConnectionResetError(f"cannot write to the replica: {exc}") from None
        try:
            response = await waiter
        except BaseException:  # a timeout, a cancellation, an error: what comes later belongs to no one
            self.close()
            raise
        finally:
            if timer is not None:
                timer.cancel()
            self._waiter = None
            self._msg = None
        if not self._extra and response.keep_alive and self.transport is not None and not self.transport.is_closing():
            self.reusable = True
        return response

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("the replica did not answer in time"))


async def open_replica_connection(address: str, port: int) -> ReplicaConnection:
    _, connection = await asyncio.get_running_loop().create_connection(ReplicaConnection, address, port)
    return connection


async def open_replica_channel(channel: str) -> ReplicaConnection:
    """A connection over the Unix socket a replica offered (``@<name>``: Linux's abstract namespace)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, "\0" + channel.removeprefix("@"))  # uvloop cannot connect to such a name
        _, connection = await loop.create_unix_connection(ReplicaConnection, sock=sock)
    except BaseException:
        sock.close()
        raise
    return connection
