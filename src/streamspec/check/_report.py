"""What a check reports: :class:`Problem`, :class:`Note` and :class:`CheckReport`."""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["CheckReport", "Note", "NoteKind", "Problem", "ProblemKind", "StreamKind"]

ProblemKind = Literal["json", "type", "server_error", "truncated", "sse", "spec", "salvage"]
"""What kind of problem: see :mod:`streamspec.check`. Only ``"sse"`` and
``"spec"`` problems depend on ``strict`` (except an oversized event, always ``"sse"``)."""

StreamKind = Literal["chat", "completions"]
"""``"chat"``: ``chat.completion.chunk`` events (``/v1/chat/completions``);
``"completions"``: legacy ``text_completion`` events (``/v1/completions``)."""


class Problem(msgspec.Struct, kw_only=True, frozen=True):
    """One problem found in the stream.

    ``event`` is the index of the data event (from 0); for a problem at the end
    of the stream, the index the next event would have had. ``offset`` is the
    byte offset in the stream where that event (or SSE line) starts. ``path``
    is a JSON path into the event's payload (``"$"`` for the whole payload,
    ``""`` for framing problems outside any payload).
    """

    event: int
    offset: int
    path: str
    kind: ProblemKind
    message: str


NoteKind = Literal["extension", "salvaged"]
"""``"extension"``: a key the specification does not define; ``"salvaged"``: a
value the decoder drops (or converts) to keep a chunk it would otherwise reject."""


class Note(msgspec.Struct, kw_only=True, frozen=True):
    """An extension key the stream carried, or (without ``strict``) a value the decoder drops.

    ``path`` is exact (``$.choices[0].delta.reasoning``); ``events`` counts the
    events that carried it; ``first_event`` is the first of them. A
    ``"salvaged"`` note's ``path`` is what the decoder leaves out and
    ``reason`` says why (the value's own path and msgspec's message).
    """

    path: str
    events: int
    first_event: int
    kind: NoteKind = "extension"
    reason: str = ""


class CheckReport(msgspec.Struct, kw_only=True):
    """The result of a check (:func:`streamspec.check_stream`, :class:`streamspec.StreamChecker`).

    ``ok`` is True when no problem was found. ``kind`` is the kind of stream
    checked (given, or detected from the first chunk). ``size`` counts the
    stream's bytes, ``events`` its data events (``[DONE]`` included),
    ``chunks`` the payloads that decode as chunks; ``done`` tells whether
    ``data: [DONE]`` arrived. ``problems`` lists at most ``max_problems``
    problems in stream order, ``notes`` at most ``max_notes`` extension paths;
    ``problems_omitted`` and ``notes_omitted`` count the ones left out.
    ``status`` is the HTTP status when the stream came from a URL. Encodes to
    JSON with :func:`msgspec.json.encode`.
    """

    ok: bool
    strict: bool
    kind: StreamKind
    size: int
    events: int
    chunks: int
    done: bool
    problems: list[Problem]
    notes: list[Note]
    problems_omitted: int = 0
    notes_omitted: int = 0
    status: int | None = None
