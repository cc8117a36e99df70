"""The incremental checker: reads in, a :class:`CheckReport` out, memory bounded by one event.

:class:`StreamChecker` frames the stream as :class:`streamspec.ChunkDecoder`
does: runs of ``data:`` events without CR are cut by the compiled
``split_events`` and every payload of a read is decoded with one probe type in
one ``map()`` (see :mod:`streamspec.check._probes`); anything else (comments,
``event:``/``id:`` lines, CR line endings, a BOM, a payload a probe rejects)
goes through :class:`streamspec.SSEParser` and the exact walk of
:mod:`streamspec.check._walk`, one event at a time. What is kept between reads
is the unfinished event (at most ``max_event_size`` bytes), the stream-wide
state of the strict rules, and the report itself, whose lists are capped.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Iterable
from operator import attrgetter
from typing import Any

import msgspec
from msgspec import UNSET

from .._fastpath import split_events
from ..decoder import error_report
from ..errors import EventTooLargeError
from ..http import parse_error_body
from ..salvage import SalvageNote, salvage
from ..sse import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent, SSEParser
from ..types.completions import CreateCompletionResponse
from ..types.stream import CreateChatCompletionStreamResponse
from ._probes import Probe, probes
from ._report import CheckReport, Note, Problem, ProblemKind, StreamKind
from ._walk import Walk, describe, describe_error_event, show, validation

__all__ = [
    "DEFAULT_MAX_NOTES",
    "DEFAULT_MAX_PROBLEMS",
    "StreamChecker",
    "acheck_stream",
    "check_stream",
]

DEFAULT_MAX_PROBLEMS = 1000
"""Problems listed in a report at most; more are counted in ``problems_omitted``."""
DEFAULT_MAX_NOTES = 1000
"""Distinct extension paths listed at most; more are counted in ``notes_omitted``."""
READ_SIZE = 1 << 16
""":func:`check_stream` cuts a whole stream into reads of this size."""

_DONE = b"[DONE]"
_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"
_SSE_FIELDS = frozenset({b"data", b"event", b"id", b"retry"})
_LINE = re.compile(rb"([^\r\n]*)(\r\n|\r|\n)")
_TITLE = re.compile(rb"<title[^>]*>([^<]*)<", re.IGNORECASE)
_MESSAGE_LIMIT = 1000
"""Characters of a problem's message kept."""
_LONG_LINE = 4000
"""A ``retry:`` line this long may hold more digits than ``int()`` converts."""
_HTML_HEAD = 4096
"""Bytes of an HTML body kept (for its title)."""
_DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
_decode_raw = msgspec.json.Decoder().decode
_LENIENT: dict[str, type] = {
    "chat": CreateChatCompletionStreamResponse,
    "completions": CreateCompletionResponse,
}
_ERROR = attrgetter("error")
_ID = attrgetter("id")
_CREATED = attrgetter("created")
_CHOICES = attrgetter("choices")
_USAGE = attrgetter("usage")


def _text(raw: bytes) -> str:
    return " ".join(raw.decode("utf-8", "replace").split())


def _event_length(payload: bytes) -> int:
    """Bytes of the event a ``split_events`` payload came from: ``data:``, line, blank line."""
    return len(payload) + (6 if payload[-1:] == b"\n" else 7)


def _payload_text(payload: bytes) -> tuple[str, int]:
    """A ``split_events`` payload as the SSE algorithm gives its data, and where the data starts.

    Returns the text (invalid UTF-8 replaced) and the offset in the payload of
    the first invalid byte, or -1.
    """
    skip = 1 if payload[:1] == b" " else 0
    body = payload[skip : len(payload) - 1] if payload[-1:] == b"\n" else payload[skip:]
    try:
        return body.decode("utf-8"), -1
    except UnicodeDecodeError as exc:
        return body.decode("utf-8", "replace"), skip + exc.start


def _kind_of(raw: Any) -> StreamKind | None:
    """The stream kind a decoded first payload shows, or None if it shows none."""
    if not isinstance(raw, dict):
        return None
    obj = raw.get("object")
    if obj == "text_completion":
        return "completions"
    if obj == "chat.completion.chunk":
        return "chat"
    choices = raw.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        first = choices[0]
        if "text" in first and "delta" not in first:
            return "completions"
        if "delta" in first:
            return "chat"
    return None


class _Salvaged:
    """Values the decoder drops at one path: how many events, the first, what it said."""

    __slots__ = ("events", "first", "path", "reason")

    def __init__(self, path: str, first: int, reason: str) -> None:
        self.path = path
        self.events = 1
        self.first = first
        self.reason = reason


