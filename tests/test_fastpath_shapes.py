"""The pure-Python hot path against its twin and the whole stream, read shape by read shape.

``PyChunkDecoder`` takes the usual reads (one event, two events, an event cut in
two or three, the read that starts an event kept as it is until its end
arrives) on shortcuts of its own. Each test here cuts streams that mix those
reads with everything the shortcuts must refuse (CR, a second line, a line
without ``data:``, ``[DONE]``, error payloads, bad JSON, events at the size
limit, bytearray and memoryview reads) and checks that the chunks, the errors
and ``events``/``bytes_consumed`` after every read are those of the compiled
core (when built) and of the whole stream read at once.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import pytest

from splitting import run_decoder, split_at
from streamspec import ChunkDecoder, Error
from streamspec._fastpath import IMPLEMENTATION
from streamspec.decoder import PyChunkDecoder


def event(text: str, **extra: Any) -> bytes:
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
        **extra,
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


PLAIN = [event(f"token {i}") for i in range(6)]
LEAD = b"".join(PLAIN[:3])
"""Three plain events first: the first read of a stream takes the general path, and in
pairs of events the one under test comes second (``two``) or first (``two-after-one``)."""
TAIL = b"".join(PLAIN[3:])
ERROR = b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'
ODD = {
    "error": ERROR,
    "malformed": b'data: {"id": \n\n',
    "cr": PLAIN[1].replace(b"\n", b"\r\n"),
    "cr-inside": PLAIN[1].replace(b'"id"', b'\r"id"'),
    "cr-middle": PLAIN[1].replace(b', "choices"', b',\r"choices"'),
    "cr-end": PLAIN[1].replace(b', "finish_reason"', b',\r"finish_reason"'),
    "second-line": PLAIN[1].replace(b'"id"', b'\n"id"'),
    "lf-in-json": PLAIN[1].replace(b', "created"', b',\n"created"'),
    "no-prefix": PLAIN[1].replace(b"data: ", b"      "),
    "short-field": PLAIN[1].replace(b"data: ", b"dat: "),
    "event-field": b"event: delta\n" + PLAIN[1],
    "comments": b": keep-alive\n\n\n\n" + PLAIN[1] + b":\n\n",
    "blank-after": PLAIN[1] + b"\n",
    "done-middle": b"data: [DONE]\n\n",
    "error-false": event("x", error=False),
    "large": event("x" * 400),
}
STREAMS = {
    "plain": LEAD + TAIL + b"data: [DONE]\n\n",
    "no-done": LEAD + TAIL,
    "unterminated": LEAD + TAIL + PLAIN[0][:-2],
    "truncated": LEAD + TAIL + PLAIN[0][:40],
    "json-body": b'{"error": {"message": "bad request"}}',
    **{name: LEAD + odd + TAIL for name, odd in ODD.items()},
}
SIZES = {"default": None, "tight": len(PLAIN[1]) - 2, "below": len(PLAIN[1]) - 3, "small": 200}


def factory(cls: Any, max_event_size: int | None) -> Callable[[], Any]:
    if max_event_size is None:
        return cls
    return lambda: cls(max_event_size=max_event_size)


def shapes(stream: bytes) -> dict[str, list[bytes]]:
    """The read shapes of the benchmarks, cut at the stream's event boundaries."""
    bounds = [0]
    while (end := stream.find(b"\n\n", bounds[-1])) >= 0:
        bounds.append(end + 2)
    events = [stream[a:b] for a, b in itertools.pairwise([*bounds, len(stream)]) if b > a]

    def cut(parts: int) -> list[bytes]:
        reads: list[bytes] = []
        for item in events:
            reads += split_at(item, [len(item) * k // parts for k in range(1, parts)])
        return reads

    return {
        "whole": [stream],
        "event": events,
        "two": [b"".join(events[i : i + 2]) for i in range(0, len(events), 2)],
        # The first read of a stream takes the general path: pair from the second on too.
        "two-after-one": events[:1]
        + [b"".join(events[i : i + 2]) for i in range(1, len(events), 2)],
        "split": cut(2),
        "split3": cut(3),
        "split7": cut(7),
        "short-heads": [r for item in events for r in split_at(item, [1, 3, 5, 6])],
    }


def trace(reads: Sequence[Any], make: Callable[[], Any]) -> list[Any]:
    """Chunks, errors and the decoder's counts after every read, then after close()."""
    decoder = make()
    steps: list[Any] = []
    for data in [*reads, None]:
        try:
            chunks = decoder.close() if data is None else decoder.feed(data)
            steps.append(("ok", chunks))
        except Error as exc:
            steps.append((type(exc).__name__, exc.event_index, exc.offset, exc.chunks))
            if data is None or type(exc).__name__ in ("EventTooLargeError", "TruncatedStreamError"):
                break
        steps.append((decoder.events, decoder.bytes_consumed, decoder.done))
    return steps


@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize("name", sorted(STREAMS))
def test_read_shapes_agree_with_the_whole_stream(name: str, size: str) -> None:
    """Every read shape gives the chunks, errors and final counts of one whole read."""
    stream = STREAMS[name]
    make = factory(PyChunkDecoder, SIZES[size])
    whole = run_decoder([stream], make, resume=True)
    for shape, reads in shapes(stream).items():
        assert run_decoder(reads, make, resume=True) == whole, shape


@pytest.mark.skipif(IMPLEMENTATION != "c", reason="the compiled core is not built")
@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize("name", sorted(STREAMS))
def test_every_read_matches_the_compiled_core(name: str, size: str) -> None:
    """After every read, the Python core stands where the C core stands."""
    stream = STREAMS[name]
    for shape, reads in shapes(stream).items():
        python = trace(reads, factory(PyChunkDecoder, SIZES[size]))
        compiled = trace(reads, factory(ChunkDecoder, SIZES[size]))
        assert python == compiled, shape


@pytest.mark.parametrize("wrap", [bytearray, memoryview, lambda b: type("Sub", (bytes,), {})(b)])
def test_other_bytes_like_reads_mix_with_the_shortcuts(wrap: Callable[[bytes], Any]) -> None:
    """A bytearray, memoryview or bytes-subclass read anywhere reads like bytes."""
    stream = STREAMS["plain"]
    whole = run_decoder([stream], PyChunkDecoder, resume=True)
    for shape, reads in shapes(stream).items():
        for position in range(len(reads)):
            mixed = [wrap(r) if i == position else r for i, r in enumerate(reads)]
            assert run_decoder(mixed, PyChunkDecoder, resume=True) == whole, (shape, position)


def test_every_cut_of_an_event_after_its_start() -> None:
    """An event cut anywhere into two, after an event that began in an earlier read."""
    first, second = PLAIN[0], PLAIN[1]
    stream = first + second + STREAMS["error"] + b"data: [DONE]\n\n"
    assert len(stream) < 2000
    whole = run_decoder([stream], PyChunkDecoder, resume=True)
    for a in range(1, len(first)):
        for b in (len(first) + 1, len(first) + 6, len(first) + len(second) - 1):
            reads = split_at(stream, [a, b])
            assert run_decoder(reads, PyChunkDecoder, resume=True) == whole, (a, b)


def test_bytes_consumed_never_counts_a_started_event() -> None:
    """A read that starts an event is held, not consumed, until its end arrives."""
    decoder = PyChunkDecoder()
    assert decoder.feed(PLAIN[0]) != []
    consumed = decoder.bytes_consumed
    head, rest = PLAIN[1][:50], PLAIN[1][50:]
    assert decoder.feed(head) == []
    assert (decoder.bytes_consumed, decoder.events) == (consumed, 1)
    assert decoder.feed(rest[:10]) == []
    assert (decoder.bytes_consumed, decoder.events) == (consumed, 1)
    [chunk] = decoder.feed(rest[10:])
    assert chunk.choices[0].delta.content == "token 1"
    assert (decoder.bytes_consumed, decoder.events) == (consumed + len(PLAIN[1]), 2)


class Peeking(msgspec.Struct):
    """A chunk whose ``__post_init__`` looks at the decoder's tail while it is decoded."""

    id: str
    choices: list[Any]
    error: Any = None

    def __post_init__(self) -> None:
        for decoder in PEEKERS:
            bytes(decoder._tail)


PEEKERS: list[Any] = []


def test_a_decode_hook_that_looks_at_the_tail_changes_nothing() -> None:
    """Reading ``_tail`` from inside a decode joins the kept head; the result is the same."""
    stream = STREAMS["plain"]
    for shape, reads in shapes(stream).items():
        quiet = run_decoder(reads, lambda: PyChunkDecoder(Peeking), resume=True)

        def peeked() -> Any:
            decoder = PyChunkDecoder(Peeking)
            PEEKERS[:] = [decoder]
            return decoder

        try:
            assert run_decoder(reads, peeked, resume=True) == quiet, shape
        finally:
            PEEKERS.clear()
