"""The server-sent events layer: the WHATWG event-stream algorithm, incremental and sans-IO.

Wire format (HTML Living Standard, "Server-sent events", 9.2.5 and 9.2.6)::

    event: error\\r\\n        <- field "event", one leading space of the value dropped
    data: {"error": ...}\\n   <- data lines append to the data buffer, joined by "\\n"
    : keep-alive\\r           <- a line starting with ":" is a comment
    \\n                       <- an empty line dispatches the event

Lines end in CRLF, LF or a lone CR, mixed freely; a CRLF split across two reads
counts once. One leading UTF-8 BOM is dropped; invalid UTF-8 becomes U+FFFD.
At this layer ``[DONE]`` is an ordinary event: :class:`streamspec.ChunkDecoder`
gives it meaning.
"""

from __future__ import annotations

import re

import msgspec

from .errors import EventTooLargeError

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "MAX_RETRY", "SSEParser", "ServerSentEvent"]

DEFAULT_MAX_EVENT_SIZE = 8 * 1024 * 1024
"""Default bound on one event (and on one line): 8 MiB."""

_BOM = b"\xef\xbb\xbf"
_CR = 13
_LF = 10
_COLON = 58

_EOL = rb"(?:\r\n|\r(?!\n)|\n)"
_NOOP_RUN = re.compile(rb"(?:[\r\n]+|(?::[^\r\n]*" + _EOL + rb")+" + _EOL + rb")+")
"""At an event boundary: blank lines and comment-only blocks, which change nothing.

A comment block ends at its blank line; a CR followed by LF is one line
ending, never a comment's end and a blank line (the lookahead says so).
"""
_NOOP_FIRST = (_CR, _LF, _COLON)


MAX_RETRY = 2**63 - 1
"""The largest ``retry`` value reported: a longer run of digits is clamped to it."""


def _retry_value(digits: bytes) -> int:
    """A ``retry:`` value: any run of ASCII digits, clamped to :data:`MAX_RETRY`.

    The spec allows any number of digits; a value of more than 19 significant
    digits is over the bound whatever it is, so it is never converted (Python
    refuses to convert more than 4,300 digits).
    """
    significant = digits.lstrip(b"0")
    if len(significant) > 19:
        return MAX_RETRY
    return min(int(significant or b"0"), MAX_RETRY)


class ServerSentEvent(msgspec.Struct, frozen=True, gc=False):
    """One dispatched event.

    ``event`` is the ``event:`` field of the block, or None when the block set
    none (the spec's default type "message"). ``data`` is the data lines joined
    by "\\n". ``id`` is the last event ID in force at dispatch (it carries over
    from earlier blocks; None while empty). ``retry`` is a valid ``retry:``
    field (ASCII digits only) set in this block, else None; a value over
    :data:`MAX_RETRY` (2**63 - 1 milliseconds) is clamped to it.
    """

    event: str | None = None
    data: str = ""
    id: str | None = None
    retry: int | None = None