def _order(problem: Problem) -> tuple[int, int, bool]:
    """Problems in stream order; at one place, what breaks decoding before what is off-spec."""
    return (problem.event, problem.offset, problem.kind in ("spec", "sse"))


class _Audit:
    """Strict SSE line checks: unknown fields and invalid UTF-8, read incrementally.

    Lines are split as the SSE algorithm splits them (CRLF, LF or CR, a CRLF
    split across reads counting once); a line belongs to the event its block
    dispatches, or to the next event when its block carries no data.
    """

    def __init__(self, checker: StreamChecker) -> None:
        self.checker = checker
        self.pending = bytearray()  # the unterminated last line
        self.offset = 0  # stream offset of pending[0]
        self.index = 0  # the event the current block would dispatch
        self.has_data = False
        self.start = True

    def sync(self, offset: int, index: int) -> None:
        """Start again at an event boundary (pending empty)."""
        self.pending.clear()
        self.offset = offset
        self.index = index
        self.has_data = False
        self.start = offset == 0

    def feed(self, data: bytes) -> None:
        pending = self.pending
        if pending and 10 not in data and 13 not in data and pending[-1] != 13:
            pending += data
            return
        pending += data
        position = 0
        if self.start and len(pending) >= 3:
            self.start = False
            if pending.startswith(_BOM):
                position = 3
        elif self.start:
            return
        end = len(pending)
        if pending[-1:] == b"\r":
            end -= 1  # a LF may follow in the next read
        for match in _LINE.finditer(pending, position, end):
            self.line(match[1], self.offset + match.start())
            position = match.end()
        del pending[:position]
        self.offset += position

    def line(self, line: bytes, offset: int) -> None:
        checker = self.checker
        if not checker.utf8_reported:
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                checker.utf8_reported = True
                checker.line_problem(
                    self.index, offset, f"invalid UTF-8 at byte {offset + exc.start}"
                )
        if not line:
            self.index += self.has_data
            self.has_data = False
            return
        if line[:1] == b":":
            return
        name = line.split(b":", 1)[0]
        if name == b"data":
            self.has_data = True
        elif name not in _SSE_FIELDS:
            text = name.decode("utf-8", "replace")[:80]
            hint = " (old llama.cpp reports errors this way)" if name == b"error" else ""
            checker.line_problem(
                self.index,
                offset,
                f"unknown SSE field `{text}:`, ignored by spec-following clients{hint}",
            )


class _Parser(SSEParser):
    """The SSE parser, reading a ``retry:`` line too long for ``int()`` as the comment it may be.

    A retry value only sets a client's reconnection delay, which a check does
    not report; the line keeps its length, so offsets and sizes are unchanged.
    """

    def _process_line(self, line: bytes, start: int, events: list[ServerSentEvent]) -> None:
        if len(line) > _LONG_LINE and line.startswith(b"retry:"):
            line = b":" + line[1:]
        super()._process_line(line, start, events)


