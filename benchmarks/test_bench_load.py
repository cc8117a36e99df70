"""Accuracy and client cost of ``streamspec load``, against a paced mock in another process.

The mock (``python -m streamspec.testing``, uvloop when installed) paces 64
tokens per stream at 20 ms ITL after a 50 ms TTFT and records when it wrote
each token (``perf_counter_ns``, the system-wide monotonic clock on Linux, so
its readings compare with this process's). Because it runs in its own
process, the CPU time measured here (``time.process_time``) is the client's.

* **accuracy** (``test_accuracy``): :func:`streamspec.load.run_load` at 1, 32
  and 128 concurrent streams; the reported ITL p50 / p99 against the p50 / p99
  of the gaps the mock actually wrote (targets: within 2% and 10%), and the
  TTFT p50 against the mock's (request read to first token written; target
  within 2 ms).
* **client cost** (``test_client_cost``): client CPU per received token of
  ``streamspec load``, of a peer that does what vLLM's benchmark client does
  (aiohttp, iterating the body by lines, one ``json.loads`` per ``data:``
  line), and of the official openai SDK (``AsyncOpenAI``, httpx), the same 32
  streams each; targets: streamspec at most 1/3 of the peer and 1/30 of the SDK.
* **capacity** (``test_capacity``): the most concurrent streams one process
  meters before its ITL p50 error exceeds 2% (``limited_by`` says whether the
  client or the mock, sharing the machine, gave out first).

Each benchmark runs its measurement once (``benchmark.pedantic``) and records
the figures in ``extra_info``; they are printed too (``-s``). Run with
``pytest benchmarks/test_bench_load.py --benchmark-only -s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from itertools import pairwise
from typing import Any

import pytest

from streamspec.load import LoadConfig, run, run_load, summarize_records
from streamspec.metrics import percentile

pytest.importorskip("aiohttp")

TTFT_MS = 50.0
ITL_MS = 20.0
TOKENS = 64  # per stream in the accuracy runs
COST_TOKENS = 256  # per stream in the cost runs: per-token costs dominate per-request ones


class MockProcess:
    """``python -m streamspec.testing`` in a subprocess; its ground truth over HTTP."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamspec.testing", "--ttft-ms", str(TTFT_MS),
             "--itl-ms", str(ITL_MS), "--tokens", str(COST_TOKENS), "--uvloop"],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().decode().strip()
        assert self.base_url.startswith("http://"), "the mock did not start"
        self.seen = 0

    def new_streams(self) -> list[dict[str, Any]]:
        """The streams the mock answered since the last call."""
        root = self.base_url.removesuffix("/v1")
        with urllib.request.urlopen(root + "/mock/streams") as response:
            streams: list[dict[str, Any]] = json.loads(response.read())
        fresh, self.seen = streams[self.seen :], len(streams)
        return fresh

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture(scope="module")
def mock() -> Iterator[MockProcess]:
    server = MockProcess()
    try:
        yield server
    finally:
        server.close()


def truth(streams: list[dict[str, Any]]) -> dict[str, float]:
    """p50/p99 of the token gaps the mock wrote, and p50 of its TTFT (ms)."""
    gaps = sorted(
        (later - earlier) * 1e-6
        for stream in streams
        for earlier, later in pairwise(stream["token_sent_ns"])
    )
    ttft = sorted((s["token_sent_ns"][0] - s["received_ns"]) * 1e-6 for s in streams)
    return {
        "itl_p50": percentile(gaps, 50),
        "itl_p99": percentile(gaps, 99),
        "ttft_p50": percentile(ttft, 50),
    }


