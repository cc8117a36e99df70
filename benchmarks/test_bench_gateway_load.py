"""CPU per chunk and added latency of the gateway next to a plain byte relay, at 1, 16, 64 streams.

Four processes on loopback, in one run: a paced upstream (100 chunks/s per
stream, fewer at 64 streams so that the total stays at 1,600/s: a saturated
proxy batches reads, which makes its CPU per chunk meaningless) that behaves as
OpenAI does (``"usage": null`` on every chunk and a usage chunk only when the
request asks for ``stream_options.include_usage``), a plain relay proxy
(Starlette + httpx, ``StreamingResponse(upstream.aiter_raw())``, no
decoding), the gateway (:func:`streamspec.gateway.create_app`, accounting
on: decode, accumulate, a record per request), and this process as the client
(httpx, ``concurrency`` streams at once).

* **CPU per chunk**: ``time.process_time_ns()`` of the proxy process, read
  through a ``/__cpu`` route before and after a round, over the chunks the
  round relayed. Rounds alternate relay and gateway, so both see the same
  machine load; ``over_plain`` is the gateway's median over the relay's.
* **Latency**: each event carries the upstream's ``perf_counter_ns()`` at its
  write (a system-wide clock); the client subtracts it from the time it read
  the event's last byte. ``added_latency_p50_us`` / ``_p99_us`` are the
  gateway's quantiles minus the relay's.

Two client kinds: ``usage`` (the client asks for usage: the gateway relays
every read as it is) and ``no-usage`` (the SDK's default: the gateway asks the
upstream for usage anyway and takes out of each chunk what the client did not
ask for).

Run with::

    pytest benchmarks/test_bench_gateway_load.py --benchmark-only -s
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import re
import socket
import statistics
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from streamspec.gateway import GatewayRecord, create_app

CHUNKS = 100  # content chunks per stream
RATE = 1600  # chunks per second over all streams at most (a 2-core machine stays unsaturated)
PAIRS = 4  # alternating relay/gateway rounds per concurrency level


def delay_for(concurrency: int) -> float:
    """Seconds between one stream's writes: 100 tokens/s per stream, fewer past :data:`RATE`."""
    return max(0.01, concurrency / RATE)


_STAMP = re.compile(rb'"obfuscation":"(\d{19})"')


def _events(include_usage: bool) -> list[bytes]:
    """OpenAI-shaped events, each with a 19-digit placeholder (the write time) in obfuscation."""
    head = {"id": "chatcmpl-CJq7Xl7pQ2fYzW1mN8kR4tU6vB0aE", "object": "chat.completion.chunk",
            "created": 1758037512, "model": "gpt-4o-2024-08-06", "service_tier": "default",
            "system_fingerprint": "fp_f33640a400"}  # fmt: skip
    out = []
    for number in range(CHUNKS + 1):
        delta = {"role": "assistant", "content": ""} if number == 0 else {"content": " token"}
        finish = "stop" if number == CHUNKS else None
        chunk: dict[str, Any] = {**head, "choices": [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}  # fmt: skip
        if include_usage:
            chunk["usage"] = None
        chunk["obfuscation"] = "0" * 19
        out.append(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")
    if include_usage:
        usage = {"prompt_tokens": 12, "completion_tokens": CHUNKS, "total_tokens": CHUNKS + 12}
        out.append(b"data: " + json.dumps({**head, "choices": [], "usage": usage,
                   "obfuscation": "0" * 19}, separators=(",", ":")).encode() + b"\n\n")  # fmt: skip
    out.append(b"data: [DONE]\n\n")
    return out


def upstream_app() -> Any:
    streams = {True: _events(True), False: _events(False)}
    zeros = b"0" * 19

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        asked = b'"include_usage":true' in body
        delay = float(json.loads(body).get("delay", 0.01))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})  # fmt: skip
        clock = time.perf_counter_ns
        for position, event in enumerate(streams[asked]):
            if position:
                await asyncio.sleep(delay)
            stamped = event.replace(zeros, b"%019d" % clock(), 1)
            await send({"type": "http.response.body", "body": stamped, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def relay_app(upstream_url: str) -> Any:
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    clients: list[httpx.AsyncClient] = []

    async def chat_completions(request: Request) -> Response:
        if not clients:
            clients.append(httpx.AsyncClient(timeout=30, limits=httpx.Limits(
                max_connections=None, max_keepalive_connections=100)))  # fmt: skip
        client = clients[0]
        upstream = await client.send(
            client.build_request("POST", upstream_url + "/chat/completions",
                                 content=await request.body(),
                                 headers={"content-type": "application/json"}),
            stream=True,
        )  # fmt: skip
        return StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code,
                                 media_type="text/event-stream",
                                 background=BackgroundTask(upstream.aclose))  # fmt: skip

    return Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])])


