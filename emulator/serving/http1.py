"""HTTP/1.1 server side, parsed by llhttp: the endpoint gateway's and the built-in scorer's server's.

Parsing is llhttp's (through ``httptools``: the parser of Node.js, strict by default). It refuses
what request smuggling is made of: a bare LF or a CR where a CRLF belongs, obs-fold, control
characters and NUL in header values, Content-Length twice or with Transfer-Encoding, a
Content-Length or chunk size that is not plain digits (or hex), or that overflows. Around it this
module keeps what a server needs: limits (431 for a head over :data:`MAX_HEAD`, 413 for a body
over the caller's limit), timeouts (an idle connection is closed, a body that does not arrive is a
408), 501 for a transfer coding other than chunked, and trailers never merged into the headers.
:class:`RequestParser` does the parsing without I/O; :class:`ServerConnection` serves a connection
as an asyncio protocol (what both servers use) and :class:`RequestReader` reads an asyncio stream.

Messages are *encoded* here by hand (llhttp only parses): every header name written is checked to
be an RFC 9110 token and every value to hold no control character (so no CR, LF or NUL), and a
request target no whitespace or control character, before any byte is written; a header that
fails is a ``ValueError``, never written.

It lives in the scoring server's package because both servers use it: the endpoint gateway
(:mod:`emulator.endpoints.gateway`, whose client side is :mod:`emulator.endpoints.http11`) and a
replica's server for the built-in ONNX scorer (:mod:`.direct_server`). Python 3.11 or later
(``asyncio.timeout``); replicas on an older Python use granian or waitress instead.
"""

from __future__ import annotations

import asyncio
import collections
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import httptools

MAX_HEAD = 64 * 1024
#: a keep-alive connection with no new request (or a request head that never completes) is closed after this
IDLE_TIMEOUT_S = 120.0
#: how long a client may take to send a request body once its head has arrived (then 408)
BODY_TIMEOUT_S = 10.0
READ_SIZE = 64 * 1024
#: chunk-size lines, chunk extensions and trailers of one chunked body: at most this much, plus a little per chunk
MAX_CHUNK_FRAMING = 64 * 1024
REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    424: "Failed Dependency",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 5.1 field-name
_CTL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # RFC 9110 5.5: field values hold no CTL but HTAB
_CTL_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_TARGET_BAD = re.compile(r"[\x00-\x20\x7f]")


