"""The compiled ``iterate()`` yields and raises exactly what its generator twin does.

``streamspec.iterate`` (and so ``iter_chunks``) returns the accelerator's
``ChunkIterator`` when it is built. Each case here runs a source through it and
through the pure-Python generator ``streamspec.iterate._iterate`` and compares
the chunks yielded, the exception raised (type, message, chunks) and where.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

import streamspec
from streamspec import ChunkDecoder, iter_chunks
from streamspec._fastpath import IMPLEMENTATION
from streamspec.iterate import _iterate, iterate

if IMPLEMENTATION != "c":
    pytest.skip("the C accelerator is not built (or disabled)", allow_module_level=True)


def payload(i: int) -> bytes:
    return (
        b'data: {"id":"c%d","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"content":"t"},"finish_reason":null}]}\n\n' % i
    )


EVENTS = [payload(i) for i in range(5)]
DONE = b"data: [DONE]\n\n"
ERROR = b'data: {"error":{"message":"overloaded","code":503}}\n\n'


class Wrapper:
    """A feeder that is not a ChunkDecoder (as StreamMeter is): feed/close/done by name."""

    def __init__(self, **kwargs: Any) -> None:
        self.inner: ChunkDecoder[Any] = ChunkDecoder(**kwargs)
        self.fed = 0

    @property
    def done(self) -> bool:
        return self.inner.done

    def feed(self, data: bytes) -> list[Any]:
        self.fed += 1
        return self.inner.feed(data)

    def close(self) -> list[Any]:
        return self.inner.close()


class Boom(Exception):
    pass


def failing_source(reads: list[bytes], exc: BaseException) -> Iterator[bytes]:
    yield from reads
    raise exc


SOURCES: dict[str, Callable[[], Iterable[bytes]]] = {
    "clean": lambda: [*EVENTS, DONE],
    "one read": lambda: [b"".join([*EVENTS, DONE])],
    "bytes after done": lambda: [*EVENTS[:2], DONE, *EVENTS[2:]],
    "done mid read": lambda: [EVENTS[0], EVENTS[1] + DONE + EVENTS[2]],
    "no done": lambda: list(EVENTS),
    "error event": lambda: [*EVENTS[:2], ERROR, *EVENTS[2:], DONE],
    "error mid read": lambda: [EVENTS[0] + EVENTS[1] + ERROR + EVENTS[2], DONE],
    "malformed": lambda: [EVENTS[0], b"data: {nope\n\n", EVENTS[1]],
    "truncated at close": lambda: [EVENTS[0], b'data: {"id":'],
    "oversized": lambda: [EVENTS[0], b"data: " + b"x" * 5000 + b"\n\n"],
    "source raises": lambda: failing_source(EVENTS[:3], Boom("source")),
    "source raises a streamspec error": lambda: failing_source(
        EVENTS[:2], streamspec.StreamError(streamspec.ErrorObject(message="upstream"), "")
    ),
    "generator source": lambda: iter(EVENTS),
    "not iterable": lambda: 42,  # type: ignore[return-value,return-value]
    "str reads": lambda: ["data: {}\n\n"],  # type: ignore[list-item]
}

FEEDERS: dict[str, Callable[[], Any]] = {
    "decoder": lambda: ChunkDecoder(max_event_size=4096, require_done=True),
    "wrapper": lambda: Wrapper(max_event_size=4096, require_done=True),
}


def outcome(it: Callable[[], Iterator[Any]]) -> tuple[list[Any], Any]:
    items: list[Any] = []
    try:
        for item in it():
            items.append(item)
    except Exception as exc:
        chunks = getattr(exc, "chunks", None)
        return items, (type(exc), str(exc), chunks)
    return items, None


@pytest.mark.parametrize("feeder", sorted(FEEDERS))
@pytest.mark.parametrize("source", sorted(SOURCES))
def test_same_as_the_generator(source: str, feeder: str) -> None:
    make = FEEDERS[feeder]
    compiled = outcome(lambda: iterate(make(), SOURCES[source]()))
    generator = outcome(lambda: _iterate(make(), SOURCES[source]()))
    assert compiled == generator
    assert type(iterate(make(), [])).__name__ == "ChunkIterator"


def test_reading_stops_at_done() -> None:
    wrapper = Wrapper()
    reads = [EVENTS[0], DONE, EVENTS[1], EVENTS[2]]
    assert len(list(iterate(wrapper, reads))) == 1
    assert wrapper.fed == 2


def test_close_ends_iteration_and_is_safe_to_repeat() -> None:
    it = iter_chunks([*EVENTS, DONE])
    assert next(it).id == "c0"
    it.close()  # type: ignore[attr-defined]
    it.close()  # type: ignore[attr-defined]
    assert list(it) == []


def test_the_error_comes_after_its_chunks_then_iteration_ends() -> None:
    it = iter_chunks([EVENTS[0] + EVENTS[1] + ERROR + EVENTS[2]])
    assert [next(it).id, next(it).id] == ["c0", "c1"]
    with pytest.raises(streamspec.StreamError, match="overloaded"):
        next(it)
    assert list(it) == []


def test_a_source_that_drives_its_own_iterator() -> None:
    """Re-entering next() (or close()) from the source: a clear error, as a generator gives."""
    seen: list[BaseException] = []

    def source() -> Iterator[bytes]:
        yield EVENTS[0]
        for call in (lambda: next(it), it.close):  # type: ignore[attr-defined]
            try:
                call()
            except ValueError as exc:
                seen.append(exc)
        yield EVENTS[1]

    it = iterate(ChunkDecoder(), source())
    assert [chunk.id for chunk in it] == ["c0", "c1"]
    assert [str(exc) for exc in seen] == ["ChunkIterator already executing"] * 2


def test_a_hook_that_drives_the_iterator() -> None:
    """A chunk type's hook calling next() on the iterator decoding it: a clear error."""
    import msgspec

    seen: list[BaseException] = []

    class Hooked(msgspec.Struct):
        id: str = ""

        def __post_init__(self) -> None:
            try:
                next(it)
            except ValueError as exc:
                seen.append(exc)

    it = iter_chunks([*EVENTS[:2], DONE], Hooked)
    assert [chunk.id for chunk in it] == ["c0", "c1"]
    assert seen
    assert all("already executing" in str(exc) for exc in seen)
