"""The chunk decoder: SSE bytes in, typed chunks out, sans-IO.

What OpenAI-compatible servers send is a run of data-only events::

    data: {"id":"chatcmpl-...","object":"chat.completion.chunk",...}\\n\\n
    data: {"id":"chatcmpl-...",...,"choices":[],"usage":{...}}\\n\\n
    data: [DONE]\\n\\n

The hot path (:mod:`streamspec._fastpath`, compiled or in Python) frames such
runs at C speed: ``feed()`` itself frames and decodes any CR-free read of
data-only events (an event split across reads included) and skips blank lines
and comment-only blocks between them. Every payload goes through one reused
:class:`msgspec.json.Decoder`. Anything else (``event:``/``id:`` fields,
multi-line data, CR line endings, a BOM, a payload that fails to decode or
reports an error, an event near the size limit) is handed, from the last clean
event boundary on, to this module's general path: the full WHATWG algorithm of
:class:`streamspec.SSEParser`, then one event at a time with located errors.

Rules that hold however the bytes are split into reads (whole, byte by byte,
anywhere in between), on both implementations of the hot path:

* Problems are reported in stream order: the first one wins. Each event is
  decoded, or reported, before anything after it is looked at, so an error
  event followed by an oversized one raises :class:`StreamError`, then (on the
  next ``feed()``) :class:`EventTooLargeError`.
* ``data: [DONE]`` ends the stream: the bytes after it are ignored, size
  limits included.
* ``max_event_size`` bounds one event as :class:`SSEParser` counts it, from
  the first byte of its first line (blank lines before it excluded) to the
  last byte of its latest line: the same bytes however they arrive. A
  comment-only block counts too.
* Errors carry exact locations: ``event_index`` counts the data events before
  the one at fault, ``offset`` is where that event (or the oversized block)
  starts in the stream.
* ``bytes_consumed`` never counts an unfinished event: a gateway may forward
  exactly that many bytes. After an :class:`EventTooLargeError` it is the
  error's ``offset``, where the oversized block starts. ``events`` counts the
  data events delivered (as a chunk, ``[DONE]`` or an error).
* A payload that cannot be decoded, whatever the reason (bad JSON, wrong
  types, nesting deeper than msgspec allows, a number out of range, an
  exception from the chunk type), is a :class:`MalformedEventError`.
* A body that is a JSON document instead of an event stream (its first byte
  after whitespace is ``{``, as in the ``{"error": {...}}`` bodies servers send
  with HTTP 4xx/5xx, or with 200) is collected, within ``max_event_size``, and
  reported at ``close()``: :class:`StreamError` with the server's error, or
  :class:`MalformedEventError` saying an event stream was expected.
* ``feed()`` takes ``bytes``, ``bytearray`` or ``memoryview`` (read the same
  way) and raises :class:`TypeError` for anything else.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import msgspec
from msgspec import UNSET, UnsetType

from ._fastpath import (
    ERROR_KEY,
    NOOP_BLOCKS,
    PREFIX,
    DecoderCore,
    PyDecoderCore,
    bind_methods,
    py_split_events,
    split_events,
)
from .errors import (
    Error,
    EventTooLargeError,
    MalformedEventError,
    StreamError,
    TruncatedStreamError,
)
from .salvage import UNSALVAGED, SalvageLog, SalvageNote
from .sse import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent, SSEParser
from .types.common import ErrorObject
from .types.stream import CreateChatCompletionStreamResponse

__all__ = ["ChunkDecoder", "PyChunkDecoder", "error_object", "error_report"]

T = TypeVar("T")

_DONE = b"[DONE]"


class _ErrorEnvelope(msgspec.Struct, gc=False):
    """``{"error": <object or string>, "error_type": ...}``, the shape of error payloads.

    ``choices`` is only looked at for presence: an error member beside choices
    is in an otherwise normal chunk.
    """

    error: Any = UNSET
    error_type: Any = UNSET
    choices: msgspec.Raw | UnsetType = UNSET


_decode_envelope = msgspec.json.Decoder(_ErrorEnvelope).decode
_decode_any = msgspec.json.Decoder().decode


def error_object(value: Any, error_type: Any = None) -> ErrorObject:
    """Build an :class:`ErrorObject` from whatever a server put in ``error``.

    Accepts the OpenAI object (``code`` string or null), vLLM's (integer
    ``code``), a plain string (TGI, Xinference; ``error_type`` is its sibling
    key), or an already typed :class:`ErrorObject`.
    """
    if isinstance(value, ErrorObject):
        return value
    if isinstance(value, dict):
        message = value.get("message", "")
        code = value.get("code")
        kind = value.get("type", error_type)
        param = value.get("param")
        return ErrorObject(
            message=message if isinstance(message, str) else str(message),
            type=kind if isinstance(kind, str) or kind is None else str(kind),
            param=param if isinstance(param, str) or param is None else str(param),
            code=code if isinstance(code, (str, int)) or code is None else str(code),
        )
    return ErrorObject(
        message=value if isinstance(value, str) else str(value),
        type=error_type if isinstance(error_type, str) else UNSET,
    )


def error_report(value: Any, error_type: Any = None, *, alone: bool = False) -> ErrorObject | None:
    """The error that a payload's ``error`` member reports, or None if it reports none.

    Relays put ``"error": false`` (or ``null``, ``0``, ``""``, ``[]``, ``{}``)
    in otherwise normal chunks; only an *error report* is an error:

    * a string with some non-blank text (TGI, Xinference; ``error_type`` is
      its sibling key);
    * an object (or :class:`ErrorObject`) carrying a non-empty ``message``,
      ``type`` or ``code`` (a ``code`` of ``0`` or ``""`` is none);
    * any object when the payload is a bare error envelope (``alone``: it has
      no ``choices`` member), such as ``{"error": {"message": ""}}``;
    * ``true``.

    Numbers, arrays and every other value report nothing.
    """
    if value is None or value is UNSET or value is False:
        return None
    if value is True:
        return ErrorObject(type=error_type if isinstance(error_type, str) else UNSET)
    if isinstance(value, str):
        return error_object(value, error_type) if value.strip() else None
    if isinstance(value, ErrorObject):
        return value if alone or value.message or value.type or value.code else None
    if isinstance(value, dict) and (
        alone or value.get("message") or value.get("type") or value.get("code")
    ):
        return error_object(value, error_type)
    return None


def _error_in_payload(payload: bytes | str) -> ErrorObject | None:
    """The error a payload reports in a top-level ``error`` member (see :func:`error_report`)."""
    try:
        envelope = _decode_envelope(payload)
    except (msgspec.DecodeError, RecursionError):  # not JSON, or nested deeper than msgspec goes
        return None
    return error_report(envelope.error, envelope.error_type, alone=envelope.choices is UNSET)


def _error_event_object(data: str) -> ErrorObject:
    """The error an ``event: error`` event carries: an envelope, an error object or text."""
    found = _error_in_payload(data)
    if found is not None:
        return found
    try:
        value = _decode_any(data)
    except (msgspec.DecodeError, RecursionError):
        return ErrorObject(message=data)
    return error_object(value)


_NO_ERROR: Callable[[Any], bool] = ().__contains__
"""A C-level callable that is False for any chunk: for types without an ``error`` field."""


def _event_data(payload: bytes) -> str:
    """An event's data exactly as the SSE algorithm gives it, from a ``split_events`` payload.

    One leading space and the line's LF are dropped, invalid UTF-8 replaced.
    """
    if payload[-1:] == b"\n":
        payload = payload[:-1]
    if payload[:1] == b" ":
        payload = payload[1:]
    return payload.decode("utf-8", "replace")


def _event_length(payload: bytes) -> int:
    """Bytes of the event a ``split_events`` payload came from: ``data:``, line, blank line."""
    return len(payload) + (6 if payload[-1:] == b"\n" else 7)


class _Done:
    """Marks the ``[DONE]`` event in the slow path."""


_DONE_MARK = _Done()


def _reported_error(payload: bytes | str) -> ErrorObject | None:
    """:func:`_error_in_payload`, for a payload that may be anything (nested too deeply...)."""
    try:
        return _error_in_payload(payload)
    except Exception:  # a payload msgspec cannot even skip through reports nothing
        return None


def _reported_event_error(data: str) -> ErrorObject:
    """:func:`_error_event_object`, for data that may be anything."""
    try:
        return _error_event_object(data)
    except Exception:  # nested too deeply to read: the text is the message
        return ErrorObject(message=data)


_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"

_Queued = tuple[ServerSentEvent, int, int, int] | EventTooLargeError
"""An event the parser completed (event, offset, end, index), or the size error that followed."""


def _as_bytes(data: Any) -> bytes:
    """A read as ``bytes``: bytearray and memoryview are copied, anything else is refused."""
    if type(data) is bytes:
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(
        f"ChunkDecoder.feed() takes bytes, bytearray or memoryview, not {type(data).__name__}"
    )


def _json_error(value: Any) -> ErrorObject | None:
    """The error a whole JSON body reports: ``{"error": ...}`` or vLLM's ``{"object": "error"}``."""
    if not isinstance(value, dict):
        return None
    if value.get("object") == "error" and "message" in value:
        return error_object(value)
    return None