def cpu_seconds() -> tuple[float, float]:
    """User and system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def streamspec_run(
    mock: MockProcess, streams: int, requests: int, tokens: int, **options: Any
) -> tuple[dict[str, Any], float, float]:
    """Run ``streamspec load`` in-process; return its summary and the client's user/system CPU."""
    config = LoadConfig(url=mock.base_url, model="m", concurrency=streams,
                        num_requests=requests, max_tokens=tokens, **options)  # fmt: skip
    user, system = cpu_seconds()
    records = run(lambda: run_load(config)).records
    after = cpu_seconds()
    return summarize_records(records), after[0] - user, after[1] - system


def accuracy(mock: MockProcess, streams: int, requests: int) -> dict[str, Any]:
    mock.new_streams()
    # Connections opened by a warmup round; slots started over a ramp so that they do not
    # all send (and finish) at the same instant.
    options = {"warmup": streams, "ramp_up": min(1.0, streams * 0.004)}
    summary, user, system = streamspec_run(mock, streams, requests, TOKENS, **options)
    real = truth(mock.new_streams()[streams:])  # the warmup's streams come first
    cpu = user + system
    return {
        "streams": streams,
        "completed": summary["completed"],
        "itl_p50_ms": summary["median_itl_ms"],
        "mock_itl_p50_ms": real["itl_p50"],
        "itl_p50_error": abs(summary["median_itl_ms"] / real["itl_p50"] - 1),
        "itl_p99_ms": summary["p99_itl_ms"],
        "mock_itl_p99_ms": real["itl_p99"],
        "itl_p99_error": abs(summary["p99_itl_ms"] / real["itl_p99"] - 1),
        "ttft_p50_ms": summary["median_ttft_ms"],
        "mock_ttft_p50_ms": real["ttft_p50"],
        "ttft_p50_diff_ms": summary["median_ttft_ms"] - real["ttft_p50"],
        "cpu_us_per_token": cpu / max(1, summary["total_output_tokens"]) * 1e6,
    }


def test_accuracy(benchmark: Any, mock: MockProcess) -> None:
    benchmark.group = "load-accuracy"

    def measure() -> list[dict[str, Any]]:
        return [accuracy(mock, streams, max(16, 2 * streams)) for streams in (1, 32, 128)]

    rows = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info["runs"] = rows
    for row in rows:
        print(json.dumps({key: round(v, 4) if isinstance(v, float) else v
                          for key, v in row.items()}))  # fmt: skip
        assert row["completed"] == max(16, 2 * row["streams"])


# -- client cost: streamspec vs a vLLM-style client vs the openai SDK --------------------------


async def _vllm_style(url: str, streams: int, requests: int) -> int:
    """What vLLM's benchmark client does: aiohttp, body iterated by lines, json.loads each."""
    import aiohttp

    tokens = 0
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True,
            "stream_options": {"include_usage": True}, "max_tokens": COST_TOKENS}  # fmt: skip
    remaining = [requests]

    async def one(session: aiohttp.ClientSession) -> int:
        count = 0
        start = time.perf_counter()
        first = last = 0.0
        gaps: list[float] = []
        async with session.post(url + "/chat/completions", json=body) as response:
            async for raw in response.content:
                line = raw.strip()
                if not line:
                    continue
                text = line.decode("utf-8")
                if text.startswith(":"):
                    continue
                payload = text.removeprefix("data: ")
                if payload == "[DONE]":
                    continue
                now = time.perf_counter()
                data = json.loads(payload)
                if choices := data.get("choices"):
                    if choices[0]["delta"].get("content"):
                        count += 1
                    if not first:
                        first = now - start
                    else:
                        gaps.append(now - last)
                last = now
        return count

    async def slot(session: aiohttp.ClientSession) -> None:
        nonlocal tokens
        while remaining[0] > 0:
            remaining[0] -= 1
            got = await one(session)  # not `tokens += await ...`: that reads tokens first
            tokens += got

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(slot(session) for _ in range(streams)))
    return tokens


