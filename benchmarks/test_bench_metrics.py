"""Cost of metering: :class:`StreamMeter` against a bare :class:`ChunkDecoder`.

Both decode ``synthetic_stream(2000)`` (about 2,000 OpenAI-shaped events of
~320 bytes) fed one event per read, the shape of a live socket and the worst
case for the meter (one clock reading per chunk). The metered benchmark also
times plain decoding in the same process and records ``ratio_vs_plain``
(metered time / plain time, best of several rounds) in ``extra_info``.

Run with ``pytest benchmarks/test_bench_metrics.py``.
"""

from __future__ import annotations

import timeit
from typing import Any

import pytest

from streamspec import ChunkDecoder
from streamspec.metrics import StreamMeter
from streamspec.samples import synthetic_stream

STREAM = synthetic_stream(2000)
READS = [event + b"\n\n" for event in STREAM.split(b"\n\n") if event]
WHOLE = [STREAM]


def decode_plain(reads: list[bytes]) -> int:
    decoder = ChunkDecoder()
    count = 0
    for data in reads:
        count += len(decoder.feed(data))
    count += len(decoder.close())
    return count


def decode_metered(reads: list[bytes]) -> int:
    meter = StreamMeter()
    count = 0
    for data in reads:
        count += len(meter.feed(data))
    count += len(meter.close())
    meter.result()
    return count


def _best(func: Any, reads: list[bytes]) -> float:
    return min(timeit.repeat(lambda: func(reads), number=1, repeat=15))


@pytest.mark.parametrize("reads", [READS, WHOLE], ids=["event_per_read", "one_read"])
def test_plain_decoding(benchmark: Any, reads: list[bytes]) -> None:
    benchmark.group = "metrics"
    assert benchmark(decode_plain, reads) == 2003


@pytest.mark.parametrize("reads", [READS, WHOLE], ids=["event_per_read", "one_read"])
def test_metered_decoding(benchmark: Any, reads: list[bytes]) -> None:
    benchmark.group = "metrics"
    assert benchmark(decode_metered, reads) == 2003
    plain = _best(decode_plain, reads)
    metered = _best(decode_metered, reads)
    benchmark.extra_info["plain_s"] = plain
    benchmark.extra_info["metered_s"] = metered
    benchmark.extra_info["ratio_vs_plain"] = round(metered / plain, 3)