class _Decoding(Generic[T]):
    """Everything of :class:`ChunkDecoder` above its hot-path core (see there)."""

    # The core's state (a C struct or plain attributes, see streamspec._fastpath).
    _decode: Callable[[Any], Any]
    _error_of: Callable[[Any], Any]
    _shortcut_limit: int
    _tail: bytearray
    max_event_size: int
    _consumed: int
    _events: int
    _has_error_field: bool
    _split_events: Callable[..., tuple[list[bytes], int] | None]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # ChunkDecoder, and any subclass of it, calls feed() through a
        # descriptor of its own, which CPython's call specialization needs
        # (nothing to do for the pure-Python core).
        super().__init_subclass__(**kwargs)
        if issubclass(cls, DecoderCore):
            bind_methods(cls)

    def __init__(
        self,
        type: Any = CreateChatCompletionStreamResponse,
        *,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        require_done: bool = False,
        salvage: bool = True,
        on_salvage: Callable[[SalvageNote], object] | None = None,
    ) -> None:
        self.type: Any = type
        self.max_event_size = max_event_size
        self.require_done = require_done
        self.done = False
        decode: Callable[[bytes | str], T] = msgspec.json.Decoder(type).decode
        self._decode = decode
        self.salvaged = SalvageLog(type, decode, enabled=salvage, on_salvage=on_salvage)
        # The fast paths must notice error payloads. With an ``error`` field
        # that is one attribute read per chunk; a type without one (a slim
        # projection) pays a byte search for '"error"' per read instead.
        self._has_error_field = "error" in getattr(type, "__struct_fields__", ())
        self._error_of: Callable[[Any], Any] = (
            attrgetter("error") if self._has_error_field else _NO_ERROR
        )
        self._sse = SSEParser(max_event_size=max_event_size)
        self._slow = False  # the stream uses CR line endings: the SSE parser takes it all
        self._tail = bytearray()  # bytes after the last event boundary (fast mode)
        self._backlog = b""  # bytes left unprocessed by an error (fast mode)
        self._queued: list[_Queued] = []  # what the parser completed, left by an error
        self._consumed = 0  # stream offset where the tail starts
        self._events = 0  # data events delivered
        self._failed: Error | None = None
        self._closed = False
        self._at_start = True  # nothing but whitespace seen yet: the body may be JSON
        self._json: bytearray | None = None  # the body, when it is a JSON document
        self._json_offset = 0  # where that document starts
        self._json_size = 0  # its bytes up to the last non-whitespace one
        self._lf_pending = False  # [DONE] ended in CR at the end of a read: a LF may follow
        # While nothing is queued and the stream is in fast mode, feed() may take
        # its shortcuts (see streamspec._fastpath); a read of one event may be up
        # to this many bytes (an event's size, as the SSE parser counts it, is
        # the read minus its two LFs). -1 disables the shortcuts: until the first
        # non-whitespace byte says the body is not a JSON document, this path
        # reads the stream.
        self._shortcut_limit = -1

    # -- public API ----------------------------------------------------------------------------

    @property
    def events(self) -> int:
        """Data events delivered so far (as chunks, ``[DONE]`` or errors)."""
        return self._events

    @property
    def bytes_consumed(self) -> int:
        """Bytes of the stream fully processed: never part of an unfinished event."""
        return self._consumed

    def close(self) -> list[T]:
        """End the stream; return the chunks a final unterminated event held.

        Raises :class:`TruncatedStreamError` when the stream ended inside an
        event whose data is incomplete, or (with ``require_done``) without
        ``[DONE]``; :class:`StreamError` or :class:`MalformedEventError` when
        the body was a JSON document.
        """
        if self._closed:
            return []
        out = self._feed(b"") if (self._backlog or self._queued or self._at_start) else []
        self._closed = True
        self._shortcut_limit = -1
        if self.done:
            return out
        if self._json is not None:
            self._finish_json()
        end = self._sse.offset if self._slow else self._consumed + len(self._tail)
        try:
            if self._slow:
                pending = self._sse.pending
                tail = b""
            else:
                tail = bytes(self._tail)
                self._tail.clear()
                pending = bool(tail.strip())
            if pending:
                self._finish_event(tail, out)
        except Error as exc:
            exc.chunks = out + exc.chunks
            raise
        self._consumed = end
        if self.require_done and not self.done:
            raise TruncatedStreamError(
                "the stream ended without [DONE]",
                chunks=out,
                event_index=self._events,
                offset=end,
            )
        return out

    # -- general path --------------------------------------------------------------------------

    def _feed(self, data: bytes) -> list[T]:
        if self._closed:
            raise ValueError("feed() after close()")
        if self._failed is not None:
            raise self._failed
        data = _as_bytes(data)
        out: list[T] = []
        try:
            if self._queued:
                queued, self._queued = self._queued, []
                try:
                    self._decode_events(queued, out)
                except Error:
                    self._backlog += data  # the read waits behind the events still queued
                    raise
            if self.done:
                if self._lf_pending and (self._backlog or data):
                    self._lf_pending = False
                    self._consumed += (self._backlog or data)[:1] == b"\n"
                return out
            if self._backlog:
                data, self._backlog = self._backlog + data, b""
            if self._at_start:
                data = self._check_start(data)
            if self._json is not None:
                self._collect_json(data)
                return out
            if self._slow:
                self._parse(data, out, resume=False)
                return out
            if 13 in data:  # b"\r"; an int needle takes the memchr path
                # CR line endings (alone or in CRLF) need the spec's line logic,
                # including a CRLF split across reads: the parser takes over.
                buf = bytes(self._tail) + data
                self._tail.clear()
                self._slow = True
                self._parse(buf, out, resume=True)
                return out
            if self._tail[:1] == b":":
                data = self._skip_comment_tail(data)
            if not self._tail:
                self._region(self._skip_noops(data), b"", out)
            elif self._completes_tail(data):
                head = bytes(self._tail)
                self._tail.clear()
                self._region(data, head, out)
        except EventTooLargeError as exc:
            self._failed = exc
            exc.chunks = out + exc.chunks
            if exc.offset is not None and exc.offset > self._consumed:
                # Only no-ops (blank lines, comment blocks) lie between the last event
                # and the oversized block: the stream is consumed up to where it starts,
                # whichever path framed the bytes before it.
                self._consumed = exc.offset
            raise
        except Error as exc:
            exc.chunks = out + exc.chunks
            raise
        finally:
            busy = (
                self._slow
                or self._backlog
                or self._queued
                or self.done
                or self._failed
                or self._json is not None
                or self._at_start
            )
            self._shortcut_limit = -1 if busy else self.max_event_size + 2
        return out

    def _continue(self, data: bytes, chunks: list[T]) -> list[T]:
        """Finish a read the fast path began: it decoded ``chunks``, then stopped
        at an event boundary before ``data`` (``[DONE]``, another kind of event,
        a payload for the careful path)."""
        try:
            more = self._feed(data)
        except Error as exc:
            exc.chunks = chunks + exc.chunks
            raise
        chunks += more
        return chunks

    # -- a body that is one JSON document ------------------------------------------------------

    def _check_start(self, data: bytes) -> bytes:
        """At the stream start: decide from its first non-whitespace byte whether it is JSON.

        Returns the bytes to go on with; in JSON mode the document has been
        taken from the tail and ``data``.
        """
        if self._events or (self._slow and self._sse.events_dispatched):
            self._at_start = False
            return data
        text = bytes(self._tail) + data if self._tail else data
        base = self._sse.offset if self._slow else self._consumed
        if base == 0 and _BOM.startswith(text):
            return data  # the start of a BOM so far
        body = text[3:] if base == 0 and text.startswith(_BOM) else text
        body = body.lstrip(_WHITESPACE)
        if not body:
            return data  # only whitespace so far
        self._at_start = False
        if body[:1] != b"{":
            return data
        self._json = bytearray()
        self._json_offset = self._consumed = base + len(text) - len(body)
        self._tail.clear()
        self._slow = False
        return body

    def _collect_json(self, data: bytes) -> None:
        json = self._json
        assert json is not None
        end = len(data.rstrip(_WHITESPACE))
        if end:
            self._json_size = len(json) + end
        json += data
        if self._json_size > self.max_event_size:
            raise EventTooLargeError(
                self.max_event_size, self._json_size, event_index=0, offset=self._json_offset
            )

    def _finish_json(self) -> None:
        body = bytes(self._json or b"")
        self._json = None
        offset = self._json_offset
        found = _reported_error(body)
        if found is None:
            try:
                value = _decode_any(body)
            except Exception as exc:
                raise MalformedEventError(
                    f"expected an event stream (data: lines), got a body starting with '{{'"
                    f" that is not a JSON document ({exc})",
                    body,
                    event_index=0,
                    offset=offset,
                ) from None
            found = _json_error(value)
        if found is not None:
            raise StreamError(found, body.decode("utf-8", "replace"), event_index=0, offset=offset)
        raise MalformedEventError(
            "expected an event stream (data: lines), got a JSON document",
            body,
            event_index=0,
            offset=offset,
        )

    # -- fast mode, general case ---------------------------------------------------------------

    def _skip_noops(self, data: bytes) -> bytes:
        """Drop the blank lines and comment-only blocks ``data`` starts with (no tail).

        They are no-ops in the spec's algorithm; one regex match finds them. A
        run longer than ``max_event_size`` that may hold an oversized block is
        left to the parser, which measures it.
        """
        skip = NOOP_BLOCKS.match(data).end()  # type: ignore[union-attr]
        if not skip or (
            skip > self.max_event_size
            and max(map(len, data[:skip].split(b"\n\n"))) > self.max_event_size
        ):
            return data
        self._consumed += skip
        return data[skip:]

    def _skip_comment_tail(self, data: bytes) -> bytes:
        """When the unfinished event is a comment, end it (and any no-ops after it) at once."""
        joined = bytes(self._tail) + data
        skip = NOOP_BLOCKS.match(joined).end()  # type: ignore[union-attr]
        if skip <= len(self._tail) or (
            skip > self.max_event_size
            and max(map(len, joined[:skip].split(b"\n\n"))) > self.max_event_size
        ):
            return data
        self._tail.clear()
        self._consumed += skip
        return joined[skip:]

    def _completes_tail(self, data: bytes) -> bool:
        """Whether ``data`` ends the unfinished event (holds its blank line).

        While it does not, ``data`` is added to it: appended to one buffer
        (amortised linear) and checked against ``max_event_size``.
        """
        if self._tail[-1:] == b"\n" == data[:1] or data.find(b"\n\n") >= 0:
            return True
        self._keep(data)
        return False

    def _keep(self, data: bytes) -> None:
        """Add ``data`` to the unfinished event, within ``max_event_size``.

        The size is counted as the SSE parser counts it: from the event's first
        byte to its last line's last byte, a final line ending excluded.
        """
        tail = self._tail
        if not tail:  # blank lines between events are no-ops: the event starts after them
            event = data.lstrip(b"\n")
            self._consumed += len(data) - len(event)
            data = event
        tail += data
        size = len(tail) - (tail[-1:] == b"\n")
        if size > self.max_event_size:
            raise EventTooLargeError(
                self.max_event_size, size, event_index=self._events, offset=self._consumed
            )

    def _region(self, buf: bytes, head: bytes, out: list[T]) -> None:
        """Decode ``head + buf``: it starts at an event boundary and holds no CR.

        ``head`` is the unfinished event of earlier reads, which ``buf`` ends.
        A run of data-only events is framed by ``split_events`` and decoded with
        one ``map()``; anything else goes to the spec parser. What follows the
        last complete event waits in the tail.
        """
        split = self._split_events(buf, 0, head)
        if split is None or (
            len(head) + len(buf) > self.max_event_size
            and max(map(len, split[0]), default=0) + 5 > self.max_event_size
        ):
            self._general(head + buf if head else buf, out)
            return
        payloads, stop = split
        done = payloads.pop() if payloads and payloads[-1].strip() == _DONE else None
        try:
            chunks: list[T] | None = list(map(self._decode, payloads))
        except Exception:  # the careful path below says what
            chunks = None
        else:
            if (
                any(map(self._error_of, chunks))  # type: ignore[arg-type]
                or (
                    not self._has_error_field
                    and (
                        buf.find(ERROR_KEY, 0, stop) >= 0
                        or head.find(ERROR_KEY) >= 0
                        or (head[-6:] + buf[:6]).find(ERROR_KEY) >= 0
                    )
                )
            ):
                chunks = None
        if chunks is None:
            self._one_by_one(payloads, done, buf[stop:], out)
            if self.done:
                return
            if done is not None:
                self._consumed += _event_length(done)
                self._events += 1
        else:
            out += chunks
            self._consumed += len(head) + stop
            self._events += len(payloads) + (done is not None)
        if done is not None:
            self.done = True
        elif stop < len(buf):
            self._keep(buf[stop:])

    def _one_by_one(
        self, payloads: list[bytes], done: bytes | None, tail: bytes, out: list[T]
    ) -> None:
        """Decode payloads one at a time, to find and report the one that failed."""
        for position, payload in enumerate(payloads):
            try:
                chunk = self._payload(_event_data(payload), self._events, self._consumed)
            except Error:
                # The bad event is consumed; what follows it waits for the next feed().
                later = [*payloads[position + 1 :], *([done] if done is not None else [])]
                self._backlog = b"".join([PREFIX + p.rstrip(b"\n") + b"\n\n" for p in later]) + tail
                self._events += 1
                self._consumed += _event_length(payload)
                raise
            self._events += 1
            self._consumed += _event_length(payload)
            if chunk is _DONE_MARK:  # "[DONE]" in the middle of a read
                self.done = True
                return
            out.append(chunk)  # type: ignore[arg-type]

    def _general(self, buf: bytes, out: list[T]) -> None:
        """Run the spec parser over ``buf`` up to its last event boundary; keep the rest."""
        end = buf.rfind(b"\n\n") + 2
        if end < 2:
            self._keep(buf)
            return
        try:
            self._parse(buf[:end], out, resume=True)
        except EventTooLargeError:
            raise
        except Error:
            # What follows the last boundary waits behind the events still queued.
            self._backlog = buf[end:]
            raise
        if not self.done and end < len(buf):
            self._keep(buf[end:])

    # -- the spec parser and one event at a time -----------------------------------------------

    def _parse(self, data: bytes, out: list[T], *, resume: bool) -> None:
        """Feed the spec parser; decode what it completes, in stream order.

        ``resume``: ``data`` starts at the tail (fast mode hands over), not
        where the parser stopped.
        """
        sse = self._sse
        if resume:
            sse._resume(self._consumed, self._events)
        first = sse.events_dispatched
        failure: EventTooLargeError | None = None
        try:
            events = sse.feed(data)
        except EventTooLargeError as exc:
            # The events completed before the oversized one come first.
            events, exc.chunks, failure = exc.chunks, [], exc
        offsets = sse.event_offsets
        ends = sse.event_ends
        queue: list[_Queued] = [
            (event, offsets[i], ends[i], first + i) for i, event in enumerate(events)
        ]
        if failure is not None:
            queue.append(failure)
        self._decode_events(queue, out)

    def _decode_events(self, queued: list[_Queued], out: list[T]) -> None:
        for position, item in enumerate(queued):
            if self.done:
                return
            if isinstance(item, EventTooLargeError):
                self._failed = item
                raise item
            event, offset, end, index = item
            self._events = index + 1
            self._consumed = end
            try:
                if event.event == "error":
                    raise StreamError(
                        _reported_event_error(event.data),
                        event.data,
                        event_index=index,
                        offset=offset,
                    )
                chunk = self._payload(event.data, index, offset)
            except Error:
                self._queued = queued[position + 1 :]
                if not self._queued:
                    self._consumed = self._sse.boundary
                raise
            if chunk is _DONE_MARK:
                self.done = True
                # A CRLF that ends [DONE]'s blank line is part of it when its LF comes.
                self._lf_pending = end == self._sse.offset and self._sse._after_cr
                return
            out.append(chunk)  # type: ignore[arg-type]
        # Everything the parser completed is delivered: so are the no-op blocks after it.
        self._consumed = self._sse.boundary

    def _payload(self, payload: str, index: int, offset: int) -> T | _Done:
        """Decode one event's data, with every check and a located error."""
        try:
            chunk: T = self._decode(payload)
        except Exception as exc:  # any failure to decode: malformed
            if payload.strip() == "[DONE]":
                return _DONE_MARK
            chunk = UNSALVAGED
            if not isinstance(exc, RecursionError):  # nested too deeply: nothing to walk
                try:
                    chunk = self.salvaged.recover(payload, exc, index, offset)  # after a failure
                except Exception:  # the salvage walk failed too: the event is malformed
                    chunk = UNSALVAGED
            if chunk is UNSALVAGED:
                found = _reported_error(payload)
                if found is not None:
                    raise StreamError(found, payload, event_index=index, offset=offset) from None
                if isinstance(exc, msgspec.DecodeError):
                    reason = str(exc)
                elif isinstance(exc, RecursionError):
                    reason = "JSON nested too deeply to decode"
                else:
                    reason = f"{type(exc).__name__}: {exc}"
                raise MalformedEventError(
                    reason, payload, event_index=index, offset=offset
                ) from None
        if self._has_error_field:
            value = self._error_of(chunk)
            found = None
            if value:
                found = _reported_error(payload)
        else:
            found = _reported_error(payload) if '"error"' in payload else None
        if found is not None:
            raise StreamError(found, payload, chunk=chunk, event_index=index, offset=offset)
        return chunk

    def _finish_event(self, tail: bytes, out: list[T]) -> None:
        """At end of stream: complete a final event that lacks its blank line."""
        resume = not self._slow
        self._slow = True  # the parser reads the tail exactly as the spec says
        try:
            self._parse(tail + b"\n\n", out, resume=resume)
        except MalformedEventError as exc:
            raise TruncatedStreamError(
                f"the stream ended inside an event ({exc.reason})",
                tail or (exc.data.encode() if isinstance(exc.data, str) else exc.data),
                event_index=exc.event_index,
                offset=exc.offset,
            ) from None


