"""The chunk decoder's fast paths: runs of data-only events, framed at C speed.

What they accept, and nothing else::

    data:<payload>\\n\\n          (the space after "data:" is kept in the payload;
    data:<payload>\\n\\n           msgspec skips it as JSON whitespace)

with no CR anywhere and no LF inside a payload. Whatever else a stream holds
(comments, ``event:``/``id:`` lines, multi-line data, CR line endings, a BOM,
blank-line runs) is left to :class:`streamspec.ChunkDecoder`'s general path,
which runs the WHATWG algorithm from the last clean event boundary on.

Two pieces, each in two interchangeable implementations with the same
contract: the compiled module ``streamspec._speedups`` when it was built, and
the pure-Python code below otherwise (or when ``STREAMSPEC_PURE_PYTHON=1``):

* ``DecoderCore``: the base class of ``ChunkDecoder``; its ``feed()`` decodes a
  read holding exactly one such event (a live socket's typical read) and
  otherwise calls ``self._feed()``. The compiled one also handles, in fast
  mode, any read without CR whose events are all data-only, including the
  unfinished event it completes; whenever it cannot, it hands the read to
  ``self._feed()`` with nothing changed.
* ``split_events(data, start, head=b"")``: cuts ``head + data[start:]`` into
  the payloads of consecutive such events, returning ``(payloads, stop)``
  where ``stop`` is where in ``data`` the last complete event ends, or
  ``None`` as soon as a line is anything else. ``head`` is the beginning of an
  event whose end (its blank line) is in ``data``; it is joined to its end
  without copying the rest of ``data``. Payloads exclude ``data:``; they may
  keep the LF that ends their line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from io import BytesIO
from itertools import repeat
from operator import is_
from typing import TYPE_CHECKING, Any

__all__ = ["IMPLEMENTATION", "DecoderCore", "split_events"]

PREFIX = b"data:"
ERROR_KEY = b'"error"'

SplitEvents = Callable[[bytes, int, bytes], "tuple[list[bytes], int] | None"]


class PyDecoderCore:
    """Pure-Python twin of ``streamspec._speedups.DecoderCore``.

    Every step is a handful of C-level byte operations (``find``, ``split``,
    ``count``, one regex match for a run of no-op blocks) and one msgspec call
    per payload, or one ``map()`` over the payloads of a read: the work per
    event stays flat whatever the read shape, and no byte is scanned twice
    (an unfinished event is appended to one buffer and only its new bytes are
    searched).
    """

    _decode: Callable[[Any], Any]
    _error_of: Callable[[Any], Any]
    _shortcut_limit: int
    _tail: bytearray
    max_event_size: int
    _consumed: int
    _events: int
    _has_error_field: bool
    _feed: Callable[[bytes], list[Any]]
    _continue: Callable[[bytes, list[Any]], list[Any]]

    def feed(self, data: bytes | bytearray | memoryview) -> list[Any]:
        """Decode the next bytes of the stream; return the chunks they complete."""
        if type(data) is not bytes or self._shortcut_limit < 0 or 13 in data:
            return self._feed(data)  # type: ignore[arg-type]  # the general path checks it
        if self._tail:
            return self._feed_tail(data)
        # One complete data-only event, "data:<payload>\n\n": a live socket's
        # typical read. Each test is one C call.
        end = len(data) - 2
        if (
            data.find(b"\n") == end
            and data.endswith(b"\n\n")
            and data.startswith(PREFIX)
            and end < self._shortcut_limit
            and (self._has_error_field or ERROR_KEY not in data)
        ):
            try:
                chunk = self._decode(data[5:end])
            except Exception:  # [DONE], an error payload or bad data: the general path says
                return self._feed(data)
            if self._error_of(chunk):
                return self._feed(data)
            self._consumed += end + 2
            self._events += 1
            return [chunk]
        return self._frame(data, [])

    def _feed_tail(self, data: bytes) -> list[Any]:
        """A read after an unfinished event: it goes on, or ``data`` completes it."""
        tail = self._tail
        if tail[-1] == 10 and data[:1] == b"\n":
            end = 1
        else:
            end = data.find(b"\n\n") + 2
            if end < 2:  # the event goes on: only the new bytes were searched
                if len(tail) + len(data) - (data[-1:] == b"\n") > self.max_event_size:
                    return self._feed(data)  # the general path raises, in stream order
                tail += data
                return []
        event = tail + data[:end]
        size = len(event) - 2
        out: list[Any] = []
        if size > self.max_event_size:
            return self._feed(data)
        if (
            event.find(b"\n") == size
            and event.startswith(PREFIX)
            and (self._has_error_field or ERROR_KEY not in event)
        ):
            try:
                chunk = self._decode(event[5:size])
            except Exception:
                return self._feed(data)
            if self._error_of(chunk):
                return self._feed(data)
            out.append(chunk)
            self._events += 1
        elif not (event[:1] == b":" and _NOOP.fullmatch(event)):  # not a comment-only block
            return self._feed(data)
        self._consumed += len(event)
        tail.clear()
        if end == len(data):
            return out
        return self._frame(data[end:], out)

    def _frame(self, buf: bytes, out: list[Any]) -> list[Any]:
        """Decode ``buf``, which starts at an event boundary (no tail), after ``out``.

        The usual read, whole data-only events and maybe the start of the next
        one, costs one ``split`` and one ``map()`` of the decoder; reads with
        blank lines or comments between events go block by block.
        """
        if not self._has_error_field and ERROR_KEY in buf:
            return self._continue(buf, out)
        if buf[:1] in _NOOP_START or b"\n\n\n" in buf or b"\n:" in buf:
            return self._blocks(buf, out)
        parts = buf.split(b"\n\n")
        last = parts.pop()
        if parts:
            payloads = list(map(bytes.removeprefix, parts, repeat(PREFIX)))
            limit = self.max_event_size
            # A part that lacked the prefix comes back from removeprefix() as itself.
            if (
                any(map(is_, payloads, parts))
                or buf.count(b"\n", 0, len(buf) - len(last)) != 2 * len(parts)
                or (len(buf) > limit and max(map(len, parts)) > limit)
            ):
                return self._blocks(buf, out)
            done = payloads[-1].strip() == b"[DONE]"
            if done:
                payloads.pop()
            try:
                chunks = list(map(self._decode, payloads))
            except Exception:
                return self._blocks(buf, out)  # finds the payload at fault
            if any(map(self._error_of, chunks)):
                return self._blocks(buf, out)
            out += chunks
            self._events += len(chunks)
            used = len(buf) - len(last)
            if done:
                used -= len(parts[-1]) + 2
                self._consumed += used
                return self._continue(buf[used:], out)
            self._consumed += used
        return self._keep_tail(last, out)

    def _blocks(self, buf: bytes, out: list[Any]) -> list[Any]:
        """Block by block: runs of blank lines and comment-only blocks (no-ops in the
        spec's algorithm) are skipped with one regex match, data-only events
        decoded; the first block of any other kind is handed to the general path."""
        limit = self.max_event_size
        decode = self._decode
        error_of = self._error_of
        slim = not self._has_error_field
        pos = 0
        size = len(buf)
        handed = True
        while pos < size:
            skip = _NOOP.match(buf, pos).end()  # type: ignore[union-attr]
            if skip > pos:
                if skip - pos > limit and max(map(len, buf[pos:skip].split(b"\n\n"))) > limit:
                    break  # maybe an oversized comment block: the parser measures it
                pos = skip
                continue
            end = buf.find(b"\n\n", pos)
            if end < 0:
                handed = False
                break
            line = buf[pos:end]
            if (
                end - pos > limit
                or not line.startswith(PREFIX)
                or b"\n" in line
                or (slim and ERROR_KEY in line)
            ):
                break
            try:
                chunk = decode(line[5:])
            except Exception:
                break
            if error_of(chunk):
                break
            out.append(chunk)
            self._events += 1
            pos = end + 2
        else:
            handed = False
        self._consumed += pos
        if handed:
            return self._continue(buf[pos:], out)
        return self._keep_tail(buf[pos:] if pos else buf, out)

    def _keep_tail(self, rest: bytes, out: list[Any]) -> list[Any]:
        """Keep the start of an event still arriving; the general path raises if it is too big."""
        if rest:
            event = rest.lstrip(b"\n")
            if len(event) - (event[-1:] == b"\n") > self.max_event_size:
                return self._continue(rest, out)
            self._consumed += len(rest) - len(event)
            self._tail += event
        return out


_NOOP = re.compile(rb"(?:(?::[^\n]*\n)*\n)*")
"""A run of blank lines and comment-only blocks: nothing for the spec's algorithm to do."""
_NOOP_START = (b"\n", b":")


def py_split_events(data: bytes, start: int, head: bytes = b"") -> tuple[list[bytes], int] | None:
    """Pure-Python twin of ``streamspec._speedups.split_events``.

    ``BytesIO.readlines()`` cuts at every LF with memchr, giving alternating
    ``b"data:<payload>\\n"`` and ``b"\\n"`` lines; an odd line out at the end is
    the event still arriving.
    """
    payloads: list[bytes] = []
    if head:  # the event head begins ends at the first blank line, maybe across the join
        if head[-1:] == b"\n" == data[start : start + 1]:
            end = start + 1
        else:
            end = data.find(b"\n\n", start) + 2
            if end < 2:
                return None
        first = _split(head + data[start:end], 0)
        if first is None or first[1] != len(head) + end - start:
            return None
        payloads, start = first[0], end
    rest = _split(data, start)
    if rest is None:
        return None
    return payloads + rest[0], rest[1]


def _split(data: bytes, start: int) -> tuple[list[bytes], int] | None:
    reader = BytesIO(data)  # shares data's memory: no copy
    reader.seek(start)
    lines = reader.readlines()
    stop = len(data) - len(lines.pop()) if len(lines) & 1 else len(data)
    blanks = lines[1::2]
    data_lines = lines[0::2]
    payloads = list(map(bytes.removeprefix, data_lines, repeat(PREFIX)))
    # One-byte bytes objects are shared, so count() compares identities; a
    # line that lacked the prefix comes back from removeprefix() as itself.
    if blanks.count(b"\n") != len(blanks) or any(map(is_, payloads, data_lines)):
        return None
    return payloads, stop


def _load() -> tuple[Any, SplitEvents, str]:
    if not os.environ.get("STREAMSPEC_PURE_PYTHON"):
        try:
            from . import _speedups  # type: ignore[attr-defined,unused-ignore]
        except ImportError:
            pass
        else:
            return _speedups.DecoderCore, _speedups.split_events, "c"
    return PyDecoderCore, py_split_events, "python"


if TYPE_CHECKING:
    DecoderCore = PyDecoderCore
    split_events: SplitEvents = py_split_events
    IMPLEMENTATION: str = "python"
else:
    DecoderCore, split_events, IMPLEMENTATION = _load()
