"""Sync and async iteration over byte streams: thin wrappers around :class:`ChunkDecoder`.

They take what HTTP clients yield: httpx ``iter_bytes()``/``aiter_bytes()``
(or ``iter_raw()``), aiohttp ``content.iter_any()``, requests
``iter_content(None)``, a file opened in binary mode, a list of ``bytes``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar, overload

from ._fastpath import IMPLEMENTATION
from .decoder import ChunkDecoder
from .errors import Error
from .salvage import SalvageNote
from .sse import DEFAULT_MAX_EVENT_SIZE
from .types.stream import CreateChatCompletionStreamResponse

_ChunkIterator: Any = None
if IMPLEMENTATION == "c":
    from ._speedups import ChunkIterator as _ChunkIterator

__all__ = ["Feeder", "aiter_chunks", "aiterate", "iter_chunks", "iterate"]

T = TypeVar("T")


class Feeder(Protocol[T]):
    """What the iterators drive: :class:`ChunkDecoder`, or a wrapper such as ``StreamMeter``."""

    @property
    def done(self) -> bool: ...

    def feed(self, data: bytes) -> list[T]: ...

    def close(self) -> list[T]: ...


def iterate(decoder: Feeder[T], source: Iterable[bytes]) -> Iterator[T]:
    """Feed ``source`` to ``decoder``; yield its chunks until ``[DONE]`` or the end.

    On an error the chunks decoded before it are yielded, then it is raised.
    With the compiled accelerator this is an iterator object that does the
    same as the generator below without a frame switch per chunk.
    """
    if _ChunkIterator is not None:
        return _ChunkIterator(decoder, source, Error)  # type: ignore[no-any-return]
    return _iterate(decoder, source)


def _iterate(decoder: Feeder[T], source: Iterable[bytes]) -> Iterator[T]:
    try:
        for data in source:
            yield from decoder.feed(data)
            if decoder.done:
                break
        yield from decoder.close()
    except Error as exc:
        yield from exc.chunks
        raise


async def aiterate(decoder: Feeder[T], source: AsyncIterable[bytes]) -> AsyncIterator[T]:
    """Async twin of :func:`iterate`."""
    try:
        async for data in source:
            for chunk in decoder.feed(data):
                yield chunk
            if decoder.done:
                break
        for chunk in decoder.close():
            yield chunk
    except Error as exc:
        for chunk in exc.chunks:
            yield chunk
        raise


@overload
def iter_chunks(
    source: Iterable[bytes],
    *,
    max_event_size: int = ...,
    require_done: bool = ...,
    salvage: bool = ...,
    on_salvage: Callable[[SalvageNote], object] | None = ...,
) -> Iterator[CreateChatCompletionStreamResponse]: ...


@overload
def iter_chunks(
    source: Iterable[bytes],
    type: type[T],
    *,
    max_event_size: int = ...,
    require_done: bool = ...,
    salvage: bool = ...,
    on_salvage: Callable[[SalvageNote], object] | None = ...,
) -> Iterator[T]: ...


def iter_chunks(
    source: Iterable[bytes],
    type: Any = CreateChatCompletionStreamResponse,
    *,
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    require_done: bool = False,
    salvage: bool = True,
    on_salvage: Callable[[SalvageNote], object] | None = None,
) -> Iterator[Any]:
    """Yield the chunks of an SSE byte stream until ``[DONE]`` or the end of ``source``.

    Reading stops at ``[DONE]``. On an error, the chunks decoded before it are
    yielded first, then the :class:`streamspec.Error` is raised (its
    ``chunks`` are those already yielded). See :class:`ChunkDecoder` for the
    end-of-stream rules; ``salvage`` and ``on_salvage`` are its options too
    (``on_salvage`` sees each :class:`streamspec.SalvageNote` as it is made).
    """
    decoder = ChunkDecoder(
        type,
        max_event_size=max_event_size,
        require_done=require_done,
        salvage=salvage,
        on_salvage=on_salvage,
    )
    return iterate(decoder, source)


@overload
def aiter_chunks(
    source: AsyncIterable[bytes],
    *,
    max_event_size: int = ...,
    require_done: bool = ...,
    salvage: bool = ...,
    on_salvage: Callable[[SalvageNote], object] | None = ...,
) -> AsyncIterator[CreateChatCompletionStreamResponse]: ...


@overload
def aiter_chunks(
    source: AsyncIterable[bytes],
    type: type[T],
    *,
    max_event_size: int = ...,
    require_done: bool = ...,
    salvage: bool = ...,
    on_salvage: Callable[[SalvageNote], object] | None = ...,
) -> AsyncIterator[T]: ...


def aiter_chunks(
    source: AsyncIterable[bytes],
    type: Any = CreateChatCompletionStreamResponse,
    *,
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    require_done: bool = False,
    salvage: bool = True,
    on_salvage: Callable[[SalvageNote], object] | None = None,
) -> AsyncIterator[Any]:
    """Async twin of :func:`iter_chunks`."""
    decoder = ChunkDecoder(
        type,
        max_event_size=max_event_size,
        require_done=require_done,
        salvage=salvage,
        on_salvage=on_salvage,
    )
    return aiterate(decoder, source)
