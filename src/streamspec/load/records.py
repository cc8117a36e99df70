"""Per-request records of a load test: one JSON object per line, mergeable across machines.

A :class:`RequestRecord` holds everything the summary is computed from, so
that the records of several runs (several machines, or a Locust run's
workers) concatenated give exactly the summary one run holding all of them
would give (``streamspec report a.jsonl b.jsonl``). One line looks like::

    {"start": 1764581430.123456, "status": "complete", "error_kind": null, "error": null,
     "ttft_ms": 51.2, "e2el_ms": 702.9, "itl_ms": [20.1, 19.9, ...], "output_tokens": 32,
     "output_tokens_basis": "usage", "input_tokens": 9, "chunks": 35, "token_chunks": 32,
     "queue_ms": 0.0}

``start`` is when the request was due to be sent (Unix time, seconds): with a
request rate that is the scheduled arrival, so time spent waiting for a free
connection slot counts in TTFT and E2EL (``queue_ms`` says how much). Times
after it are milliseconds measured on a monotonic clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import accumulate as running_sum
from pathlib import Path
from typing import IO, Literal

import msgspec

from ..metrics import StreamMeter, StreamStatus

__all__ = ["RequestRecord", "read_records", "record_from_meter", "write_records"]


class RequestRecord(msgspec.Struct, kw_only=True, frozen=True):
    """One request of a load test, with the definitions of :mod:`streamspec.metrics`.

    * ``start``: when the request was due (Unix time, s); the origin of every time below.
    * ``status`` / ``error_kind`` / ``error``: how it ended (see :class:`StreamMetrics`).
    * ``ttft_ms``: time to the first token chunk; ``None`` if none arrived.
    * ``e2el_ms``: time to the end of the stream (or of the failure).
    * ``itl_ms``: every gap between consecutive token chunks, in order.
    * ``output_tokens`` / ``output_tokens_basis``: ``usage.completion_tokens``
      (``"usage"``) or the number of token chunks (``"chunks"``).
    * ``input_tokens``: ``usage.prompt_tokens``, or ``None`` without usage.
    * ``chunks`` / ``token_chunks``: chunks decoded, and those carrying output.
    * ``queue_ms``: time between ``start`` and the request actually being sent.
    """

    start: float
    status: StreamStatus
    error_kind: str | None = None
    error: str | None = None
    ttft_ms: float | None = None
    e2el_ms: float | None = None
    itl_ms: list[float] = []
    output_tokens: int = 0
    output_tokens_basis: Literal["usage", "chunks"] = "chunks"
    input_tokens: int | None = None
    chunks: int = 0
    token_chunks: int = 0
    queue_ms: float = 0.0

    @property
    def tpot_ms(self) -> float | None:
        """``(e2el - ttft) / (output_tokens - 1)``; None with fewer than two tokens."""
        if self.ttft_ms is None or self.e2el_ms is None or self.output_tokens < 2:
            return None
        return (self.e2el_ms - self.ttft_ms) / (self.output_tokens - 1)

    @property
    def end(self) -> float:
        """When the request ended (Unix time, s)."""
        return self.start + (self.e2el_ms or 0.0) / 1000.0

    def token_times(self) -> list[float]:
        """When each token chunk arrived (Unix time, s); empty if none did."""
        if self.ttft_ms is None:
            return []
        offsets = running_sum(self.itl_ms, initial=self.ttft_ms)
        return [self.start + offset / 1000.0 for offset in offsets]


def record_from_meter(meter: StreamMeter, start: float, queue_ms: float = 0.0) -> RequestRecord:
    """The record of a finished request metered by ``meter`` (``start``: Unix time, s)."""
    metrics = meter.result()
    return RequestRecord(
        start=start,
        status=metrics.status,
        error_kind=metrics.error_kind,
        error=metrics.error,
        ttft_ms=metrics.ttft_ms,
        e2el_ms=metrics.e2el_ms,
        itl_ms=[gap * 1e-6 for gap in meter.itl_ns],
        output_tokens=metrics.output_tokens,
        output_tokens_basis=metrics.output_tokens_basis,
        input_tokens=metrics.prompt_tokens,
        chunks=metrics.chunks,
        token_chunks=metrics.token_chunks,
        queue_ms=queue_ms,
    )


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(RequestRecord)


def write_records(records: Iterable[RequestRecord], target: str | Path | IO[bytes]) -> int:
    """Write ``records`` as JSON lines to a path or a binary file; return how many."""
    if isinstance(target, str | Path):
        with open(target, "wb") as file:
            return write_records(records, file)
    count = 0
    buffer = bytearray()
    for record in records:
        _ENCODER.encode_into(record, buffer, -1)
        buffer += b"\n"
        count += 1
        if len(buffer) > 1 << 16:
            target.write(buffer)
            buffer.clear()
    target.write(buffer)
    return count


def read_records(path: str | Path) -> Iterator[RequestRecord]:
    """The records of a JSON-lines file; a bad line raises ``ValueError`` naming it."""
    with open(path, "rb") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                yield _DECODER.decode(line)
            except msgspec.DecodeError as exc:
                raise ValueError(f"{path}:{number}: not a request record: {exc}") from None
