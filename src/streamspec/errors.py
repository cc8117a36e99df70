"""The exceptions streamspec raises: one hierarchy under :class:`Error`.

Every error that leaves the SSE parser or the chunk decoder carries what an
operator needs to act: which event (counted from 0 among events that carry
data), at which byte offset of the stream it started, a short snippet of the
offending bytes, and ``chunks``: whatever the same ``feed()``/``close()`` call
had already decoded before the error, so nothing decoded is lost.
"""

from __future__ import annotations

from typing import Any

from .types.common import ErrorObject

__all__ = [
    "Error",
    "EventTooLargeError",
    "MalformedEventError",
    "StreamError",
    "TruncatedStreamError",
]

_SNIPPET = 80


def snippet(data: bytes | str, limit: int = _SNIPPET) -> str:
    """A short, printable excerpt of ``data`` for error messages."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)


class Error(Exception):
    """Base class of every error streamspec raises.

    ``chunks`` holds the chunks decoded by the same call before the error.
    ``event_index`` and ``offset`` locate the event, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        chunks: list[Any] | None = None,
        event_index: int | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.chunks: list[Any] = chunks if chunks is not None else []
        self.event_index = event_index
        self.offset = offset


class StreamError(Error):
    """The server reported an error in the middle of the stream.

    Raised for an ``event: error`` event, for a data payload whose ``error``
    member is non-null (an object, or a plain string as TGI and Xinference
    send), and for a normal chunk that carries an ``error`` member
    (OpenRouter). ``error`` is the typed error; ``payload`` the raw event data;
    ``chunk`` the decoded chunk that carried the error, if it was one.
    """

    def __init__(
        self,
        error: ErrorObject,
        payload: bytes | str,
        *,
        chunk: Any = None,
        chunks: list[Any] | None = None,
        event_index: int | None = None,
        offset: int | None = None,
    ) -> None:
        where = _where(event_index, offset)
        parts = [f"server error{where}: {error.message or '(no message)'}"]
        if isinstance(error.type, str):
            parts.append(f"type={error.type}")
        if isinstance(error.code, (str, int)):
            parts.append(f"code={error.code}")
        super().__init__(" ".join(parts), chunks=chunks, event_index=event_index, offset=offset)
        self.error = error
        self.payload = payload
        self.chunk = chunk


class MalformedEventError(Error):
    """An event's data is not a valid chunk: bad JSON or wrong types.

    ``reason`` is msgspec's message (it names the JSON path for type errors);
    ``data`` is the event's data.
    """

    def __init__(
        self,
        reason: str,
        data: bytes | str,
        *,
        chunks: list[Any] | None = None,
        event_index: int | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(
            f"malformed event{_where(event_index, offset)}: {reason}; data: {snippet(data)}",
            chunks=chunks,
            event_index=event_index,
            offset=offset,
        )
        self.reason = reason
        self.data = data


class EventTooLargeError(Error):
    """An event (or a single line) grew past ``max_event_size`` bytes.

    Raised as soon as the buffered bytes cross the limit, so a server that
    never ends a line is caught without buffering more. The decoder cannot go
    on after this error.
    """

    def __init__(
        self,
        limit: int,
        size: int,
        *,
        chunks: list[Any] | None = None,
        event_index: int | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(
            f"event{_where(event_index, offset)} exceeds max_event_size:"
            f" {size} bytes buffered, limit {limit}",
            chunks=chunks,
            event_index=event_index,
            offset=offset,
        )
        self.limit = limit
        self.size = size


class TruncatedStreamError(Error):
    """The stream ended inside an event, or without ``[DONE]`` when it was required.

    ``pending`` holds the bytes of the unfinished event (empty when the stream
    merely lacked ``[DONE]``).
    """

    def __init__(
        self,
        reason: str,
        pending: bytes = b"",
        *,
        chunks: list[Any] | None = None,
        event_index: int | None = None,
        offset: int | None = None,
    ) -> None:
        message = f"truncated stream{_where(event_index, offset)}: {reason}"
        if pending:
            message += f"; pending: {snippet(pending)}"
        super().__init__(message, chunks=chunks, event_index=event_index, offset=offset)
        self.reason = reason
        self.pending = pending


def _where(event_index: int | None, offset: int | None) -> str:
    where = ""
    if event_index is not None:
        where += f" in event #{event_index}"
    if offset is not None:
        where += f" at byte {offset}"
    return where
