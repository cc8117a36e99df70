"""``streamspec bench``: how fast streamspec decodes a stream, next to its peers, on this machine.

It builds a synthetic OpenAI stream (:func:`streamspec.samples.synthetic_stream`),
cuts it into reads, and times with :func:`time.perf_counter_ns`, keeping the
best of several rounds (at least ``--rounds``, and 0.25 s for the fast ones;
the garbage collector left as it is):

* ``streamspec``: a fresh :class:`streamspec.ChunkDecoder` fed the reads;
* ``ceiling``: the same JSON payloads, cut out in advance, decoded by one
  reused :class:`msgspec.json.Decoder` of the same chunk type: the floor;
* every installed peer of :data:`streamspec._peers.PEERS` (the openai SDK's
  default and validating paths, httpx-sse + ``json``, orjson dicts,
  pydantic); a peer whose library is missing is skipped with a note.

Every implementation gets the same bytes and must return the same number of
chunks. The table gives ns per chunk, MB/s of stream bytes, the ratio to the
ceiling and streamspec's speed-up over each peer.

A second table times streamspec on every read shape of
:data:`streamspec._peers.READ_SHAPES` (one event per read, two per read, every
event split across two reads, 4 KiB, 64 KiB, the whole stream), with the
compiled accelerator and with the pure-Python hot path (both in this
process), each as a ratio to the ceiling of the same run. Slow
implementations stop after 1 s of rounds, so the command takes a few
seconds; while it measures, a progress line on stderr says what it is timing.

Use :func:`add_arguments` to declare the options on a parser and :func:`run`
to execute the command.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ._fastpath import IMPLEMENTATION
from ._peers import (
    PEERS,
    READ_SHAPES,
    ceiling,
    cut_reads,
    python_decoder,
    shape_reads,
    split_payloads,
    streamspec_decoder,
)
from .samples import synthetic_stream

__all__ = ["Result", "ShapeResult", "add_arguments", "measure", "measure_shapes", "run"]

DEFAULT_TOKENS = 2000
DEFAULT_READ_SIZE = 65536
DEFAULT_ROUNDS = 5
MIN_TIME_NS = 250_000_000
"""Fast implementations are timed for at least this long (0.25 s) each."""
SHAPE_TIME_NS = 100_000_000
"""Each read shape is timed for at least this long (0.1 s)."""
MAX_TIME_NS = 1_000_000_000
"""No implementation is timed for longer than this (1 s), whatever ``--rounds`` says."""
MAX_ROUNDS = 10_000

Progress = Callable[[str], None]
"""Told what is being timed, before it is."""


def _quiet(text: str) -> None:
    pass


@dataclass
class Result:
    """The best time of one implementation over the stream, of ``rounds`` timed rounds."""

    name: str
    label: str
    best_ns: int
    rounds: int
    events: int
    stream_bytes: int
    ceiling_ns: int | None = None
    streamspec_ns: int | None = None

    @property
    def ns_per_event(self) -> float:
        return self.best_ns / self.events

    @property
    def mb_per_s(self) -> float:
        """Stream bytes (framing included, for every row) per second, in MB (10**6 bytes)."""
        return self.stream_bytes * 1e3 / self.best_ns

    @property
    def ratio_to_ceiling(self) -> float | None:
        return self.best_ns / self.ceiling_ns if self.ceiling_ns else None

    @property
    def speedup(self) -> float | None:
        """How many times faster streamspec is than this implementation."""
        return self.best_ns / self.streamspec_ns if self.streamspec_ns else None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            ns_per_event=round(self.ns_per_event, 1),
            mb_per_s=round(self.mb_per_s, 1),
            ratio_to_ceiling=_rounded(self.ratio_to_ceiling),
            speedup=_rounded(self.speedup),
        )
        return data


@dataclass
class ShapeResult:
    """The best time of streamspec over the stream cut into one read shape."""

    shape: str
    label: str
    impl: str
    """``"c"`` (the compiled accelerator) or ``"python"`` (the pure-Python hot path)."""
    reads: int
    best_ns: int
    rounds: int
    events: int
    ceiling_ns: int
    """The ceiling's best time in rounds alternating with this shape's."""

    @property
    def ns_per_event(self) -> float:
        return self.best_ns / self.events

    @property
    def ratio_to_ceiling(self) -> float:
        return self.best_ns / self.ceiling_ns

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            ns_per_event=round(self.ns_per_event, 1),
            ratio_to_ceiling=round(self.ratio_to_ceiling, 3),
        )
        return data


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``streamspec bench`` on ``parser``."""
    parser.add_argument(
        "--tokens",
        type=int,
        default=DEFAULT_TOKENS,
        metavar="N",
        help=f"content tokens (events) in the synthetic stream (default {DEFAULT_TOKENS})",
    )
    parser.add_argument(
        "--read-size",
        type=int,
        default=DEFAULT_READ_SIZE,
        metavar="BYTES",
        help=(
            f"bytes per read fed to the decoders (default {DEFAULT_READ_SIZE}); "
            "0 feeds one event per read, like a live socket"
        ),
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        metavar="N",
        help=(
            f"timed rounds per implementation, at least (default {DEFAULT_ROUNDS}); fast ones"
            " run for 0.25 s; the best round is kept"
        ),
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the results as JSON instead of a table",
    )
    parser.add_argument(
        "--no-shapes",
        action="store_true",
        help="skip the read-shape table (streamspec, C and pure Python, on six read shapes)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress line on stderr while measuring"
    )


