"""The HTTPS proxy that makes ``https://<account>.blob.<suffix>`` reach the front door's blob service.

azure-ai-ml builds the URL of a datastore transfer with ``https`` and the host
``<account>.blob.<storage suffix>`` hard-coded, and that host resolves nowhere offline.
``HTTPS_PROXY`` sends such a request as ``CONNECT host:443`` here; the tunnel goes to the
front door's TLS listener, whose certificate names ``*.blob.<suffix>``, so TLS is end to end
and the client's certificate check stands.

Written by hand because no library does this: it is a CONNECT-only tunnel of about forty
lines, and the request head is parsed by llhttp (``httptools``), the parser the gateway uses.
Any other host is tunnelled to where it names (the proxy then behaves as any local
development proxy, so ``pip`` in a shell that ran ``amlemu env`` still works); a request that
is not CONNECT gets 405.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

import httptools

from emulator.frontdoor.settings import FrontDoor

log = logging.getLogger("amlemu.frontdoor.proxy")
MAX_HEAD = 8192


class _Head:
    """What llhttp reports of a request head: the method and the target."""

    def __init__(self) -> None:
        self.url = b""
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_headers_complete(self) -> None:
        self.complete = True


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


class BlobProxy:
    """The proxy listener, run on its own event loop in a thread (``start``/``stop``)."""

    def __init__(self, front: FrontDoor):
        self.front = front
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def target(self, host: str, port: int) -> tuple[str, int]:
        """Where a tunnel to ``host:port`` goes: a storage host to the blob service, anything else to itself."""
        if host.lower().endswith(self.front.blob_host_suffix):
            return self.front.host, self.front.tls_port
        return host, port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        head = _Head()
        parser = httptools.HttpRequestParser(head)
        try:
            parser.feed_data(raw)
        except httptools.HttpParserUpgrade:
            pass  # CONNECT: llhttp stops at the head, the rest is the tunnel
        except httptools.HttpParserError:
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            writer.close()
            return
        if parser.get_method() != b"CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nAllow: CONNECT\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        host, _, port = head.url.decode("ascii", "replace").rpartition(":")
        host = host.strip("[]")
        try:
            upstream = await asyncio.open_connection(*self.target(host, int(port)))
        except (OSError, ValueError) as exc:
            log.warning("proxy: cannot reach %s: %s", head.url.decode("ascii", "replace"), exc)
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            writer.close()
            return
        writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        await writer.drain()
        up_reader, up_writer = upstream
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, self.front.host, self.front.proxy_port, limit=MAX_HEAD)
            )
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        self._server.close()
        loop.run_until_complete(self._server.wait_closed())
        loop.close()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="amlemu-blob-proxy", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
