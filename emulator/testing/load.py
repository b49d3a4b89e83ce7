"""An HTTP/1.1 load generator for benchmarks and reliability tests, loopback only.

N concurrent keep-alive connections, each sending one request at a time, until a fixed
number of requests has been sent or a duration has passed. Responses are parsed here
(status line, headers, ``Content-Length`` or chunked bodies, or a body that ends when the
server closes) on an ``asyncio.Protocol``, so the generator's own cost per request stays
small; uvloop is used when it is importable.

    result = run_load("http://127.0.0.1:8080/score", connections=8, duration=10,
                      headers={"Content-Type": "application/json"}, body=b'{"data": [[1, 2, 3, 4]]}',
                      header_to_count="azureml-model-deployment")
    print(result.throughput, result.p99_ms, result.by_status, result.header_counts)

A request's latency runs from starting it (opening a new connection first, when the last
response closed it) to having its whole response, as a client would see it. A connection
the server marks ``Connection: close`` (or an HTTP/1.0 response without keep-alive) is
reopened for the next request. A request that
finds a reused connection already closed by the server, before any byte of its response,
is sent once more on a new connection (what HTTP clients do with stale keep-alive
connections); those are counted in ``LoadResult.retried``.

Bounds (this project sends traffic to this machine only): the host must be a loopback
address or ``localhost``, at most ``MAX_CONNECTIONS`` connections, at most
``MAX_REQUESTS`` requests in any mode, at most ``MAX_DURATION_S`` seconds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_CONNECTIONS = 100
MAX_REQUESTS = 1_000_000
MAX_DURATION_S = 3600.0
MAX_HEAD_BYTES = 64 * 1024
ERROR_KINDS = ("connect", "closed", "reset", "timeout", "protocol")

#: Per-request headers and body from the request's index (0, 1, ...); the headers are
#: added to (and override) the fixed ones.
RequestFactory = Callable[[int], "tuple[Mapping[str, str], bytes]"]


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile (0 < p <= 100) of already sorted values; 0.0 when there are none."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Sample:
    """One response kept for inspection (``status`` is None for a transport error)."""

    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None


@dataclass
class LoadResult:
    """What a load run measured.

    ``by_status`` counts HTTP statuses; ``transport_errors`` counts requests that got no
    response, by kind (``connect``, ``closed``, ``reset``, ``timeout``, ``protocol``).
    Latencies are over answered requests. ``header_counts`` counts the values of the
    requested response header (``None``: the header was absent).
    """

    total: int
    by_status: dict[int, int]
    transport_errors: dict[str, int]
    wall_s: float
    latencies_ms: list[float] = field(repr=False)
    connections: int
    reconnects: int = 0
    retried: int = 0
    header_counts: dict[str | None, int] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    error_samples: list[Sample] = field(default_factory=list)
    _ordered: list[float] = field(default_factory=list, init=False, repr=False, compare=False)

    @property
    def errors(self) -> int:
        """Non-2xx responses plus transport errors."""
        bad = sum(n for status, n in self.by_status.items() if not 200 <= status < 300)
        return bad + sum(self.transport_errors.values())

    @property
    def throughput(self) -> float:
        """Requests per second over the wall time (every request, answered or not)."""
        return self.total / self.wall_s if self.wall_s > 0 else 0.0

    def percentile_ms(self, p: float) -> float:
        """Nearest-rank percentile (0 < p <= 100) of the latencies, in ms; 0.0 when none."""
        if len(self._ordered) != len(self.latencies_ms):
            self._ordered = sorted(self.latencies_ms)
        return percentile(self._ordered, p)

    @property
    def p50_ms(self) -> float:
        return self.percentile_ms(50)

    @property
    def p90_ms(self) -> float:
        return self.percentile_ms(90)

    @property
    def p99_ms(self) -> float:
        return self.percentile_ms(99)

    @property
    def max_ms(self) -> float:
        return self.percentile_ms(100)

    def summary(self) -> dict:
        """The figures as a JSON-ready dict."""
        return {
            "total": self.total,
            "errors": self.errors,
            "throughput_rps": round(self.throughput, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p90_ms": round(self.p90_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "wall_s": round(self.wall_s, 3),
            "by_status": {str(k): v for k, v in self.by_status.items()},
            "transport_errors": dict(self.transport_errors),
            "connections": self.connections,
            "reconnects": self.reconnects,
            "retried": self.retried,
            "header_counts": {str(k): v for k, v in self.header_counts.items()},
        }


class _TransportError(Exception):
    def __init__(self, kind: str, message: str, stale: bool = False):
        super().__init__(f"{kind}: {message}")
        self.kind, self.stale = kind, stale


@dataclass
class _Response:
    status: int
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class _Connection(asyncio.Protocol):
    """One client connection; ``request()`` writes a request and awaits its parsed response."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._waiter: asyncio.Future | None = None
        self._head_only = False
        self.closed = False
        self.used = 0

    # asyncio.Protocol
    def connection_made(self, transport):
        self._transport = transport

    def data_received(self, data):
        self._buf += data
        if self._waiter is not None:
            self._parse()

    def eof_received(self):
        return False  # close the transport; connection_lost finishes any body read to EOF

    def connection_lost(self, exc):
        self.closed = True
        waiter, self._waiter = self._waiter, None
        if waiter is None or waiter.done():
            return
        if self._state == "until_close":
            waiter.set_result(_Response(self._status, self._headers, bytes(self._body), False))
        else:
            kind, message = ("reset", str(exc)) if exc else ("closed", "the server closed before a full response")
            waiter.set_exception(_TransportError(kind, message, stale=not self._received))

    # client side
    async def request(self, payload: bytes, head_only: bool) -> _Response:
        if self.closed:
            raise _TransportError("closed", "connection already closed", stale=True)
        self._waiter = self._loop.create_future()
        self._state, self._received, self._head_only = "head", False, head_only
        self._buf.clear()
        self.used += 1
        self._transport.write(payload)
        return await self._waiter

    def close(self):
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    # parsing; every step consumes from self._buf and returns False when it needs more bytes
    def _parse(self):
        self._received = True
        try:
            while self._waiter is not None and getattr(self, "_step_" + self._state)():
                pass
        except _TransportError as exc:
            waiter, self._waiter = self._waiter, None
            waiter.set_exception(exc)
            self.close()

    def _step_head(self) -> bool:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > MAX_HEAD_BYTES:
                raise _TransportError("protocol", f"response head longer than {MAX_HEAD_BYTES} bytes")
            return False
        lines = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
        del self._buf[: end + 4]
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise _TransportError("protocol", f"bad status line {lines[0][:80]!r}")
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise _TransportError("protocol", f"bad header line {line[:80]!r}")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        status = int(code)
        if 100 <= status < 200 and status != 101:
            return True  # an interim response (100 Continue): the real one follows
        connection = headers.get("connection", "").lower()
        self._keep_alive = "close" not in connection and (version != "HTTP/1.0" or "keep-alive" in connection)
        self._status, self._headers, self._body = status, headers, bytearray()
        if self._head_only or status in (204, 304) or 100 <= status < 200:
            return self._finish()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._state = "chunk_size"
        elif "content-length" in headers:
            try:
                self._remaining = int(headers["content-length"])
            except ValueError:
                raise _TransportError("protocol", f"bad Content-Length {headers['content-length']!r}") from None
            self._state = "length"
        else:
            self._state, self._keep_alive = "until_close", False
        return True

    def _step_length(self) -> bool:
        take = self._buf[: self._remaining]
        self._body += take
        del self._buf[: len(take)]
        self._remaining -= len(take)
        return self._finish() if self._remaining == 0 else False

    def _step_chunk_size(self) -> bool:
        end = self._buf.find(b"\r\n")
        if end < 0:
            return False
        size_text = bytes(self._buf[:end]).split(b";", 1)[0].strip()
        del self._buf[: end + 2]
        try:
            self._remaining = int(size_text, 16)
        except ValueError:
            raise _TransportError("protocol", f"bad chunk size {size_text[:20]!r}") from None
        self._state = "chunk_data" if self._remaining else "trailer"
        return True

    def _step_chunk_data(self) -> bool:
        if len(self._buf) < self._remaining + 2:
            return False
        if self._buf[self._remaining : self._remaining + 2] != b"\r\n":
            raise _TransportError("protocol", "chunk not followed by CRLF")
        self._body += self._buf[: self._remaining]
        del self._buf[: self._remaining + 2]
        self._state = "chunk_size"
        return True

    def _step_trailer(self) -> bool:
        end = self._buf.find(b"\r\n")
        if end < 0:
            return False
        del self._buf[: end + 2]
        return self._finish() if end == 0 else True  # an empty line ends the trailers

    def _step_until_close(self) -> bool:
        self._body += self._buf
        self._buf.clear()
        return False

    def _finish(self) -> bool:
        waiter, self._waiter = self._waiter, None
        waiter.set_result(_Response(self._status, self._headers, bytes(self._body), self._keep_alive))
        return False