class StreamChecker(Walk):
    """Check an SSE stream read by read; see :mod:`streamspec.check`.

    ``feed(data)`` takes the next bytes of the stream (any split, down to
    single bytes, gives the same report); ``close()`` ends the stream and
    returns the :class:`CheckReport`. Memory is bounded by ``max_event_size``
    (the event in progress) and by the report's caps, whatever the stream's
    length. ``kind`` is ``"chat"``, ``"completions"`` or None to detect it
    from the first chunk.
    """

    def __init__(
        self,
        *,
        strict: bool = False,
        kind: StreamKind | None = None,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        max_problems: int = DEFAULT_MAX_PROBLEMS,
        max_notes: int = DEFAULT_MAX_NOTES,
    ) -> None:
        super().__init__()
        if kind not in (None, "chat", "completions"):
            raise ValueError(f"kind must be 'chat', 'completions' or None, not {kind!r}")
        self.strict = strict
        self.kind: StreamKind | None = kind
        self.max_event_size = max_event_size
        self.max_problems = max_problems
        self.max_notes = max_notes
        self.size = 0
        self.events = 0
        self.chunks = 0
        self.done = False
        self.problems: list[Problem] = []
        self.problems_omitted = 0
        self.notes: dict[str, list[int]] = {}  # path -> [events, first event]
        self.salvaged: dict[str, _Salvaged] = {}  # action and dropped path -> what was dropped
        self.notes_omitted = 0
        self.utf8_reported = False
        self.status: int | None = None  # the HTTP status, when the stream came from a URL
        # start, lf (fast framing), sse (the parser for the rest), json or html (a whole body)
        self._mode = "start"
        self._head = b""  # the first bytes, until the stream's nature shows
        self._tail = bytearray()  # the unfinished event (lf mode)
        self._base = 0  # stream offset of the tail (lf mode)
        self._sse = _Parser(max_event_size=max_event_size)
        self._audit = _Audit(self) if strict else None
        self._json = bytearray()
        self._server_error = False
        self._truncated = False
        self._stopped = False  # nothing more to learn from later bytes
        self._after_done = False
        self._closed = False
        self._report: CheckReport | None = None
        self._probes: tuple[Probe, Probe] | None = probes(kind, strict) if kind else None
        self._tier = 0
        # The event being checked, for problems and notes.
        self._index = 0
        self._offset = 0
        self._lazy: tuple[list[bytes], int, int] | None = None  # offsets computed on demand
        self._event_paths: set[str] | None = None  # paths with a non-spec problem (slow path)
        self._event_spec: list[Problem] = []

    # -- public API ------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Check the next bytes of the stream."""
        if self._closed:
            raise ValueError("feed() after close()")
        if not isinstance(data, bytes):
            if isinstance(data, str) or not isinstance(data, (bytearray, memoryview)):
                raise TypeError(f"StreamChecker.feed() takes bytes, not {type(data).__name__}")
            data = bytes(data)
        self.size += len(data)
        if not data or self._stopped:
            return
        try:
            mode = self._mode
            if mode == "lf":
                self._lf(data)
            elif mode == "sse":
                self._general(data)
            elif mode == "json" or mode == "html":
                self._json_body(data)
            else:
                self._start(data)
        except EventTooLargeError as exc:
            self._too_large(exc)

    def close(self) -> CheckReport:
        """End the stream; return the report (the same one if called again)."""
        if self._report is not None:
            return self._report
        self._closed = True
        try:
            if not self._stopped:
                self._finish()
        except EventTooLargeError as exc:
            self._too_large(exc)
        self._index, self._offset, self._lazy = self.events, self.size, None
        if not (self._stopped or self._truncated or self.done or self._server_error):
            self.problem("truncated", "", "the stream ended without data: [DONE]")
        problems = sorted(self.problems, key=_order)
        notes = [
            Note(path=path, events=count, first_event=first)
            for path, (count, first) in self.notes.items()
        ]
        notes += [
            Note(
                path=entry.path,
                events=entry.events,
                first_event=entry.first,
                kind="salvaged",
                reason=entry.reason,
            )
            for entry in self.salvaged.values()
        ]
        notes.sort(key=lambda note: note.first_event)
        self._report = CheckReport(
            ok=not problems and not self.problems_omitted,
            strict=self.strict,
            kind=self.kind or "chat",
            size=self.size,
            events=self.events,
            chunks=self.chunks,
            done=self.done,
            problems=problems,
            notes=notes,
            problems_omitted=self.problems_omitted,
            notes_omitted=self.notes_omitted,
            status=self.status,
        )
        return self._report

    def stop(self, kind: ProblemKind, message: str, path: str = "") -> None:
        """Report a problem found outside the stream's bytes, and read no more of them.

        For what the transport tells: an HTTP error status (``"server_error"``),
        a connection that broke mid-stream (``"truncated"``). The problem takes
        the place of "ended without [DONE]".
        """
        if self._closed:
            raise ValueError("stop() after close()")
        self._index, self._offset, self._lazy = self.events, self.size, None
        if kind == "server_error":
            self._server_error = True
        elif kind == "truncated":
            self._truncated = True
        self.problem(kind, path, message)
        self._stopped = True
        self._tail.clear()

    # -- reporting -------------------------------------------------------------------------------

    def _where(self) -> int:
        lazy = self._lazy
        if lazy is not None:  # a probed payload: count the events before it in its read
            payloads, position, base = lazy
            self._offset = base + sum(map(_event_length, payloads[:position]))
            self._lazy = None
        return self._offset

    def _add(self, problem: Problem) -> None:
        if len(self.problems) >= self.max_problems:
            self.problems_omitted += 1
            return
        if len(problem.message) > _MESSAGE_LIMIT:  # a server's message may be megabytes
            cut = problem.message[: _MESSAGE_LIMIT - 3] + "..."
            problem = msgspec.structs.replace(problem, message=cut)
        self.problems.append(problem)

    def problem(self, kind: ProblemKind, path: str, message: str) -> None:
        """A problem of the current event."""
        if self._event_paths is not None:
            self._event_paths.add(path)
        self._add(
            Problem(event=self._index, offset=self._where(), path=path, kind=kind, message=message)
        )

    def violation(self, path: str, message: str) -> None:
        """A strict problem of the current event (dropped unless ``strict``)."""
        if not self.strict:
            return
        problem = Problem(
            event=self._index, offset=self._where(), path=path, kind="spec", message=message
        )
        if self._event_paths is not None:
            self._event_spec.append(problem)  # kept unless a decoding problem has its path
        else:
            self._add(problem)

    def line_problem(self, index: int, offset: int, message: str) -> None:
        """A strict framing problem at a line."""
        self._add(Problem(event=index, offset=offset, path="", kind="sse", message=message))

    def note(self, path: str) -> None:
        entry = self.notes.get(path)
        if entry is not None:
            entry[0] += 1
        elif len(self.notes) + len(self.salvaged) < self.max_notes:
            self.notes[path] = [1, self._index]
        else:
            self.notes_omitted += 1

    def _notes(self, path: str, count: int, first: int) -> None:
        entry = self.notes.get(path)
        if entry is not None:
            entry[0] += count
        elif len(self.notes) + len(self.salvaged) < self.max_notes:
            self.notes[path] = [count, first]
        else:
            self.notes_omitted += count

    # -- framing ---------------------------------------------------------------------------------

    def _start(self, data: bytes) -> None:
        """The first bytes: an event stream, or a whole JSON document (an error body)."""
        head = self._head + data
        body = head.lstrip(_WHITESPACE)
        if not body or (len(head) < len(_BOM) and _BOM.startswith(head)):
            if len(head) > self.max_event_size:
                self._mode = "lf"
                self._lf(head)
            else:
                self._head = head
            return
        self._head = b""
        if head.startswith(_BOM):
            self._to_general(head)
        elif body[:1] in (b"{", b"["):
            self._mode = "json"
            self._json_body(head)
        elif body[:1] == b"<":
            self._mode = "html"
            self._json_body(head)
        else:
            self._mode = "lf"
            self._lf(head)

    def _to_general(self, data: bytes) -> None:
        """From here on the SSE parser reads everything (CR line endings, a BOM)."""
        self._mode = "sse"
        tail = bytes(self._tail)
        self._tail.clear()
        self._sse._resume(self._base, self.events)
        if self._audit is not None:
            self._audit.sync(self._base, self.events)
        self._general(tail + data)

    def _general(self, data: bytes) -> None:
        audit = self._audit
        offset = self._sse.offset
        if audit is not None and audit.offset + len(audit.pending) != offset:
            audit.sync(offset, self.events)
        try:
            self._parse(data)
        except EventTooLargeError as exc:
            if audit is not None:  # the lines before the oversized event
                audit.feed(data[: max(0, (exc.offset or 0) - offset)])
            raise
        if audit is not None and not self._stopped:
            audit.feed(data)

    def _parse(self, data: bytes, final: bool = False) -> None:
        sse = self._sse
        try:
            events = sse.feed(data)
        except EventTooLargeError as exc:
            self._events(exc.chunks, sse.event_offsets, final)
            raise
        except ValueError as exc:  # a field the parser cannot take (an endless retry: value)
            self._index, self._offset, self._lazy = self.events, sse.offset, None
            self.problem("sse", "", f"unreadable SSE line: {exc}")
            self._stopped = True
            return
        self._events(events, sse.event_offsets, final)

    def _events(self, events: list[ServerSentEvent], offsets: list[int], final: bool) -> None:
        for event, offset in zip(events, offsets, strict=False):
            if self._stopped:
                return
            index = self.events
            self.events += 1
            self._sse_event(event, index, offset, final)

    def _lf(self, data: bytes) -> None:
        if 13 in data:  # CR line endings need the spec's line logic: the parser takes over
            self._to_general(data)
            return
        tail = self._tail
        if tail:
            if not (tail[-1:] == b"\n" == data[:1] or data.find(b"\n\n") >= 0):
                self._keep(data)
                return
            data = bytes(tail) + data
            tail.clear()
        else:
            line, _, rest = data.partition(b"\n")
            if rest == b"\n" and line[:5] == b"data:" and self._one_event(line[5:], data):
                return
            if not rest or (rest.find(b"\n\n") < 0 and rest[:1] != b"\n"):
                self._keep(data)  # no event ends in it: the start of one
                return
        self._region(data)

    def _one_event(self, payload: bytes, data: bytes) -> bool:
        """A read that is exactly one ``data:`` event (a live socket's): probed in place.

        False, with nothing changed, when the payload needs more than a probe.
        """
        pair = self._probes
        if pair is None or self.done or len(data) > self.max_event_size + 2:
            return False
        probe = pair[self._tier]
        try:
            chunk = probe.decode(payload)
        except _DECODE_ERRORS:
            return False
        if chunk.error:
            return False
        self._index, self._offset, self._lazy = self.events, self._base, None
        self.events += 1
        self.chunks += 1
        self._typed_one(chunk, probe)
        self._base += len(data)
        return True

    def _keep(self, data: bytes) -> None:
        """Add ``data`` to the unfinished event, within ``max_event_size``."""
        tail = self._tail
        if not tail:  # blank lines between events: the event starts after them
            event = data.lstrip(b"\n")
            self._base += len(data) - len(event)
            data = event
        tail += data
        size = len(tail) - (tail[-1:] == b"\n")
        if size > self.max_event_size:
            raise EventTooLargeError(
                self.max_event_size, size, event_index=self.events, offset=self._base
            )

    def _region(self, region: bytes) -> None:
        """Check ``region``: it starts at an event boundary (offset ``_base``) and holds no CR."""
        split = split_events(region, 0, b"")
        if split is None or (
            len(region) > self.max_event_size
            and max(map(len, split[0]), default=0) + 5 > self.max_event_size
        ):
            self._general_region(region)
            return
        payloads, stop = split
        if payloads:
            self._payloads(payloads, stop)
        if self._stopped:
            return
        if stop < len(region):
            self._keep(region[stop:])

    def _general_region(self, region: bytes) -> None:
        """The SSE parser over ``region`` up to its last event boundary; keep the rest."""
        end = region.rfind(b"\n\n") + 2
        if end < 2:
            self._keep(region)
            return
        part = region[:end] if end < len(region) else region
        self._sse._resume(self._base, self.events)
        if self._audit is not None:
            self._audit.sync(self._base, self.events)
            self._audit.feed(part)
        self._parse(part)
        self._base += end
        if not self._stopped and end < len(region):
            self._keep(region[end:])

    def _too_large(self, exc: EventTooLargeError) -> None:
        start = exc.offset or 0
        # Lines of the oversized event a strict check may have read: whether it
        # did depends on the reads, so they are not reported.
        self.problems = [p for p in self.problems if p.offset < start or p.path or p.kind != "sse"]
        self._index, self._offset, self._lazy = self.events, start, None
        self.problem("sse", "", f"event exceeds max_event_size (more than {exc.limit} bytes)")
        self._stopped = True
        self._tail.clear()

    def _finish(self) -> None:
        """At end of stream: a final event without its blank line, or the JSON body."""
        mode = self._mode
        if mode == "json":
            self._json_document()
        elif mode == "html":
            self._index, self._offset, self._lazy = 0, 0, None
            self._stopped = True
            title = _TITLE.search(bytes(self._json))
            page = f" ({show(_text(title[1]))})" if title else ""
            self.problem("sse", "", f"the body is an HTML page{page}, not an event stream")
        elif mode == "lf" and self._tail.strip():
            tail = bytes(self._tail)
            self._tail.clear()
            self._sse._resume(self._base, self.events)
            if self._audit is not None:
                self._audit.sync(self._base, self.events)
                self._audit.feed(tail)
            self._parse(tail + b"\n\n", final=True)
        elif mode == "sse" and self._sse.pending:
            self._parse(b"\n\n", final=True)
        elif mode == "start" and self._head.strip(_WHITESPACE):
            self._mode = "lf"
            self._lf(self._head)
            self._finish()

    # -- a whole-body JSON document ------------------------------------------------------------

    def _json_body(self, data: bytes) -> None:
        if self._mode == "html":  # only its title matters
            self._json += data[: _HTML_HEAD - len(self._json)]
            return
        self._json += data
        if len(self._json) > self.max_event_size:
            self._index, self._offset, self._lazy = 0, 0, None
            self.problem(
                "sse",
                "",
                "the body is a JSON document, not an event stream, and it exceeds"
                f" max_event_size (more than {self.max_event_size} bytes)",
            )
            self._stopped = True
            self._json = bytearray()

    def _json_document(self) -> None:
        body = bytes(self._json)
        self._json = bytearray()
        self._index, self._offset, self._lazy = 0, 0, None
        self._stopped = True  # no "[DONE] missing" on top of what is said here
        try:
            raw = _decode_raw(body)
        except msgspec.DecodeError as exc:
            self.problem(
                "sse",
                "",
                f"the body starts like JSON but is neither JSON nor an event stream ({exc})",
            )
            return
        except RecursionError:
            self.problem("sse", "", "the body is a JSON document nested too deeply to decode")
            return
        if isinstance(raw, list) and len(raw) == 1:  # Gemini wraps its error in a list
            raw = raw[0]
        if isinstance(raw, dict) and (
            error_report(raw.get("error"), raw.get("error_type"), alone=True) is not None
            or raw.get("object") == "error"
            or raw.get("detail") not in (None, "")
        ):
            self._server_error = True
            found = parse_error_body(body)
            self.problem(
                "server_error",
                "$.error" if "error" in raw else "$",
                "server error (a JSON error body, not an event stream): " + describe(found),
            )
            return
        what = ""
        if isinstance(raw, dict) and "object" in raw:
            what = f" (object {show(raw['object'])}: a response to a request without stream: true?)"
        self.problem("sse", "", f"the body is one JSON document, not an event stream{what}")

    # -- events ----------------------------------------------------------------------------------

    def _sse_event(self, event: ServerSentEvent, index: int, offset: int, final: bool) -> None:
        """One event the SSE parser dispatched."""
        self._index, self._offset, self._lazy = index, offset, None
        if self.done:
            self._after(index, offset)
            return
        if final and self.strict:
            self.line_problem(
                index,
                offset,
                "the last event lacks its blank line (spec-following parsers drop it)",
            )
        if event.event == "error":
            self._server_error = True
            self.problem("server_error", "", "server error: " + describe_error_event(event.data))
            return
        if event.event is not None and event.event != "message" and self.strict:
            what = "completions" if self.kind == "completions" else "chat completion"
            self._add(
                Problem(
                    event=index,
                    offset=offset,
                    path="",
                    kind="spec",
                    message=f"`event: {event.event[:80]}`: {what} streams are data-only events",
                )
            )
        self._one(event.data, index, final)

    def _after(self, index: int, offset: int) -> None:
        """An event after ``[DONE]``: a strict problem, once; nothing more is read or counted."""
        self.events = index
        if self.strict:
            self.line_problem(
                index, offset, "events after data: [DONE] (clients stop reading at [DONE])"
            )
        self._stopped = True
        self._tail.clear()

    def _done(self) -> None:
        self.done = True
        if not self.strict:  # only a strict check looks at what follows
            self._stopped = True
            self._tail.clear()

    def _payloads(self, payloads: list[bytes], stop: int) -> None:
        """The payloads of a run of ``data:`` events at ``_base``, ending ``stop`` bytes later.

        One probe decodes them all in one ``map()``; if it rejects one (or one
        reports an error), they are checked one at a time. While the stream's
        kind is unknown, the first payload is walked, then the rest probed.
        """
        base = self._base
        if self.done:
            self._index, self._offset, self._lazy = self.events, base, None
            self.events += 1
            self._after(self.events - 1, base)
            return
        done = payloads.pop() if payloads[-1].strip() == _DONE else None
        position, offset, count = 0, base, len(payloads)
        retry = True
        while position < count:
            pair = self._probes
            if retry and pair is not None:
                retry = False
                rest = payloads[position:] if position else payloads
                probe = pair[self._tier]
                try:
                    chunks = list(map(probe.decode, rest))
                except _DECODE_ERRORS:
                    pass
                else:
                    if not any(map(_ERROR, chunks)):
                        first = self.events
                        self.events += len(chunks)
                        self.chunks += len(chunks)
                        self._typed(chunks, probe, first, rest, offset)
                        break
            retry = pair is None  # once the first payload shows the kind, probe the rest
            payload = payloads[position]
            index = self.events
            self.events += 1
            self._index, self._offset, self._lazy = index, offset, None
            if self.done:
                self._after(index, offset)
                return
            if payload.strip() == _DONE:
                self._done()
            else:
                self._one(payload, index, False)
            if self._stopped:
                return
            offset += _event_length(payload)
            position += 1
        if done is not None:
            index = self.events
            self.events += 1
            if self.done:
                self._after(index, base + stop - _event_length(done))
                return
            self._done()
        self._base = base + stop

    def _one(self, payload: bytes | str, index: int, final: bool) -> None:
        """One event's data (``[DONE]`` excluded when bytes): a probe first, else the walk."""
        if isinstance(payload, str) and payload.strip() == "[DONE]":
            self._done()
            return
        pair = self._probes
        if pair is not None:
            for tier in (self._tier, 1) if self._tier == 0 else (1,):
                try:
                    chunk = pair[tier].decode(payload)
                except _DECODE_ERRORS:
                    continue
                if chunk.error:
                    break
                self._tier = tier
                self.chunks += 1
                self._typed_one(chunk, pair[tier])
                return
        self._slow(payload, index, final)

    def _slow(self, payload: bytes | str, index: int, final: bool) -> None:
        """The exact check of one event's data: decoded to Python objects and walked."""
        self._where()
        self._event_paths = set()
        self._event_spec = []
        try:
            self._walk_payload(payload, final)
        finally:
            paths, spec = self._event_paths, self._event_spec
            self._event_paths, self._event_spec = None, []
            for problem in spec:
                if problem.path not in paths:
                    self._add(problem)

    def _walk_payload(self, payload: bytes | str, final: bool) -> None:
        if isinstance(payload, bytes):
            text, bad = _payload_text(payload)
            if bad >= 0 and self.strict and not self.utf8_reported:
                self.utf8_reported = True
                where = self._offset + 5 + bad
                self.line_problem(self._index, self._offset, f"invalid UTF-8 at byte {where}")
        else:
            text = payload
        try:
            raw = _decode_raw(text)
        except msgspec.DecodeError as exc:
            self._malformed(final, "json", "$", f"invalid JSON: {exc}")
            return
        except RecursionError:
            self._malformed(
                final, "json", "$", "JSON nested too deeply to decode (maximum recursion depth)"
            )
            return
        if self.kind is None:
            kind = _kind_of(raw)
            if kind is not None:
                self.kind = kind
                self._probes = probes(kind, self.strict)
        reported = None
        if isinstance(raw, dict) and "error" in raw:
            reported = error_report(raw["error"], raw.get("error_type"), alone="choices" not in raw)
            if reported is not None:
                self._server_error = True
                self.problem("server_error", "$.error", "server error: " + describe(reported))
                if "choices" not in raw:
                    return
        kind = self.kind or "chat"
        try:
            _, dropped = salvage(text, _LENIENT[kind], event=self._index, offset=self._offset)
        except msgspec.ValidationError as exc:
            message, path = validation(exc)
            self._malformed(final, "type", path, message)
        except (RecursionError, msgspec.DecodeError):
            self._malformed(final, "json", "$", "JSON nested too deeply to decode")
            return
        else:
            self.chunks += 1
            for note in dropped:
                self._salvage(note)
        if isinstance(raw, dict):
            if kind == "chat":
                self._chunk(raw, reported is not None)
            else:
                self._completion_chunk(raw, reported is not None)

    def _salvage(self, note: SalvageNote) -> None:
        """A value the decoder drops (or converts) to keep a chunk; see :func:`streamspec.salvage`.

        Strict: a problem at the value's path. Otherwise a note (the decoder
        reads the stream), counted per dropped path.
        """
        if note.action == "converted":
            what = f"the decoder converts it ({note.reason})"
        elif note.dropped == note.path:
            what = f"the decoder drops it ({note.reason})"
        else:
            what = f"the decoder drops {note.dropped} ({note.reason})"
        if self.strict:  # in place of the spec problem at the same path
            self.problem("salvage", note.path, what)
            return
        key = f"{note.action} {note.dropped}"
        entry = self.salvaged.get(key)
        if entry is not None:
            entry.events += 1
        elif len(self.notes) + len(self.salvaged) < self.max_notes:
            reason = f"{note.path}: {note.reason}"
            if note.action == "converted":
                reason = f"{note.path} converted: {note.reason}"
            self.salvaged[key] = _Salvaged(note.dropped, self._index, reason)
        else:
            self.notes_omitted += 1

    def _malformed(self, final: bool, kind: ProblemKind, path: str, message: str) -> None:
        if final:
            # The decoder reads an unfinished last event as a truncated stream.
            self._truncated = True
            index = self._index
            self.problems = [p for p in self.problems if p.event != index or p.kind != "sse"]
            self.problem("truncated", path, f"the stream ended inside an event ({message})")
        else:
            self.problem(kind, path, message)

    # -- typed checks of probed chunks -----------------------------------------------------------

    def _typed_one(self, chunk: Any, probe: Probe) -> None:
        index = self._index
        for name in probe.top:
            if getattr(chunk, name) is not UNSET:
                self._notes(f"$.{name}", 1, index)
        if probe.choice or probe.delta:
            self._nested_notes(chunk, probe)
        if self.strict:
            self._stream_rules(chunk, probe)

    def _typed(
        self, chunks: list[Any], probe: Probe, first: int, payloads: list[bytes], base: int
    ) -> None:
        """Notes and stream-wide rules of probed chunks (events from ``first``, at ``base``)."""
        if len(chunks) == 1:  # one event per read: no bulk work
            self._index, self._offset, self._lazy = first, base, None
            self._typed_one(chunks[0], probe)
            return
        for name in probe.top:
            values = list(map(attrgetter(name), chunks))
            absent = values.count(UNSET)
            if absent < len(values):
                at = next(i for i, value in enumerate(values) if value is not UNSET)
                self._notes(f"$.{name}", len(values) - absent, first + at)
        nested = bool(probe.choice or probe.delta)
        same = placement = calls = False
        if self.strict:
            ids = set(map(_ID, chunks))
            created = set(map(_CREATED, chunks))
            same = not (
                len(ids) == 1
                and self.first_id in (None, *ids)
                and len(created) == 1
                and self.first_created in (None, *created)
            )
            if not same:
                self.first_id = self.first_id or next(iter(ids))
                self.first_created = self.first_created or next(iter(created))
            placement = not all(map(_CHOICES, chunks)) or any(map(_USAGE, chunks))
            calls = probe.calls
        if not (nested or same or placement or calls):
            return
        for position, chunk in enumerate(chunks):
            self._index, self._lazy = first + position, (payloads, position, base)
            if nested:
                self._nested_notes(chunk, probe)
            if same:
                self.same_id(chunk.id)
                self.same_created(chunk.created)
            if placement:
                usage = chunk.usage
                self.empty_choices(bool(chunk.choices), usage is not None and usage is not UNSET)
            if calls:
                self._calls(chunk)
            if placement:
                usage = chunk.usage
                self.usage_with_choices(
                    bool(chunk.choices), usage is not None and usage is not UNSET
                )
        self._lazy = None

    def _nested_notes(self, chunk: Any, probe: Probe) -> None:
        for i, choice in enumerate(chunk.choices):
            for name in probe.choice:
                if getattr(choice, name) is not UNSET:
                    self.note(f"$.choices[{i}].{name}")
            if probe.delta:
                delta = choice.delta
                for name in probe.delta:
                    if getattr(delta, name, UNSET) is not UNSET:
                        self.note(f"$.choices[{i}].delta.{name}")

    def _stream_rules(self, chunk: Any, probe: Probe) -> None:
        """The strict rules a strict probe cannot express: they span chunks."""
        self.same_id(chunk.id)
        self.same_created(chunk.created)
        usage = chunk.usage
        has_usage = usage is not None and usage is not UNSET
        self.empty_choices(bool(chunk.choices), has_usage)
        if probe.calls:
            self._calls(chunk)
        self.usage_with_choices(bool(chunk.choices), has_usage)

    def _calls(self, chunk: Any) -> None:
        """Tool call fragments: a call's first fragment names it, indexes count from 0."""
        known = self.tool_calls
        for i, choice in enumerate(chunk.choices):
            calls = choice.delta.tool_calls
            if calls is UNSET:
                continue
            seen = known.get(choice.index)
            if seen is None:
                seen = self.seen_calls(choice.index)
            for j, call in enumerate(calls):
                if call.index not in seen:  # a later fragment has nothing left to check
                    self.typed_tool_call(call, f"$.choices[{i}].delta.tool_calls[{j}]", seen)