def with_cpu_route(app: Any) -> Any:
    """``GET /__cpu`` answers this process's CPU time (ns); everything else goes to ``app``."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/__cpu":
            body = str(time.process_time_ns()).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return wrapped


def _serve(kind: str, upstream_url: str, ports: Any) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    ports.put(sock.getsockname()[1])
    records: list[tuple[str, int]] = []

    def on_complete(record: GatewayRecord) -> None:
        records.append((record.status, record.usage.total_tokens if record.usage else -1))

    if kind == "upstream":
        app = upstream_app()
    elif kind == "relay":
        app = relay_app(upstream_url)
    else:
        app = create_app(upstream_url, on_complete=on_complete)
    config = uvicorn.Config(with_cpu_route(app), interface="asgi3", lifespan="on",
                            log_config=None, log_level="critical", backlog=2048)  # fmt: skip
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


class Process:
    def __init__(self, kind: str, upstream_url: str = "") -> None:
        context = multiprocessing.get_context("spawn")
        ports = context.Queue()
        self.process = context.Process(target=_serve, args=(kind, upstream_url, ports), daemon=True)
        self.process.start()
        port = ports.get(timeout=30)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.url + "/__cpu", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, f"{kind} did not start"
                time.sleep(0.05)

    def cpu_ns(self) -> int:
        return int(httpx.get(self.url + "/__cpu", timeout=5).text)

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)


async def _streams(url: str, concurrency: int, ask_usage: bool) -> tuple[int, int, list[float]]:
    """``concurrency`` streams at once: (events received, failed streams, latencies in µs)."""
    body: dict[str, Any] = {"model": "m", "messages": [], "stream": True,
                            "delay": delay_for(concurrency)}  # fmt: skip
    if ask_usage:
        body["stream_options"] = {"include_usage": True}
    latencies: list[float] = []
    events = failed = 0
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one() -> None:
            nonlocal events, failed
            buffer = b""
            clock = time.perf_counter_ns
            async with client.stream("POST", url + "/v1/chat/completions", json=body) as response:
                if response.status_code != 200:
                    failed += 1
                    return
                async for data in response.aiter_raw():
                    now = clock()
                    buffer += data
                    cut = buffer.rfind(b"\n\n")
                    if cut < 0:
                        continue
                    complete, buffer = buffer[: cut + 2], buffer[cut + 2 :]
                    events += complete.count(b"\n\n")
                    latencies.extend((now - int(s)) / 1000 for s in _STAMP.findall(complete))

        await asyncio.gather(*(one() for _ in range(concurrency)))
    return events, failed, latencies


class Setup:
    def __init__(self) -> None:
        self.upstream = Process("upstream")
        upstream_url = self.upstream.url + "/v1"
        self.proxies = {"relay": Process("relay", upstream_url),
                        "gateway": Process("gateway", upstream_url)}  # fmt: skip
        self.failed = {"relay": 0, "gateway": 0}

    def round(self, impl: str, concurrency: int, ask_usage: bool) -> tuple[float, list[float]]:
        """One round through ``impl``: (proxy CPU ns per chunk, latencies)."""
        proxy = self.proxies[impl]
        before = proxy.cpu_ns()
        events, failed, latencies = asyncio.run(_streams(proxy.url, concurrency, ask_usage))
        cpu = proxy.cpu_ns() - before
        per_stream = CHUNKS + 1 + (1 if ask_usage else 0) + 1
        # A stream the relay failed to open (an upstream connect error under load) is left out
        # of its chunk count; the gateway must relay every one.
        assert failed == 0 or impl == "relay", (impl, failed)
        assert events == per_stream * (concurrency - failed), (impl, events, failed)
        self.failed[impl] += failed
        return cpu / (events - events // per_stream), latencies  # [DONE] is not a chunk

    def close(self) -> None:
        for process in (*self.proxies.values(), self.upstream):
            process.stop()


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    running = Setup()
    for impl in running.proxies:  # warm the connections and the code
        running.round(impl, 4, False)
    yield running
    running.close()


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@pytest.mark.parametrize("client", ["no-usage", "usage"])
@pytest.mark.parametrize("concurrency", [1, 16, 64])
def test_cpu_per_chunk(benchmark: Any, setup: Setup, concurrency: int, client: str) -> None:
    benchmark.group = f"gateway-load-{client}"
    ask = client == "usage"
    cpu: dict[str, list[float]] = {"relay": [], "gateway": []}
    latency: dict[str, list[float]] = {"relay": [], "gateway": []}

    def pair() -> None:
        for impl in ("relay", "gateway"):
            per_chunk, latencies = setup.round(impl, concurrency, ask)
            cpu[impl].append(per_chunk)
            latency[impl].extend(latencies)

    benchmark.pedantic(pair, rounds=PAIRS, warmup_rounds=0)
    relay_cpu, gateway_cpu = statistics.median(cpu["relay"]), statistics.median(cpu["gateway"])
    info: dict[str, Any] = {
        "concurrency": concurrency,
        "chunks_per_second_per_stream": round(1 / delay_for(concurrency)),
        "client": client,
        "relay_cpu_ns_per_chunk": round(relay_cpu),
        "gateway_cpu_ns_per_chunk": round(gateway_cpu),
        "over_plain": round(gateway_cpu / relay_cpu, 3),
        # Each pair's own ratio (the two rounds ran back to back), then their median.
        "over_plain_paired": round(
            statistics.median(g / r for g, r in zip(cpu["gateway"], cpu["relay"], strict=True)), 3
        ),
        "over_plain_min": round(min(cpu["gateway"]) / min(cpu["relay"]), 3),
    }
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        relay_q = _quantile(latency["relay"], q)
        gateway_q = _quantile(latency["gateway"], q)
        info[f"relay_latency_{name}_us"] = round(relay_q, 1)
        info[f"gateway_latency_{name}_us"] = round(gateway_q, 1)
        info[f"added_latency_{name}_us"] = round(gateway_q - relay_q, 1)
    benchmark.extra_info.update(info)
    print(f"\n{client} x{concurrency}: " + " ".join(f"{k}={v}" for k, v in info.items()))
