"""The gateway's HTTP layer (emulator.endpoints.http11) in process, on loopback sockets.

Requests: pipelined ones come out in order, trailers never become headers, a malformed one after a
good one is refused only after the good one is answered. Replica connections: a response is tied to
its request (a replica that answers twice, or sends bytes when nothing was asked, loses the
connection), and a pooled connection the replica closed is retried fresh instead of raising.
"""

from __future__ import annotations

import asyncio

import pytest

from emulator.endpoints import http11
from emulator.endpoints.replicas import Replica


def _reader(data: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


async def _all(data: bytes, limit: int = 1000) -> list:
    requests = http11.RequestReader(_reader(data), limit)
    out = []
    while True:
        try:
            message = await requests.next()
        except http11.BadRequest as exc:
            out.append((exc.status, exc.message))
            return out
        if message is None:
            return out
        out.append(message)


def test_pipelined_requests_come_out_in_order_and_an_error_after_them():
    data = (
        b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /b?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
        b"POST /c HTTP/1.1\r\nHost: h\r\nX-Id: a\nContent-Length: 0\r\n\r\n"
    )
    first, second, error = asyncio.run(_all(data))
    assert (first.method, first.target, first.body) == ("POST", "/a", b"abc")
    assert (second.method, second.path, second.target) == ("GET", "/b", "/b?x=1")
    assert error[0] == 400 and "malformed header" in error[1]


def test_trailers_are_never_merged_into_the_headers():
    data = (
        b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\n0\r\nAuthorization: Bearer forged\r\nX-Request-Id: t\r\n\r\n"
    )
    (message,) = asyncio.run(_all(data))
    assert message.body == b"abc" and "authorization" not in message.headers and "x-request-id" not in message.headers


def test_http10_and_connection_close_end_keep_alive():
    (old,) = asyncio.run(_all(b"GET / HTTP/1.0\r\n\r\n"))
    assert old.version == "HTTP/1.0" and not old.keep_alive
    (close,) = asyncio.run(_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"))
    assert not close.keep_alive
    (absolute,) = asyncio.run(_all(b"GET http://h:1/score?a=b HTTP/1.1\r\nHost: h\r\n\r\n"))
    assert absolute.target == "/score?a=b" and absolute.keep_alive


@pytest.mark.parametrize(
    "data, status",
    [
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" + b"x" * 1024, 413),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabc\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + b"0" * 100_000 + b"1\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX-Pad: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX-Pad: " + b"a" * 300_000, 431),  # a head that never ends
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc", 400),  # closed mid-body
    ],
)
def test_limits_and_malformed_bodies_are_refused(data, status):
    (answer,) = asyncio.run(_all(data))
    assert answer[0] == status, answer


def test_encoders_refuse_control_characters():
    for headers in ({"x-request-id": "a\r\nb"}, {"x-request-id": "a\nb"}, {"x-a": "a\x00"}, {"bad name": "v"}):
        with pytest.raises(ValueError):
            http11.encode_response(200, headers, b"")
        with pytest.raises(ValueError):
            http11.encode_request("POST", "/score", headers, b"")
    with pytest.raises(ValueError):
        http11.encode_request("POST", "/score HTTP/1.1\r\nX: y", {}, b"")


# -- replica connections ---------------------------------------------------------------------------------
def _response(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


async def _fake_replica(answer) -> tuple[asyncio.AbstractServer, int, list]:
    """A replica that reads one request head at a time and writes what ``answer(n)`` returns."""
    connections = []

    async def serve(reader, writer):
        connections.append(writer)
        n = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(
                    next(
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    )
                )
                await reader.readexactly(length)
                n += 1
                data = answer(n)
                if data is None:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], connections


def _replica(port: int) -> Replica:
    return Replica(name="r", port=port, handle=None, log_path=None)


def test_a_replica_answering_twice_loses_the_connection_and_no_answer_shifts():
    async def main():
        # the first request on each connection gets two responses in one write: the second must never
        # be taken as the answer to the next request
        server, port, connections = await _fake_replica(
            lambda n: _response(b"one") + _response(b"stray") if n == 1 else _response(b"two")
        )
        replica = _replica(port)
        first = await replica.send("POST", "/score", {}, b"1")
        second = await replica.send("POST", "/score", {}, b"2")
        server.close()
        return first.body, second.body, len(connections)

    first, second, connections = asyncio.run(main())
    assert first == b"one" and second == b"one" and connections == 2  # a fresh connection for the second


def test_bytes_sent_with_no_request_in_flight_close_the_pooled_connection():
    async def main():
        server, port, connections = await _fake_replica(lambda n: _response(b"ok%d" % n))
        replica = _replica(port)
        assert (await replica.send("POST", "/score", {}, b"1")).body == b"ok1"
        assert len(replica.pool) == 1
        connections[0].write(_response(b"unasked"))  # late bytes on an idle pooled connection
        await asyncio.sleep(0.1)
        answer = await replica.send("POST", "/score", {}, b"2")
        server.close()
        return answer.body, len(connections)

    body, connections = asyncio.run(main())
    assert body == b"ok1" and connections == 2  # a fresh connection, whose first answer is ok1


def test_a_pooled_connection_the_replica_closed_is_retried_fresh():
    async def main():
        server, port, connections = await _fake_replica(lambda n: _response(b"ok"))
        replica = _replica(port)
        await replica.send("POST", "/score", {}, b"1")
        connections[0].close()
        await asyncio.sleep(0.1)
        replica.pool[0].transport.close()  # closed on both sides: uvloop raised RuntimeError writing to it
        answer = await replica.send("POST", "/score", {}, b"2")
        server.close()
        return answer.body

    assert asyncio.run(main()) == b"ok"


def test_a_malformed_replica_response_is_a_bad_response_and_the_connection_is_dropped():
    async def main():
        server, port, _ = await _fake_replica(lambda n: b"HTTP/1.1 200 OK\r\nX-A: a\nContent-Length: 0\r\n\r\n")
        replica = _replica(port)
        with pytest.raises(http11.BadResponse):
            await replica.send("POST", "/score", {}, b"1")
        server.close()
        return len(replica.pool)

    assert asyncio.run(main()) == 0


def test_uvloop_write_to_a_closed_connection_is_a_connection_error():
    uvloop = pytest.importorskip("uvloop")

    async def main():
        server, port, _ = await _fake_replica(lambda n: _response(b"ok"))
        connection = await http11.open_replica_connection("127.0.0.1", port)
        connection.transport.close()
        await asyncio.sleep(0)
        connection.reusable = True  # as if the pool had not noticed yet
        with pytest.raises(ConnectionError):
            await connection.exchange(http11.encode_request("GET", "/", {}, b""))
        server.close()

    uvloop.run(main())


def test_generated_request_ids_are_version_4_uuids():
    import uuid

    from emulator.endpoints.gateway import _request_id

    ids = {_request_id() for _ in range(2000)}
    assert len(ids) == 2000
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


def test_an_answer_past_the_deadline_is_a_timeout_and_the_late_one_reaches_no_one():
    async def main():
        late, asked = asyncio.Event(), []

        def answer(n):  # n counts the requests of one connection; asked, those of all of them
            asked.append(n)
            if len(asked) == 1:
                asyncio.get_running_loop().call_later(0.3, late.set)
                return b""  # no answer yet: the test writes it late, below
            return _response(b"fresh")

        server, port, connections = await _fake_replica(answer)
        replica = _replica(port)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            await replica.exchange(http11.encode_request("POST", "/score", {}, b"1"), loop.time() + 0.1)
        waited = loop.time() - started
        await late.wait()
        connections[0].write(_response(b"late"))  # the answer to the request that timed out
        await asyncio.sleep(0.05)
        pooled = len(replica.pool)
        answer2 = await replica.exchange(http11.encode_request("POST", "/score", {}, b"2"), loop.time() + 5)
        server.close()
        return waited, pooled, answer2.body, len(connections)

    waited, pooled, body, connections = asyncio.run(main())
    assert 0.1 <= waited < 1.0
    assert pooled == 0 and body == b"fresh" and connections == 2  # the timed-out connection was closed
