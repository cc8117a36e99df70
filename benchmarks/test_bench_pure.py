"""The pure-Python hot path against the msgspec ceiling, read shape by read shape; floods.

The decoder here is :class:`streamspec.decoder.PyChunkDecoder`, the pure-Python
hot path, whether or not the C accelerator is built: these rows run in the same
process (and the same report) as the compiled ones.

Groups (``synthetic_stream(2000)``, each with the ceiling measured in the same run):

* ``pure-event``: one event per read (a live socket's usual read);
* ``pure-two``: two events per read;
* ``pure-split``: every event split across two reads (at its middle);
* ``pure-split3``: every event split across three reads;
* ``pure-64k``: 64 KiB reads.
* ``pure-large``: events of about 16 KiB, one per read, and the same stream in
  100-byte reads (about 160 reads per event): the ratio of the two is the cost of
  small reads, which stays a small constant when no byte is scanned twice.
* ``pure-floods``: 2 MiB of blank lines, or of ``: keep-alive`` comments, between
  two events, in 64 KiB reads, LF and CRLF, on both paths; ``extra_info`` holds
  MB/s. The same-run ratio checked is a flood's time per byte over the pure
  decoder's own time per byte on 64 KiB reads of events.

``check_ratios.py`` gates these rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import pytest

from streams import READ_64K, Workload, workload
from streamspec import ChunkDecoder
from streamspec._peers import ceiling
from streamspec.decoder import PyChunkDecoder
from test_bench_decode import GATED, run


def pure_decoder(cls: Any = PyChunkDecoder) -> Callable[[Sequence[bytes]], list[Any]]:
    """A fresh decoder per stream, chunks collected in a list."""

    def decode(reads: Sequence[bytes]) -> list[Any]:
        decoder = cls()
        chunks: list[Any] = []
        for data in reads:
            chunks += decoder.feed(data)
        chunks += decoder.close()
        return chunks

    return decode


def events_of(wl: Workload) -> list[bytes]:
    return wl.reads(0)


def shape(wl: Workload, name: str) -> list[bytes]:
    """The stream cut into reads of the named shape."""
    events = events_of(wl)
    if name == "event":
        return events
    if name == "two":
        return [b"".join(events[i : i + 2]) for i in range(0, len(events), 2)]
    if name in ("split", "split3"):
        parts = 2 if name == "split" else 3
        reads = []
        for event in events:
            cuts = [len(event) * k // parts for k in range(parts + 1)]
            reads += [event[a:b] for a, b in itertools.pairwise(cuts)]
        return reads
    if name == "64k":
        return wl.reads(READ_64K)
    raise ValueError(name)


SHAPES = ["event", "two", "split", "split3", "64k"]


@GATED
@pytest.mark.parametrize("name", SHAPES)
def test_pure_read_shapes(benchmark: Any, name: str) -> None:
    """PyChunkDecoder on one read shape."""
    wl = workload()
    reads = shape(wl, name)
    run(
        benchmark,
        f"pure-{name}",
        wl,
        pure_decoder(),
        reads,
        paired=ceiling(),
        impl="streamspec-python",
        role="decoder",
        type="full",
        reads=len(reads),
        read_shape=name,
    )


@GATED
@pytest.mark.parametrize("name", SHAPES)
def test_pure_read_shapes_ceiling(benchmark: Any, name: str) -> None:
    """msgspec alone on the pre-split payloads: the floor of each group."""
    wl = workload()
    run(
        benchmark,
        f"pure-{name}",
        wl,
        ceiling(),
        wl.payloads,
        impl="ceiling",
        role="ceiling",
        type="full",
    )


# -- large events in small reads ---------------------------------------------------------------


def large_workload() -> Workload:
    text = "token " * 2700  # about 16 KiB of content per event
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    payloads = [msgspec.json.encode(chunk) for _ in range(60)]
    data = b"".join(b"data: " + p + b"\n\n" for p in payloads) + b"data: [DONE]\n\n"
    return Workload("large-60", data, payloads)


@pytest.mark.parametrize("read_size", [0, 100], ids=["event", "100B"])
def test_pure_large_events(benchmark: Any, read_size: int) -> None:
    """Events of 16 KiB, one per read or in 100-byte reads: no re-scan, no cliff."""
    wl = large_workload()
    reads = wl.reads(read_size)
    run(
        benchmark,
        "pure-large",
        wl,
        pure_decoder(),
        reads,
        impl=f"streamspec-python-{'event' if read_size == 0 else '100B'}",
        role="shape",
        reads=len(reads),
    )


# -- floods ------------------------------------------------------------------------------------

_EVENT = b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
_FLOOD = 2 * 1024 * 1024


def flood(kind: str) -> bytes:
    unit = b"\n" if kind.startswith("blank") else b": keep-alive\n\n"
    body = _EVENT + unit * (_FLOOD // len(unit)) + _EVENT + b"data: [DONE]\n\n"
    return body.replace(b"\n", b"\r\n") if kind.endswith("crlf") else body


FLOODS = ["blank", "comment", "blank-crlf", "comment-crlf"]


@pytest.mark.parametrize("path", ["python", "c"])
@pytest.mark.parametrize("kind", FLOODS)
def test_floods(benchmark: Any, kind: str, path: str) -> None:
    """Keep-alive and blank-line floods in 64 KiB reads: MB/s in extra_info."""
    cls = PyChunkDecoder if path == "python" else ChunkDecoder
    data = flood(kind)
    wl = Workload(f"flood-{kind}", data, [_EVENT[6:-2]] * 2)
    reads = wl.reads(READ_64K)
    run(
        benchmark,
        "pure-floods",
        wl,
        pure_decoder(cls),
        reads,
        impl=f"{path}-{kind}",
        role="flood",
        reads=len(reads),
    )
