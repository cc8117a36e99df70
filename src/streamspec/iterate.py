"""Sync and async iteration over byte streams: thin wrappers around :class:`ChunkDecoder`.

They take what HTTP clients yield: httpx ``iter_bytes()``/``aiter_bytes()``
(or ``iter_raw()``), aiohttp ``content.iter_any()``, requests
``iter_content(None)``, a file opened in binary mode, a list of ``bytes``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any, TypeVar, overload

from .decoder import ChunkDecoder
from .errors import Error
from .sse import DEFAULT_MAX_EVENT_SIZE
from .types.stream import CreateChatCompletionStreamResponse

__all__ = ["aiter_chunks", "iter_chunks"]

T = TypeVar("T")


@overload
def iter_chunks(
    source: Iterable[bytes],
    *,
    max_event_size: int = ...,
    require_done: bool = ...,
) -> Iterator[CreateChatCompletionStreamResponse]: ...


@overload
def iter_chunks(
    source: Iterable[bytes],
    type: type[T],
    *,
    max_event_size: int = ...,
    require_done: bool = ...,
) -> Iterator[T]: ...


def iter_chunks(
    source: Iterable[bytes],
    type: Any = CreateChatCompletionStreamResponse,
    *,
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    require_done: bool = False,
) -> Iterator[Any]:
    """Yield the chunks of an SSE byte stream until ``[DONE]`` or the end of ``source``.

    Reading stops at ``[DONE]``. On an error, the chunks decoded before it are
    yielded first, then the :class:`streamspec.Error` is raised (its
    ``chunks`` are those already yielded). See :class:`ChunkDecoder` for the
    end-of-stream rules.
    """
    decoder = ChunkDecoder(type, max_event_size=max_event_size, require_done=require_done)
    try:
        for data in source:
            yield from decoder.feed(data)
            if decoder.done:
                return
        yield from decoder.close()
    except Error as exc:
        yield from exc.chunks
        raise


@overload
def aiter_chunks(
    source: AsyncIterable[bytes],
    *,
    max_event_size: int = ...,
    require_done: bool = ...,
) -> AsyncIterator[CreateChatCompletionStreamResponse]: ...


@overload
def aiter_chunks(
    source: AsyncIterable[bytes],
    type: type[T],
    *,
    max_event_size: int = ...,
    require_done: bool = ...,
) -> AsyncIterator[T]: ...


async def aiter_chunks(
    source: AsyncIterable[bytes],
    type: Any = CreateChatCompletionStreamResponse,
    *,
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    require_done: bool = False,
) -> AsyncIterator[Any]:
    """Async twin of :func:`iter_chunks`."""
    decoder = ChunkDecoder(type, max_event_size=max_event_size, require_done=require_done)
    try:
        async for data in source:
            for chunk in decoder.feed(data):
                yield chunk
            if decoder.done:
                return
        for chunk in decoder.close():
            yield chunk
    except Error as exc:
        for chunk in exc.chunks:
            yield chunk
        raise
