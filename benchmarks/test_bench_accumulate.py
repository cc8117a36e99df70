"""Accumulation speed: ``accumulate()`` next to decoding the same stream, and next to the SDK.

Groups:

* **accumulate-vs-decode**: for each stream, ``ChunkDecoder`` decoding its
  bytes (64 KiB reads) and ``accumulate()`` folding the decoded chunks.
  ``extra_info["accumulate_over_decode"]`` is the best accumulate time over
  the best decode time, measured in rounds alternating the two (target: at
  most 0.5, accumulating costs at most half of decoding).
* **accumulate-vs-openai-sdk**: the openai SDK's
  ``ChatCompletionStreamState.handle_chunk`` on the SDK's own chunk objects,
  and ``accumulate()`` on streamspec's, for the same stream.
  ``extra_info["speedup_over_sdk"]`` is the SDK's best time over
  streamspec's, rounds alternating (target: at least 100).

Both sides start from chunks decoded in advance: only accumulation is timed.
Ratios are same-run, so they hold on any machine. Run with::

    pytest benchmarks/test_bench_accumulate.py --benchmark-only
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk as SDKChunk

from streamspec import ChunkDecoder, CreateChatCompletionStreamResponse
from streamspec.accumulate import ChunkAccumulator, accumulate
from streamspec.samples import synthetic_stream

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "streams"
READ_SIZE = 65536
DECODE_TARGET = 0.5
SDK_TARGET = 100.0


@functools.cache
def stream_bytes(name: str) -> bytes:
    """``<kind>-<tokens>`` (``synthetic_stream``) or ``fixture:<stem>``."""
    if name.startswith("fixture:"):
        return (FIXTURES / f"{name.removeprefix('fixture:')}.sse").read_bytes()
    kind, _, tokens = name.rpartition("-")
    return synthetic_stream(int(tokens), kind)  # type: ignore[arg-type]


@functools.cache
def reads_of(name: str) -> list[bytes]:
    data = stream_bytes(name)
    return [data[start : start + READ_SIZE] for start in range(0, len(data), READ_SIZE)]


@functools.cache
def chunks_of(name: str) -> list[CreateChatCompletionStreamResponse]:
    return decode(reads_of(name))


@functools.cache
def sdk_chunks_of(name: str) -> list[SDKChunk]:
    """The same stream as openai SDK chunk objects (validated, as the SDK's models)."""
    out = []
    for event in stream_bytes(name).split(b"\n\n"):
        if event.startswith(b"data: {"):
            out.append(SDKChunk.model_validate(json.loads(event[6:])))
    return out


def decode(reads: list[bytes]) -> list[CreateChatCompletionStreamResponse]:
    decoder = ChunkDecoder()
    out: list[CreateChatCompletionStreamResponse] = []
    for data in reads:
        out += decoder.feed(data)
    out += decoder.close()
    return out


def sdk_accumulate(chunks: list[SDKChunk]) -> Any:
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(chunk)
    return state.current_completion_snapshot


def interleaved_best(
    first: Callable[[Any], Any],
    first_arg: Any,
    second: Callable[[Any], Any],
    second_arg: Any,
    pairs: int,
) -> tuple[int, int]:
    """Best times (ns) of ``first(first_arg)`` and ``second(second_arg)``, rounds alternating.

    Each side runs twice in a row and only its second run is timed, so that
    neither is measured with its caches just evicted by the other (the SDK's
    object graph is large): both are measured warm, as pytest-benchmark does.
    """
    clock = time.perf_counter_ns
    best_first = best_second = 1 << 62
    for _ in range(pairs):
        first(first_arg)
        start = clock()
        first(first_arg)
        best_first = min(best_first, clock() - start)
        second(second_arg)
        start = clock()
        second(second_arg)
        best_second = min(best_second, clock() - start)
    return best_first, best_second


def record(benchmark: Any, name: str, chunks: int, **info: Any) -> None:
    stats = getattr(benchmark, "stats", None)  # None with --benchmark-disable
    benchmark.extra_info.update(stream=name, chunks=chunks, **info)
    if stats:
        benchmark.extra_info["ns_per_chunk"] = round(stats.stats.min * 1e9 / chunks, 1)


# -- accumulation next to decoding ----------------------------------------------------------------

DECODE_STREAMS = ["text-2000", "tools-2000", "n4-2000", "logprobs-2000", "fixture:openai_text"]


@pytest.mark.parametrize("name", DECODE_STREAMS)
def test_decode(benchmark: Any, name: str) -> None:
    """ChunkDecoder on the stream's bytes, 64 KiB reads: the reference."""
    benchmark.group = "accumulate-vs-decode"
    reads = reads_of(name)
    assert len(decode(reads)) == len(chunks_of(name))
    benchmark(decode, reads)
    record(benchmark, name, len(chunks_of(name)), impl="decode")


@pytest.mark.parametrize("name", DECODE_STREAMS)
def test_accumulate(benchmark: Any, name: str) -> None:
    """accumulate() on the decoded chunks of the same stream."""
    benchmark.group = "accumulate-vs-decode"
    chunks = chunks_of(name)
    assert accumulate(chunks).choices
    benchmark(accumulate, chunks)
    record(benchmark, name, len(chunks), impl="accumulate", target=DECODE_TARGET)
    if getattr(benchmark, "stats", None):
        best_acc, best_dec = interleaved_best(accumulate, chunks, decode, reads_of(name), 30)
        ratio = best_acc / best_dec
        benchmark.extra_info["accumulate_over_decode"] = round(ratio, 3)
        benchmark.extra_info["meets_target"] = ratio <= DECODE_TARGET


def test_accumulate_with_snapshots(benchmark: Any) -> None:
    """A live view: ChunkAccumulator.add() per chunk and snapshot() every 20 chunks."""
    name = "text-2000"
    benchmark.group = "accumulate-vs-decode"
    chunks = chunks_of(name)

    def live(items: list[CreateChatCompletionStreamResponse]) -> Any:
        accumulator = ChunkAccumulator()
        for position, chunk in enumerate(items):
            accumulator.add(chunk)
            if position % 20 == 0:
                accumulator.snapshot()
        return accumulator.result()

    assert live(chunks) == accumulate(chunks)
    benchmark(live, chunks)
    record(benchmark, name, len(chunks), impl="accumulate+snapshot/20")
    if getattr(benchmark, "stats", None):
        best_live, best_dec = interleaved_best(live, chunks, decode, reads_of(name), 20)
        benchmark.extra_info["accumulate_over_decode"] = round(best_live / best_dec, 3)


# -- accumulation next to the openai SDK's --------------------------------------------------------

SDK_STREAMS = ["fixture:openai_text", "fixture:openai_tool_calls", "text-300", "tools-300"]


@pytest.mark.parametrize("name", SDK_STREAMS)
def test_openai_sdk_stream_state(benchmark: Any, name: str) -> None:
    """openai.lib.streaming.chat.ChatCompletionStreamState.handle_chunk on every chunk."""
    benchmark.group = "accumulate-vs-openai-sdk"
    chunks = sdk_chunks_of(name)
    assert len(chunks) == len(chunks_of(name))
    benchmark.pedantic(sdk_accumulate, (chunks,), rounds=5, warmup_rounds=1)
    record(benchmark, name, len(chunks), impl="openai-sdk")


@pytest.mark.parametrize("name", SDK_STREAMS)
def test_streamspec_accumulate(benchmark: Any, name: str) -> None:
    """accumulate() on the same stream."""
    benchmark.group = "accumulate-vs-openai-sdk"
    chunks = chunks_of(name)
    sdk = sdk_accumulate(sdk_chunks_of(name))
    ours = accumulate(chunks)
    assert [c.message.content for c in ours.choices] == [c.message.content for c in sdk.choices]
    benchmark(accumulate, chunks)
    record(benchmark, name, len(chunks), impl="streamspec", target=SDK_TARGET)
    if getattr(benchmark, "stats", None):
        best_sdk, best_ours = interleaved_best(
            sdk_accumulate, sdk_chunks_of(name), accumulate, chunks, 10
        )
        speedup = best_sdk / best_ours
        benchmark.extra_info["speedup_over_sdk"] = round(speedup, 1)
        benchmark.extra_info["meets_target"] = speedup >= SDK_TARGET