class BadRequest(Exception):
    """A request refused before it was complete. ``headers``: its header fields when its head had been read
    (a 413 for a declared Content-Length, a body that never arrived), else None."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message
        self.headers: dict[str, str] | None = None


@dataclass
class Message:
    """A request (``method``, ``target``) or a response (``status``) with lower-cased headers."""

    method: str = ""
    target: str = ""
    status: int = 0
    version: str = "HTTP/1.1"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    keep_alive: bool = True

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


def _explain(exc: Exception) -> BadRequest:
    """A 400 naming what llhttp refused (its reasons are fixed texts such as 'Invalid header value char')."""
    reason = str(exc)
    low = reason.lower()
    if (
        isinstance(exc, (httptools.HttpParserInvalidMethodError, httptools.HttpParserInvalidURLError))
        or "http/" in low
        or "version" in low
        or "url" in low
        or "method" in low
    ):
        where = "malformed request line"
    elif "chunk" in low:
        where = "malformed chunked body"
    elif "header" in low or "content-length" in low or "transfer-encoding" in low or "lf" in low or "cr" in low:
        where = "malformed header"
    else:
        where = "malformed request"
    return BadRequest(
        400,
        f"{where}: {reason} (the request must be strict HTTP/1.1: CRLF line ends, no control "
        "characters in header fields, one Content-Length or Transfer-Encoding: chunked)",
    )


def merge_field(headers: dict[str, str], name: bytes, value: bytes, refuse: Callable[[str], Exception]) -> str:
    """Adds a header field to ``headers`` (lower-cased name; a repeated field joined with ', ', as RFC 9110
    allows) and returns its name; a value with a control character is ``refuse``d (llhttp refuses those
    already: never let one through regardless)."""
    key = name.decode("latin-1").lower()
    if _CTL_BYTES.search(value):
        raise refuse(f"the {key} header holds a control character")
    text = value.decode("latin-1").strip()
    headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return key


def _request_refusal(problem: str) -> BadRequest:
    return BadRequest(400, f"malformed header: {problem}")


def _add_header(headers: dict[str, str], name: bytes, value: bytes) -> None:
    if name.lower() == b"host" and "host" in headers:
        raise BadRequest(400, "malformed header: more than one Host header")
    merge_field(headers, name, value, _request_refusal)


class RequestParser:
    """The requests in the bytes of one client connection, in order (pipelined ones included), without I/O.

    :meth:`feed` parses what arrived: complete requests go to ``ready``; a malformed one leaves its
    :class:`BadRequest` in ``error`` (requests completed before it stay in ``ready``, to be answered
    first; the parser does not resume after an error: the connection must be answered and closed).
    Used by :class:`RequestReader` (asyncio streams) and :class:`ServerConnection` (an asyncio protocol).
    """

    def __init__(self, body_limit: int, clock: Callable[[], float]):
        self._limit = body_limit
        self._clock = clock
        self._parser = httptools.HttpRequestParser(self)
        self.ready: collections.deque[Message] = collections.deque()
        self.error: BadRequest | None = None
        self._msg: Message | None = None
        self._url = b""
        self._headers_done = False
        self._head = 0  # bytes of the current head's target and fields
        self._head_wire = 0  # bytes received while a head was incomplete (bounds the parser's own buffering)
        self._body_wire = 0
        self.body_deadline = 0.0  # when the body of the request being read must have arrived (clock's time)
        self._chunks: list[bytes] = []
        self._size = 0
        self._length: int | None = None
        self._framing = 0  # wire bytes of the current chunked body that were not body (see feed())
        self._chunk_count = 0

    @property
    def in_body(self) -> bool:
        """Whether a request's head has arrived and its body has not (all of it)."""
        return self._headers_done

    @property
    def in_message(self) -> bool:
        """Whether some bytes of a request that is not complete have arrived."""
        return self._msg is not None

    # -- llhttp callbacks (run inside feed_data; an exception raised here stops the parser) -----------------
    def on_message_begin(self) -> None:
        self._msg = Message()
        self._url = b""
        self._headers_done = False
        self._head = 0
        self._chunks = []
        self._size = 0
        self._length = None
        self._framing = self._chunk_count = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._grow_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._grow_head(len(name) + len(value) + 4)
        if self._headers_done:
            return  # a trailer field of a chunked body: never merged into the headers
        _add_header(self._msg.headers, name, value)

    def _grow_head(self, n: int) -> None:
        self._head += n
        if self._head > MAX_HEAD:
            raise BadRequest(431, f"request head larger than {MAX_HEAD} bytes")

    def on_headers_complete(self) -> None:
        parser, msg = self._parser, self._msg
        self._headers_done = True
        self.body_deadline = self._clock() + BODY_TIMEOUT_S
        version = parser.get_http_version()
        if version not in ("1.1", "1.0"):
            if version.startswith("0"):
                raise BadRequest(400, "malformed request line: no HTTP version; send 'METHOD /path HTTP/1.1'")
            raise BadRequest(505, f"HTTP/{version} is not supported: send HTTP/1.1")
        msg.version = "HTTP/" + version
        msg.method = parser.get_method().decode("ascii")
        if parser.should_upgrade() or msg.method == "CONNECT":
            raise BadRequest(501, "protocol upgrades (Upgrade, CONNECT) are not supported")
        headers = msg.headers
        if version == "1.1" and "host" not in headers:
            raise BadRequest(400, "malformed header: Host header missing (HTTP/1.1 requires one)")
        msg.target = _target(self._url)
        msg.keep_alive = parser.should_keep_alive()
        coding = headers.get("transfer-encoding")
        if coding is not None and coding.lower() != "chunked":
            raise BadRequest(
                501,
                f"Transfer-Encoding '{coding}' is not supported; send the body with "
                "Content-Length (or Transfer-Encoding: chunked)",
            )
        length = headers.get("content-length")
        if length is not None:
            n = int(length)  # llhttp has checked it: one field, digits only, no overflow
            if n > self._limit:
                raise BadRequest(413, f"body of {n} bytes is larger than the limit of {self._limit} bytes")
            self._length = n

    def on_body(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._limit:
            raise BadRequest(413, f"body larger than the limit of {self._limit} bytes")
        self._chunks.append(data)

    def on_chunk_header(self) -> None:
        self._chunk_count += 1

    def on_message_complete(self) -> None:
        msg, chunks = self._msg, self._chunks
        msg.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.ready.append(msg)
        self._msg = None
        self._headers_done = False
        self._head_wire = self._body_wire = 0

    # -- input -----------------------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Parses the bytes that arrived (nothing once ``error`` is set)."""
        if len(data) <= READ_SIZE:
            self._feed(data)
            return
        view = memoryview(data)  # the wire limits below count reads of at most READ_SIZE bytes
        for at in range(0, len(data), READ_SIZE):
            self._feed(bytes(view[at : at + READ_SIZE]))

    def _feed(self, data: bytes) -> None:
        if self.error:
            return
        in_body = self._headers_done
        if in_body:
            self._body_wire += len(data)
            if self._body_wire > 2 * self._limit + MAX_HEAD:  # chunk framing beyond any sane overhead
                self._refuse(BadRequest(413, f"chunked body framing larger than the limit of {self._limit} bytes"))
                return
        else:
            self._head_wire += len(data)
            if self._head_wire > MAX_HEAD + READ_SIZE:
                self._refuse(BadRequest(431, f"request head larger than {MAX_HEAD} bytes"))
                return
        msg, size = self._msg, self._size
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            self._refuse(cause if isinstance(cause, BadRequest) else _explain(exc))
        except httptools.HttpParserUpgrade:
            self._refuse(BadRequest(501, "protocol upgrades (Upgrade, CONNECT) are not supported"))
        except httptools.HttpParserError as exc:
            self._refuse(_explain(exc))
        if in_body and msg is self._msg and not self.error and self._length is None:
            # all of this read belongs to one unfinished chunked body: what was not body is framing
            # (llhttp itself reads chunk-size lines and extensions of any length)
            self._framing += len(data) - (self._size - size)
            if self._framing > MAX_CHUNK_FRAMING + 16 * self._chunk_count:
                self._refuse(
                    BadRequest(
                        400,
                        "malformed chunked body: chunk-size lines, chunk extensions and "
                        f"trailers over {MAX_CHUNK_FRAMING} bytes",
                    )
                )

    def _refuse(self, error: BadRequest) -> None:
        if self._headers_done and self._msg is not None:
            error.headers = self._msg.headers
        self.error = error

    def eof_error(self) -> BadRequest | None:
        """What the client's close means: None between requests (or in a head), else a 400 for the body it cut."""
        if not self._headers_done:
            return None
        if self._length is not None:
            return BadRequest(
                400,
                f"the request body ended after {self._size} of {self._length} announced bytes: the client "
                "closed the connection before sending all of it",
            )
        return BadRequest(
            400,
            f"the chunked request body ended after {self._size} bytes, before its last chunk: the client "
            "closed the connection",
        )

    def timeout_error(self) -> BadRequest:
        """The 408 for a body that did not arrive by ``body_deadline``."""
        length = self._msg.headers.get("content-length", "chunked") if self._msg else "chunked"
        return BadRequest(
            408,
            f"the request body did not arrive within {BODY_TIMEOUT_S:g} s: send as many bytes as "
            f"Content-Length announces ({length})",
        )


class RequestReader:
    """The requests of one client connection read from an asyncio stream, in order.

    ``next()`` returns the next complete request, None when the client closed the connection or
    left it idle, and raises :class:`BadRequest` for a malformed one (the connection must then be
    answered and closed: the parser does not resume after an error).
    """

    def __init__(self, reader: asyncio.StreamReader, body_limit: int):
        self._reader = reader
        self._loop = asyncio.get_running_loop()
        self._parser = RequestParser(body_limit, self._loop.time)

    async def next(self) -> Message | None:
        parser = self._parser
        ready = parser.ready
        if ready:
            return ready.popleft()
        if parser.error:
            raise parser.error
        idle_deadline = self._loop.time() + IDLE_TIMEOUT_S
        while True:
            in_body = parser.in_body
            try:
                async with asyncio.timeout_at(parser.body_deadline if in_body else idle_deadline):
                    data = await self._reader.read(READ_SIZE)
            except TimeoutError:
                if in_body:
                    raise parser.timeout_error() from None
                return None  # idle, or a head that never completes: close without an answer
            if not data:
                error = parser.eof_error()
                if error:
                    raise error
                return None
            parser.feed(data)
            if ready:
                return ready.popleft()  # a request completed before any error: it is answered first
            if parser.error:
                raise parser.error


def _target(url: bytes) -> str:
    """The origin-form target (``/path?query``); an absolute-form one (RFC 9112 3.2.2) keeps path and query."""
    if url.startswith(b"/"):
        return url.decode("latin-1")
    if url[:7].lower() == b"http://" or url[:8].lower() == b"https://":
        try:
            parts = httptools.parse_url(url)
        except httptools.HttpParserInvalidURLError:
            raise BadRequest(400, "malformed request line: invalid absolute URL") from None
        target = (parts.path or b"/").decode("latin-1")
        return f"{target}?{parts.query.decode('latin-1')}" if parts.query else target
    raise BadRequest(400, "malformed request line: the target must be a path ('/score') or an absolute URL")


# -- a server connection as an asyncio protocol ----------------------------------------------------------------
Answer = tuple[int, dict[str, str], bytes]
#: bytes kept unparsed while a request is being answered before the connection stops reading
MAX_PENDING = 2 * READ_SIZE
LINGER_S = 2.0
LINGER_BYTES = 4 * 1024 * 1024


class ServerConnection(asyncio.Protocol):
    """One client connection of a server: requests parsed as their bytes arrive and answered in order.

    What :class:`RequestReader` does over asyncio streams, on the transport's callbacks instead: no
    task, future or timeout context per read, which cost a server about 20 µs of CPU per request.
    ``answer(request, peer)`` returns the answer, or an awaitable of it (the gateway's, which
    forwards); one request of a connection is answered at a time, and bytes arriving meanwhile wait
    unparsed (reading pauses past :data:`MAX_PENDING`), as a stream reader would leave them.
    ``refuse(error)`` answers a request the parser refused; the answer closes the connection, which
    first reads and drops what the client still sends (briefly), so that the client reads the answer
    before the close. ``failed(exc)`` answers a request whose ``answer`` raised (a defect), and closes.
    A connection idle for :data:`IDLE_TIMEOUT_S` (or whose head never completes) is closed without an
    answer; a body that does not arrive within :data:`BODY_TIMEOUT_S` is refused with a 408.
    ``stopping()`` true: the answer in progress is the connection's last.
    """

    def __init__(
        self,
        answer: Callable,
        refuse: Callable[[BadRequest], Answer],
        failed: Callable[[Exception], Answer],
        body_limit: int,
        stopping: Callable[[], bool] = lambda: False,
        closed: Callable[[ServerConnection], None] = lambda connection: None,
    ):
        self._answer, self._refuse, self._failed, self._stopping, self._closed = (
            answer,
            refuse,
            failed,
            stopping,
            closed,
        )
        self._loop = asyncio.get_running_loop()
        self.parser = RequestParser(body_limit, self._loop.time)
        self.transport: asyncio.Transport | None = None
        self.peer = None
        self.busy = False  # a request is being answered
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._reading = True
        self._writable = True
        self._eof = False
        self._done = False  # answered for the last time (or closed): nothing more is read or answered
        self._linger_left = 0
        self._idle_deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0

    # -- asyncio ------------------------------------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        self._idle_deadline = self._loop.time() + IDLE_TIMEOUT_S
        self._arm(self._idle_deadline)

    def connection_lost(self, exc) -> None:
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._closed(self)

    def data_received(self, data: bytes) -> None:
        if self._done:
            if self._linger_left:  # after a refusal: drop what the client still sends, up to a point
                self._linger_left = max(0, self._linger_left - len(data))
                if not self._linger_left:
                    self.transport.close()
            return
        if self.busy or not self._writable or self._pending:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size > MAX_PENDING and self._reading:
                self._reading = False
                self.transport.pause_reading()
            if not self.busy and self._writable:
                self._pump()
            return
        self.parser.feed(data)
        self._pump()

    def eof_received(self) -> bool:
        self._eof = True
        if not self.busy and not self._done:
            self._pump()
        return True  # keep the transport open: the answer in progress is still written

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        if not self.busy and not self._done:
            self._pump()

    # -- answering ------------------------------------------------------------------------------------------------
    def _pump(self) -> None:
        parser = self.parser
        while not self.busy and not self._done and self._writable:
            if self._pending:
                data = b"".join(self._pending)
                self._pending.clear()
                self._pending_size = 0
                if not self._reading:
                    self._reading = True
                    self.transport.resume_reading()
                parser.feed(data)
            if parser.ready:
                self._start(parser.ready.popleft())
                continue
            if parser.error:
                self._refusal(parser.error)
            elif self._eof:
                error = parser.eof_error()
                if error:
                    self._refusal(error)
                else:
                    self._close()
            elif parser.in_body:
                self._arm(parser.body_deadline)
            return

    def _start(self, request: Message) -> None:
        self.busy = True
        try:
            result = self._answer(request, self.peer)
        except Exception as exc:  # a defect of the answering code: answered, and the connection closed
            self._write(request, self._failed(exc), close=True)
            return
        if isinstance(result, tuple):
            self._write(request, result)
        else:
            self._loop.create_task(self._finish(request, result))

    async def _finish(self, request: Message, pending) -> None:
        try:
            answer, close = await pending, False
        except Exception as exc:
            answer, close = self._failed(exc), True
        self._write(request, answer, close)
        self._pump()

    def _write(self, request: Message, answer: Answer, close: bool = False) -> None:
        self.busy = False
        if self._done or self.transport.is_closing():
            return  # the client left while its request was answered
        keep = request.keep_alive and not close and not self._stopping()
        try:
            data = encode_response(*answer, keep_alive=keep, head_only=request.method == "HEAD")
        except ValueError as exc:  # a header the encoder refuses to write: a defect
            keep = False
            data = encode_response(*self._failed(exc), keep_alive=False)
        self.transport.write(data)
        if not keep:
            self._close()
        else:
            self._idle_deadline = self._loop.time() + IDLE_TIMEOUT_S
            self._arm(self._idle_deadline)  # an earlier armed timer moves on to it when it fires

    def _refusal(self, error: BadRequest) -> None:
        self.transport.write(encode_response(*self._refuse(error), keep_alive=False))
        self._done = True
        if self._eof or not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self._linger_left = LINGER_BYTES
        if not self._reading:
            self._reading = True
            self.transport.resume_reading()
        self._arm(self._loop.time() + LINGER_S)

    def _close(self) -> None:
        self._done = True
        self.transport.close()

    def stop(self) -> None:
        """The server stops: an idle connection is closed now, a busy one after its answer."""
        if not self.busy and not self._done:
            self._close()

    # -- deadlines: one timer, moved on lazily ----------------------------------------------------------------------
    def _arm(self, when: float) -> None:
        if self._timer is None or when < self._timer_when:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(when, self._on_timer)
            self._timer_when = when

    def _on_timer(self) -> None:
        self._timer = None
        if self.transport is None or self.transport.is_closing():
            return
        if self._done:  # the linger is over
            self.transport.close()
            return
        if self.busy:
            return  # re-armed when the answer is written and the connection waits again
        parser = self.parser
        due = parser.body_deadline if parser.in_body else self._idle_deadline
        if self._loop.time() < due:
            self._arm(due)
        elif parser.in_body:
            self._refusal(parser.timeout_error())
        else:
            self._close()  # idle, or a head that never completes: closed without an answer


# -- encoding ---------------------------------------------------------------------------------------------
def field_lines(headers: dict[str, str]) -> list[str]:
    lines = []
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name) or _CTL.search(value):
            raise ValueError(
                f"refusing to write header {name!r}: not a token name, or a control character in its value"
            )
        lines.append(f"{name}: {value}")
    return lines


def encode_request(method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
    if not _TOKEN.fullmatch(method) or not target.startswith("/") or _TARGET_BAD.search(target):
        raise ValueError(f"refusing to write request line {method!r} {target[:80]!r}")
    lines = [f"{method} {target} HTTP/1.1", "Host: replica", *field_lines(headers), f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def encode_response(
    status: int, headers: dict[str, str], body: bytes, keep_alive: bool = True, head_only: bool = False
) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}",
        *field_lines(headers),
        f"Content-Length: {len(body)}",
    ]
    if not keep_alive:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body