def _best_of(
    func: Callable[[Any], list[Any]], arg: Any, rounds: int, min_ns: int = MIN_TIME_NS
) -> tuple[int, int]:
    """The fastest call of ``func(arg)`` in ns, and the number of rounds timed.

    At least ``rounds`` rounds, unless :data:`MAX_TIME_NS` has passed (one
    round at least); fast implementations keep going until ``min_ns`` has
    passed, so that their best is not a lucky or unlucky few. Freeing the
    result is part of a call.
    """
    clock = time.perf_counter_ns
    best = -1
    done = 0
    started = clock()
    while True:
        start = clock()
        func(arg)
        end = clock()
        elapsed = end - start
        if best < 0 or elapsed < best:
            best = elapsed
        done += 1
        spent = end - started
        if spent >= MAX_TIME_NS or done >= MAX_ROUNDS or (done >= rounds and spent >= min_ns):
            return best, done


def _paired(
    func: Callable[[Any], list[Any]],
    arg: Any,
    floor: Callable[[Any], list[Any]],
    floor_arg: Any,
    rounds: int,
    min_ns: int,
) -> tuple[int, int, int]:
    """Best times of ``func(arg)`` and ``floor(floor_arg)`` in alternating rounds.

    Alternating makes the ratio of the two immune to a change of load on the
    machine while they are timed. Returns both best times and the rounds.
    """
    clock = time.perf_counter_ns
    best = best_floor = -1
    done = 0
    started = clock()
    while True:
        start = clock()
        func(arg)
        middle = clock()
        floor(floor_arg)
        end = clock()
        if best < 0 or middle - start < best:
            best = middle - start
        if best_floor < 0 or end - middle < best_floor:
            best_floor = end - middle
        done += 1
        spent = end - started
        if spent >= MAX_TIME_NS or done >= MAX_ROUNDS or (done >= rounds and spent >= min_ns):
            return best, best_floor, done


def measure(
    tokens: int = DEFAULT_TOKENS,
    read_size: int = DEFAULT_READ_SIZE,
    rounds: int = DEFAULT_ROUNDS,
    *,
    peers: bool = True,
    progress: Progress = _quiet,
) -> tuple[list[Result], list[str]]:
    """Time streamspec, the ceiling and the installed peers; return results and notes.

    ``progress`` is called with what is about to be timed.
    """
    stream = synthetic_stream(tokens)
    reads = cut_reads(stream, read_size)
    payloads = split_payloads(stream)
    events = len(payloads)
    notes: list[str] = []
    candidates: list[tuple[str, str, Callable[[Any], list[Any]], Sequence[bytes]]] = [
        ("ceiling", "msgspec ceiling (pre-split payloads)", ceiling(), payloads),
        ("streamspec", "streamspec ChunkDecoder", streamspec_decoder(), reads),
    ]
    missing: dict[str, list[str]] = {}
    if peers:
        for peer in PEERS:
            try:
                func = peer.build()
            except ImportError:
                missing.setdefault(peer.requires, []).append(peer.name)
                continue
            candidates.append((peer.name, peer.label, func, reads))
    for requires, names in missing.items():
        notes.append(
            f"{', '.join(names)}: skipped, {requires} is not installed (pip install {requires})"
        )
    results: list[Result] = []
    for step, (name, label, func, arg) in enumerate(candidates, 1):
        progress(f"timing {label} ({step}/{len(candidates)})")
        try:
            started = time.perf_counter_ns()
            count = len(func(arg))  # warm-up, and the check that all agree
            warm_up = time.perf_counter_ns() - started
        except Exception as exc:
            notes.append(f"{name}: skipped, it failed on this stream ({exc!r})")
            continue
        if count != events:
            notes.append(f"{name}: skipped, it decoded {count} chunks instead of {events}")
            continue
        if warm_up >= MAX_TIME_NS // 2:  # slow: one more round would not tell much more
            best, done = warm_up, 1
        else:
            best, done = _best_of(func, arg, rounds)
        results.append(Result(name, label, best, done, events, len(stream)))
    times = {result.name: result.best_ns for result in results}
    for result in results:
        result.ceiling_ns = times.get("ceiling")
        result.streamspec_ns = times.get("streamspec")
    return results, notes