def check_stream(
    data: bytes | Iterable[bytes],
    *,
    strict: bool = False,
    kind: StreamKind | None = None,
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    max_problems: int = DEFAULT_MAX_PROBLEMS,
    max_notes: int = DEFAULT_MAX_NOTES,
) -> CheckReport:
    """Check an SSE stream, whole (bytes) or as an iterable of reads; see :mod:`streamspec.check`.

    Without ``strict``, a stream that :class:`streamspec.ChunkDecoder` reads
    to ``[DONE]`` without an error has no problems. With ``strict``, values
    and framing outside the OpenAI specification are problems too. An
    iterable of reads (a file read in blocks, a response's byte iterator) is
    checked as it is read, in memory bounded by ``max_event_size``.
    """
    checker = StreamChecker(
        strict=strict,
        kind=kind,
        max_event_size=max_event_size,
        max_problems=max_problems,
        max_notes=max_notes,
    )
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        for start in range(0, len(view), READ_SIZE):
            checker.feed(bytes(view[start : start + READ_SIZE]))
    else:
        for read in data:
            checker.feed(read)
    return checker.close()


async def acheck_stream(
    reads: AsyncIterable[bytes],
    *,
    strict: bool = False,
    kind: StreamKind | None = None,
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    max_problems: int = DEFAULT_MAX_PROBLEMS,
    max_notes: int = DEFAULT_MAX_NOTES,
) -> CheckReport:
    """:func:`check_stream` over an async iterable of reads (``response.aiter_bytes()``,
    an aiohttp ``response.content.iter_any()``), checked as they arrive."""
    checker = StreamChecker(
        strict=strict,
        kind=kind,
        max_event_size=max_event_size,
        max_problems=max_problems,
        max_notes=max_notes,
    )
    async for read in reads:
        checker.feed(read)
    return checker.close()
