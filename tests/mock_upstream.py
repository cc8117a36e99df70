"""A mock OpenAI-compatible server that replays recorded SSE streams over real HTTP.

    with MockUpstream({"gpt-4o": load_fixture("openai_text")}, token_delay=0.002) as upstream:
        client = openai.OpenAI(base_url=upstream.base_url, api_key="test")
        for chunk in client.chat.completions.create(model="gpt-4o", messages=[...], stream=True):
            ...

It runs uvicorn on 127.0.0.1 (an ephemeral port) in a background thread and
serves ``POST /v1/chat/completions``. The request's ``model`` picks the stream
(a key of ``streams``); an unknown model gets HTTP 404 with an OpenAI error
body. A streaming request (``"stream": true``) gets the stream's bytes as a
chunked ``text/event-stream`` response, written piece by piece with
``token_delay`` seconds between writes. ``split`` chooses the pieces:

* ``"event"``: one SSE event per write (the way servers flush tokens);
* ``"random"``: random-sized pieces (1 to 64 bytes, seeded), cutting events,
  lines and UTF-8 sequences anywhere;
* ``"stall"``: the first half of the events, then no more writes and no end,
  until the client goes away or the server stops;
* ``"die"``: the first half of the events and half of the next one, then the
  connection is closed without ending the chunked body.

A non-streaming request gets the stream accumulated into one
``chat.completion`` JSON body.

``requests`` holds the parsed JSON bodies received, ``disconnects`` counts
streaming responses whose client went away before the end, ``completed``
counts streaming responses written to the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import msgspec
import uvicorn

import streamspec
from streamspec.accumulate import accumulate

__all__ = ["FIXTURES", "MockUpstream", "ServerThread", "load_fixture", "read_body", "split_events"]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "streams"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_SPLITS = ("event", "random", "stall", "die")
_EVENT_END = re.compile(rb"(?:\r\n|\r|\n)(?:\r\n|\r|\n)")


def load_fixture(name: str) -> bytes:
    """The bytes of ``fixtures/streams/<name>`` (the ``.sse`` suffix is optional)."""
    if not name.endswith(".sse"):
        name += ".sse"
    return (FIXTURES / name).read_bytes()


def split_events(data: bytes) -> list[bytes]:
    """Cut an SSE stream after each blank line: one piece per event (comments included).

    Joining the pieces gives ``data`` back; bytes after the last blank line
    form a last piece of their own.
    """
    pieces: list[bytes] = []
    start = 0
    for match in _EVENT_END.finditer(data):
        pieces.append(data[start : match.end()])
        start = match.end()
    if start < len(data):
        pieces.append(data[start:])
    return pieces


async def read_body(receive: Receive) -> bytes | None:
    """An ASGI request's whole body; None when the client left before sending it all."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body)


def _random_pieces(data: bytes, rng: random.Random) -> list[bytes]:
    pieces: list[bytes] = []
    start = 0
    while start < len(data):
        size = rng.randint(1, 64)
        pieces.append(data[start : start + size])
        start += size
    return pieces


def _error_body(message: str, kind: str, code: str | None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}
    ).encode()


class _Die(Exception):
    """Raised inside the app to drop the connection mid-body."""