def check_target(url: str) -> tuple[str, int, str]:
    """Splits an ``http://`` URL into (host, port, path with query); refuses non-loopback hosts."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"load generator speaks plain http:// only, got {url!r}")
    host = parts.hostname or ""
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"load may only be sent to loopback (127.0.0.1, ::1, localhost), got host {host!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return ("127.0.0.1" if host == "localhost" else host), parts.port or 80, path


def _check_bounds(connections: int, requests: int | None, duration: float | None) -> None:
    if not 1 <= connections <= MAX_CONNECTIONS:
        raise ValueError(f"connections must be 1..{MAX_CONNECTIONS}, got {connections}")
    if requests is None and duration is None:
        raise ValueError("give requests (a total count) or duration (seconds), or both")
    if requests is not None and not 1 <= requests <= MAX_REQUESTS:
        raise ValueError(f"requests must be 1..{MAX_REQUESTS:,}, got {requests}")
    if duration is not None and not 0 < duration <= MAX_DURATION_S:
        raise ValueError(f"duration must be > 0 and <= {MAX_DURATION_S:.0f} s, got {duration}")


def _encode(method: str, path: str, host_header: str, headers: Mapping[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host_header}"]
    names = {name.lower() for name in headers}
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if "content-length" not in names and (body or method in ("POST", "PUT", "PATCH")):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def generate_load(
    url: str,
    *,
    connections: int,
    requests: int | None = None,
    duration: float | None = None,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    make_request: RequestFactory | None = None,
    header_to_count: str | None = None,
    keep_samples: int = 0,
    timeout: float = 30.0,
) -> LoadResult:
    """Sends the load from the running event loop; see ``run_load`` for the arguments."""
    _check_bounds(connections, requests, duration)
    host, port, path = check_target(url)
    host_header = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    method = method.upper()
    head_only = method == "HEAD"
    fixed_headers = dict(headers or {})
    fixed = None if make_request else _encode(method, path, host_header, fixed_headers, body)
    counted = header_to_count.lower() if header_to_count else None
    limit = min(requests or MAX_REQUESTS, MAX_REQUESTS)
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    deadline = start + duration if duration is not None else math.inf
    latencies: list[float] = []
    statuses: Counter = Counter()
    transport_errors: Counter = Counter()
    header_counts: Counter = Counter()
    samples: list[Sample] = []
    error_samples: list[Sample] = []
    issued = opened = retried = 0

    def payload_for(index: int) -> bytes:
        if fixed is not None:
            return fixed
        extra, per_body = make_request(index)
        return _encode(method, path, host_header, {**fixed_headers, **extra}, per_body)

    def record_error(exc: _TransportError) -> None:
        transport_errors[exc.kind] += 1
        if len(error_samples) < keep_samples:
            error_samples.append(Sample(None, error=str(exc)))

    async def connect() -> _Connection:
        nonlocal opened
        opened += 1
        try:
            _, conn = await loop.create_connection(lambda: _Connection(loop), host, port)
        except OSError as exc:
            raise _TransportError("connect", str(exc) or type(exc).__name__) from None
        return conn

    async def worker() -> None:
        nonlocal issued, retried
        conn: _Connection | None = None
        while issued < limit and time.perf_counter() < deadline:
            index, issued = issued, issued + 1
            payload = payload_for(index)
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    if conn is None or conn.closed:
                        conn = await connect()
                    try:
                        response = await conn.request(payload, head_only)
                    except _TransportError as exc:
                        if not (exc.stale and conn.used > 1):
                            raise
                        retried += 1
                        conn = await connect()
                        response = await conn.request(payload, head_only)
                    t1 = time.perf_counter()
            except (_TransportError, TimeoutError) as exc:
                if isinstance(exc, TimeoutError):
                    exc = _TransportError("timeout", f"no full response within {timeout} s")
                record_error(exc)
                if conn is not None:
                    conn.close()
                conn = None
                await asyncio.sleep(0)  # a refused connect may not yield: let the other workers run
                continue
            latencies.append((t1 - t0) * 1000.0)
            statuses[response.status] += 1
            if counted is not None:
                header_counts[response.headers.get(counted)] += 1
            if len(samples) < keep_samples:
                samples.append(Sample(response.status, response.headers, response.body))
            if len(error_samples) < keep_samples and not 200 <= response.status < 300:
                error_samples.append(Sample(response.status, response.headers, response.body))
            if not response.keep_alive:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    wall = time.perf_counter() - start
    return LoadResult(
        total=len(latencies) + sum(transport_errors.values()),
        by_status=dict(statuses),
        transport_errors=dict(transport_errors),
        wall_s=wall,
        latencies_ms=latencies,
        connections=connections,
        reconnects=max(0, opened - connections),
        retried=retried,
        header_counts=dict(header_counts),
        samples=samples,
        error_samples=error_samples,
    )


def _loop_factory():
    try:
        import uvloop  # only a load run needs uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_load(
    url: str,
    *,
    connections: int,
    requests: int | None = None,
    duration: float | None = None,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    header_to_count: str | None = None,
    make_request: RequestFactory | None = None,
    keep_samples: int = 0,
    timeout: float = 30.0,
) -> LoadResult:
    """Sends HTTP/1.1 load to a loopback URL and returns what it measured.

    Args:
        url: ``http://<loopback host>:<port>/<path>``; anything else raises ValueError.
        connections: Concurrent keep-alive connections (1..100), one request in flight each.
        requests: Total requests to send (1..1,000,000). With ``duration`` too, whichever
            ends first.
        duration: Seconds to keep sending (at most 3600); requests in flight at the end finish.
        method, headers, body: The fixed request; ``Host`` and ``Content-Length`` are added.
        header_to_count: A response header whose values are counted (e.g.
            ``azureml-model-deployment``) into ``LoadResult.header_counts``.
        make_request: Per-request ``(headers, body)`` from the request index, replacing ``body``
            and adding to ``headers``.
        keep_samples: Keep up to this many responses (and as many error responses) whole.
        timeout: Seconds one request (including any connect) may take before it counts as a
            ``timeout`` error.

    Raises:
        ValueError: A non-loopback or non-http URL, or a bound exceeded.
        RuntimeError: Called from a running event loop (await ``generate_load`` there).
    """
    _check_bounds(connections, requests, duration)
    check_target(url)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(
            generate_load(
                url,
                connections=connections,
                requests=requests,
                duration=duration,
                method=method,
                headers=headers,
                body=body,
                make_request=make_request,
                header_to_count=header_to_count,
                keep_samples=keep_samples,
                timeout=timeout,
            )
        )
