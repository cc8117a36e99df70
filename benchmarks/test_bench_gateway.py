"""What the streamspec gateway adds per chunk, next to a plain byte pass-through proxy.

Everything runs on loopback in this process, in one run: an upstream that
writes ``synthetic_stream(tokens)`` one event per write, two proxies in front
of it, and an httpx client reading the raw bytes:

* ``plain-proxy``: Starlette + httpx, ``StreamingResponse(upstream.aiter_raw())``,
  no decoding: the floor any Python proxy pays;
* ``gateway``: :func:`streamspec.gateway.create_app` (pass-through of each read,
  decoding and accumulating on the side, a record at the end);
* ``gateway-rewrite``: the same with ``rewrite_model`` (decode, replace, re-encode);
* ``direct``: the client on the upstream itself, for reference.

Groups:

* **gateway-throughput**: one unpaced request of 500 chunks per round.
  ``ns_per_chunk`` is the round time over the chunks; the gateways record
  ``over_plain`` (their best time over the plain proxy's, in rounds that
  alternate the two) and ``added_ns_per_chunk`` (the difference per chunk).
* **gateway-latency**: one request paced at a chunk per millisecond (200
  chunks). Each chunk's latency is the time from the upstream's write to the
  client's read of its last byte; ``latency_median_us`` and
  ``latency_p90_us`` describe them, and the gateways record
  ``added_latency_median_us`` over the plain proxy measured alternately in the
  same test.

Run with::

    pytest benchmarks/test_bench_gateway.py --benchmark-only
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from streamspec.gateway import GatewayRecord, create_app
from streamspec.samples import synthetic_stream

THROUGHPUT_TOKENS = 497  # + role, finish and usage chunks = 500 chunks
LATENCY_TOKENS = 197
LATENCY_DELAY = 0.001

Message = MutableMapping[str, Any]


def split_events(data: bytes) -> list[bytes]:
    return [event + b"\n\n" for event in data.split(b"\n\n") if event]


class Upstream:
    """Writes a stream one event per write, noting when each write was handed to the server."""

    def __init__(self, events: list[bytes], delay: float) -> None:
        self.events = events
        self.delay = delay
        self.sent_ns: list[int] = []

    async def __call__(
        self,
        scope: Message,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body", False):
            pass
        sent = self.sent_ns = []
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        clock = time.perf_counter_ns
        for position, event in enumerate(self.events):
            if position and self.delay:
                await asyncio.sleep(self.delay)
            sent.append(clock())
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def plain_proxy(upstream_url: str) -> Starlette:
    """A byte pass-through proxy: what a Python proxy costs without any decoding."""
    clients: list[httpx.AsyncClient] = []

    async def chat_completions(request: Request) -> Response:
        if not clients:
            clients.append(httpx.AsyncClient(timeout=30))
        client = clients[0]
        upstream = await client.send(
            client.build_request(
                "POST",
                upstream_url + "/chat/completions",
                content=await request.body(),
                headers={"content-type": "application/json"},
            ),
            stream=True,
        )
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            media_type="text/event-stream",
            background=BackgroundTask(upstream.aclose),
        )

    return Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])])


class Served:
    """An ASGI app served by uvicorn on 127.0.0.1 in a daemon thread."""

    def __init__(self, app: Any) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        config = uvicorn.Config(
            app, interface="asgi3", lifespan="on", log_config=None, log_level="critical"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve(sockets=[sock])), daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.005)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class Setup:
    """An upstream, the proxies in front of it, and a client."""

    def __init__(self, tokens: int, delay: float) -> None:
        self.events = split_events(synthetic_stream(tokens))
        self.upstream = Upstream(self.events, delay)
        self.records: list[GatewayRecord] = []
        self.servers = {"direct": Served(self.upstream)}
        upstream_url = self.servers["direct"].url
        self.servers["plain-proxy"] = Served(plain_proxy(upstream_url))
        self.servers["gateway"] = Served(create_app(upstream_url, on_complete=self.records.append))
        self.servers["gateway-rewrite"] = Served(
            create_app(upstream_url, rewrite_model="house-model")
        )
        self.client = httpx.Client(timeout=30)

    def request(self, impl: str) -> list[int]:
        """Stream once through ``impl``; return when each event's last byte was read (ns)."""
        body = {"model": "m", "messages": [], "stream": True}
        received: list[int] = []
        clock = time.perf_counter_ns
        last = b""
        url = self.servers[impl].url + "/chat/completions"
        with self.client.stream("POST", url, json=body) as response:
            for data in response.iter_raw():
                now = clock()
                ends = data.count(b"\n\n") + (last == b"\n" and data[:1] == b"\n")
                received.extend([now] * ends)
                last = data[-1:]
        assert len(received) == len(self.events), (impl, len(received))
        return received

    def latencies_us(self, impl: str) -> list[float]:
        received = self.request(impl)
        return [(r - s) / 1000 for r, s in zip(received, self.upstream.sent_ns, strict=True)]

    def close(self) -> None:
        self.client.close()
        for server in self.servers.values():
            server.stop()