async def _openai_sdk(url: str, streams: int, requests: int) -> int:
    import httpx
    import openai

    client = openai.AsyncOpenAI(
        base_url=url,
        api_key="test",
        http_client=httpx.AsyncClient(limits=httpx.Limits(max_connections=None)),
    )
    tokens = 0
    remaining = [requests]

    async def slot() -> None:
        nonlocal tokens
        while remaining[0] > 0:
            remaining[0] -= 1
            stream = await client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
                max_tokens=COST_TOKENS,
            )
            async for chunk in stream:
                time.perf_counter()
                if chunk.choices and chunk.choices[0].delta.content:
                    tokens += 1

    async with client:
        await asyncio.gather(*(slot() for _ in range(streams)))
    return tokens


def _cpu_per_token(factory: Callable[[], Coroutine[Any, Any, int]]) -> tuple[float, float]:
    """User and system CPU (us) per token of running the client ``factory`` makes."""
    user, system = cpu_seconds()
    tokens = run(factory)
    after = cpu_seconds()
    return (after[0] - user) / tokens * 1e6, (after[1] - system) / tokens * 1e6


def test_client_cost(benchmark: Any, mock: MockProcess) -> None:
    pytest.importorskip("openai")
    benchmark.group = "load-client-cost"
    streams, requests = 32, 64

    def ours(client: str) -> tuple[float, float]:
        summary, user, system = streamspec_run(mock, streams, requests, COST_TOKENS,
                                               client=client)  # fmt: skip
        tokens = summary["total_output_tokens"]
        return user / tokens * 1e6, system / tokens * 1e6

    def measure() -> dict[str, float]:
        figures: dict[str, float] = {}
        runs = {
            "streamspec": lambda: ours("streamspec"),
            "streamspec_aiohttp": lambda: ours("aiohttp"),
            "vllm_style": lambda: _cpu_per_token(
                lambda: _vllm_style(mock.base_url, streams, requests)
            ),
            "openai_sdk": lambda: _cpu_per_token(
                lambda: _openai_sdk(mock.base_url, streams, requests)
            ),
        }
        best: dict[str, tuple[float, float]] = {}
        for _ in range(2):  # interleaved rounds; the best of each client
            for name, measure_one in runs.items():
                user, system = measure_one()
                if name not in best or user + system < sum(best[name]):
                    best[name] = (user, system)
        for name, (user, system) in best.items():
            figures[f"{name}_user_us_per_token"] = user
            figures[f"{name}_cpu_us_per_token"] = user + system
        mine = figures["streamspec_cpu_us_per_token"]
        figures["ratio_to_vllm_style"] = mine / figures["vllm_style_cpu_us_per_token"]
        figures["ratio_to_openai_sdk"] = mine / figures["openai_sdk_cpu_us_per_token"]
        figures["user_ratio_to_vllm_style"] = (
            figures["streamspec_user_us_per_token"] / figures["vllm_style_user_us_per_token"]
        )
        return figures

    figures = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    print(json.dumps({key: round(value, 4) for key, value in figures.items()}))


def test_capacity(benchmark: Any, mock: MockProcess) -> None:
    benchmark.group = "load-capacity"

    def measure() -> dict[str, Any]:
        sustained, limited_by = 0, "none reached"
        rows = []
        for streams in (128, 256, 512, 768, 1024):
            with contextlib.suppress(Exception):
                row = accuracy(mock, streams, 2 * streams)
                rows.append(row)
                # The figure is the client's only while the mock keeps its own pace.
                if abs(row["mock_itl_p50_ms"] / ITL_MS - 1) > 0.02:
                    limited_by = "mock"
                    break
                if row["itl_p50_error"] > 0.02 or row["completed"] < 2 * streams:
                    limited_by = "client"
                    break
                sustained = streams
        return {"sustained_streams": sustained, "limited_by": limited_by, "runs": rows}

    result = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(json.dumps({key: result[key] for key in ("sustained_streams", "limited_by")}))
    for row in result["runs"]:
        print(json.dumps({key: round(v, 4) if isinstance(v, float) else v
                          for key, v in row.items()}))  # fmt: skip
