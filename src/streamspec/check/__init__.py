"""Check a completion stream: what breaks decoding, and (strictly) what is off-spec.

:func:`check_stream` checks a whole SSE stream (bytes, or an iterable of
reads; :func:`acheck_stream` an async iterable); :class:`StreamChecker` does
the same read by read (``feed()`` then ``close()``), in memory bounded by
``max_event_size`` whatever the stream's length. All return a
:class:`CheckReport`. Each :class:`Problem` names the event (counted from 0
among events that carry data, as
:class:`streamspec.ChunkDecoder` counts them), the byte offset where that event
starts, and a JSON path into the event's payload::

    Problem(event=4, offset=1203, path='$.choices[0].finish_reason', kind='spec',
            message='`finish_reason` is "", expected one of "stop", "length", "tool_calls",
            "content_filter", "function_call" or null')

The stream's kind is ``"chat"`` (``chat.completion.chunk`` events) or
``"completions"`` (legacy ``text_completion`` events of ``/v1/completions``):
given as ``kind``, or detected from the first chunk (its ``object``, or
choices holding ``text`` rather than ``delta``). Chunks are checked against
that kind's types, strictly against its specification.

Always reported (``kind``):

* ``"json"``: a payload that is not JSON (or nested too deeply to decode).
* ``"type"``: a payload the decoder rejects (a wrong type, a required field
  missing), with the path msgspec gives.
* ``"server_error"``: an ``event: error`` event, a non-empty ``error`` member
  in a payload, or a whole body that is a JSON error document
  (``{"error": {...}}`` sent instead of an event stream), with the server's
  message.
* ``"truncated"``: the stream ended inside an event, or without ``data: [DONE]``.
* ``"sse"``: an event over ``max_event_size``, a line the SSE parser cannot
  read, or a body that is a JSON document but not an error.

With ``strict=True``, also (``kind`` ``"sse"`` or ``"spec"``): every value
that departs from the OpenAI specification of the chunk (``id`` missing or
empty, ``object`` other than ``"chat.completion.chunk"`` / ``"text_completion"``,
``created`` missing or 0, ``finish_reason`` outside its enum, ``role`` other
than ``"assistant"``, a tool call fragment without ``index``, usage counts
that are not integers...), and SSE framing a strict client would not read
the same way (an unknown field such as ``error:``, a final event without its
blank line, events after ``[DONE]``, invalid UTF-8).

Keys the specification does not define (``obfuscation``, ``x_groq``,
``reasoning_content``, ``usage.cost``...) are never problems: they are listed as
:class:`Note` entries, one per exact path, with the number of events that
carried them.

A report lists at most ``max_problems`` problems and ``max_notes`` distinct
note paths (1,000 each by default) and counts the rest in
``problems_omitted`` / ``notes_omitted``, so that its size is bounded too.

How: each read's payloads are decoded in one pass by a *probe*, a msgspec
type that rejects unknown keys (the decoder's own lenient types, or for
``strict`` the specification's); a payload a probe accepts needs no further
look but its extension fields and the rules that span chunks. A payload a
probe rejects is decoded to plain Python objects and walked key by key, so
that every path is exact: ``$.choices[1].delta.tool_calls[0].function.name``.
"""

from ._checker import (
    DEFAULT_MAX_NOTES,
    DEFAULT_MAX_PROBLEMS,
    StreamChecker,
    acheck_stream,
    check_stream,
)
from ._report import CheckReport, Note, NoteKind, Problem, ProblemKind, StreamKind

__all__ = [
    "DEFAULT_MAX_NOTES",
    "DEFAULT_MAX_PROBLEMS",
    "CheckReport",
    "Note",
    "NoteKind",
    "Problem",
    "ProblemKind",
    "StreamChecker",
    "StreamKind",
    "acheck_stream",
    "check_stream",
]
