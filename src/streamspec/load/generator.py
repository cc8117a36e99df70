"""The asyncio load generator behind ``streamspec load``.

:func:`run_load` sends streamed chat (or legacy completions) requests to an
OpenAI-compatible server and meters each one with
:class:`streamspec.metrics.StreamMeter` as the socket reads arrive:

* **fixed concurrency** (``concurrency=N``, no ``request_rate``): N requests in
  flight, each sent as soon as the previous one of its slot ended;
* **request rate** (``request_rate=R`` requests/s): arrivals scheduled in
  advance, Poisson (exponential gaps, seeded) or evenly spaced
  (``arrival="constant"``), optionally capped by ``concurrency``. Each
  request's clock starts at its *scheduled* time, so time spent waiting for a
  free slot (client-side queueing) counts in its TTFT and E2EL;
* ``num_requests`` requests, or as many as start within ``duration`` seconds
  (requests in flight then finish); ``warmup`` requests first, not recorded.

The HTTP client was chosen by measurement (client CPU per token on a paced
mock, same run): the default is streamspec's own HTTP/1.1 client on asyncio's
protocol layer (:mod:`streamspec.load._client`: no extra needed), which meters
each read inside the protocol callback; ``client="aiohttp"`` (extra ``load``)
goes through aiohttp, about 1.6x the CPU per token, and httpx costs several
times more. uvloop is used when installed (see :func:`run`).

``https://`` URLs are verified against the system's CAs by default;
``ca_file`` trusts a private CA instead, ``insecure`` skips verification and
``ssl_context`` takes a context as it is (see :func:`~streamspec.load.tls_context`).
A handshake that fails fails its request with ``error_kind`` ``"tls"``.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from .._extras import require
from ..errors import Error
from ..metrics import StreamKind, StreamMeter
from ._client import Connection, Target, http_failure, tls_context, tls_failure
from .records import RequestRecord, record_from_meter

__all__ = [
    "LoadConfig",
    "LoadProgress",
    "LoadRun",
    "endpoint_url",
    "load_prompts",
    "request_bodies",
    "run",
    "run_load",
]

_WORDS = tuple(
    [
        "stream",
        "token",
        "latency",
        "server",
        "client",
        "model",
        "request",
        "answer",
        "prompt",
        "reason",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "lazy",
        "dog",
        "batch",
        "cache",
        "queue",
        "budget",
        "network",
        "kernel",
        "memory",
        "tensor",
        "vector",
        "window",
    ]
)


@dataclass(frozen=True)
class LoadConfig:
    """What to send, how fast and how many (see :mod:`streamspec.load.generator`)."""

    url: str
    """A base URL (``http://host:8000/v1``) or the full endpoint URL."""
    model: str
    endpoint: StreamKind = "chat"
    concurrency: int | None = None
    request_rate: float = math.inf
    arrival: Literal["poisson", "constant"] = "poisson"
    num_requests: int | None = None
    duration: float | None = None
    warmup: int = 0
    prompts: Sequence[Mapping[str, Any]] | None = None
    """Request bodies (chat requests, or legacy ones with ``prompt``); None: synthetic."""
    input_words: int = 32
    """Words of each synthetic prompt."""
    max_tokens: int | None = None
    api_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 600.0
    """Seconds a request may wait for its next read before it fails with ``timeout``."""
    seed: int = 0
    ramp_up: float = 0.0
    """Fixed concurrency: start the slots evenly over this many seconds (0: all at once)."""
    client: Literal["streamspec", "aiohttp"] = "streamspec"
    """The HTTP client: streamspec's own asyncio protocol (the cheapest per token) or aiohttp."""
    ca_file: str | None = None
    """``https://``: trust the CA certificates of this PEM file instead of the system's."""
    insecure: bool = False
    """``https://``: verify neither the certificate nor the host name (self-signed test servers)."""
    ssl_context: ssl.SSLContext | None = None
    """``https://``: this TLS context as it is (client certificates, ciphers...), for both
    clients; give it alone, without ``ca_file`` or ``insecure``."""

    def tls(self) -> ssl.SSLContext:
        """The run's TLS context: ``ssl_context``, else :func:`streamspec.load.tls_context` of
        ``ca_file`` and ``insecure`` (:class:`ValueError` for a bad CA file)."""
        if self.ssl_context is not None:
            if self.ca_file is not None or self.insecure:
                raise ValueError("give ssl_context alone, or ca_file / insecure, not both")
            return self.ssl_context
        return tls_context(self.ca_file, self.insecure)

    def requests_to_send(self) -> int | None:
        """``num_requests``, 100 when neither it nor ``duration`` is set, None for a duration."""
        if self.num_requests is not None:
            return self.num_requests
        return None if self.duration is not None else 100


@dataclass
class LoadProgress:
    """Counters of a run in progress (read by a progress display)."""

    sent: int = 0
    finished: int = 0
    failed: int = 0
    output_tokens: int = 0
    in_flight: int = 0
    warming_up: bool = False
    started: float = field(default_factory=time.monotonic)


@dataclass
class LoadRun:
    """A finished run: its records (warmup excluded) and when it ran (Unix time, s)."""

    config: LoadConfig
    records: list[RequestRecord]
    started: float
    ended: float
    client: str = ""


def endpoint_url(url: str, endpoint: StreamKind) -> str:
    """The endpoint URL: ``url`` itself if it names one, else ``url`` + ``/chat/completions``
    (or ``/completions``); a bare server address (no path) gets ``/v1`` first."""
    base = url.rstrip("/")
    if base.endswith(("/chat/completions", "/completions")):
        return base
    if not urlsplit(base).path:
        base += "/v1"
    return base + ("/chat/completions" if endpoint == "chat" else "/completions")


def load_prompts(path: str) -> list[dict[str, Any]]:
    """Request bodies from a JSON-lines file (one JSON object per line; blank lines skipped)."""
    bodies = []
    with open(path, "rb") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                body = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not JSON: {exc}") from None
            if not isinstance(body, dict) or not (
                isinstance(body.get("messages"), list) or "prompt" in body
            ):
                raise ValueError(f"{path}:{number}: expected a request with messages or prompt")
            bodies.append(body)
    if not bodies:
        raise ValueError(f"{path}: no requests")
    return bodies


def _as_text(messages: Any) -> str:
    parts = []
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [p.get("text", "") for p in content if isinstance(p, dict)]
    return "\n".join(parts)


def request_bodies(config: LoadConfig) -> list[bytes]:
    """The JSON bodies to cycle through: the prompts given, or synthetic ones (seeded)."""
    rng = random.Random(config.seed)
    if config.prompts is not None:
        sources = [dict(body) for body in config.prompts]
    else:
        sources = []
        for _ in range(64):
            words = " ".join(rng.choice(_WORDS) for _ in range(config.input_words))
            sources.append({"messages": [{"role": "user", "content": words}]})
    out = []
    for body in sources:
        if config.endpoint == "completions" and "prompt" not in body:
            body = {k: v for k, v in body.items() if k != "messages"} | {
                "prompt": _as_text(body.get("messages"))
            }
        elif config.endpoint == "chat" and "messages" not in body:
            prompt = body.pop("prompt")
            text = prompt if isinstance(prompt, str) else json.dumps(prompt)
            body["messages"] = [{"role": "user", "content": text}]
        body["model"] = config.model
        body["stream"] = True
        body.setdefault("stream_options", {"include_usage": True})
        if config.max_tokens is not None:
            body["max_tokens"] = config.max_tokens
        out.append(json.dumps(body).encode())
    return out


def _aiohttp() -> Any:
    return require("aiohttp", "load", "streamspec load --client aiohttp")


class _Runner:
    def __init__(self, config: LoadConfig, progress: LoadProgress, bodies: list[bytes]) -> None:
        self.config = config
        self.progress = progress
        self.url = endpoint_url(config.url, config.endpoint)
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        headers.update(config.headers)
        self.headers = headers
        self.kind = config.endpoint
        self.session: Any = None
        self.ssl = config.tls()
        self.target = Target(self.url, headers, config.timeout, self.ssl)
        if config.client == "streamspec":
            bodies = [self.target.request(body) for body in bodies]
        self.bodies = bodies
        self.next_body = 0
        self.idle: list[Connection] = []
        self.busy: set[Connection] = set()
        # Wall time of the monotonic clock's zero, to stamp records in Unix time.
        self.wall_offset = time.time() - time.perf_counter_ns() * 1e-9

    def body(self) -> bytes:
        body = self.bodies[self.next_body % len(self.bodies)]
        self.next_body += 1
        return body

    async def one(self, body: bytes, due_ns: int) -> RequestRecord:
        """Send one request due at ``due_ns`` (``perf_counter_ns``) and meter its stream."""
        progress = self.progress
        meter = StreamMeter(start_ns=due_ns, kind=self.kind)
        sent = time.perf_counter_ns()
        progress.sent += 1
        progress.in_flight += 1
        if self.session is None:
            connection = self.idle.pop() if self.idle else Connection(self.target)
            self.busy.add(connection)
            try:
                await connection.send(body, meter)
            finally:
                self.busy.discard(connection)
                self.idle.append(connection)
        else:
            await self._one_aiohttp(body, meter)
        record = record_from_meter(meter, self.wall_offset + due_ns * 1e-9, (sent - due_ns) * 1e-6)
        progress.in_flight -= 1
        progress.finished += 1
        if record.status != "complete":
            progress.failed += 1
        progress.output_tokens += record.output_tokens
        return record

    async def _one_aiohttp(self, body: bytes, meter: StreamMeter) -> None:
        aiohttp = _aiohttp()
        decoder = meter.decoder
        try:
            async with self.session.post(self.url, data=body, headers=self.headers) as response:
                kind = response.headers.get("Content-Type", "")
                if response.status >= 400:
                    text = await response.read()
                    status = response.status
                    meter.fail(http_failure(status, text, kind), "error", f"http_{status}")
                elif not kind.startswith("text/event-stream") and "json" in kind:
                    text = await response.read()
                    message = http_failure(response.status, text, kind).split(": ", 1)[-1]
                    meter.fail(f"not an event stream: {message}", "error", "not_a_stream")
                else:
                    read = response.content.readany
                    feed = meter.feed
                    while data := await read():
                        if not decoder.done:
                            feed(data)
                    meter.close()
        except Error:
            pass  # the meter recorded it
        except aiohttp.ClientSSLError as exc:  # worded as the own client words it
            cause = getattr(exc, "certificate_error", None) or getattr(exc, "os_error", None)
            if isinstance(cause, ssl.SSLError):
                meter.fail(tls_failure(cause, self.target.authority), "error", "tls")
            else:
                meter.fail_with(exc)
        except aiohttp.ClientPayloadError as exc:  # the body was cut: no [DONE] will come
            meter.fail(f"the stream was cut: {exc}", "truncated", "truncated")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            meter.fail_with(exc)

    async def watchdog(self) -> None:
        """Fail requests that received nothing for ``timeout`` seconds (own client only)."""
        timeout = self.config.timeout
        tick = min(1.0, timeout / 4)
        quiet: dict[Connection, tuple[tuple[int, int], float]] = {}  # progress, since when
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for connection in list(self.busy):
                state = connection.progress()
                if state is None:
                    quiet.pop(connection, None)
                    continue
                seen = quiet.get(connection)
                if seen is None or seen[0] != state:
                    quiet[connection] = (state, now)
                elif now - seen[1] >= timeout:
                    connection.time_out(timeout)
                    quiet.pop(connection, None)
            for connection in [c for c in quiet if c not in self.busy]:
                del quiet[connection]

    def close(self) -> None:
        for connection in self.idle + list(self.busy):
            connection.close()

    async def fixed(
        self, count: int | None, deadline: float | None, slots: int, ramp_up: float = 0.0
    ) -> list[Any]:
        """``slots`` requests in flight until ``count`` were sent or ``deadline`` passed."""
        records: list[RequestRecord] = []
        remaining = [count]

        async def slot(number: int) -> None:
            if ramp_up > 0:
                await asyncio.sleep(ramp_up * number / slots)
            while True:
                if remaining[0] is not None:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                if deadline is not None and time.perf_counter() >= deadline:
                    return
                records.append(await self.one(self.body(), time.perf_counter_ns()))

        await asyncio.gather(*(slot(number) for number in range(slots)))
        return records

    def arrivals(self) -> Iterator[float]:
        """Seconds from the start of each arrival: Poisson or evenly spaced."""
        rng = random.Random(self.config.seed)
        rate = self.config.request_rate
        moment = 0.0
        while True:
            yield moment
            gap = 1.0 / rate
            moment += rng.expovariate(rate) if self.config.arrival == "poisson" else gap

    async def paced(self, count: int | None, duration: float | None) -> list[Any]:
        """Requests at scheduled arrival times, capped by ``concurrency`` if set."""
        limit = self.config.concurrency
        gate = asyncio.Semaphore(limit) if limit else None
        tasks: list[asyncio.Task[RequestRecord]] = []
        origin = time.perf_counter_ns()

        async def request(body: bytes, due_ns: int) -> RequestRecord:
            if gate is None:
                return await self.one(body, due_ns)
            async with gate:
                return await self.one(body, due_ns)

        for number, offset in enumerate(self.arrivals()):
            if count is not None and number >= count:
                break
            if duration is not None and offset >= duration:
                break
            due = origin + int(offset * 1e9)
            delay = (due - time.perf_counter_ns()) * 1e-9
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(request(self.body(), due)))
        return list(await asyncio.gather(*tasks))


