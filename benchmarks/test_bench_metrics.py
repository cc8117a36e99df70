"""Cost of metering: :class:`StreamMeter` against a bare :class:`ChunkDecoder`, same run.

Both decode ``synthetic_stream(2000)`` (about 2,000 OpenAI-shaped events of
~330 bytes) in two read shapes: 64 KiB reads and one event per read (the
shape of a live socket, and the worst case for the meter: one clock reading
per read). Each metered benchmark also times plain and metered decoding
interleaved in the same process (alternating rounds, best of each) and records
``ratio_vs_plain`` (metered / plain) in ``extra_info``; the targets, with the C
accelerator, are 1.10x at 64 KiB and 1.15x at one event per read
(``check_ratios.py`` gates them). The metered side includes the meter's
creation, ``close()`` and ``result()`` (the percentiles), as a load generator
pays them once per request.

Run with ``pytest benchmarks/test_bench_metrics.py --benchmark-only``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from streamspec import ChunkDecoder
from streamspec._fastpath import IMPLEMENTATION
from streamspec._peers import cut_reads
from streamspec.metrics import StreamMeter
from streamspec.samples import synthetic_stream

STREAM = synthetic_stream(2000)
SHAPES = {"64k": cut_reads(STREAM, 1 << 16), "event_per_read": cut_reads(STREAM, 0)}
TARGETS = {"64k": 1.10, "event_per_read": 1.15}
CHUNKS = 2003  # 2,000 tokens, the role chunk, the finish chunk and the usage chunk


def decode_plain(reads: list[bytes]) -> int:
    decoder = ChunkDecoder()
    feed = decoder.feed
    kept: list[Any] = []
    for data in reads:
        kept += feed(data)
    kept += decoder.close()
    return len(kept)


def decode_metered(reads: list[bytes]) -> int:
    meter = StreamMeter()
    feed = meter.feed
    kept: list[Any] = []
    for data in reads:
        kept += feed(data)
    kept += meter.close()
    meter.result()
    return len(kept)


def interleaved_ratio(
    slow: Callable[[list[bytes]], int],
    fast: Callable[[list[bytes]], int],
    reads: list[bytes],
    rounds: int = 41,
) -> tuple[float, float]:
    """Best time of ``slow`` and of ``fast`` over alternating rounds in this process."""
    best_slow = best_fast = float("inf")
    clock = time.perf_counter
    for _ in range(rounds):
        start = clock()
        fast(reads)
        best_fast = min(best_fast, clock() - start)
        start = clock()
        slow(reads)
        best_slow = min(best_slow, clock() - start)
    return best_slow, best_fast


@pytest.mark.parametrize("shape", list(SHAPES))
def test_plain_decoding(benchmark: Any, shape: str) -> None:
    benchmark.group = "metering"
    benchmark.extra_info.update(
        shape=shape, role="plain", impl=f"plain-{shape}", implementation=IMPLEMENTATION
    )
    assert benchmark(decode_plain, SHAPES[shape]) == CHUNKS


@pytest.mark.parametrize("shape", list(SHAPES))
def test_metered_decoding(benchmark: Any, shape: str) -> None:
    benchmark.group = "metering"
    reads = SHAPES[shape]
    assert benchmark(decode_metered, reads) == CHUNKS
    metered, plain = interleaved_ratio(decode_metered, decode_plain, reads)
    benchmark.extra_info.update(
        shape=shape,
        role="metered",
        impl=f"metered-{shape}",
        implementation=IMPLEMENTATION,
        plain_s=plain,
        metered_s=metered,
        ratio_vs_plain=round(metered / plain, 3),
        target=TARGETS[shape],
    )