class SSEParser:
    """Incremental event-stream parser: bytes in, :class:`ServerSentEvent` out.

    ``feed(data)`` takes any slice of the stream (down to single bytes) and
    returns the events completed by it; ``close()`` ends the stream. An event
    still unterminated at the end is discarded, as the spec says; ``pending``
    tells whether that happened. A line or event over ``max_event_size`` bytes
    raises :class:`streamspec.EventTooLargeError` as soon as it crosses the
    limit.

    Work is linear in the input: each byte is searched once, and a long line
    arriving in many reads is appended to one buffer, never re-copied.
    """

    def __init__(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self.max_event_size = max_event_size
        self._line = bytearray()  # the current, unterminated line
        self._after_cr = False  # last byte seen was CR: a LF right after it is skipped
        self._head: bytes | None = b""  # bytes seen while a BOM is still possible
        self._data: list[bytes] = []
        self._line_start = 0  # stream offset of the current, unterminated line
        self._event = b""
        self._last_id = b""
        self._retry: int | None = None
        self._offset = 0  # stream offset of the next byte fed
        self._block_start = -1  # stream offset of the current block's first line
        self._dispatched = 0  # events dispatched so far
        self._boundary = 0  # stream offset just past the last blank line (an event boundary)
        self._closed = False
        self._failed: EventTooLargeError | None = None
        # Offsets of the events the last feed() returned, for error reports.
        self.event_offsets: list[int] = []
        # Where each of them ends: just past the line ending of its blank line.
        self.event_ends: list[int] = []

    @property
    def pending(self) -> bool:
        """True while the stream is inside an event or a line (not at a clean boundary)."""
        return bool(self._line or self._data or self._event or self._block_start >= 0)

    @property
    def events_dispatched(self) -> int:
        """How many events this parser has dispatched."""
        return self._dispatched

    @property
    def offset(self) -> int:
        """Bytes fed so far."""
        return self._offset

    @property
    def boundary(self) -> int:
        """Stream offset just past the last blank line: everything before it is dealt with.

        A CRLF that ends the blank line counts whole once its LF has arrived.
        """
        return self._boundary

    def _resume(self, offset: int, events: int) -> None:
        """Continue at ``offset`` after ``events`` events were handled elsewhere.

        Used by :class:`streamspec.ChunkDecoder`, whose fast path consumes clean
        runs of data-only events itself and hands the parser the rest, always
        at an event boundary.
        """
        if offset != self._offset:
            self._offset = offset
            self._head = None  # past the stream start: no BOM any more
        self._boundary = offset
        self._dispatched = events

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Parse the next bytes of the stream; return the events they complete.

        An :class:`EventTooLargeError` carries the events this call completed
        before it in ``chunks``; the parser cannot go on after it.
        """
        if self._closed:
            raise ValueError("feed() after close()")
        if self._failed is not None:
            raise self._failed
        events: list[ServerSentEvent] = []
        self.event_offsets = []
        self.event_ends = []
        if not data:
            return events
        try:
            self._feed(data, events)
        except EventTooLargeError as exc:
            exc.chunks = events
            self._failed = exc
            raise
        return events

    def _feed(self, data: bytes, events: list[ServerSentEvent]) -> None:
        if self._head is not None:  # stream start: drop one leading BOM
            head = self._head + bytes(data)
            if len(head) < len(_BOM) and _BOM.startswith(head):
                self._head = head
                return
            self._head = None
            if head.startswith(_BOM):
                head = head[len(_BOM) :]
                self._offset += len(_BOM)
            data = head
        base = self._offset
        self._offset += len(data)
        pos = 0
        end = len(data)
        if self._after_cr:
            self._after_cr = False
            if data[0] == _LF:
                pos = 1
                if self._boundary == base:  # the CRLF of a blank line is now whole
                    self._boundary = base + 1
        if pos < end and data[pos] in _NOOP_FIRST and not self.pending:
            pos = self._skip_noops(data, pos, base)
        next_lf = data.find(b"\n", pos)
        next_cr = data.find(b"\r", pos)
        while pos < end:
            if 0 <= next_lf < pos:
                next_lf = data.find(b"\n", pos)
            if 0 <= next_cr < pos:
                next_cr = data.find(b"\r", pos)
            if next_lf < 0 and next_cr < 0:
                if not self._line:
                    self._line_start = base + pos
                self._line += data[pos:]
                self._check_size(base + end)
                break
            stop = next_lf if next_cr < 0 or (0 <= next_lf < next_cr) else next_cr
            if self._line:
                line_start = base + pos - len(self._line)
                self._line += data[pos:stop]
                line = bytes(self._line)
                self._line.clear()
            else:
                line_start = base + pos
                line = data[pos:stop]
            pos = stop + 1
            if stop == next_cr:
                if pos < end:
                    if data[pos] == _LF:
                        pos += 1
                else:
                    self._after_cr = True
            if line:
                self._process_line(line, line_start, events)
            else:
                self._dispatch(events, base + pos)
                self._boundary = base + pos
                if pos < end and data[pos] in _NOOP_FIRST:
                    pos = self._skip_noops(data, pos, base)

    def _skip_noops(self, data: bytes, pos: int, base: int) -> int:
        """At an event boundary, step over the blank lines and comment-only blocks at ``pos``.

        One regex match instead of a line at a time; the spec's algorithm does
        nothing for them. A run longer than ``max_event_size`` is left to the
        line loop, which measures each block.
        """
        match = _NOOP_RUN.match(data, pos)
        stop = pos if match is None else match.end()
        if stop == pos or stop - pos > self.max_event_size:
            return pos
        # Complete blocks only: the run ends after a blank line.
        self._boundary = base + stop
        if stop == len(data) and data[stop - 1] == _CR:
            self._after_cr = True  # a LF in the next read is part of this CRLF
        return stop

    def close(self) -> list[ServerSentEvent]:
        """End the stream. An unterminated final event is discarded (never dispatched)."""
        self._closed = True
        self.event_offsets = []
        self.event_ends = []
        return []

    def _check_size(self, end: int) -> None:
        """Raise if the event in progress, up to stream offset ``end``, is over the limit.

        An event's size runs from the first byte of its first line to the last
        byte of its latest line, line endings in between included: the same
        count however the stream is split into reads.
        """
        start = self._block_start if self._block_start >= 0 else self._line_start
        size = end - start
        if size > self.max_event_size:
            raise EventTooLargeError(
                self.max_event_size, size, event_index=self._dispatched, offset=start
            )

    def _process_line(self, line: bytes, start: int, events: list[ServerSentEvent]) -> None:
        if self._block_start < 0:
            self._block_start = start
        if start + len(line) - self._block_start > self.max_event_size:
            self._check_size(start + len(line))
        if line[0] == _COLON:
            return  # comment
        colon = line.find(b":")
        if colon < 0:
            name, value = line, b""
        else:
            name, value = line[:colon], line[colon + 1 :]
            if value[:1] == b" ":
                value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value
        elif name == b"id":
            if b"\0" not in value:
                self._last_id = value
        elif name == b"retry" and value.isdigit():  # bytes.isdigit(): ASCII digits only
            self._retry = _retry_value(value)
        # any other field is ignored

    def _dispatch(self, events: list[ServerSentEvent], end: int) -> None:
        if self._data:
            events.append(
                ServerSentEvent(
                    self._event.decode("utf-8", "replace") if self._event else None,
                    b"\n".join(self._data).decode("utf-8", "replace"),
                    self._last_id.decode("utf-8", "replace") if self._last_id else None,
                    self._retry,
                )
            )
            self.event_offsets.append(self._block_start)
            self.event_ends.append(end)
            self._dispatched += 1
            self._data = []
        self._event = b""
        self._retry = None
        self._block_start = -1
