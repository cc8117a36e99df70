"""What the streamspec gateway adds per chunk, next to a plain byte pass-through proxy.

Everything runs on loopback in this process, in one run: an upstream that
writes ``synthetic_stream(tokens)`` one event per write, two proxies in front
of it, and an httpx client reading the raw bytes:

* ``plain-proxy``: Starlette + httpx, ``StreamingResponse(upstream.aiter_raw())``,
  no decoding: the floor any Python proxy pays;
* ``gateway``: :func:`streamspec.gateway.create_app` (pass-through of each read,
  decoding and accumulating on the side, a record at the end);
* ``gateway-rewrite``: the same with ``rewrite_model`` (the model spliced into each chunk);
* ``direct``: the client on the upstream itself, for reference.

Groups:

* **gateway-throughput**: one unpaced request of 200 chunks per round.
  ``ns_per_chunk`` is the round time over the chunks; the gateways record
  ``over_plain`` (their best time over the plain proxy's, in rounds that
  alternate the two) and ``added_ns_per_chunk`` (the difference per chunk).
* **gateway-latency**: one request paced at a chunk per millisecond (200
  chunks). Each chunk's latency is the time from the upstream's write to the
  client's read of its last byte; ``latency_median_us`` and
  ``latency_p90_us`` describe them, and the gateways record
  ``added_latency_median_us`` over the plain proxy measured alternately in the
  same test.

Throughput figures use the best of many rounds, latency figures medians.

Run with::

    pytest benchmarks/test_bench_gateway.py --benchmark-only

``test_bench_gateway_load.py`` measures the gateway's CPU per chunk and added
latency under 1, 16 and 64 concurrent paced streams.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import statistics
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

THROUGHPUT_TOKENS = 197  # + role, finish and usage chunks = 200 chunks
LATENCY_TOKENS = 197
LATENCY_DELAY = 0.001

Message = MutableMapping[str, Any]


def split_events(data: bytes) -> list[bytes]:
    return [event + b"\n\n" for event in data.split(b"\n\n") if event]


class Upstream:
    """Writes a stream one event per write, noting when each write was handed to the server."""

    def __init__(self, events: list[bytes], delay: float, reports: Any) -> None:
        self.events = events
        self.delay = delay
        self.reports = reports

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
        sent: list[int] = []
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
        self.reports.put(sent)


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


def _app(kind: str, options: dict[str, Any], reports: Any) -> Any:
    """Build the app a server process runs; ``reports`` is a queue back to the benchmark."""
    if kind == "upstream":
        events = split_events(synthetic_stream(options["tokens"]))
        return Upstream(events, options["delay"], reports)
    if kind == "plain-proxy":
        return plain_proxy(options["upstream_url"])

    def report(record: GatewayRecord) -> None:
        reports.put((record.status, record.chunks))

    return create_app(
        options["upstream_url"], rewrite_model=options.get("rewrite_model"), on_complete=report
    )


def _serve(kind: str, options: dict[str, Any], reports: Any, ports: Any) -> None:
    """A server process: uvicorn on 127.0.0.1, its port sent back through ``ports``."""
    # proto=IPPROTO_TCP: asyncio then disables Nagle on accepted connections (TCP_NODELAY),
    # as it does for the sockets uvicorn binds itself.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    ports.put(sock.getsockname()[1])
    config = uvicorn.Config(
        _app(kind, options, reports),
        interface="asgi3",
        lifespan="on",
        log_config=None,
        log_level="critical",
    )
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


class Served:
    """An app served by uvicorn in its own process (its own GIL, as in a deployment)."""

    def __init__(self, kind: str, **options: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self.reports = context.Queue()
        ports = context.Queue()
        self.process = context.Process(
            target=_serve, args=(kind, options, self.reports, ports), daemon=True
        )
        self.process.start()
        port = ports.get(timeout=30)
        self.url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, f"{kind} did not start"
                time.sleep(0.02)

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)


class Setup:
    """An upstream, the proxies in front of it, and a client."""

    def __init__(self, tokens: int, delay: float) -> None:
        self.events = split_events(synthetic_stream(tokens))
        upstream = Served("upstream", tokens=tokens, delay=delay)
        self.upstream = upstream
        self.servers = {
            "direct": upstream,
            "plain-proxy": Served("plain-proxy", upstream_url=upstream.url),
            "gateway": Served("gateway", upstream_url=upstream.url),
            "gateway-rewrite": Served(
                "gateway", upstream_url=upstream.url, rewrite_model="house-model"
            ),
        }
        self.client = httpx.Client(timeout=30)
        self.sent: list[int] = []

    def request(self, impl: str) -> list[int]:
        """Stream once through ``impl``; return when each event's last byte was read (ns)."""
        # The client asks for usage (the upstream sends it anyway): nothing is hidden from it.
        body = {"model": "m", "messages": [], "stream": True,
                "stream_options": {"include_usage": True}}  # fmt: skip
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
        # When the upstream wrote each event (perf_counter is system-wide: the same clock).
        self.sent = self.upstream.reports.get(timeout=10)
        return received

    def latencies_us(self, impl: str) -> list[float]:
        received = self.request(impl)
        return [(r - s) / 1000 for r, s in zip(received, self.sent, strict=True)]

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
    benchmark.pedantic(unpaced.request, (impl,), rounds=20, warmup_rounds=2)
    benchmark.extra_info.update(impl=impl, chunks=chunks)
    stats = getattr(benchmark, "stats", None)  # None with --benchmark-disable
    if stats:
        benchmark.extra_info["ns_per_chunk"] = round(stats.stats.min * 1e9 / chunks)
    if impl.startswith("gateway") and stats:
        mine, plain = alternate_best(unpaced, impl, "plain-proxy", 20)
        benchmark.extra_info["over_plain"] = round(mine / plain, 3)
        benchmark.extra_info["added_ns_per_chunk"] = round((mine - plain) / chunks)
    if impl == "gateway":
        status, decoded = unpaced.servers["gateway"].reports.get(timeout=10)
        assert (status, decoded) == ("complete", chunks - 1)  # every event but [DONE]


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