async def run_load(config: LoadConfig, progress: LoadProgress | None = None) -> LoadRun:
    """Run the load test of ``config`` in the running event loop; return its records."""
    if config.concurrency is not None and config.concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if not config.request_rate > 0:
        raise ValueError("request_rate must be positive")
    if math.isinf(config.request_rate) and config.concurrency is None:
        raise ValueError("give a concurrency, a request rate, or both")
    progress = progress if progress is not None else LoadProgress()
    runner = _Runner(config, progress, request_bodies(config))
    slots = config.concurrency or 1
    client = "streamspec (asyncio protocol)"
    watchdog = None
    if config.client == "aiohttp":
        aiohttp = _aiohttp()
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, ssl=runner.ssl)
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=config.timeout, sock_read=config.timeout
        )
        runner.session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=False, read_bufsize=1 << 16
        )
        client = f"aiohttp {aiohttp.__version__}"
    else:
        watchdog = asyncio.create_task(runner.watchdog())
    try:
        if config.warmup:
            progress.warming_up = True
            await runner.fixed(config.warmup, None, min(slots, config.warmup))
            progress.warming_up = False
            progress.sent = progress.finished = progress.failed = progress.output_tokens = 0
        progress.started = time.monotonic()
        started = time.time()
        count = config.requests_to_send()
        if math.isinf(config.request_rate):
            deadline = None if config.duration is None else time.perf_counter() + config.duration
            records = await runner.fixed(count, deadline, slots, config.ramp_up)
        else:
            records = await runner.paced(count, config.duration)
    finally:
        if watchdog is not None:
            watchdog.cancel()
        runner.close()
        if runner.session is not None:
            await runner.session.close()
    return LoadRun(
        config=config, records=records, started=started, ended=time.time(), client=client
    )


def run(coroutine_factory: Callable[[], Awaitable[Any]], *, use_uvloop: bool = True) -> Any:
    """Run ``coroutine_factory()`` to completion on a new event loop (uvloop's if installed)."""
    loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    if use_uvloop:
        try:
            import uvloop

            loop_factory = uvloop.new_event_loop
        except ImportError:
            pass
    loop = loop_factory()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coroutine_factory())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