@pytest.fixture(scope="module")
def unpaced() -> Iterator[Setup]:
    setup = Setup(THROUGHPUT_TOKENS, 0.0)
    yield setup
    setup.close()


@pytest.fixture(scope="module")
def paced() -> Iterator[Setup]:
    setup = Setup(LATENCY_TOKENS, LATENCY_DELAY)
    yield setup
    setup.close()


IMPLS = ["direct", "plain-proxy", "gateway", "gateway-rewrite"]


def alternate_best(setup: Setup, first: str, second: str, pairs: int) -> tuple[int, int]:
    """Best request times (ns) of ``first`` and ``second``, in rounds alternating the two."""
    clock = time.perf_counter_ns
    best_first = best_second = 1 << 62
    for _ in range(pairs):
        start = clock()
        setup.request(first)
        middle = clock()
        setup.request(second)
        end = clock()
        best_first = min(best_first, middle - start)
        best_second = min(best_second, end - middle)
    return best_first, best_second


@pytest.mark.parametrize("impl", IMPLS)
def test_throughput(benchmark: Any, unpaced: Setup, impl: str) -> None:
    benchmark.group = "gateway-throughput"
    chunks = len(unpaced.events)
    unpaced.request(impl)  # warm the connections
    benchmark.pedantic(unpaced.request, (impl,), rounds=15, warmup_rounds=2)
    benchmark.extra_info.update(impl=impl, chunks=chunks)
    stats = getattr(benchmark, "stats", None)  # None with --benchmark-disable
    if stats:
        benchmark.extra_info["ns_per_chunk"] = round(stats.stats.min * 1e9 / chunks)
    if impl.startswith("gateway") and stats:
        mine, plain = alternate_best(unpaced, impl, "plain-proxy", 10)
        benchmark.extra_info["over_plain"] = round(mine / plain, 3)
        benchmark.extra_info["added_ns_per_chunk"] = round((mine - plain) / chunks)
    if impl == "gateway":
        record = unpaced.records[-1]
        assert record.status == "complete"
        assert record.chunks == chunks - 1  # every event but [DONE]


@pytest.mark.parametrize("impl", IMPLS)
def test_latency(benchmark: Any, paced: Setup, impl: str) -> None:
    benchmark.group = "gateway-latency"
    paced.request(impl)
    samples: list[float] = []

    def once() -> None:
        samples.extend(paced.latencies_us(impl))

    benchmark.pedantic(once, rounds=3, warmup_rounds=0)
    quantiles = statistics.quantiles(samples, n=10)
    benchmark.extra_info.update(
        impl=impl,
        chunks=len(paced.events),
        latency_median_us=round(statistics.median(samples), 1),
        latency_p90_us=round(quantiles[-1], 1),
    )
    if impl.startswith("gateway") and getattr(benchmark, "stats", None):
        mine: list[float] = []
        plain: list[float] = []
        for _ in range(3):
            mine += paced.latencies_us(impl)
            plain += paced.latencies_us("plain-proxy")
        benchmark.extra_info["added_latency_median_us"] = round(
            statistics.median(mine) - statistics.median(plain), 1
        )
        benchmark.extra_info["plain_latency_median_us"] = round(statistics.median(plain), 1)
