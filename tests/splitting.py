"""Feed a byte stream to a parser or decoder whole, byte by byte, or at chosen split points.

Every way of cutting a stream into reads must give the same result. The helpers
here run one stream several ways and return an :class:`Outcome` that can be
compared with ``==``: the chunks (or events) produced, in order, the errors
raised (with where they happened), and whether the stream finished.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from streamspec import (
    ChunkDecoder,
    Error,
    EventTooLargeError,
    MalformedEventError,
    SSEParser,
    StreamError,
)

STREAMS = Path(__file__).resolve().parent.parent / "fixtures" / "streams"
MANIFEST: dict[str, dict[str, Any]] = json.loads(
    (STREAMS / "MANIFEST.json").read_text(encoding="utf-8")
)
FIXTURE_NAMES = sorted(MANIFEST)

RESUMABLE = (StreamError, MalformedEventError)
"""Errors after which the decoder goes on with the bytes it already holds."""


def fixture(name: str) -> bytes:
    """The raw bytes of a fixture stream."""
    return (STREAMS / name).read_bytes()


class ErrorRecord(NamedTuple):
    """One error raised while feeding, with enough detail to compare two runs."""

    type: type[Error]
    position: int  # how many items had been produced before it (exc.chunks included)
    event_index: int | None
    offset: int | None
    message: str
    chunk: Any  # StreamError.chunk, else None
    error: Any  # StreamError.error (the server's error object), else None

    @classmethod
    def of(cls, exc: Error, position: int) -> ErrorRecord:
        # How many bytes were buffered when the limit was crossed depends on the
        # reads, so that message is left out of the comparison.
        message = "" if isinstance(exc, EventTooLargeError) else str(exc)
        return cls(
            type(exc),
            position,
            exc.event_index,
            exc.offset,
            message,
            getattr(exc, "chunk", None),
            getattr(exc, "error", None),
        )


class Outcome(NamedTuple):
    """What feeding a stream produced.

    ``items``: chunks (decoder) or events (SSE parser), including those handed
    over on ``exc.chunks``. ``error``: the type of the first error, or None.
    ``done``: the decoder's ``done``; for the SSE parser, True when the stream
    ended at an event boundary (nothing pending). ``errors``: every error, in
    order, with its position among the items.
    """

    items: list[Any]
    error: type[Error] | None
    done: bool
    errors: tuple[ErrorRecord, ...] = ()
    counts: tuple[int, ...] = ()
    """Decoder runs: ``events`` and ``bytes_consumed`` after the last read, then after
    ``close()``; only ``events`` when the run stopped at an error, and ``bytes_consumed``
    too when that error is an :class:`EventTooLargeError` (the oversized block's offset)."""


def split_at(data: bytes, points: Iterable[int]) -> list[bytes]:
    """Cut ``data`` at ``points`` (out-of-range and repeated points are ignored)."""
    cuts = sorted({p for p in points if 0 < p < len(data)})
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)] if data else []


def bytewise(data: bytes) -> list[bytes]:
    """One read per byte."""
    return [data[i : i + 1] for i in range(len(data))]


def run_decoder(
    reads: Iterable[bytes],
    factory: Callable[[], Any] = ChunkDecoder,
    *,
    resume: bool = False,
    close: bool = True,
) -> Outcome:
    """Feed ``reads`` to a fresh decoder, then close it.

    Without ``resume`` the first error ends the run. With it, after a
    :class:`StreamError` or :class:`MalformedEventError` the run goes on as the
    decoder documents: ``feed(b"")`` until the bytes already given are used up,
    then the next read.
    """
    decoder = factory()
    items: list[Any] = []
    errors: list[ErrorRecord] = []

    def record(exc: Error) -> None:
        items.extend(exc.chunks)
        errors.append(ErrorRecord.of(exc, len(items)))

    def feed(data: bytes) -> bool:
        while True:
            try:
                items.extend(decoder.feed(data))
                return True
            except Error as exc:
                record(exc)
                if not (resume and isinstance(exc, RESUMABLE)):
                    return False
                data = b""  # go on with the bytes the decoder already holds

    counts: list[int] = []
    if all(feed(data) for data in reads):
        # Every byte was fed: where the decoder stands no longer depends on the reads.
        counts += decoder.events, decoder.bytes_consumed
        if close:
            try:
                items.extend(decoder.close())
            except Error as exc:
                record(exc)
            counts += decoder.events, decoder.bytes_consumed
    else:  # stopped at an error: how many bytes were fed by then depends on the reads
        counts.append(decoder.events)
        if errors[-1].type is EventTooLargeError:  # unless it is fatal: then it is where it starts
            counts.append(decoder.bytes_consumed)
    errors_seen = errors[0].type if errors else None
    return Outcome(items, errors_seen, decoder.done, tuple(errors), tuple(counts))


def run_parser(reads: Iterable[bytes], factory: Callable[[], Any] = SSEParser) -> Outcome:
    """Feed ``reads`` to a fresh SSE parser, then close it."""
    parser = factory()
    items: list[Any] = []
    errors: list[ErrorRecord] = []
    try:
        for data in reads:
            items.extend(parser.feed(data))
        clean = not parser.pending
        items.extend(parser.close())
    except Error as exc:
        items.extend(exc.chunks)
        errors.append(ErrorRecord.of(exc, len(items)))
        clean = False
    return Outcome(items, errors[0].type if errors else None, clean, tuple(errors))


def _describe(outcome: Outcome) -> str:
    return (
        f"{len(outcome.items)} items, errors={list(outcome.errors)!r}, done={outcome.done},"
        f" events/bytes_consumed={outcome.counts}"
    )


def assert_same(expected: Outcome, actual: Outcome, how: str) -> None:
    """Assert two outcomes are identical, with a readable message."""
    if actual != expected:
        pairs = enumerate(zip(expected.items, actual.items, strict=False))
        first = next((i for i, (a, b) in pairs if a != b), None)
        raise AssertionError(
            f"{how} differs from whole: whole gave {_describe(expected)};"
            f" {how} gave {_describe(actual)}; first differing item: {first}"
        )


def three_ways(
    run: Callable[[list[bytes]], Outcome], data: bytes, points: Sequence[int] = ()
) -> Outcome:
    """Run ``data`` whole, byte by byte and split at ``points``; assert identical outcomes.

    Returns the outcome (the same for all three).
    """
    whole = run([data])
    assert_same(whole, run(bytewise(data)), "byte by byte")
    assert_same(whole, run(split_at(data, points)), f"split at {sorted(set(points))}")
    return whole
