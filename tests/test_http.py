"""iter_chunks / aiter_chunks over real HTTP: a loopback server and four client libraries.

The server (Starlette on uvicorn, in a thread, on an ephemeral port) sends a
fixture stream as a chunked ``text/event-stream`` response, written in pieces
cut at random points with small pauses between some of them. Every client
must give exactly what ChunkDecoder gives for the whole bytes: the same
chunks, then the same error (if any) at the same event and offset.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import httpx
import pytest
import requests
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from splitting import FIXTURE_NAMES, MANIFEST, Outcome, fixture, run_decoder, split_at
from streamspec import Error, StreamError, aiter_chunks, iter_chunks

TIMEOUT = 10.0  # seconds; a client that waits this long has failed


def _pieces(data: bytes, seed: int) -> list[bytes]:
    """``data`` cut at random points: mostly pieces of a few hundred bytes, some tiny."""
    rng = random.Random(seed)
    points = [rng.randrange(len(data) + 1) for _ in range(len(data) // 300 + 3)]
    small = rng.randrange(len(data) + 1)
    points += [small + 1, small + 2, small + 3]  # a run of one-byte pieces
    return split_at(data, points)


class LoopbackServer:
    """Serves fixture streams on 127.0.0.1.

    ``GET /stream/{name}?seed=N`` sends the fixture in random pieces and ends.
    ``GET /stall/{name}?seed=N`` sends it, then keeps the response open
    without sending anything more until the server stops.
    """

    def __init__(self) -> None:
        self.stopping = threading.Event()
        app = Starlette(
            routes=[
                Route("/stream/{name}", self._stream),
                Route("/stall/{name}", self._stall),
            ]
        )
        # IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections only then.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def url(self, route: str, name: str, seed: int) -> str:
        return f"http://127.0.0.1:{self.port}/{route}/{name}?seed={seed}"

    async def _body(self, request: Request, *, stall: bool) -> AsyncIterator[bytes]:
        seed = int(request.query_params["seed"])
        rng = random.Random(seed)
        for piece in _pieces(fixture(request.path_params["name"]), seed):
            yield piece
            await asyncio.sleep(0.002 if rng.random() < 0.25 else 0)
        while stall and not self.stopping.is_set():
            await asyncio.sleep(0.05)

    async def _stream(self, request: Request) -> StreamingResponse:
        return StreamingResponse(self._body(request, stall=False), media_type="text/event-stream")

    async def _stall(self, request: Request) -> StreamingResponse:
        return StreamingResponse(self._body(request, stall=True), media_type="text/event-stream")

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        deadline = time.monotonic() + TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the loopback server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self._server.should_exit = True
        self._thread.join(TIMEOUT)
        self._socket.close()


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as running:
        yield running


# -- clients ------------------------------------------------------------------------------------

Result = tuple[list[Any], Error | None]


def _collect(chunks: Iterator[Any]) -> Result:
    items: list[Any] = []
    try:
        for chunk in chunks:
            items.append(chunk)
    except Error as exc:
        return items, exc
    return items, None


async def _acollect(chunks: AsyncIterator[Any]) -> Result:
    items: list[Any] = []
    try:
        async for chunk in chunks:
            items.append(chunk)
    except Error as exc:
        return items, exc
    return items, None


def via_httpx(url: str) -> Result:
    with httpx.Client(timeout=TIMEOUT) as client, client.stream("GET", url) as response:
        response.raise_for_status()
        assert response.headers["content-type"].startswith("text/event-stream")
        return _collect(iter_chunks(response.iter_bytes()))


def via_requests(url: str) -> Result:
    with requests.get(url, stream=True, timeout=TIMEOUT) as response:
        response.raise_for_status()
        return _collect(iter_chunks(response.iter_content(None)))


async def via_httpx_async(url: str) -> Result:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client, client.stream("GET", url) as response:
        response.raise_for_status()
        return await _acollect(aiter_chunks(response.aiter_bytes()))


async def via_aiohttp(url: str) -> Result:
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        response.raise_for_status()
        return await _acollect(aiter_chunks(response.content.iter_any()))


SYNC_CLIENTS: dict[str, Callable[[str], Result]] = {
    "httpx": via_httpx,
    "requests": via_requests,
}
ASYNC_CLIENTS: dict[str, Callable[[str], Awaitable[Result]]] = {
    "httpx-async": via_httpx_async,
    "aiohttp": via_aiohttp,
}


def _seed(name: str, client: str) -> int:
    return zlib.crc32(f"{name}/{client}".encode())


def _expected(name: str) -> Outcome:
    return run_decoder([fixture(name)])


def _check(name: str, result: Result) -> None:
    items, exc = result
    expected = _expected(name)
    assert items == expected.items
    if expected.error is None:
        assert exc is None
        return
    assert type(exc) is expected.error
    assert exc is not None
    first = expected.errors[0]
    assert (exc.event_index, exc.offset) == (first.event_index, first.offset)


# -- every fixture through every client ---------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURE_NAMES)
@pytest.mark.parametrize("client", SYNC_CLIENTS)
def test_sync_client(server: LoopbackServer, client: str, name: str) -> None:
    result = SYNC_CLIENTS[client](server.url("stream", name, _seed(name, client)))
    _check(name, result)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
@pytest.mark.parametrize("client", ASYNC_CLIENTS)
async def test_async_client(server: LoopbackServer, client: str, name: str) -> None:
    result = await ASYNC_CLIENTS[client](server.url("stream", name, _seed(name, client)))
    _check(name, result)


# -- a mid-stream error surfaces after the chunks before it -------------------------------------

ERROR_STREAMS = ["openai_error_midstream.sse", "tgi_error.sse", "framing_event_error.sse"]


def _check_error(name: str, result: Result) -> None:
    items, exc = result
    expected = MANIFEST[name]
    assert isinstance(exc, StreamError)
    assert exc.error.message == expected["error_message"]
    # All chunks before the error were yielded, none after.
    assert len(items) == expected["n_chunks"]
    text = "".join(
        c.delta.content
        for chunk in items
        for c in chunk.choices
        if isinstance(c.delta.content, str)
    )
    assert text == expected["text"]


@pytest.mark.parametrize("name", ERROR_STREAMS)
@pytest.mark.parametrize("client", SYNC_CLIENTS)
def test_sync_client_stream_error(server: LoopbackServer, client: str, name: str) -> None:
    _check_error(name, SYNC_CLIENTS[client](server.url("stream", name, 1)))


@pytest.mark.parametrize("name", ERROR_STREAMS)
@pytest.mark.parametrize("client", ASYNC_CLIENTS)
async def test_async_client_stream_error(server: LoopbackServer, client: str, name: str) -> None:
    _check_error(name, await ASYNC_CLIENTS[client](server.url("stream", name, 2)))


def test_iter_chunks_raises_after_yielding(server: LoopbackServer) -> None:
    name = "openai_error_midstream.sse"
    with (
        httpx.Client(timeout=TIMEOUT) as client,
        client.stream("GET", server.url("stream", name, 3)) as response,
    ):
        chunks = iter_chunks(response.iter_bytes())
        seen = [next(chunks) for _ in range(MANIFEST[name]["n_chunks"])]
        with pytest.raises(StreamError) as info:
            next(chunks)
    assert seen == _expected(name).items
    assert info.value.event_index == MANIFEST[name]["n_chunks"]


# -- iteration stops at [DONE] without waiting for the connection to end ------------------------


@pytest.mark.parametrize("client", SYNC_CLIENTS)
def test_sync_client_stops_at_done(server: LoopbackServer, client: str) -> None:
    # After [DONE] the server sends nothing and keeps the response open: a
    # client that read on would wait for the timeout and fail.
    name = "openai_text.sse"
    _check(name, SYNC_CLIENTS[client](server.url("stall", name, 4)))


@pytest.mark.parametrize("client", ASYNC_CLIENTS)
async def test_async_client_stops_at_done(server: LoopbackServer, client: str) -> None:
    name = "xinference_text.sse"
    _check(name, await ASYNC_CLIENTS[client](server.url("stall", name, 5)))
