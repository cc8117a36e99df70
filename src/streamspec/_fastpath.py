"""The chunk decoder's fast paths: runs of data-only events, framed at C speed.

What they accept, and nothing else::

    data:<payload>\\n\\n          (the space after "data:" is kept in the payload;
    data:<payload>\\n\\n           msgspec skips it as JSON whitespace)

with no CR anywhere and no LF inside a payload; between such events, blank
lines and comment-only blocks, which the WHATWG algorithm does nothing for (the
pure-Python path steps over a run of them with one regex match). Whatever else
a stream holds (``event:``/``id:`` lines, multi-line data, CR line endings, a
BOM, ``[DONE]``, a payload that fails to decode or reports an error, an event
near the size limit, the stream start) is left to
:class:`streamspec.ChunkDecoder`'s general path, which runs the WHATWG
algorithm from the last clean event boundary on.

Two pieces, each in two interchangeable implementations with the same
contract: the compiled module ``streamspec._speedups`` when it was built, and
the pure-Python code below otherwise (or when ``STREAMSPEC_PURE_PYTHON=1``;
:class:`streamspec.decoder.PyChunkDecoder` uses it in any process):

* ``DecoderCore``: the base class of ``ChunkDecoder``. While
  ``_shortcut_limit >= 0`` its ``feed()`` decodes, in fast mode, any read
  without CR whose events are data-only, including the unfinished event it
  completes. It decodes what it is sure of; at the first event it cannot take
  it hands the rest of the read, from that event boundary, to
  ``self._continue(rest, chunks)``, and a read it cannot start goes to
  ``self._feed(data)`` with nothing changed. Any exception from decoding a
  payload means "the general path decides", never an error of its own.
* ``split_events(data, start, head=b"")``: cuts ``head + data[start:]`` into
  the payloads of consecutive such events, returning ``(payloads, stop)``
  where ``stop`` is where in ``data`` the last complete event ends, or
  ``None`` as soon as a line is anything else. ``head`` is the beginning of an
  event whose end (its blank line) is in ``data``; it is joined to its end
  without copying the rest of ``data``. Payloads exclude ``data:``; they may
  keep the LF that ends their line.
* ``bind_methods(cls)``: gives a subclass of the compiled core descriptors of
  its own for the core's C methods, so that CPython specializes a call such
  as ``decoder.feed(data)`` (it does so only for an instance of the exact type
  a method descriptor belongs to). ``ChunkDecoder`` and its subclasses call
  it when they are created; the pure-Python core has nothing to bind.

Measured on CPython: ``find``/``in`` with a one-byte needle run memchr, while
searches for longer needles and ``split()`` cost about a nanosecond a byte, so
the pure-Python path frames event by event with memchr only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from io import BytesIO
from itertools import repeat
from operator import attrgetter, is_
from typing import TYPE_CHECKING, Any

__all__ = ["IMPLEMENTATION", "NOOP_BLOCKS", "DecoderCore", "bind_methods", "split_events"]

PREFIX = b"data:"
ERROR_KEY = b'"error"'
_ERROR_OF = attrgetter("error")
_MANY = 2048
"""Reads of more bytes than this, of several events, are framed by ``readlines()``."""

SplitEvents = Callable[[bytes, int, bytes], "tuple[list[bytes], int] | None"]


class PyDecoderCore:
    """Pure-Python twin of ``streamspec._speedups.DecoderCore``.

    Every step is a handful of C-level byte operations (``removesuffix``,
    ``removeprefix``, ``partition``, ``find``, ``readlines``, one regex match
    for a run of no-op blocks) and one msgspec call per payload, or one
    ``map()`` over the payloads of a read: the work per event stays flat
    whatever the read shape, and no byte is scanned twice (an unfinished event
    is kept as its first read, then appended to one buffer, and only the new
    bytes are searched). ``feed()`` itself handles the usual reads (one whole
    event, two events, the start of an event, its middle, its end) behind one
    identity test each (``_ready``, ``_waiting``); everything else is a method
    call away.

    On CPython 3.11 each bytecode and each C call on this path is a measurable
    part of a read's cost, and METH_O methods (``removesuffix``,
    ``removeprefix``, ``partition``) and operators (``in`` with a byte, ``is``)
    cost far less than methods that parse their arguments as a tuple
    (``find``, ``startswith``, ``count``): the one-event read uses only the
    former, and a test that another one already implies is left out.
    """

    _decode: Callable[[Any], Any]
    _error_of: Callable[[Any], Any]
    _buf: bytearray
    max_event_size: int
    _consumed: int
    _events: int
    _has_error_field: bool
    _feed: Callable[[bytes], list[Any]]
    _continue: Callable[[bytes, list[Any]], list[Any]]

    # Two guard values, each ``bytes`` or ``None``, so that one identity test
    # against ``type(data)`` covers several conditions. ``_ready`` is ``bytes``
    # while a read may take the shortest path: fast mode (``_shortcut_limit >=
    # 0``), no unfinished event, a type with an ``error`` field. ``_waiting`` is
    # ``bytes`` in the same conditions but with an unfinished event in the
    # tail that holds no LF yet (the first line of an event split across
    # reads). The general path sets ``_shortcut_limit`` at the end of every
    # call, which recomputes both; the fast paths keep them current when they
    # change the tail.
    _ready: type[bytes] | None = None
    _waiting: type[bytes] | None = None
    _limit: int = -1

    # The unfinished event is ``_head + _buf``, one of them empty. A read that
    # starts an event is kept as it is, in ``_head`` (no copy); the end of the
    # event is joined to it once. Anything else that looks at the tail (the
    # general path included) sees one bytearray: ``_tail`` moves the head into
    # the buffer first.
    _head: bytes = b""

    @property
    def _tail(self) -> bytearray:
        """The bytes after the last event boundary (the unfinished event)."""
        head = self._head
        if head:
            self._buf += head
            self._head = b""
        return self._buf

    @_tail.setter
    def _tail(self, value: bytearray) -> None:
        self._buf = value
        self._head = b""

    @property
    def _resume(self) -> type[bytes] | None:
        """``_ready`` once the tail is empty again, or ``_waiting`` once it holds a first line."""
        return bytes if self._has_error_field else None

    @property
    def _shortcut_limit(self) -> int:
        return self._limit

    @_shortcut_limit.setter
    def _shortcut_limit(self, value: int) -> None:
        self._limit = value
        tail = self._tail
        fast = value >= 0 and self._has_error_field
        self._ready = bytes if fast and not tail else None
        self._waiting = bytes if fast and tail and 10 not in tail else None

    def feed(self, data: bytes | bytearray | memoryview) -> list[Any]:
        """Decode the next bytes of the stream; return the chunks they complete."""
        if type(data) is self._ready:
            # One complete data-only event, "data:<payload>\n\n": a live socket's
            # typical read. The tests are METH_O calls and memchr (``in``), which
            # cost least on CPython; removesuffix() returns the read itself when
            # it does not end with a blank line.
            body = data.removesuffix(b"\n\n")
            if body is not data and 10 not in body and 13 not in body:
                payload = body.removeprefix(PREFIX)
                size = len(data)
                if payload is not body and size <= self._limit:
                    decode = self._decode
                    try:
                        chunk = decode(payload)
                    except Exception:  # [DONE], an error payload, bad data: the general path
                        return self._feed(data)
                    if not chunk.error:
                        self._consumed += size
                        self._events += 1
                        return [chunk]
                return self._feed(data)
            if 13 in data:
                return self._feed(data)
            size = len(data)
            if 10 not in data and size <= self.max_event_size:  # the start of an event
                self._head = data
                self._ready = None
                self._waiting = bytes
                return []
            if size >= _MANY:
                return self._several(data, [])
            # A few events. ``body`` is the read without its final blank line, if
            # it has one: its first LF ends the first event's line.
            line, _, rest = body.partition(b"\n")
            if rest[:1] == b"\n":  # the first event is already cut out
                payload = line.removeprefix(PREFIX)
                if payload is not line and size <= self._limit:
                    decode = self._decode
                    try:
                        chunk = decode(payload)
                    except Exception:
                        return self._frame(data, [])  # it stops at once, before this event
                    if not chunk.error:
                        # Two events, "data:<payload>\n\ndata:<payload>\n\n": rest is
                        # the LF of the blank line, then the second one without its end
                        # (so it still holds that LF if it does not go on with "data:").
                        payload = rest.removeprefix(b"\ndata:")
                        if 10 not in payload and body is not data:
                            try:
                                other = decode(payload)
                            except Exception:  # the framing below says what it is
                                pass
                            else:
                                if not other.error:
                                    self._consumed += size
                                    self._events += 2
                                    return [chunk, other]
                        end = len(line) + 2
                        self._consumed += end
                        self._events += 1
                        return self._frame(data, [chunk], end)
            return self._frame(data, [])
        if type(data) is self._waiting:
            # More of an event whose first line has not ended yet.
            body = data.removesuffix(b"\n\n")
            if body is not data and 10 not in body and 13 not in body:
                head = self._head
                if head:  # the event began with the read before: it is joined once
                    payload = head.removeprefix(PREFIX)
                    size = len(head) + len(data)
                    if payload is not head and size <= self._limit:
                        decode = self._decode
                        try:
                            chunk = decode(payload + body)
                        except Exception:
                            return self._feed(data)
                        if not chunk.error:
                            self._consumed += size
                            self._events += 1
                            if self._head is not head:  # a decode hook looked at _tail
                                self._buf.clear()
                            self._head = b""
                            self._waiting = None
                            self._ready = bytes
                            return [chunk]
                        return self._feed(data)
                    return self._feed_other(data)  # maybe a comment block, or too big
                tail = self._buf
                event = tail + body  # its end: the event is joined once
                size = len(event) + 2
                if size <= self._limit and event[:5] == PREFIX:
                    del event[:5]  # a bytearray drops its start without copying
                    decode = self._decode
                    try:
                        chunk = decode(event)
                    except Exception:
                        return self._feed(data)
                    if not chunk.error:
                        self._consumed += size
                        self._events += 1
                        tail.clear()
                        self._waiting = None
                        self._ready = bytes
                        return [chunk]
                    return self._feed(data)
                return self._feed_other(data)  # maybe a comment block, or too big
            if 10 not in data and 13 not in data:  # it goes on
                head = self._head
                if head:
                    size = len(head) + len(data)
                    if size <= _MANY and size <= self.max_event_size:
                        self._head = head + data  # a short head is copied whole: bounded
                        return []
                tail = self._tail
                if len(tail) + len(data) <= self.max_event_size:
                    tail += data
                    return []
        return self._feed_other(data)

    def _feed_other(self, data: bytes | bytearray | memoryview) -> list[Any]:
        """After an unfinished event, for a type without ``error``, or for the general path."""
        if type(data) is not bytes or self._limit < 0 or 13 in data:
            return self._feed(data)  # type: ignore[arg-type]  # the general path checks it
        tail = self._tail
        if tail:
            # The usual end of an event split across reads: the read is its rest.
            nl = data.find(b"\n")
            if nl == len(data) - 2 and data[-1] == 10 and 10 not in tail:
                event = tail + data
                if event.startswith(PREFIX) and nl + len(tail) <= self.max_event_size:
                    try:
                        chunk = self._decode(event[5:])  # the two LFs are JSON whitespace
                    except Exception:
                        return self._feed(data)
                    if not (chunk.error if self._has_error_field else ERROR_KEY in event):
                        self._consumed += len(event)
                        self._events += 1
                        tail.clear()
                        self._ready = self._resume
                        self._waiting = None
                        return [chunk]
            return self._feed_tail(data)
        line, lf, rest = data.partition(b"\n")
        if rest == b"\n":  # one event, for a type without an ``error`` field
            payload = line.removeprefix(PREFIX)
            if payload is not line and len(line) <= self.max_event_size:
                try:
                    chunk = self._decode(payload)
                except Exception:  # [DONE], an error payload, bad data: the general path
                    return self._feed(data)
                if not (chunk.error if self._has_error_field else ERROR_KEY in line):
                    self._consumed += len(data)
                    self._events += 1
                    return [chunk]
            return self._feed(data)
        return self._begun(data, line, lf, rest)

    def _begun(self, data: bytes, line: bytes, lf: bytes, rest: bytes) -> list[Any]:
        """A read at an event boundary that is not one whole event: ``data.partition(b"\\n")``."""
        if not lf:  # no LF at all: the start of an event
            if len(data) <= self.max_event_size:
                self._tail += data
                self._ready = None
                self._waiting = self._resume
                return []
            return self._feed(data)
        if rest[:1] == b"\n" and self._has_error_field:
            # Several events: the first one is already cut out.
            payload = line.removeprefix(PREFIX)
            if payload is not line and len(line) <= self.max_event_size:
                try:
                    chunk = self._decode(payload)
                except Exception:
                    return self._frame(data, [])  # it stops at once, before this event
                if not chunk.error:
                    self._consumed += len(line) + 2
                    self._events += 1
                    return self._frame(data, [chunk], len(line) + 2)
        return self._frame(data, [])

    def _several(self, data: bytes, out: list[Any], start: int = 0) -> list[Any]:
        """Decode ``data[start:]``, which starts at an event boundary (no tail), after ``out``.

        The same contract as :meth:`_frame`, which frames event by event
        through ``find()``; this is faster. ``BytesIO.readlines()`` cuts at
        every LF with memchr, and as long as the lines alternate
        ``b"data:<payload>\\n"`` and ``b"\\n"`` the payloads are decoded (their
        LF is JSON whitespace); from the first event that is not so, or whose
        payload fails or is an error report, :meth:`_frame` goes on. Reads of
        many events take :meth:`_many`. Only for a type with an ``error``
        field, in fast mode, without CR.
        """
        size = len(data)
        if size - start >= _MANY and data[start] != 100:  # not b"d": maybe a run of no-ops
            return self._frame(data, out, start)  # one regex match skips it, no line list
        reader = BytesIO(data)  # shares data's memory: no copy
        if start:
            reader.seek(start)
        lines = reader.readlines()
        if size - start >= _MANY and size <= self.max_event_size:
            return self._many(data, out, start, lines)
        decode = self._decode
        append = out.append
        delivered = len(out)
        limit = self.max_event_size + 1  # an event's size is its line without the LF
        sized = size - start > limit
        pos = start
        it = iter(lines)
        for head, blank in zip(it, it, strict=False):  # pairs of lines
            payload = head.removeprefix(PREFIX)
            if blank != b"\n" or payload is head or (sized and len(head) > limit):
                break
            try:
                chunk = decode(payload)
            except Exception:
                break
            if chunk.error:
                break
            append(chunk)
            pos += len(head) + 1
        else:
            self._events += len(out) - delivered
            if len(lines) & 1:  # the event still arriving
                part = lines[-1]
                self._consumed += size - len(part) - start
                return self._keep_tail(part, out)
            self._consumed += size - start
            return out
        self._events += len(out) - delivered
        self._consumed += pos - start
        return self._frame(data, out, pos)

    def _many(self, data: bytes, out: list[Any], start: int, lines: list[bytes]) -> list[Any]:
        """:meth:`_several` for a read of many events: ``lines`` is ``data[start:]`` cut at LFs.

        The events go through C-level ``map()`` loops, as in
        :func:`py_split_events`: the lines must alternate, the payloads decode
        in one ``map()`` and none is an error report. A read such a step
        refuses goes to :meth:`_frame`, which decodes up to the first event it
        cannot take. ``data`` is no longer than ``max_event_size``.
        """
        part = lines.pop() if len(lines) & 1 else b""  # the event still arriving
        if len(lines) > (len(data) - start) >> 2:  # "data:\n\n" is 7 bytes: no-ops among them
            return self._frame(data, out, start)
        blanks = lines[1::2]
        heads = lines[0::2]
        payloads = list(map(bytes.removeprefix, heads, repeat(PREFIX)))
        if blanks.count(b"\n") != len(blanks) or any(map(is_, payloads, heads)):
            return self._frame(data, out, start)
        try:
            chunks = list(map(self._decode, payloads))
        except Exception:  # [DONE], an error payload, bad data
            return self._frame(data, out, start)
        if any(map(_ERROR_OF, chunks)):
            return self._frame(data, out, start)
        self._events += len(chunks)
        self._consumed += len(data) - start - len(part)
        out += chunks
        if part:
            return self._keep_tail(part, out)
        return out

    def _feed_tail(self, data: bytes) -> list[Any]:
        """A read after an unfinished event: it goes on, or ``data`` completes it.

        Only the new bytes are searched (memchr), and the event is joined once.
        """
        tail = self._tail
        if tail[-1] == 10:  # the tail ends a line: only a blank line may follow
            if data[:1] != b"\n":
                return self._feed(data)
            end = 1
        else:
            nl = data.find(b"\n")
            size = len(data)
            if nl < 0 or nl + 1 == size:  # the event goes on
                if len(tail) + size - (nl >= 0) > self.max_event_size:
                    return self._feed(data)  # the general path raises, in stream order
                tail += data
                if nl >= 0:
                    self._waiting = None  # the tail ends a line now
                return []
            if data[nl + 1] != 10:
                return self._feed(data)  # a second line: not a data-only event
            end = nl + 2
        # The event with its blank line (msgspec skips the two LFs as whitespace).
        event = tail + data if end == len(data) else tail + data[:end]
        size = len(event) - 2
        if size > self.max_event_size:
            return self._feed(data)
        if event.startswith(PREFIX) and event.find(b"\n") == size:
            try:
                chunk = self._decode(event[5:])
            except Exception:
                return self._feed(data)
            if chunk.error if self._has_error_field else ERROR_KEY in event:
                return self._feed(data)
            out = [chunk]
            self._events += 1
        elif event[:1] == b":" and _NOOP.fullmatch(event):
            out = []  # a comment-only block: nothing to do
        else:
            return self._feed(data)  # anything else
        self._consumed += size + 2
        tail.clear()
        self._waiting = None
        if end == len(data):
            self._ready = self._resume
            return out
        if data.find(b"\n", end) < 0 and len(data) - end <= self.max_event_size:
            tail += data[end:]  # the next event begins
            self._waiting = self._resume
            return out
        self._ready = self._resume
        if self._has_error_field:
            return self._several(data, out, end)
        return self._frame(data[end:], out)

    def _frame(self, buf: bytes, out: list[Any], pos: int = 0) -> list[Any]:
        """Decode ``buf[pos:]``, which starts at an event boundary (no tail), after ``out``.

        ``out`` holds the chunks this read already decoded, counted in
        ``_events``; ``buf[:pos]`` is counted in ``_consumed``.

        Event by event: one memchr finds the end of its line, the next byte must
        end the event, and one slice is the payload. A run of blank lines and
        comment-only blocks (no-ops in the spec's algorithm) is skipped by one
        regex match. The first event of any other kind (``[DONE]`` included)
        and what follows it go to the general path, with what was decoded.
        """
        if not self._has_error_field and buf.find(ERROR_KEY, pos) >= 0:
            return self._continue(buf[pos:] if pos else buf, out)
        limit = self.max_event_size
        decode = self._decode
        has_error = self._has_error_field
        find = buf.find
        append = out.append
        size = len(buf)
        sized = size > limit  # only then can an event be over the limit
        start = pos
        delivered = len(out)
        handed = True
        while pos < size:
            nl = find(b"\n", pos)
            if nl < 0 or nl + 1 == size:
                handed = False  # the event is still arriving
                break
            line = buf[pos:nl]
            payload = line.removeprefix(PREFIX)
            if payload is line:  # not "data:": maybe a run of no-op blocks
                skip = _NOOP.match(buf, pos).end()  # type: ignore[union-attr]
                if skip == pos:
                    break
                if skip - pos > limit and max(map(len, buf[pos:skip].split(b"\n\n"))) > limit:
                    break  # maybe an oversized comment block: the parser measures it
                pos = skip
                continue
            if buf[nl + 1] != 10 or (sized and nl - pos > limit):
                break
            try:
                chunk = decode(payload)
            except Exception:
                break
            if has_error and chunk.error:
                break
            append(chunk)
            pos = nl + 2
        else:
            handed = False
        self._events += len(out) - delivered
        self._consumed += pos - start
        if handed:
            return self._continue(buf[pos:] if pos else buf, out)
        if pos < size:
            return self._keep_tail(buf[pos:] if pos else buf, out)
        return out

    def _keep_tail(self, rest: bytes, out: list[Any]) -> list[Any]:
        """Keep the start of an event still arriving; the general path raises if it is too big."""
        if rest:
            event = rest.lstrip(b"\n")
            if len(event) - (event[-1:] == b"\n") > self.max_event_size:
                return self._continue(rest, out)
            self._consumed += len(rest) - len(event)
            self._tail += event
            self._ready = None
            self._waiting = self._resume if 10 not in event else None
        return out


NOOP_BLOCKS = re.compile(rb"\n*(?:(?::[^\n]*\n)+\n+)*")
"""A run of blank lines and comment-only blocks: nothing for the spec's algorithm to do.

Written so that runs of LFs and the text of comments are single-character
repeats, which the regex engine scans in a tight loop.
"""
_NOOP = NOOP_BLOCKS
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


def py_bind_methods(cls: type) -> None:
    """Pure-Python twin of ``streamspec._speedups.bind_methods``: nothing to do.

    The compiled one gives each subclass of the core its own descriptors of
    the core's C methods, so that CPython specializes their calls.
    """


def _load() -> tuple[Any, SplitEvents, Callable[[type], None], str]:
    if not os.environ.get("STREAMSPEC_PURE_PYTHON"):
        try:
            from . import _speedups  # type: ignore[attr-defined,unused-ignore]
        except ImportError:
            pass
        else:
            return _speedups.DecoderCore, _speedups.split_events, _speedups.bind_methods, "c"
    return PyDecoderCore, py_split_events, py_bind_methods, "python"


if TYPE_CHECKING:
    DecoderCore = PyDecoderCore
    split_events: SplitEvents = py_split_events
    bind_methods = py_bind_methods
    IMPLEMENTATION: str = "python"
else:
    DecoderCore, split_events, bind_methods, IMPLEMENTATION = _load()
