"""``check_stream`` against the decoder on the same stream and reads, and its memory.

Group ``check`` (``synthetic_stream(2000)``, 64 KiB reads, as ``streamspec
check FILE`` reads a file):

* ``decoder``: a fresh :class:`streamspec.ChunkDecoder` fed the reads, the
  reference;
* ``check`` / ``check-strict``: :func:`streamspec.check_stream` over the same
  reads, without and with ``strict``;
* ``orjson``: split on blank lines and ``orjson.loads`` (plain dicts), for
  scale (skipped without orjson).

Each check benchmark also records ``ratio_to_decoder``: its best time over the
decoder's best in rounds that alternate the two (same run, so a change of load
on the machine cannot skew it). Targets: 1.5x for ``check``, 2x for
``check-strict``.

Group ``check-memory``: the peak traced memory of a check over 2,000 and
20,000 tokens (fed in 64 KiB reads produced on the fly): it must not grow with
the stream's length. Figures are in ``extra_info``; the tracemalloc runs are
one round, their times mean nothing.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from streams import READ_64K, workload
from streamspec._peers import PEERS, streamspec_decoder
from streamspec.check import check_stream

TARGETS = {"check": 1.5, "check-strict": 2.0}


def _check(strict: bool) -> Callable[[list[bytes]], Any]:
    def run(reads: list[bytes]) -> Any:
        report = check_stream(reads, strict=strict)
        assert report.ok
        return report

    return run


def _interleaved(func: Callable[[Any], Any], floor: Callable[[Any], Any], arg: Any) -> float:
    clock = time.perf_counter_ns
    best = best_floor = 1 << 62
    for _ in range(30):
        start = clock()
        func(arg)
        middle = clock()
        floor(arg)
        end = clock()
        best, best_floor = min(best, middle - start), min(best_floor, end - middle)
    return best / best_floor


@pytest.mark.parametrize("impl", ["decoder", "check", "check-strict", "orjson"])
def test_check(benchmark: Any, impl: str) -> None:
    wl = workload()
    reads = wl.reads(READ_64K)
    decode = streamspec_decoder()
    func: Callable[[Any], Any]
    if impl == "decoder":
        func = decode
    elif impl == "orjson":
        peer = next(peer for peer in PEERS if peer.name == "orjson")
        try:
            func = peer.build()
        except ImportError as exc:
            pytest.skip(f"orjson is not installed: {exc}")
    else:
        func = _check(impl == "check-strict")
    benchmark.group = "check"
    func(reads)  # warm-up (and the report is ok)
    benchmark(func, reads)
    info: dict[str, Any] = {**wl.info(), "impl": impl, "role": "check", "read_size": READ_64K}
    stats = getattr(benchmark, "stats", None)  # None with --benchmark-disable
    if stats:
        info["ns_per_event"] = round(stats.stats.min * 1e9 / wl.events, 1)
        if impl != "decoder":
            ratio = _interleaved(func, decode, reads)
            info["ratio_to_decoder"] = round(ratio, 3)
            if impl in TARGETS:
                info["target"] = TARGETS[impl]
    benchmark.extra_info.update(info)


def _reads(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), READ_64K):
        yield bytes(view[start : start + READ_64K])


def _peak(data: bytes, strict: bool) -> int:
    check_stream(_reads(data), strict=strict)  # warm-up
    gc.collect()
    tracemalloc.start()
    try:
        report = check_stream(_reads(data), strict=strict)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.ok
    return peak


@pytest.mark.parametrize("strict", [False, True], ids=["check", "check-strict"])
def test_check_memory(benchmark: Any, strict: bool) -> None:
    """Peak traced memory of a check, 2,000 and 20,000 tokens: flat."""
    short, long = workload("text-2000"), workload("text-20000")

    def measure() -> dict[str, Any]:
        peak_short, peak_long = _peak(short.data, strict), _peak(long.data, strict)
        return {
            "peak_bytes_2000": peak_short,
            "peak_bytes_20000": peak_long,
            "peak_growth": round(peak_long / peak_short, 3),
            "stream_bytes_20000": len(long.data),
        }

    benchmark.group = "check-memory"
    figures = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update(
        long.info(),
        impl="check-strict" if strict else "check",
        role="check-memory",
        measure="peak-check",
        timing="tracemalloc",
        **figures,
    )
    assert figures["peak_growth"] < 1.5