class ServerThread:
    """Serves an ASGI app with uvicorn on 127.0.0.1 (an ephemeral port) in a daemon thread.

    ``port`` and ``url`` (``http://127.0.0.1:PORT``) are set once :meth:`start`
    returns; ``loop`` is the server's event loop. ``lifespan`` is uvicorn's
    setting (``"on"`` runs the app's startup and shutdown).
    """

    def __init__(
        self, app: Any, *, lifespan: Literal["auto", "on", "off"] = "off", name: str = "asgi-server"
    ) -> None:
        self.app = app
        self.lifespan = lifespan
        self.name = name
        self.port = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        """Start serving; return once the server accepts connections."""
        # proto=IPPROTO_TCP: asyncio then disables Nagle on accepted connections (TCP_NODELAY),
        # as it does for the sockets uvicorn binds itself.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan=self.lifespan,
            interface="asgi3",
            log_config=None,
            log_level="critical",
            access_log=False,
            timeout_graceful_shutdown=1,
            backlog=2048,
        )
        server = self._server = uvicorn.Server(config)
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self.loop = loop
            ready.set()
            try:
                loop.run_until_complete(server.serve(sockets=[sock]))
            finally:
                loop.close()
                sock.close()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        ready.wait(10)
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.005)
        return self

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` in the server's loop (ignored once the loop is closed)."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(callback)

    def stop(self) -> None:
        """Ask uvicorn to exit and join the thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class MockUpstream:
    """An OpenAI-compatible streaming server replaying ``streams`` (model name -> SSE bytes).

    Use it as a context manager (or call :meth:`start` and :meth:`stop`).
    ``base_url`` (``http://127.0.0.1:PORT/v1``) is what an OpenAI client takes.
    Attributes are safe to read from the test's thread while the server runs.
    """

    def __init__(
        self,
        streams: dict[str, bytes],
        *,
        token_delay: float = 0.002,
        split: str = "event",
        seed: int = 0,
    ) -> None:
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {', '.join(_SPLITS)}, not {split!r}")
        self.streams = dict(streams)
        self.token_delay = token_delay
        self.split = split
        self.requests: list[dict[str, Any]] = []
        self.completed = 0
        self._disconnects = 0
        self._rng = random.Random(seed)
        self._changed = threading.Condition()
        self._stopping: asyncio.Event | None = None
        self._thread = ServerThread(self._app, name="mock-upstream")

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port the server listens on (0 before :meth:`start`)."""
        return self._thread.port

    @property
    def base_url(self) -> str:
        """The OpenAI base URL of this server, ending in ``/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def disconnects(self) -> int:
        """Streaming responses whose client went away before the end of the stream."""
        with self._changed:
            return self._disconnects

    def wait_for_disconnects(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Block until ``disconnects`` reaches ``count``; False if ``timeout`` passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._disconnects >= count, timeout)

    def start(self) -> MockUpstream:
        """Start the server thread and wait until it accepts connections."""
        self._stopping = asyncio.Event()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the server: stalled responses end, the thread is joined."""
        stopping = self._stopping
        if stopping is not None:
            self._thread.call_soon(stopping.set)
        self._thread.stop()

    def __enter__(self) -> MockUpstream:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the ASGI application ------------------------------------------------------------------

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        if body is None:
            return
        if scope["method"] != "POST" or scope["path"].rstrip("/") != "/v1/chat/completions":
            await self._json(send, 404, _error_body("Not found", "invalid_request_error", None))
            return
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise ValueError("the body is not a JSON object")
        except ValueError as exc:
            await self._json(send, 400, _error_body(str(exc), "invalid_request_error", None))
            return
        self.requests.append(payload)
        model = payload.get("model")
        if not isinstance(model, str) or model not in self.streams:
            text = f"The model `{model}` does not exist or you do not have access to it."
            await self._json(
                send, 404, _error_body(text, "invalid_request_error", "model_not_found")
            )
            return
        data = self.streams[model]
        if payload.get("stream") is not True:
            await self._whole(send, data)
            return
        await self._stream(receive, send, data)

    @staticmethod
    async def _json(send: Send, status: int, body: bytes) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _whole(self, send: Send, data: bytes) -> None:
        """Answer a non-streaming request with the stream accumulated."""
        try:
            response = accumulate(streamspec.iter_chunks([data]))
        except streamspec.StreamError as exc:
            await self._json(send, 500, _error_body(exc.error.message, "server_error", None))
            return
        except streamspec.Error as exc:
            await self._json(send, 500, _error_body(str(exc), "server_error", None))
            return
        await self._json(send, 200, msgspec.json.encode(response))

    def _pieces(self, data: bytes) -> tuple[list[bytes], bool, bool]:
        """The writes for ``data``, whether to stall after them, whether to die after them."""
        if self.split == "random":
            return _random_pieces(data, self._rng), False, False
        events = split_events(data)
        if self.split == "event":
            return events, False, False
        half = len(events) // 2
        if self.split == "stall":
            return events[:half], True, False
        cut = events[half] if half < len(events) else b""
        return [*events[:half], cut[: max(len(cut) // 2, 1)]], False, True

    async def _stream(self, receive: Receive, send: Send, data: bytes) -> None:
        pieces, stall, die = self._pieces(data)
        gone = asyncio.Event()
        finished = False

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    if not finished:
                        with self._changed:
                            self._disconnects += 1
                            self._changed.notify_all()
                    gone.set()
                    return

        watcher = asyncio.create_task(watch())
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                    ],
                }
            )
            for position, piece in enumerate(pieces):
                if position and self.token_delay > 0 and await self._wait(gone, self.token_delay):
                    return
                if gone.is_set():
                    return
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            if die:
                await asyncio.sleep(self.token_delay)
                raise _Die  # uvicorn closes the connection without ending the chunked body
            if stall:
                await self._wait(gone, None)
                return
            finished = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            with self._changed:
                self.completed += 1
                self._changed.notify_all()
        finally:
            if not gone.is_set():
                # Let a disconnect that already happened be counted before the watcher goes.
                await asyncio.sleep(0)
            watcher.cancel()

    async def _wait(self, gone: asyncio.Event, timeout: float | None) -> bool:
        """Sleep up to ``timeout`` (forever if None); True if the client went away or we stop."""
        stopping = self._stopping
        waits = [asyncio.ensure_future(gone.wait())]
        if stopping is not None:
            waits.append(asyncio.ensure_future(stopping.wait()))
        try:
            done, _ = await asyncio.wait(
                waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waits:
                waiter.cancel()
        return bool(done)
