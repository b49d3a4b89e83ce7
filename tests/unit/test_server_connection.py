"""The servers' connection protocol (emulator.serving.http1.ServerConnection), in process on loopback sockets.

Pipelined requests are answered in order even when answers take turns out of order in time; an idle
connection is closed without an answer and a body that stops arriving gets a 408; a malformed request
is answered after the good ones before it, then the connection closes; an answer that raises is a 500
and closes the connection.
"""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from emulator.serving import http1


def _refuse(exc: http1.BadRequest):
    return exc.status, {"Content-Type": "text/plain"}, exc.message.encode()


def _failed(exc: Exception):
    return 500, {"Content-Type": "text/plain"}, type(exc).__name__.encode()


async def _answer(request: http1.Message, peer):
    if request.path == "/boom":
        raise RuntimeError("a defect")
    await asyncio.sleep(random.random() / 100)  # answers finish in any order in time
    return 200, {"Content-Type": "application/json"}, json.dumps([request.path, request.body.decode()]).encode()


async def _serve(answer=_answer, limit: int = 100):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: http1.ServerConnection(answer, _refuse, _failed, limit), "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _exchange(port: int, data: bytes, timeout: float = 10) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        async with asyncio.timeout(timeout):
            return await reader.read(-1)  # until the server closes
    finally:
        writer.close()


def _answers(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = int(next(v for k, _, v in (x.partition(b": ") for x in lines[1:]) if k.lower() == b"content-length"))
        out.append((int(lines[0].split()[1]), rest[:length]))
        data = rest[length:]
    return out


def test_pipelined_requests_are_answered_in_order_then_a_malformed_one_closes():
    async def main():
        server, port = await _serve()
        requests = b"".join(
            f"POST /r{i} HTTP/1.1\r\nHost: h\r\nContent-Length: {len(str(i))}\r\n\r\n{i}".encode() for i in range(20)
        )
        data = await _exchange(port, requests + b"GET /bad HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n")
        server.close()
        return _answers(data)

    answers = asyncio.run(main())
    assert [(s, json.loads(b)) for s, b in answers[:-1]] == [(200, [f"/r{i}", str(i)]) for i in range(20)]
    assert answers[-1][0] == 400


def test_an_answer_that_raises_is_a_500_and_the_last_answer():
    async def main():
        server, port = await _serve()
        data = await _exchange(port, b"GET /boom HTTP/1.1\r\nHost: h\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\n\r\n")
        server.close()
        return data

    data = asyncio.run(main())
    assert _answers(data) == [(500, b"RuntimeError")] and b"Connection: close" in data


def test_an_idle_connection_is_closed_and_a_stalled_body_gets_a_408(monkeypatch):
    monkeypatch.setattr(http1, "IDLE_TIMEOUT_S", 0.3)
    monkeypatch.setattr(http1, "BODY_TIMEOUT_S", 0.3)

    async def main():
        server, port = await _serve()
        idle = await _exchange(port, b"GET /one HTTP/1.1\r\nHost: h\r\n\r\nGET /two HTTP/1.1\r\nHo", timeout=5)
        stalled = await _exchange(port, b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\nabc", timeout=5)
        server.close()
        return idle, stalled

    idle, stalled = asyncio.run(main())
    assert [s for s, _ in _answers(idle)] == [200]  # the unfinished head is closed without an answer
    ((status, body),) = _answers(stalled)
    assert status == 408 and b"did not arrive within 0.3 s" in body


@pytest.mark.parametrize("sync", [True, False])
def test_a_body_over_the_limit_is_refused_after_the_request_before_it(sync):
    def answer_now(request, peer):
        return 200, {}, request.body

    async def main():
        server, port = await _serve(answer_now if sync else _answer, limit=10)
        data = await _exchange(
            port,
            b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok"
            b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n01234567890",
        )
        server.close()
        return _answers(data)

    first, second = asyncio.run(main())
    assert first[0] == 200 and second[0] == 413