def measure_shapes(
    tokens: int = DEFAULT_TOKENS,
    rounds: int = DEFAULT_ROUNDS,
    *,
    progress: Progress = _quiet,
) -> tuple[list[ShapeResult], list[str]]:
    """Time streamspec on every read shape, compiled and pure Python; return results and notes.

    Each shape's rounds alternate with rounds of the ceiling, whose best in
    the same stretch of time is the row's denominator.
    """
    stream = synthetic_stream(tokens)
    payloads = split_payloads(stream)
    events = len(payloads)
    floor = ceiling()
    notes: list[str] = []
    impls: list[tuple[str, Callable[[Any], list[Any]]]] = []
    if IMPLEMENTATION == "c":
        impls.append(("c", streamspec_decoder()))
    else:
        notes.append("the compiled accelerator is not loaded: no C rows")
    impls.append(("python", python_decoder()))
    from . import decoder

    if IMPLEMENTATION == "c" and not hasattr(decoder, "PyChunkDecoder"):
        notes.append(
            "pure-Python rows: this decoder has no PyChunkDecoder, so they run the"
            " pure-Python core over the compiled split_events"
        )
    results: list[ShapeResult] = []
    steps = len(READ_SHAPES) * len(impls)
    step = 0
    floor(payloads)  # warm-up
    for shape, label in READ_SHAPES.items():
        reads = shape_reads(stream, shape)
        for impl, func in impls:
            step += 1
            which = "C" if impl == "c" else "pure Python"
            progress(f"timing read shapes: {label}, {which} ({step}/{steps})")
            count = len(func(reads))
            if count != events:
                notes.append(f"{shape} ({impl}): decoded {count} chunks instead of {events}")
                continue
            best, best_floor, done = _paired(func, reads, floor, payloads, rounds, SHAPE_TIME_NS)
            results.append(
                ShapeResult(shape, label, impl, len(reads), best, done, events, best_floor)
            )
    return results, notes


def _shape_table(results: list[ShapeResult]) -> list[str]:
    header = ("read shape", "reads", "C ns/event", "C vs ceiling", "Python ns/event", "vs ceiling")
    rows: list[tuple[str, ...]] = [header]
    for shape, label in READ_SHAPES.items():
        found = {r.impl: r for r in results if r.shape == shape}
        if not found:
            continue
        cells = [label, f"{next(iter(found.values())).reads:,}"]
        for impl in ("c", "python"):
            result = found.get(impl)
            if result is None:
                cells += ["-", "-"]
            else:
                cells += [f"{result.ns_per_event:,.0f}", f"{result.ratio_to_ceiling:.2f}x"]
        rows.append(tuple(cells))
    return _align(rows)


def _versions(results: list[Result]) -> dict[str, str]:
    """Versions of Python and of the libraries behind ``results``."""
    measured = {result.name for result in results}
    peers = dict.fromkeys(peer.requires for peer in PEERS if peer.name in measured)
    found = {"python": platform.python_version()}
    for name in ("streamspec", "msgspec", *peers):
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    found["fast paths"] = IMPLEMENTATION
    return found


def _reads_label(read_size: int, reads: int) -> str:
    if read_size == 0:
        return f"one event per read ({reads:,} reads)"
    size = f"{read_size // 1024} KiB" if read_size % 1024 == 0 else f"{read_size:,} bytes"
    return f"{size} reads ({reads:,} reads)"