class ChunkDecoder(DecoderCore, _Decoding[T]):
    """Incremental decoder from SSE bytes to chunks of ``type``.

    ``type`` is any msgspec Struct (or type msgspec can decode): the full
    :class:`CreateChatCompletionStreamResponse` by default, or a slim
    projection holding only the fields a gateway needs.

    * ``feed(data)`` returns the chunks completed by ``data`` (any split of the
      stream, down to single bytes, gives the same chunks). ``data`` is
      ``bytes``, ``bytearray`` or ``memoryview``.
    * ``close()`` ends the stream and returns what a final event lacking its
      blank line still held (some servers end that way): its data is decoded if
      it is complete JSON (or ``[DONE]``). If the stream ended inside an event
      whose data is cut off, ``close()`` raises :class:`TruncatedStreamError`.
      A stream that simply ended without ``[DONE]`` closes quietly with
      ``done`` still False; pass ``require_done=True`` to make that an error
      too. Either way ``done`` tells a complete stream from a truncated one.
    * ``done`` becomes True at ``data: [DONE]``; later bytes are ignored.
    * A body that is a JSON document (``{"error": {...}}``, as servers answer a
      bad request even when a stream was asked for) raises
      :class:`StreamError` with the server's error at ``close()``; any other
      JSON document raises :class:`MalformedEventError`.

    A payload that is valid JSON but does not fit ``type`` is salvaged, not
    rejected (unless ``salvage=False``): every field that fits is kept, what
    does not is dropped at the smallest enclosing optional field or list
    element (see :mod:`streamspec.salvage` for the rule), and the chunk is
    returned. ``salvaged`` (a :class:`streamspec.SalvageLog`) counts what was
    dropped and keeps the first notes, each with the event index, byte offset,
    JSON path and reason; ``on_salvage`` is called with every note. This runs
    only after a chunk failed to decode: chunks that fit pay nothing for it.
    An ``error`` member raises :class:`StreamError` only when it is an error
    report (:func:`error_report`); ``"error": false`` in a chunk is none.

    Errors all derive from :class:`streamspec.Error`, come in stream order
    (the first problem wins) and carry ``chunks``: the chunks the same call
    decoded before the error. After a :class:`StreamError` or
    :class:`MalformedEventError` the decoder can go on: the offending event is
    consumed, and the next ``feed()`` (``b""`` will do) continues with the rest
    of the bytes already given. After :class:`EventTooLargeError` or
    :class:`TruncatedStreamError` it cannot.

    Memory is bounded by ``max_event_size`` (default 8 MiB) for the event in
    progress, counted as :class:`SSEParser` counts it whatever the reads;
    decoded chunks are returned, never retained. See the module docstring for
    the full set of rules.
    """

    _split_events = staticmethod(split_events)

    if TYPE_CHECKING:  # feed() itself comes from the core (see streamspec._fastpath)

        def feed(self, data: bytes | bytearray | memoryview) -> list[T]:
            """Decode the next bytes of the stream; return the chunks they complete."""
            ...

    @overload
    def __init__(
        self: ChunkDecoder[CreateChatCompletionStreamResponse],
        *,
        max_event_size: int = ...,
        require_done: bool = ...,
        salvage: bool = ...,
        on_salvage: Callable[[SalvageNote], object] | None = ...,
    ) -> None: ...

    @overload
    def __init__(
        self,
        type: type[T],
        *,
        max_event_size: int = ...,
        require_done: bool = ...,
        salvage: bool = ...,
        on_salvage: Callable[[SalvageNote], object] | None = ...,
    ) -> None: ...

    def __init__(
        self,
        type: Any = CreateChatCompletionStreamResponse,
        *,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        require_done: bool = False,
        salvage: bool = True,
        on_salvage: Callable[[SalvageNote], object] | None = None,
    ) -> None:
        _Decoding.__init__(
            self,
            type,
            max_event_size=max_event_size,
            require_done=require_done,
            salvage=salvage,
            on_salvage=on_salvage,
        )


class PyChunkDecoder(PyDecoderCore, _Decoding[T]):
    """:class:`ChunkDecoder` on the pure-Python hot path, whether or not the C one is built.

    The same contract and results; for tests and benchmarks that compare the
    two implementations in one process.
    """

    _split_events = staticmethod(py_split_events)

    if TYPE_CHECKING:  # feed() itself comes from the core (see streamspec._fastpath)

        def feed(self, data: bytes | bytearray | memoryview) -> list[T]:
            """Decode the next bytes of the stream; return the chunks they complete."""
            ...
