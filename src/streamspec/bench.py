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
from ._peers import PEERS, ceiling, cut_reads, split_payloads, streamspec_decoder
from .samples import synthetic_stream

__all__ = ["Result", "add_arguments", "measure", "run"]

DEFAULT_TOKENS = 2000
DEFAULT_READ_SIZE = 65536
DEFAULT_ROUNDS = 5
MIN_TIME_NS = 250_000_000
"""Fast implementations are timed for at least this long (0.25 s) each."""
MAX_ROUNDS = 10_000


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


def _best_of(func: Callable[[Any], list[Any]], arg: Any, rounds: int) -> tuple[int, int]:
    """The fastest call of ``func(arg)`` in ns, and the number of rounds timed.

    At least ``rounds`` rounds; fast implementations keep going until
    :data:`MIN_TIME_NS` has passed, so that their best is not a lucky or unlucky
    few. Freeing the result is part of a call.
    """
    clock = time.perf_counter_ns
    best = -1
    done = 0
    deadline = clock() + MIN_TIME_NS
    while done < rounds or (clock() < deadline and done < MAX_ROUNDS):
        start = clock()
        func(arg)
        elapsed = clock() - start
        if best < 0 or elapsed < best:
            best = elapsed
        done += 1
    return best, done


def measure(
    tokens: int = DEFAULT_TOKENS,
    read_size: int = DEFAULT_READ_SIZE,
    rounds: int = DEFAULT_ROUNDS,
    *,
    peers: bool = True,
) -> tuple[list[Result], list[str]]:
    """Time streamspec, the ceiling and the installed peers; return results and notes."""
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
    for name, label, func, arg in candidates:
        try:
            count = len(func(arg))  # warm-up, and the check that all agree
        except Exception as exc:
            notes.append(f"{name}: skipped, it failed on this stream ({exc!r})")
            continue
        if count != events:
            notes.append(f"{name}: skipped, it decoded {count} chunks instead of {events}")
            continue
        best, done = _best_of(func, arg, rounds)
        results.append(Result(name, label, best, done, events, len(stream)))
    times = {result.name: result.best_ns for result in results}
    for result in results:
        result.ceiling_ns = times.get("ceiling")
        result.streamspec_ns = times.get("streamspec")
    return results, notes


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
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for number, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return lines


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
    results, notes = measure(tokens, read_size, rounds)
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
            },
            "versions": _versions(results),
            "results": [result.as_dict() for result in results],
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
        f" {rounds} (0.25 s)"
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
    for note in notes:
        print(f"note: {note}")
    return 0
