"""Stream metrics: time to first token, inter-chunk latency, throughput, measured as bytes arrive.

:class:`StreamMeter` wraps a :class:`streamspec.ChunkDecoder`. Each ``feed()``
call reads the clock once (``time.perf_counter_ns()``) and stamps every chunk
that read completed with that instant, so chunks that arrive in one network
read share one timestamp. The hot path only appends a timestamp and adds up
text lengths; percentiles are computed by :meth:`StreamMeter.result`.

    >>> from streamspec.metrics import StreamMeter
    >>> from streamspec.samples import sample_stream
    >>> meter = StreamMeter()
    >>> for line in sample_stream("openai_text").splitlines(keepends=True):
    ...     chunks = meter.feed(line)
    >>> _ = meter.close()
    >>> metrics = meter.result()
    >>> metrics.status, metrics.chunks, metrics.completion_tokens
    ('complete', 53, 49)

:class:`StreamMetrics` encodes to JSON with :func:`msgspec.json.encode`; times
are milliseconds, ``null`` when the stream gave nothing to measure::

    {"status": "complete", "error": null, "finish_reason": "stop", "chunks": 53,
     "token_chunks": 50, "content_chars": 170, "reasoning_chars": 0,
     "time_to_first_chunk_ms": 212.4, "time_to_first_token_ms": 230.9,
     "duration_ms": 1204.7,
     "inter_chunk_ms": {"count": 52, "mean": 19.1, "p50": 17.0, "p90": 31.2,
                        "p99": 55.0, "max": 61.3},
     "prompt_tokens": 31, "completion_tokens": 49, "total_tokens": 80,
     "tokens_per_second": 49.9, "tokens_per_second_basis": "usage"}
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from operator import sub
from typing import Literal

import msgspec
from msgspec import UnsetType

from .decoder import ChunkDecoder
from .errors import Error, StreamError, TruncatedStreamError
from .iterate import aiterate, iterate
from .sse import DEFAULT_MAX_EVENT_SIZE
from .types.common import CompletionUsage
from .types.stream import (
    ChatCompletionStreamContentBlock,
    CreateChatCompletionStreamResponse,
    reasoning_text,
)

__all__ = ["LatencySummary", "StreamMeter", "StreamMetrics", "StreamStatus"]

StreamStatus = Literal["complete", "truncated", "error"]
"""How a stream ended.

