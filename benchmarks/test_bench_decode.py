"""Decoding speed and memory of streamspec, against the msgspec ceiling and its peers.

Groups (``--benchmark-group-by=group``, the default):

* ``hot-path-64k`` / ``hot-path-event``: ``synthetic_stream(2000)`` fed in 64 KiB
  reads / one event per read to a fresh :class:`ChunkDecoder` per round; the
  ceiling (the same payloads pre-split, one reused msgspec decoder); a slim
  projection type with its own ceiling; a lean chunk type decoded like the
  ceiling.
* ``peers-64k`` / ``peers-event``: the same stream and reads through the openai
  SDK (default and validating paths), httpx-sse + ``json``, orjson dicts and
  pydantic, with streamspec again for a same-group comparison.
* ``read shapes``: ``synthetic_stream(2000)`` one event per read, every event
  split across two reads, 64 KiB reads, ``iter_chunks`` over one-event reads, a
  slim projection with and one without ``error``; each type's ceiling in the
  same group.
* ``floods``: 4 MiB of blank lines, ``: keep-alive`` comments or ``:ping``
  lines between two events, in 64 KiB reads (``mb_per_s`` in ``extra_info``).
* ``scaling``: streamspec and the ceiling on 100, 2,000 and 20,000 tokens, and
  tool-call, logprobs and n=4 streams: ns/event should stay flat.
* ``memory``: bytes retained per chunk, peak memory while streaming with the
  chunks dropped, and the cost of the garbage collector with 20,000 chunks kept
  alive. Figures are in ``extra_info``; the tracemalloc runs are one round and
  their times are not comparable with the others.

Every benchmark records ``events``, ``ns_per_event`` and ``mb_per_s`` (from the
minimum time) in ``extra_info``; ``conftest.py`` adds the same-run ratios to the
ceiling and streamspec's speed-ups when the JSON report is written.
``check_ratios.py`` reads that report and guards the decoder/ceiling ratios.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import pytest

from streams import (
    READ_64K,
    READ_EVENT,
    LeanChunk,
    SlimChoice,  # type: ignore[attr-defined]
    SlimChunk,
    Workload,
    cut_reads,
    reads_label,
    workload,
)
from streamspec import (
    ChunkDecoder,
    CompletionUsage,
    CreateChatCompletionStreamResponse,
    iter_chunks,
)
from streamspec._fastpath import IMPLEMENTATION
from streamspec._peers import PEERS, StreamFn, ceiling, streamspec_decoder

READ_SIZES = pytest.mark.parametrize("read_size", [READ_64K, READ_EVENT], ids=reads_label)

GATED = pytest.mark.benchmark(min_rounds=200)
"""For the gated groups, whose rounds take about a millisecond: at least 200 rounds.
pytest-benchmark plans the rounds from a calibration, and in full runs one benchmark of
these groups now and then got 50 to 80 rounds instead of about 1,000 (with
``--benchmark-max-time=1``), too few for a reliable minimum."""


def run(
    benchmark: Any,
    group: str,
    wl: Workload,
    func: Callable[[Any], list[Any]],
    arg: Any,
    *,
    paired: Callable[[Any], list[Any]] | None = None,
    **info: Any,
) -> None:
    """Benchmark ``func(arg)`` (which must decode every chunk of ``wl``) and record extra_info.

    With ``paired`` (a ceiling, called on ``wl.payloads``), also record
    ``paired_ratio_to_ceiling``: the best time of ``func`` over the best time of
    ``paired`` in rounds that alternate the two, a cross-check that a change of
    load on the machine between two benchmarks cannot skew.
    """
    benchmark.group = group
    count = len(func(arg))  # warm-up, and the check that it decodes what the others do
    assert count == wl.events, f"{count} chunks instead of {wl.events}"
    benchmark(func, arg)
    stats = getattr(benchmark, "stats", None)  # None with --benchmark-disable
    benchmark.extra_info.update(wl.info(stats.stats.min if stats else None), **info)
    if stats:
        benchmark.extra_info["ns_per_event_median"] = round(stats.stats.median * 1e9 / wl.events, 1)
        if paired is not None:
            ratio = interleaved_ratio(func, arg, paired, wl.payloads)
            benchmark.extra_info["paired_ratio_to_ceiling"] = round(ratio, 3)


def interleaved_ratio(
    func: Callable[[Any], list[Any]],
    arg: Any,
    floor: Callable[[Any], list[Any]],
    floor_arg: Any,
    pairs: int = 40,
) -> float:
    """Best time of ``func(arg)`` over best time of ``floor(floor_arg)``, rounds alternating."""
    clock = time.perf_counter_ns
    best = best_floor = 1 << 62
    for _ in range(pairs):
        start = clock()
        func(arg)
        middle = clock()
        floor(floor_arg)
        end = clock()
        best, best_floor = min(best, middle - start), min(best_floor, end - middle)
    return best / best_floor


def read_info(wl: Workload, read_size: int) -> dict[str, Any]:
    return {"read_size": read_size, "reads": len(wl.reads(read_size))}


# -- hot path ----------------------------------------------------------------------------------


@GATED
@READ_SIZES
def test_hot_path_decoder(benchmark: Any, read_size: int) -> None:
    """ChunkDecoder, full chunk type."""
    wl = workload()
    run(
        benchmark,
        f"hot-path-{reads_label(read_size)}",
        wl,
        streamspec_decoder(),
        wl.reads(read_size),
        paired=ceiling(),
        impl="streamspec",
        role="decoder",
        type="full",
        **read_info(wl, read_size),
    )


@GATED
@READ_SIZES
def test_hot_path_ceiling(benchmark: Any, read_size: int) -> None:
    """msgspec alone on the pre-split payloads, full chunk type: the floor."""
    wl = workload()
    run(
        benchmark,
        f"hot-path-{reads_label(read_size)}",
        wl,
        ceiling(),
        wl.payloads,
        impl="ceiling",
        role="ceiling",
        type="full",
    )


@GATED
@READ_SIZES
def test_hot_path_slim_decoder(benchmark: Any, read_size: int) -> None:
    """ChunkDecoder with a projection: id, choices[].index/delta.content/finish_reason, usage."""
    wl = workload()
    run(
        benchmark,
        f"hot-path-{reads_label(read_size)}",
        wl,
        streamspec_decoder(SlimChunk),
        wl.reads(read_size),
        paired=ceiling(SlimChunk),
        impl="streamspec-slim",
        role="decoder",
        type="slim",
        **read_info(wl, read_size),
    )


@GATED
@READ_SIZES
def test_hot_path_slim_ceiling(benchmark: Any, read_size: int) -> None:
    """msgspec alone on the pre-split payloads, slim projection type."""
    wl = workload()
    run(
        benchmark,
        f"hot-path-{reads_label(read_size)}",
        wl,
        ceiling(SlimChunk),
        wl.payloads,
        impl="ceiling-slim",
        role="ceiling",
        type="slim",
    )


@GATED
@READ_SIZES
def test_hot_path_lean(benchmark: Any, read_size: int) -> None:
    """msgspec alone on the pre-split payloads, a lean type of the commonly sent fields."""
    wl = workload()
    run(
        benchmark,
        f"hot-path-{reads_label(read_size)}",
        wl,
        ceiling(LeanChunk),
        wl.payloads,
        impl="lean",
        role="lean",
        type="lean",
    )


# -- read shapes -------------------------------------------------------------------------------
#
# How live sockets deliver a stream: one event per read, or every event split
# across two reads; through ChunkDecoder.feed() and through iter_chunks(). Each
# row's ceiling (the same payloads pre-split, one reused msgspec decoder of the
# same type) is in the same group and run.


class SlimNoErrorChunk(msgspec.Struct, gc=False):
    """The slim projection without ``error``: the decoder probes payloads for the key."""

    id: str = ""
    choices: list[SlimChoice] = msgspec.field(default_factory=list)
    usage: CompletionUsage | None = None


def halved(reads: list[bytes]) -> list[bytes]:
    """Every read cut in two in its middle: each event arrives in two reads."""
    out = []
    for data in reads:
        middle = len(data) // 2
        out += [data[:middle], data[middle:]]
    return out


def iterated(type: Any = CreateChatCompletionStreamResponse) -> StreamFn:
    def decode(reads: Iterable[bytes]) -> list[Any]:
        return list(iter_chunks(reads, type))

    return decode


READ_SHAPES: dict[str, tuple[str, Callable[[], StreamFn], Callable[[Workload], list[bytes]]]] = {
    # impl: (type, decoder factory, reads)
    "event": ("full", streamspec_decoder, lambda wl: wl.reads(READ_EVENT)),
    "halves": ("full", streamspec_decoder, lambda wl: halved(wl.reads(READ_EVENT))),
    "iter-event": ("full", iterated, lambda wl: wl.reads(READ_EVENT)),
    "64k": ("full", streamspec_decoder, lambda wl: wl.reads(READ_64K)),
    "slim-event": ("slim", lambda: streamspec_decoder(SlimChunk), lambda wl: wl.reads(READ_EVENT)),
    "slim-noerror-event": (
        "slim-noerror",
        lambda: streamspec_decoder(SlimNoErrorChunk),
        lambda wl: wl.reads(READ_EVENT),
    ),
}
SHAPE_TYPES = {"full": CreateChatCompletionStreamResponse, "slim": SlimChunk,
               "slim-noerror": SlimNoErrorChunk}  # fmt: skip


@GATED
@pytest.mark.parametrize("impl", sorted(READ_SHAPES))
def test_read_shape(benchmark: Any, impl: str) -> None:
    """ChunkDecoder (or iter_chunks) over one read shape, against its type's ceiling."""
    wl = workload()
    kind, factory, cut = READ_SHAPES[impl]
    reads = cut(wl)
    run(
        benchmark,
        "read shapes",
        wl,
        factory(),
        reads,
        paired=ceiling(SHAPE_TYPES[kind]),
        impl=impl,
        role="decoder",
        type=kind,
        implementation=IMPLEMENTATION,
        read_size=None,
        reads=len(reads),
    )