def _table(results: list[Result]) -> list[str]:
    header = ("implementation", "ns/event", "MB/s", "vs ceiling", "streamspec speed-up")
    rows = [header]
    for result in results:
        ratio = result.ratio_to_ceiling
        speedup = result.speedup
        rows.append(
            (
                result.label,
                f"{result.ns_per_event:,.0f}",
                f"{result.mb_per_s:,.1f}",
                "-" if ratio is None else f"{ratio:.2f}x",
                "-"
                if speedup is None or result.name in ("ceiling", "streamspec")
                else f"{speedup:.1f}x",
            )
        )
    return _align(rows)


def _align(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """A text table: the first column left-aligned, the others right-aligned, a rule under row 0."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return lines


class _Reporter:
    """Progress on stderr: a redrawn line on a terminal, one line per step otherwise."""

    def __init__(self, quiet: bool) -> None:
        from .cli._common import Progress as Line

        self.quiet = quiet
        self.terminal = not quiet and sys.stderr.isatty()
        self.line = Line(self.terminal)

    def __call__(self, text: str) -> None:
        if self.quiet:
            return
        if self.terminal:
            self.line.show(text)
        else:
            print(f"streamspec bench: {text}", file=sys.stderr, flush=True)

    def clear(self) -> None:
        self.line.clear()


def run(args: argparse.Namespace) -> int:
    """Run ``streamspec bench`` with the options of :func:`add_arguments`; return the exit code."""
    tokens: int = args.tokens
    read_size: int = args.read_size
    rounds: int = args.rounds
    for option, value, least in (("--tokens", tokens, 1), ("--read-size", read_size, 0)):
        if value < least:
            print(f"streamspec bench: {option} must be >= {least}", file=sys.stderr)
            return 2
    if rounds < 1:
        print("streamspec bench: --rounds must be >= 1", file=sys.stderr)
        return 2
    reporter = _Reporter(args.quiet)
    try:
        results, notes = measure(tokens, read_size, rounds, progress=reporter)
        shapes: list[ShapeResult] = []
        if not args.no_shapes:
            shapes, shape_notes = measure_shapes(tokens, rounds, progress=reporter)
            notes += shape_notes
    finally:
        reporter.clear()
    stream_bytes = results[0].stream_bytes if results else 0
    events = results[0].events if results else 0
    reads = len(cut_reads(synthetic_stream(tokens), read_size))
    if args.json:
        report = {
            "stream": {
                "kind": "synthetic OpenAI chat.completion.chunk stream",
                "tokens": tokens,
                "events": events,
                "bytes": stream_bytes,
                "read_size": read_size,
                "reads": reads,
            },
            "timing": {
                "clock": "time.perf_counter_ns",
                "statistic": "best round",
                "min_rounds": rounds,
                "min_time_s": MIN_TIME_NS / 1e9,
                "shape_min_time_s": SHAPE_TIME_NS / 1e9,
                "max_time_s": MAX_TIME_NS / 1e9,
            },
            "versions": _versions(results),
            "results": [result.as_dict() for result in results],
            "shapes": [result.as_dict() for result in shapes],
            "notes": notes,
        }
        print(json.dumps(report, indent=2))
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        return 0
    versions = ", ".join(f"{name} {number}" for name, number in _versions(results).items())
    print(
        f"streamspec bench: synthetic OpenAI stream, {tokens:,} tokens, {events:,} chunks, "
        f"{stream_bytes:,} bytes, {_reads_label(read_size, reads)}; best round of at least"
        f" {rounds} (0.25 s, at most 1 s)"
    )
    print(versions)
    print()
    for line in _table(results):
        print(line)
    print()
    print(
        "ns/event: time per decoded chunk. MB/s: stream bytes per second. vs ceiling: time over\n"
        "msgspec decoding the same payloads cut out in advance. speed-up: the implementation's\n"
        "time over streamspec's."
    )
    if shapes:
        print()
        print(
            "Read shapes: streamspec with the compiled accelerator (C) and the pure-Python hot"
            " path,\neach over the msgspec ceiling timed in alternate rounds (best of at least"
            f" {rounds} pairs, 0.1 s)"
        )
        print()
        for line in _shape_table(shapes):
            print(line)
    for note in notes:
        print(f"note: {note}")
    return 0
