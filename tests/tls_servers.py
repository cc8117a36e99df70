"""TLS servers on loopback for the load client's ``https://`` tests.

* :func:`server_context`: a server-side TLS context with a certificate that a
  private CA (:mod:`trustme`) issued for some names, recording the SNI name
  each handshake asked for;
* :class:`TLSServer`: listens on 127.0.0.1 (port 0) with such a context and
  hands every accepted connection (handshake done) to a handler;
* :func:`canned`: a handler that answers each request with fixed bytes, cut
  into writes as asked (each write is its own TLS record), then keeps the
  connection, closes it with the TLS close alert, or drops it without one;
* :func:`relay`: a handler that terminates TLS in front of a plain HTTP
  server (the paced :class:`streamspec.testing.MockServer`), as a load
  balancer does, passing the bytes both ways as they come;
* :func:`in_thread`: runs servers in an event loop of their own on a
  background thread, for the command line, which runs its own loop.

Nothing waits on time: servers are listening once ``start`` returns, a
thread's servers once :func:`in_thread` enters its block, and every write is
flushed to the kernel before a connection is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Literal, TypeVar

import trustme

__all__ = [
    "Ending",
    "Handler",
    "TLSServer",
    "canned",
    "in_thread",
    "read_request",
    "relay",
    "server_context",
]

T = TypeVar("T")
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Ending = Literal["keep", "close", "abrupt"]


def server_context(ca: trustme.CA, *names: str, **issue: Any) -> ssl.SSLContext:
    """A server context whose certificate ``ca`` issued for ``names`` (``issue``: more
    arguments of :meth:`trustme.CA.issue_cert`, such as ``not_after``)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names, **issue).configure_cert(context)
    return context


async def read_request(reader: asyncio.StreamReader) -> bytes | None:
    """The head of the next request on the connection (its body read and dropped); None at
    its end."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return head


async def _flushed(writer: asyncio.StreamWriter) -> None:
    """Wait until everything written so far on a TLS connection has left its buffer.

    The TLS layer pauses its writer while it holds a byte (high 1: it compares
    with ``>=``) and resumes it once empty; what it passes on is sent at once
    (a few KB on loopback are far below the socket's buffer).
    """
    writer.transport.set_write_buffer_limits(high=1, low=0)
    await writer.drain()


def _drop(writer: asyncio.StreamWriter) -> None:
    """End the connection at once, without the TLS close alert (close_notify)."""
    writer.transport.abort()


def canned(
    response: bytes,
    pieces: Callable[[bytes], list[bytes]] = lambda data: [data],
    ending: Ending = "keep",
    heads: list[bytes] | None = None,
) -> Handler:
    """A handler answering every request with ``response`` written as ``pieces(response)``.

    ``ending``: ``"keep"`` serves the next request on the connection;
    ``"close"`` closes it with the TLS close alert; ``"abrupt"`` drops it
    without one (a TCP close in the middle of the TLS stream). The head of
    every request is appended to ``heads`` if given.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await read_request(reader)) is not None:
            if heads is not None:
                heads.append(request)
            for piece in pieces(response):
                writer.write(piece)
                await _flushed(writer)
            if ending == "abrupt":
                _drop(writer)
                return
            if ending == "close":
                break
        writer.close()

    return handle


def relay(port: int, ending: Literal["close", "abrupt"] = "close") -> Handler:
    """A handler passing the bytes of each TLS connection to and from ``127.0.0.1:port``.

    When the upstream ends its side, the TLS connection is closed with the
    close alert (``"close"``) or dropped without it (``"abrupt"``).
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)

        async def upward() -> None:
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                while data := await reader.read(1 << 16):
                    up_writer.write(data)
                    await up_writer.drain()
            up_writer.close()

        async def downward() -> None:
            with contextlib.suppress(ConnectionError):
                while data := await up_reader.read(1 << 16):
                    writer.write(data)
                    await _flushed(writer)
            if ending == "abrupt":
                _drop(writer)
            else:
                writer.close()

        await asyncio.gather(upward(), downward())

    return handle


class TLSServer:
    """A TLS server on 127.0.0.1 (port 0, known as :attr:`port` once started).

    :attr:`server_names` holds the SNI name of every handshake (None: the
    client sent none), :attr:`connections` counts the connections handed to
    ``handler``; :meth:`stop` drops the connections still open and waits for
    their handlers to end.
    """

    def __init__(self, context: ssl.SSLContext, handler: Handler) -> None:
        self.context = context
        self.handler = handler
        self.port = 0
        self.server_names: list[str | None] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        context.sni_callback = self._sni

    def _sni(self, _: ssl.SSLObject, name: str | None, __: ssl.SSLContext) -> None:
        self.server_names.append(name)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/v1"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, ssl.SSLError):
            pass  # the client went away, or stop() dropped the connection
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()

    async def start(self) -> TLSServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.gather(*self._tasks)
        self._server = None

    async def __aenter__(self) -> TLSServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


@contextlib.contextmanager
def in_thread(
    setup: Callable[[contextlib.AsyncExitStack[Any]], Awaitable[T]],
) -> Iterator[T]:
    """Run ``setup(stack)`` in a new event loop on a background thread and yield what it
    returns once it has; the loop serves while the block runs, then ``stack`` is closed there."""
    ready = threading.Event()
    outcome: list[Any] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            try:
                outcome.append(await setup(stack))
            except BaseException as exc:
                outcome.append(exc)
                raise
            finally:
                ready.set()
            await stop.wait()

    def run() -> None:
        with contextlib.suppress(BaseException):  # reported through ``outcome``
            loop.run_until_complete(main())
        loop.close()

    thread = threading.Thread(target=run, name="tls-servers", daemon=True)
    thread.start()
    ready.wait()
    try:
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        yield outcome[0]
    finally:
        with contextlib.suppress(RuntimeError):  # the loop already ended
            loop.call_soon_threadsafe(stop.set)
        thread.join()
