"""A minimal HTTP/1.1 streaming client on asyncio's protocol layer, for the load generator.

Why not a general HTTP client: a load generator must cost less than the
server it measures. Measured on a paced mock (same run, client CPU per
token), the general clients spend most of their time outside the decoding:
aiohttp wakes a task and returns through its stream reader for every read,
httpx far more. Here each socket read arrives in :meth:`_Exchange.data_received`,
its chunked framing is cut in place and the payload goes straight to the
:class:`~streamspec.metrics.StreamMeter`, so the clock is read the moment the
bytes arrive, with no task switch in between.

What it speaks: one request at a time per connection (keep-alive, reused by
the slot that opened it), ``POST`` with a ``Content-Length`` body, responses
framed by ``Transfer-Encoding: chunked``, ``Content-Length`` or the end of the
connection; TLS for ``https://`` (see :func:`tls_context`: the system's CAs, a
CA file, or no verification). No proxies, redirects or compression (requests
say ``Accept-Encoding: identity``).

A failed TLS handshake fails the request with ``error_kind`` ``"tls"`` and
says why (the certificate verification's reason, or the handshake's); a TLS
connection that ends mid-body, with or without the TLS close alert, fails it
as ``"truncated"``, keeping what arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from typing import Any
from urllib.parse import urlsplit

from ..errors import Error
from ..metrics import StreamMeter

__all__ = ["Connection", "Target", "http_failure", "tls_context", "tls_failure"]

_MAX_HEAD = 64 << 10
_MAX_ERROR_BODY = 64 << 10


def http_failure(status: int, body: bytes, content_type: str = "") -> str:
    """The one-line message of an HTTP error response, as :class:`streamspec.http.HTTPStatusError`
    words it (the server's message, type and code, from any of the usual body shapes)."""
    from ..http import HTTPStatusError, parse_error_body

    error = parse_error_body(body, status=status, content_type=content_type)
    return HTTPStatusError(status, error).message


def tls_context(
    ca_file: str | os.PathLike[str] | None = None, insecure: bool = False
) -> ssl.SSLContext:
    """The TLS client context for ``https://`` targets.

    By default the server's certificate must chain to a CA the system trusts
    (OpenSSL's default store; the ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``
    environment variables replace it) and name the URL's host, which is also
    sent as SNI (host names only: an IP address is checked, not sent).
    ``ca_file``: trust the CA certificates of this PEM file instead (a private
    CA). ``insecure``: check neither the certificate nor the host name (a
    self-signed test server; the traffic is still encrypted). ALPN offers
    ``http/1.1``, the only protocol spoken.

    Raises :class:`ValueError` with the reason when ``ca_file`` cannot be read
    or holds no certificate, or when both options are given.
    """
    if insecure and ca_file is not None:
        raise ValueError("a CA file and insecure (no verification) contradict each other")
    try:
        context = ssl.create_default_context(cafile=None if ca_file is None else os.fspath(ca_file))
    except ssl.SSLError as exc:  # before OSError, its base
        reason = exc.reason or str(exc)
        raise ValueError(
            f"CA file {ca_file}: no PEM certificate could be loaded ({reason})"
        ) from None
    except OSError as exc:
        raise ValueError(f"CA file {ca_file}: {exc.strerror or exc}") from None
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context


class Target:
    """Where requests go: host, port, TLS, and the request head for a path.

    ``ssl_context`` is the TLS context of an ``https://`` URL (default:
    :func:`tls_context`, the system's CAs); it is ignored for ``http://``.
    """

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        connect_timeout: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = self.authority = parts.netloc.rpartition("@")[2]
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {host}", "Accept-Encoding: identity"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        self.ssl: ssl.SSLContext | None = None
        if self.tls:
            self.ssl = ssl_context if ssl_context is not None else tls_context()

    def request(self, body: bytes) -> bytes:
        """The whole request for ``body`` (built once per body, reused for every send)."""
        return self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body


class _Exchange(asyncio.Protocol):
    """One connection's protocol: parses each response and feeds its body to a meter."""

    def __init__(self) -> None:
        self.transport: Any = None  # asyncio's or uvloop's TCP (or TLS) transport
        self.meter: StreamMeter | None = None
        self.finished: asyncio.Future[None] | None = None
        self.reusable = False
        self.reused = False  # the request in progress is not the connection's first
        self.retry = False
        self._requests = 0
        self.reads = 0  # reads so far (the watchdog compares it between its rounds)
        self._head = bytearray()
        self._in_head = True
        self._status = 0
        self._framing = "close"  # "chunked", "length" or "close"
        # chunked: bytes left in the chunk (-1: its CRLF; -2: the trailer section after the last
        # chunk); length: bytes left
        self._left = 0
        self._pending = bytearray()  # chunked framing cut between reads
        self._error_body: bytearray | None = None
        self._fast = False  # the body is a chunked event stream: data_received's shortcut
        self._feed: Any = None  # the meter's feed, while a request is in progress
        self._content_type = ""
        self._closed = False

    # -- asyncio callbacks -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reads += 1
        # The hot path: a 200 event stream in chunked framing, one chunk per read.
        if self._fast:
            if not self._left and not self._pending and data.endswith(b"\r\n"):
                line_end = data.find(b"\r\n", 0, 18)
                if line_end > 0:
                    start = line_end + 2
                    try:
                        exact = int(data[:line_end], 16) == len(data) - start - 2
                    except ValueError:
                        exact = False
                    if exact and start + 2 < len(data):
                        try:  # noqa: SIM105 (contextlib.suppress costs more per read)
                            self._feed(data[start:-2])
                        except Error:
                            pass  # recorded by the meter; the rest of the body is still read
                        return
            self._chunked(data)
            return
        if self.meter is None:  # nothing asked: the server spoke out of turn
            self.reusable = False
            return
        if self._in_head:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                if len(self._head) > _MAX_HEAD:
                    self._fail("the response head is too large", "protocol")
                return
            data = bytes(self._head[end + 4 :])
            if not self._parse_head(bytes(self._head[:end])):
                return
            del self._head[:]
            if not data:
                return
        if self._framing == "chunked":
            self._chunked(data)
        elif self._framing == "length":
            take = data[: self._left]
            self._left -= len(take)
            self._payload(take)
            if self._left == 0:
                self._complete()
        else:
            self._payload(data)

    def eof_received(self) -> bool | None:
        self.reusable = False  # the server will send nothing more on this connection
        self._ended()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.reusable = False
        self._ended(exc)

    # -- the response ------------------------------------------------------------------------

    def _parse_head(self, head: bytes) -> bool:
        lines = head.decode("latin-1").split("\r\n")
        status_line = lines[0].split(" ", 2)
        try:
            self._status = int(status_line[1])
        except (IndexError, ValueError):
            self._fail(f"not an HTTP response: {lines[0][:80]!r}", "protocol")
            return False
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self._in_head = False
        self.reusable = headers.get("connection", "").lower() != "close"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._framing, self._left = "chunked", 0
        elif "content-length" in headers:
            self._framing, self._left = "length", int(headers["content-length"] or 0)
        else:
            self._framing, self.reusable = "close", False
        kind = self._content_type = headers.get("content-type", "")
        if self._status >= 400 or (self._status == 200 and "json" in kind) or self._status != 200:
            self._error_body = bytearray()
        self._fast = self._framing == "chunked" and self._error_body is None
        if self._framing == "length" and self._left == 0:
            self._complete()
        return True

    def _payload(self, data: bytes) -> None:
        errors = self._error_body
        if errors is not None:
            if len(errors) < _MAX_ERROR_BODY:
                errors += data
            return
        meter = self.meter
        if meter is not None and not meter.decoder.done:
            with contextlib.suppress(Error):  # recorded by the meter; the body is still read
                meter.feed(data)

    def _chunked(self, data: bytes) -> None:
        # The usual read is exactly one chunk, ``<hex size>\r\n<payload>\r\n``: one search.
        if not self._left and not self._pending:
            line_end = data.find(b"\r\n", 0, 18)
            if line_end > 0:
                try:
                    size = int(data[:line_end], 16)
                except ValueError:
                    size = -1
                start = line_end + 2
                if size > 0 and len(data) == start + size + 2 and data.endswith(b"\r\n"):
                    self._payload(data[start:-2])
                    return
        if self._pending:
            data = bytes(self._pending) + data
            self._pending.clear()
        position, end = 0, len(data)
        while position < end:
            left = self._left
            if left > 0:  # inside a chunk's data
                stop = position + left
                if stop > end:
                    self._left = stop - end
                    self._payload(data[position:] if position else data)
                    return
                self._payload(data[position:stop])
                position, self._left = stop, -1
            elif left == -1:  # the CRLF after a chunk's data
                if end - position < 2:
                    self._pending += data[position:]
                    return
                position, self._left = position + 2, 0
            elif left == -2:  # after the last chunk: trailer fields (ignored), then an empty line
                line_end = data.find(b"\r\n", position)
                if line_end < 0:
                    if end - position > _MAX_HEAD:
                        self._fail("the trailer section is too large", "protocol")
                        return
                    self._pending += data[position:]
                    return
                if line_end == position:  # the message ends; the connection can serve the next
                    self._complete()
                    return
                position = line_end + 2
            else:  # a chunk-size line
                line_end = data.find(b"\r\n", position)
                if line_end < 0:
                    if end - position > 1024:
                        self._fail("a chunk-size line is too long", "protocol")
                        return
                    self._pending += data[position:]
                    return
                try:
                    size = int(data[position:line_end].split(b";", 1)[0], 16)
                except ValueError:
                    self._fail("bad chunked framing", "protocol")
                    return
                position = line_end + 2
                # The last chunk: the message ends with the trailer section, read before the
                # request settles, so that no byte of it is taken for the next response.
                self._left = size if size else -2

    def _complete(self) -> None:
        """The body ended as its framing said: settle the request."""
        meter = self.meter
        if meter is None:
            return
        errors = self._error_body
        if errors is not None:
            kind = f"http_{self._status}" if self._status >= 400 else "not_a_stream"
            text = http_failure(self._status, bytes(errors), self._content_type)
            if kind == "not_a_stream":
                text = "not an event stream: " + text.split(": ", 1)[-1]
            meter.fail(text, "error", kind)
        else:
            with contextlib.suppress(Error):  # recorded by the meter
                meter.close()
        self._settle()

    def _ended(self, exc: Exception | None = None) -> None:
        """The connection ended; settle a request still in progress."""
        meter = self.meter
        if meter is None:
            return
        if not self._in_head and (
            self._framing == "close" or (self._framing == "chunked" and self._left == -2)
        ):  # the body ended as framed (a chunked one may lack the end of its trailer section)
            self._complete()
            return
        if self._in_head and not self._head and self.reused:
            # A kept-alive connection the server closed before our request reached it:
            # Connection.send sends the request again on a new connection.
            self.retry = True
            self._settle()
            return
        if self._in_head:
            text = f"{type(exc).__name__}: {exc}" if exc else "the server closed the connection"
            meter.fail(text, "error", "connection")
        elif self._error_body is not None:
            meter.fail(f"HTTP {self._status}: the body was cut", "error", "connection")
        else:
            meter.fail("the stream was cut: the connection ended mid-body", "truncated",
                       "truncated")  # fmt: skip
        self._settle()

    def _fail(self, message: str, kind: str) -> None:
        if self.meter is not None:
            self.meter.fail(message, "error", kind)
        self.reusable = False
        if self.transport is not None:
            self.transport.close()
        self._settle()

    def _settle(self) -> None:
        self.meter = None
        self._feed = None  # nor keep the meter's decoder alive until the next request
        self._fast = False
        finished, self.finished = self.finished, None
        if finished is not None and not finished.done():
            finished.set_result(None)

    # -- driven by Connection ----------------------------------------------------------------

    def start(self, meter: StreamMeter, request: bytes) -> asyncio.Future[None]:
        assert self.transport is not None
        self.reused = self._requests > 0
        self._requests += 1
        self.retry = False
        self.meter = meter
        self._feed = meter.feed
        self._head.clear()
        self._pending.clear()
        self._in_head = True
        self._error_body = None
        self._status = 0
        self.finished = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.finished

    @property
    def closed(self) -> bool:
        return self._closed

    def abort(self, message: str, kind: str) -> None:
        if self.meter is not None:
            self.meter.fail(message, "error", kind)
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()
        self._settle()


def tls_failure(exc: ssl.SSLError, authority: str) -> str:
    """The one-line message of a failed TLS handshake with ``authority`` (``host:port``)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = (exc.verify_message or exc.reason or str(exc)).rstrip(".")
        return (
            f"TLS: the certificate of {authority} was not accepted: {reason} "
            "(a private CA: --ca-file FILE; a self-signed test server: --insecure)"
        )
    reason = exc.reason or str(exc)
    if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
        reason += ": the server does not seem to speak TLS (an http:// server?)"
    return f"TLS: the handshake with {authority} failed: {reason}"


class Connection:
    """A keep-alive connection to ``target``, opened on first use and reopened when closed."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.exchange: _Exchange | None = None

    async def send(self, request: bytes, meter: StreamMeter) -> None:
        """Send ``request`` and feed its response body to ``meter`` until the body ends."""
        await self._send(request, meter)
        if self.exchange is not None and self.exchange.retry:
            self.exchange.reusable = False
            await self._send(request, meter)

    async def _send(self, request: bytes, meter: StreamMeter) -> None:
        exchange = self.exchange
        if exchange is None or exchange.closed or not exchange.reusable:
            if exchange is not None and exchange.transport is not None:
                exchange.transport.close()
            loop = asyncio.get_running_loop()
            target = self.target
            opening = loop.create_connection(
                _Exchange,
                target.host,
                target.port,
                ssl=target.ssl,
                server_hostname=target.host if target.tls else None,
            )
            try:
                _, protocol = await asyncio.wait_for(opening, target.connect_timeout)
            except asyncio.TimeoutError:
                what = "connection and TLS handshake" if target.tls else "connection"
                meter.fail(f"no {what} within {target.connect_timeout:g} s", "error", "timeout")
                return
            except ssl.SSLError as exc:  # before OSError, its base
                meter.fail(tls_failure(exc, target.authority), "error", "tls")
                return
            except OSError as exc:
                meter.fail(f"{type(exc).__name__}: {exc}", "error", "connection")
                return
            exchange = self.exchange = protocol
        await exchange.start(meter, request)

    def progress(self) -> tuple[int, int] | None:
        """(which request, reads so far) while a request is in progress, else None."""
        exchange = self.exchange
        if exchange is None or exchange.meter is None:
            return None
        return id(exchange.meter), exchange.reads

    def time_out(self, seconds: float) -> None:
        """Fail the request in progress: nothing arrived for ``seconds``."""
        if self.exchange is not None:
            self.exchange.abort(f"no data for {seconds:g} s", "timeout")

    def close(self) -> None:
        if self.exchange is not None and self.exchange.transport is not None:
            self.exchange.transport.close()
        self.exchange = None