@GATED
@pytest.mark.parametrize("kind", sorted(SHAPE_TYPES))
def test_read_shape_ceiling(benchmark: Any, kind: str) -> None:
    """msgspec alone on the pre-split payloads, one reused decoder of each row's type."""
    wl = workload()
    run(
        benchmark,
        "read shapes",
        wl,
        ceiling(SHAPE_TYPES[kind]),
        wl.payloads,
        impl=f"ceiling-{kind}",
        role="ceiling",
        type=kind,
        implementation=IMPLEMENTATION,
    )


# -- floods ------------------------------------------------------------------------------------
#
# Blank lines and ": keep-alive" comments between events: the WHATWG algorithm
# ignores them. 4 MiB of each, in 64 KiB reads, between two chunks.

FLOOD_BYTES = 4 << 20
FLOODS = {"blank-lines": b"\n", "keep-alive": b": keep-alive\n\n", "ping-comments": b":ping\n"}


@pytest.mark.parametrize("flood", sorted(FLOODS))
def test_flood(benchmark: Any, flood: str) -> None:
    """MB/s through a ChunkDecoder of a stream that is almost all blank lines or comments."""
    wl = workload()
    events = wl.reads(READ_EVENT)
    unit = FLOODS[flood]
    body = unit * (FLOOD_BYTES // len(unit))
    if not body.endswith(b"\n\n"):
        body += b"\n"
    data = events[0] + body + events[1]
    reads = cut_reads(data, READ_64K)
    decode = streamspec_decoder()
    assert len(decode(reads)) == 2
    benchmark.group = "floods"
    benchmark(decode, reads)
    stats = getattr(benchmark, "stats", None)
    benchmark.extra_info.update(
        impl=flood,
        role="flood",
        implementation=IMPLEMENTATION,
        bytes=len(data),
        read_size=READ_64K,
        reads=len(reads),
    )
    if stats:
        benchmark.extra_info["mb_per_s"] = round(len(data) / stats.stats.min / 1e6, 1)


# -- peers -------------------------------------------------------------------------------------


@READ_SIZES
@pytest.mark.parametrize("name", ["streamspec", *(peer.name for peer in PEERS)])
def test_peers(benchmark: Any, name: str, read_size: int) -> None:
    wl = workload()
    func: StreamFn
    if name == "streamspec":
        func, role, version = streamspec_decoder(), "decoder", None
    else:
        peer = next(peer for peer in PEERS if peer.name == name)
        try:
            func = peer.build()
        except ImportError as exc:
            pytest.skip(f"{peer.requires} is not installed: {exc}")
        role, version = "peer", peer.version()
    run(
        benchmark,
        f"peers-{reads_label(read_size)}",
        wl,
        func,
        wl.reads(read_size),
        impl=name,
        role=role,
        type="full",
        version=version,
        **read_info(wl, read_size),
    )


# -- scaling -----------------------------------------------------------------------------------

SCALING_STREAMS = ["text-100", "text-2000", "text-20000", "tools-2000", "logprobs-2000", "n4-2000"]


@pytest.mark.parametrize("impl", ["streamspec", "ceiling"])
@pytest.mark.parametrize("stream", SCALING_STREAMS)
def test_scaling(benchmark: Any, stream: str, impl: str) -> None:
    """ns/event across lengths and shapes, 64 KiB reads; the ceiling gives each its floor."""
    wl = workload(stream)
    func: Callable[[Any], list[Any]]
    if impl == "streamspec":
        func, arg, role = streamspec_decoder(), wl.reads(READ_64K), "decoder"
        extra = read_info(wl, READ_64K)
    else:
        func, arg, role, extra = ceiling(), wl.payloads, "ceiling", {}
    run(benchmark, "scaling", wl, func, arg, impl=impl, role=role, type="full", **extra)


# -- memory ------------------------------------------------------------------------------------


def traced(func: Callable[[], Any]) -> tuple[Any, int, int]:
    """Run ``func`` under tracemalloc; return its result, bytes still held and peak bytes."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = func()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, current - before, peak - before


@pytest.mark.parametrize("stream", ["text-2000", "text-20000"])
def test_memory_retained(benchmark: Any, stream: str) -> None:
    """Bytes held per chunk kept alive: ChunkDecoder (64 KiB reads) against msgspec alone."""
    wl = workload(stream)
    reads = wl.reads(READ_64K)
    decode, floor = streamspec_decoder(), ceiling()
    # Warm-up: type info and caches exist before tracing.
    decode(reads)
    floor(wl.payloads)

    def measure() -> dict[str, Any]:
        chunks, held, _ = traced(lambda: decode(reads))
        assert len(chunks) == wl.events
        del chunks
        chunks, held_floor, _ = traced(lambda: floor(wl.payloads))
        assert len(chunks) == wl.events
        return {
            "retained_bytes_per_chunk": round(held / wl.events, 1),
            "retained_bytes_per_chunk_msgspec": round(held_floor / wl.events, 1),
            "retained_ratio": round(held / held_floor, 3),
        }

    benchmark.group = "memory"
    figures = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update(
        wl.info(), impl="streamspec", role="memory", measure="retained", timing="tracemalloc"
    )
    benchmark.extra_info.update(figures)


@READ_SIZES
def test_memory_peak_streaming(benchmark: Any, read_size: int) -> None:
    """Peak memory while streaming with every chunk dropped: must not grow with length."""
    short, long = workload("text-2000"), workload("text-20000")

    def stream_through(wl: Workload) -> int:
        reads = wl.reads(read_size)

        def consume() -> int:
            decoder = ChunkDecoder()
            count = 0
            for data in reads:
                count += len(decoder.feed(data))
            return count + len(decoder.close())

        consume()  # warm-up
        count, _, peak = traced(consume)
        assert count == wl.events
        return peak

    def measure() -> dict[str, Any]:
        peak_short, peak_long = stream_through(short), stream_through(long)
        return {
            "peak_bytes_2000": peak_short,
            "peak_bytes_20000": peak_long,
            "peak_growth": round(peak_long / peak_short, 3),
        }

    benchmark.group = "memory"
    figures = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update(
        long.info(),
        impl="streamspec",
        role="memory",
        measure="peak-streaming",
        timing="tracemalloc",
        **read_info(long, read_size),
    )
    benchmark.extra_info.update(figures)


def _collections() -> list[int]:
    return [generation["collections"] for generation in gc.get_stats()]


@pytest.mark.parametrize("gc_enabled", [True, False], ids=["gc-on", "gc-off"])
def test_memory_keep_alive(benchmark: Any, gc_enabled: bool) -> None:
    """20,000 chunks kept alive while decoding: the garbage collector's share of the time."""
    wl = workload("text-20000")
    decode = streamspec_decoder()
    reads = wl.reads(READ_64K)

    def decode_all(reads: list[bytes]) -> list[Any]:
        if gc_enabled:
            return decode(reads)
        gc.disable()
        try:
            return decode(reads)
        finally:
            gc.enable()

    before = _collections()
    decode_all(reads)
    collections = [after - first for after, first in zip(_collections(), before, strict=True)]
    run(
        benchmark,
        "memory",
        wl,
        decode_all,
        reads,
        impl="streamspec",
        role="memory",
        measure="keep-alive",
        gc="on" if gc_enabled else "off",
        gc_collections_per_decode=collections,
        **read_info(wl, READ_64K),
    )