``"complete"``: ``data: [DONE]`` arrived and no error was seen. ``"error"``:
the server reported an error (:class:`streamspec.StreamError`), an event was
malformed, or the caller reported a failure with :meth:`StreamMeter.fail`.
``"truncated"``: the stream ended (or has not ended yet) without ``[DONE]``.
"""

_Chunk = CreateChatCompletionStreamResponse


class LatencySummary(msgspec.Struct, kw_only=True, frozen=True):
    """Distribution of a set of latencies, in milliseconds.

    Percentiles interpolate linearly between the closest ranks (numpy's
    default method): ``p50`` of ``[10, 20]`` is ``15``.
    """

    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    max: float


class StreamMetrics(msgspec.Struct, kw_only=True, frozen=True):
    """What one stream measured: timing, volume, usage and how it ended.

    Times are milliseconds from the meter's start time; ``None`` when the
    stream gave nothing to measure (no chunk, no token, a single chunk).

    * ``chunks``: chunks decoded (every ``data:`` event but ``[DONE]`` and error
      payloads; a chunk that carries choices and an ``error`` member counts).
    * ``token_chunks``: chunks that carry generated text: non-empty content,
      reasoning (``reasoning_content`` or ``reasoning``, counted once),
      refusal, or a tool call fragment (name or arguments).
    * ``content_chars`` / ``reasoning_chars``: characters (code points) of
      content and of reasoning text, summed over every choice.
    * ``finish_reason``: the last non-empty ``finish_reason`` of choice 0.
    * ``time_to_first_chunk_ms``: start to the read that completed the first chunk.
    * ``time_to_first_token_ms``: start to the first token chunk.
    * ``duration_ms``: start to the last chunk.
    * ``inter_chunk_ms``: gaps between consecutive chunks (0 for chunks that
      arrived in the same read).
    * ``prompt_tokens`` / ``completion_tokens`` / ``total_tokens``: the last
      ``usage`` the stream carried (servers that repeat it repeat the totals).
    * ``tokens_per_second``: decode speed after the first token,
      ``(tokens - 1) / (last token chunk - first token chunk)``, where tokens
      is ``usage.completion_tokens`` when the stream reported usage
      (``tokens_per_second_basis == "usage"``), else ``token_chunks``
      (``"chunks"``: most servers send one token per chunk). ``None`` when
      fewer than two token chunks arrived in distinct reads.
    """

    status: StreamStatus
    error: str | None = None
    finish_reason: str | None = None
    chunks: int = 0
    token_chunks: int = 0
    content_chars: int = 0
    reasoning_chars: int = 0
    time_to_first_chunk_ms: float | None = None
    time_to_first_token_ms: float | None = None
    duration_ms: float | None = None
    inter_chunk_ms: LatencySummary | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    tokens_per_second: float | None = None
    tokens_per_second_basis: Literal["usage", "chunks"] | None = None


def _percentile(ordered: list[int], q: float) -> float:
    """The ``q`` quantile (0..1) of sorted ``ordered``, linearly interpolated."""
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _summarize(values_ns: Iterable[int]) -> LatencySummary | None:
    """Summarize nanosecond latencies as a :class:`LatencySummary` in ms (None if empty)."""
    ordered = sorted(values_ns)
    if not ordered:
        return None
    ms = 1e-6
    return LatencySummary(
        count=len(ordered),
        mean=sum(ordered) / len(ordered) * ms,
        p50=_percentile(ordered, 0.50) * ms,
        p90=_percentile(ordered, 0.90) * ms,
        p99=_percentile(ordered, 0.99) * ms,
        max=ordered[-1] * ms,
    )


def _count(value: int | UnsetType) -> int | None:
    """A usage count, or None when the server left it out."""
    return value if isinstance(value, int) else None


def _blocks(blocks: list[ChatCompletionStreamContentBlock]) -> tuple[int, int]:
    """Characters of text and of thinking in a list of content blocks."""
    text = thinking = 0
    for block in blocks:
        if block.type == "text" and block.text.__class__ is str:
            text += len(block.text)
        elif block.type == "thinking":
            thinking += len(reasoning_text(block))
    return text, thinking


class StreamMeter:
    """Decode a chat completion stream and measure it as it is fed.

    Use it in place of a :class:`~streamspec.ChunkDecoder`: ``feed(data)``
    returns the chunks ``data`` completed (and raises what the decoder
    raises), ``close()`` ends the stream, ``result()`` returns the
    :class:`StreamMetrics` so far. :meth:`iter` and :meth:`aiter` do the same
    over a byte iterator, with the contract of :func:`streamspec.iter_chunks`.

    ``start_ns`` is when the request was sent, on the ``clock`` used (default
    :func:`time.perf_counter_ns`); it defaults to the meter's creation. Pass
    another ``clock`` (a callable returning integer nanoseconds) to drive the
    meter with injected timestamps.
    """

    def __init__(
        self,
        *,
        start_ns: int | None = None,
        clock: Callable[[], int] = time.perf_counter_ns,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        require_done: bool = False,
    ) -> None:
        self.decoder: ChunkDecoder[_Chunk] = ChunkDecoder(
            max_event_size=max_event_size, require_done=require_done
        )
        self.clock = clock
        self.start_ns: int = clock() if start_ns is None else start_ns
        self._stamps: list[int] = []  # the clock reading of each chunk
        self._token_chunks = 0
        self._content = 0
        self._reasoning = 0
        self._first_token: int | None = None
        self._last_token: int | None = None
        self._usage: CompletionUsage | None = None
        self._finish: str | None = None
        self._error: str | None = None
        self._status: StreamStatus | None = None
        self._closed = False

    @property
    def done(self) -> bool:
        """True once ``data: [DONE]`` arrived."""
        return self.decoder.done

    def feed(self, data: bytes) -> list[_Chunk]:
        """Decode the next bytes; stamp the chunks they complete with one clock reading."""
        try:
            chunks = self.decoder.feed(data)
        except Error as exc:
            self._failed(exc)
            raise
        if chunks:
            self._observe(chunks, self.clock())
        return chunks

    def close(self) -> list[_Chunk]:
        """End the stream; return the chunks a final unterminated event held."""
        self._closed = True
        try:
            chunks = self.decoder.close()
        except Error as exc:
            self._failed(exc)
            raise
        if chunks:
            self._observe(chunks, self.clock())
        return chunks

    def fail(self, message: str, status: StreamStatus = "error") -> None:
        """Record a failure the decoder cannot see (a reset connection, a timeout).

        The first failure recorded wins; ``status`` is ``"error"`` or ``"truncated"``.
        """
        if self._status is None:
            self._status = status
            self._error = message

    def iter(self, source: Iterable[bytes]) -> Iterator[_Chunk]:
        """Yield the chunks of ``source`` as :func:`streamspec.iter_chunks` does, metering them.

        Reading stops at ``[DONE]``; on an error the chunks decoded before it
        are yielded, then the error is raised (and recorded in the metrics).
        """
        return iterate(self, source)

    def aiter(self, source: AsyncIterable[bytes]) -> AsyncIterator[_Chunk]:
        """Async twin of :meth:`iter`."""
        return aiterate(self, source)

    # -- hot path --------------------------------------------------------------------------------

    def _observe(self, chunks: list[_Chunk], now: int) -> None:
        if len(chunks) == 1:
            self._stamps.append(now)
        else:
            self._stamps += [now] * len(chunks)
        content_chars = reasoning_chars = token_chunks = 0
        for chunk in chunks:
            if chunk.usage:
                self._usage = chunk.usage
            token = False
            for choice in chunk.choices:
                delta = choice.delta
                content = delta.content
                if content.__class__ is str:
                    if content:
                        content_chars += len(content)
                        token = True
                elif content.__class__ is list:
                    text, thinking = _blocks(content)
                    content_chars += text
                    reasoning_chars += thinking
                    token = token or bool(text or thinking)
                reasoning = delta.reasoning_content or delta.reasoning
                if reasoning:
                    reasoning_chars += len(reasoning)
                    token = True
                elif not token and (delta.refusal or delta.tool_calls or delta.function_call):
                    token = True
                if choice.finish_reason and choice.index == 0:
                    self._finish = choice.finish_reason
            if token:
                token_chunks += 1
        if token_chunks:
            self._content += content_chars
            self._reasoning += reasoning_chars
            self._token_chunks += token_chunks
            self._last_token = now
            if self._first_token is None:
                self._first_token = now
        elif reasoning_chars or content_chars:
            self._content += content_chars
            self._reasoning += reasoning_chars

    def _failed(self, exc: Error) -> None:
        now = self.clock()
        chunks = list(exc.chunks)
        if isinstance(exc, StreamError) and isinstance(exc.chunk, _Chunk) and exc.chunk.choices:
            chunks.append(exc.chunk)  # an OpenRouter-style chunk: choices plus an error member
        if chunks:
            self._observe(chunks, now)
        self.fail(exc.message, "truncated" if isinstance(exc, TruncatedStreamError) else "error")

    # -- results ---------------------------------------------------------------------------------

    @property
    def timestamps(self) -> list[int]:
        """The clock reading of every chunk so far, in order (one per chunk)."""
        return list(self._stamps)

    def result(self) -> StreamMetrics:
        """The metrics so far (call it after ``close()`` for the final figures).

        Before ``[DONE]`` and without an error, ``status`` is ``"truncated"``.
        """
        if self._status is not None:
            status: StreamStatus = self._status
        else:
            status = "complete" if self.decoder.done else "truncated"
        error = self._error
        if status == "truncated" and error is None and self._closed:
            error = "the stream ended without [DONE]"
        ms = 1e-6
        start = self.start_ns
        stamps = self._stamps
        first_chunk = (stamps[0] - start) * ms if stamps else None
        duration = (stamps[-1] - start) * ms if stamps else None
        gaps = _summarize(list(map(sub, stamps[1:], stamps)))
        first_token = (self._first_token - start) * ms if self._first_token is not None else None

        usage = self._usage
        basis: Literal["usage", "chunks"] | None = None
        rate = None
        completion = _count(usage.completion_tokens) if usage is not None else None
        tokens = completion if completion is not None else self._token_chunks
        if self._first_token is not None and self._last_token is not None:
            span = self._last_token - self._first_token
            if span > 0 and tokens > 1:
                rate = (tokens - 1) / (span * 1e-9)
                basis = "usage" if completion is not None else "chunks"
        return StreamMetrics(
            status=status,
            error=error,
            finish_reason=self._finish,
            chunks=len(stamps),
            token_chunks=self._token_chunks,
            content_chars=self._content,
            reasoning_chars=self._reasoning,
            time_to_first_chunk_ms=first_chunk,
            time_to_first_token_ms=first_token,
            duration_ms=duration,
            inter_chunk_ms=gaps,
            prompt_tokens=_count(usage.prompt_tokens) if usage is not None else None,
            completion_tokens=completion,
            total_tokens=_count(usage.total_tokens) if usage is not None else None,
            tokens_per_second=rate,
            tokens_per_second_basis=basis,
        )
