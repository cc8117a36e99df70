"""Per-request stream metrics with the definitions load testers use (vLLM ``bench serve``'s).

:class:`StreamMeter` wraps a :class:`streamspec.ChunkDecoder` and measures one
streamed request as its bytes are fed. Each ``feed()`` reads the clock once
(``time.perf_counter_ns()``), as the read arrives, so chunks that arrived in
one network read share one timestamp.

Definitions (times in ms from ``start_ns``, the moment the request was sent):

* a **token chunk** is a chunk that carries generated output: non-empty
  ``delta.content`` (a string, or text/thinking blocks), reasoning
  (``reasoning_content`` or ``reasoning``), ``refusal``, or non-empty
  tool-call (or legacy ``function_call``) ``arguments``; in a legacy
  ``text_completion`` stream, a non-empty ``choices[].text``. The role chunk
  (``"content": ""``), a finish chunk (``"delta": {}``) and a usage chunk
  (``"choices": []``) are not token chunks;
* **TTFT** (``ttft_ms``): start to the read that completed the first token chunk;
* **ITL** (``itl_ms``, and :attr:`StreamMeter.itl_ns` for every gap): the gaps
  between consecutive token chunks, nothing else (two token chunks of one
  read are 0 apart);
* **E2EL** (``e2el_ms``): start to the end of the stream: the read that
  brought ``data: [DONE]``, else ``close()`` (the body ended), else the failure;
* **output tokens** (``output_tokens``): ``usage.completion_tokens`` when the
  server sent usage (``output_tokens_basis == "usage"``), else the number of
  token chunks (``"chunks"``: most servers send one token per chunk);
* **TPOT** (``tpot_ms``): ``(E2EL - TTFT) / (output_tokens - 1)``, for
  requests with at least two output tokens;
* **status**: ``"complete"`` (``[DONE]`` and no error), ``"error"`` (with
  ``error_kind``), or ``"truncated"`` (the stream ended without ``[DONE]``).

    >>> from streamspec.metrics import StreamMeter
    >>> from streamspec.samples import sample_stream
    >>> meter = StreamMeter()
    >>> for line in sample_stream("openai_text").splitlines(keepends=True):
    ...     chunks = meter.feed(line)
    >>> _ = meter.close()
    >>> metrics = meter.result()
    >>> metrics.status, metrics.chunks, metrics.token_chunks, metrics.output_tokens
    ('complete', 53, 50, 49)

:class:`StreamMetrics` encodes to JSON with :func:`msgspec.json.encode`; times
are milliseconds, ``null`` when the stream gave nothing to measure::

    {"status": "complete", "error": null, "error_kind": null, "finish_reason": "stop",
     "chunks": 53, "token_chunks": 50, "content_chars": 170, "reasoning_chars": 0,
     "time_to_first_chunk_ms": 212.4, "ttft_ms": 230.9, "e2el_ms": 1204.7,
     "tpot_ms": 20.3,
     "itl_ms": {"count": 49, "mean": 19.8, "std": 3.1, "min": 17.0, "p50": 19.9, ...},
     "prompt_tokens": 31, "completion_tokens": 49, "total_tokens": 80,
     "output_tokens": 49, "output_tokens_basis": "usage", "tokens_per_second": 49.9}

Cost: with the C accelerator the reading and the common token chunk are taken
inside the decoder's own ``feed()`` (the same C call that frames the read),
other chunks are noted in Python, and :meth:`StreamMeter.result` sums up the
gaps in C.
"""

from __future__ import annotations

import math
import sys
import time
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from operator import mul, sub
from typing import Any, Literal

import msgspec

from .decoder import ChunkDecoder
from .errors import (
    Error,
    EventTooLargeError,
    MalformedEventError,
    StreamError,
    TruncatedStreamError,
)
from .iterate import aiterate, iterate
from .salvage import SalvageNote
from .sse import DEFAULT_MAX_EVENT_SIZE
from .types.completions import Choice as _LegacyChoice
from .types.completions import CreateCompletionResponse
from .types.stream import CreateChatCompletionStreamResponse, content_text, reasoning_text

__all__ = [
    "LatencySummary",
    "StreamKind",
    "StreamMeter",
    "StreamMetrics",
    "StreamStatus",
    "error_kind",
    "is_token_chunk",
    "percentile",
    "summarize",
    "summarize_ns",
]

StreamStatus = Literal["complete", "truncated", "error"]
"""How a stream ended.

``"complete"``: ``data: [DONE]`` arrived and no error was seen. ``"error"``:
the server reported an error (:class:`streamspec.StreamError`), an event was
malformed, the HTTP request failed, or the caller reported a failure with
:meth:`StreamMeter.fail`. ``"truncated"``: the stream ended (or has not ended
yet) without ``[DONE]``.
"""

StreamKind = Literal["chat", "completions"]
"""``"chat"``: ``chat.completion.chunk`` streams; ``"completions"``: legacy ``text_completion``."""

_Chunk = CreateChatCompletionStreamResponse
_MS = 1e-6


class LatencySummary(msgspec.Struct, kw_only=True, frozen=True):
    """Distribution of a set of latencies, in milliseconds.

    ``std`` is the population standard deviation (numpy's ``np.std``).
    Percentiles interpolate linearly between the closest ranks (numpy's
    default method, as vLLM's benchmark uses): ``p50`` of ``[10, 20]`` is ``15``.
    """

    count: int
    mean: float
    std: float
    min: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` percentile (0..100) of the sorted, non-empty ``ordered``, linearly interpolated."""
    position = (len(ordered) - 1) * (q / 100.0)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize_ns(values: Iterable[int]) -> LatencySummary | None:
    """A :class:`LatencySummary` in ms of integer nanoseconds (exact sums; None if empty).

    The mean and the variance come from exact integer sums, so this is both
    faster than :func:`summarize` and independent of the order of ``values``.
    """
    ordered = sorted(values)
    count = len(ordered)
    if not count:
        return None
    return _summary_ns(count, sum(ordered), sum(map(mul, ordered, ordered)), ordered.__getitem__)


_QUANTILES = (50, 90, 95, 99)


def _ranks(count: int) -> tuple[int, ...]:
    """The ranks of ``count`` ordered values that :func:`_summary_ns` reads."""
    ranks = {0, count - 1}
    for q in _QUANTILES:
        low = int((count - 1) * (q / 100.0))
        ranks.update((low, min(low + 1, count - 1)))
    return tuple(sorted(ranks))


def _summary_ns(count: int, total: int, squares: int, at: Callable[[int], int]) -> LatencySummary:
    """A summary in ms of ``count`` integer ns values from their exact sum, sum of squares
    and ``at(rank)``, the value at a rank of their ascending order (see :func:`_ranks`)."""
    quantiles = []
    for q in _QUANTILES:  # as percentile(), reading only the two ranks it needs
        position = (count - 1) * (q / 100.0)
        low = int(position)
        high = min(low + 1, count - 1)
        quantiles.append((at(low) + (at(high) - at(low)) * (position - low)) * _MS)
    variance = (count * squares - total * total) / (count * count)  # exact numerator
    p50, p90, p95, p99 = quantiles
    return LatencySummary(
        count=count,
        mean=total / count * _MS,
        std=math.sqrt(max(variance, 0.0)) * _MS,
        min=at(0) * _MS,
        p50=p50,
        p90=p90,
        p95=p95,
        p99=p99,
        max=at(count - 1) * _MS,
    )


def summarize(values: Iterable[float], scale: float = 1.0) -> LatencySummary | None:
    """A :class:`LatencySummary` of ``values`` times ``scale`` (None if there are none).

    Sums are exactly rounded (:func:`math.fsum`), so the result does not depend
    on the order of ``values``.
    """
    ordered = sorted(values)
    if not ordered:
        return None
    if scale != 1.0:
        ordered = [value * scale for value in ordered]
    count = len(ordered)
    mean = math.fsum(ordered) / count
    std = math.sqrt(math.fsum((value - mean) ** 2 for value in ordered) / count)
    return LatencySummary(
        count=count,
        mean=mean,
        std=std,
        min=ordered[0],
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p95=percentile(ordered, 95),
        p99=percentile(ordered, 99),
        max=ordered[-1],
    )


class StreamMetrics(msgspec.Struct, kw_only=True, frozen=True):
    """What one stream measured, with the definitions of :mod:`streamspec.metrics`.

    Times are milliseconds from the meter's start time; ``None`` when the
    stream gave nothing to measure (no token, a single token, not ended).

    * ``chunks``: chunks decoded (every ``data:`` event but ``[DONE]`` and error
      payloads; a chunk that carries choices and an ``error`` member counts).
    * ``token_chunks``: chunks that carry output (see the module docstring).
    * ``content_chars`` / ``reasoning_chars``: characters (code points) of
      content (legacy: ``text``) and of reasoning text, summed over every choice.
    * ``finish_reason``: the last non-empty ``finish_reason`` of choice 0.
    * ``time_to_first_chunk_ms``: start to the read that completed the first chunk.
    * ``ttft_ms``, ``itl_ms``, ``e2el_ms``, ``tpot_ms``, ``output_tokens``,
      ``output_tokens_basis``: see the module docstring.
    * ``prompt_tokens`` / ``completion_tokens`` / ``total_tokens``: the last
      ``usage`` the stream carried (servers that repeat it repeat the totals).
    * ``tokens_per_second``: decode speed after the first token,
      ``(output_tokens - 1) / (E2EL - TTFT)``, i.e. ``1000 / tpot_ms``.
    * ``error_kind``: for a failed stream, what failed: ``"server_error"`` (the
      server reported an error in the stream), ``"malformed"``, ``"too_large"``,
      ``"truncated"``, ``"http_<status>"``, ``"connection"``, ``"tls"`` (a TLS
      handshake or certificate verification failed), ``"timeout"``, or what the
      caller passed to :meth:`StreamMeter.fail`.
    """

    status: StreamStatus
    error: str | None = None
    error_kind: str | None = None
    finish_reason: str | None = None
    chunks: int = 0
    token_chunks: int = 0
    content_chars: int = 0
    reasoning_chars: int = 0
    time_to_first_chunk_ms: float | None = None
    ttft_ms: float | None = None
    e2el_ms: float | None = None
    tpot_ms: float | None = None
    itl_ms: LatencySummary | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    output_tokens: int = 0
    output_tokens_basis: Literal["usage", "chunks"] = "chunks"
    tokens_per_second: float | None = None

    @property
    def time_to_first_token_ms(self) -> float | None:
        """Another name of ``ttft_ms``."""
        return self.ttft_ms

    @property
    def inter_chunk_ms(self) -> LatencySummary | None:
        """Another name of ``itl_ms`` (gaps between token chunks only)."""
        return self.itl_ms

    @property
    def duration_ms(self) -> float | None:
        """Another name of ``e2el_ms``."""
        return self.e2el_ms

    @property
    def tokens_per_second_basis(self) -> Literal["usage", "chunks"] | None:
        """``output_tokens_basis`` when ``tokens_per_second`` is set, else None."""
        return self.output_tokens_basis if self.tokens_per_second is not None else None


def error_kind(exc: BaseException) -> str:
    """The ``error_kind`` of a failure: a streamspec error, a timeout, a TLS or connection error."""
    if isinstance(exc, StreamError):
        return "server_error"
    if isinstance(exc, MalformedEventError):
        return "malformed"
    if isinstance(exc, EventTooLargeError):
        return "too_large"
    if isinstance(exc, TruncatedStreamError):
        return "truncated"
    status = getattr(exc, "status_code", getattr(exc, "status", None))
    if isinstance(status, int) and status >= 400:
        return f"http_{status}"
    transport = getattr(exc, "kind", None)  # streamspec.http.TransportError
    if transport in ("connect", "timeout", "broken"):
        return {"connect": "connection", "timeout": "timeout", "broken": "truncated"}[transport]
    if isinstance(exc, TimeoutError):
        return "timeout"
    ssl = sys.modules.get("ssl")  # not imported: exc cannot be one of its errors
    if ssl is not None and isinstance(exc, ssl.SSLError):  # aiohttp's TLS errors are ones too
        return "tls"
    if isinstance(exc, OSError | ConnectionError | EOFError):
        return "connection"
    name = type(exc).__name__
    lowered = name.lower()
    if "timeout" in lowered:
        return "timeout"
    if "connect" in lowered or "payload" in lowered or "disconnect" in lowered:
        return "connection"
    return name


def _arguments(calls: Any) -> bool:
    """True if a list of tool-call fragments carries non-empty ``arguments``."""
    if calls.__class__ is not list:
        return False
    for call in calls:
        function = call.function
        if function and function.arguments:
            return True
    return False


def _chat_choice(choice: Any) -> tuple[bool, int, int]:
    """Whether a chat choice carries output, and its content and reasoning characters.

    Content and reasoning are read with :func:`streamspec.content_text` and
    :func:`streamspec.reasoning_text` (text and thinking blocks, Magistral's
    thinking parts, ``reasoning_content`` or ``reasoning`` counted once).
    """
    delta = choice.delta
    text = len(content_text(delta))
    thinking = len(reasoning_text(delta))
    token = bool(text or thinking or delta.refusal or _arguments(delta.tool_calls))
    if not token:
        call = delta.function_call
        token = bool(call and call.arguments)
    return token, text, thinking


def is_token_chunk(chunk: Any) -> bool:
    """True if a chat or legacy completions chunk carries output (a token chunk)."""
    for choice in chunk.choices:
        if choice.__class__ is _LegacyChoice:
            if choice.text:
                return True
        elif _chat_choice(choice)[0]:
            return True
    return False


def _count(usage: Any, name: str) -> int | None:
    """An integer count of a usage object (None when absent or not an integer)."""
    value = getattr(usage, name, None)
    return value if value.__class__ is int else None


def _weak_note(meter: StreamMeter) -> Callable[[int, Any], None]:
    """``meter._note`` without a reference to the meter: its decoder holds the note, and a
    meter that its own decoder kept alive would wait for the cycle collector to be freed."""
    ref = weakref.ref(meter)

    def note(reading: int, item: Any) -> None:
        alive = ref()
        if alive is not None:
            alive._note(reading, item)

    return note


class StreamMeter:
    """Decode a chat completion (or legacy completions) stream and measure it as it is fed.

    Use it in place of a :class:`~streamspec.ChunkDecoder`: ``feed(data)``
    returns the chunks ``data`` completed (and raises what the decoder
    raises), ``close()`` ends the stream, ``result()`` returns the
    :class:`StreamMetrics` so far. :meth:`iter` and :meth:`aiter` do the same
    over a byte iterator, with the contract of :func:`streamspec.iter_chunks`.

    ``start_ns`` is when the request was sent, on the ``clock`` used (default
    :func:`time.perf_counter_ns`); it defaults to the meter's creation. Pass
    another ``clock`` (a callable returning integer nanoseconds, never going
    backwards) to drive the meter with injected timestamps: it is called once
    per ``feed()``, as the read arrives. ``kind="completions"`` meters a legacy
    ``text_completion`` stream (chunks are
    :class:`~streamspec.CreateCompletionResponse`). ``salvage`` and
    ``on_salvage`` go to the decoder (``meter.decoder.salvaged`` lists what
    salvage dropped).

    With the C accelerator, ``feed`` is the decoder's own ``feed()``: the
    reading and the common token chunk (one choice, a string of content or of
    legacy text, no finish reason, no usage) are taken in the same C call that
    frames the read,
    which hands every other chunk (and an error it raises) to the meter with
    its reading. Without it, ``feed()`` does the same in Python. Both give the
    same metrics.
    """

    def __init__(
        self,
        *,
        start_ns: int | None = None,
        clock: Callable[[], int] = time.perf_counter_ns,
        kind: StreamKind = "chat",
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        require_done: bool = False,
        salvage: bool = True,
        on_salvage: Callable[[SalvageNote], object] | None = None,
    ) -> None:
        if kind not in ("chat", "completions"):
            raise ValueError(f"kind must be 'chat' or 'completions', not {kind!r}")
        chunk_type: Any = _Chunk if kind == "chat" else CreateCompletionResponse
        self.decoder: ChunkDecoder[Any] = ChunkDecoder(
            chunk_type,
            max_event_size=max_event_size,
            require_done=require_done,
            salvage=salvage,
            on_salvage=on_salvage,
        )
        self.kind: StreamKind = kind
        self._decode = self.decoder.feed
        self.clock = clock
        self.start_ns: int = clock() if start_ns is None else start_ns
        self._tokens: list[int] = []  # the clock reading of each token chunk
        self._sink = self._tokens  # where _observe files the readings of token chunks
        self._chunks = 0
        self._content = 0
        self._reasoning = 0
        self._first_chunk: int | None = None
        self._end: int | None = None  # the failure's reading, or close()'s
        self._done: int | None = None  # without the accelerator: the reading of [DONE]'s read
        self._usage: Any = None
        self._finish: str | None = None
        self._error: str | None = None
        self._kind_of_error: str | None = None
        self._status: StreamStatus | None = None
        self._closed = False
        self._simple = kind == "chat"  # feed() may take its one-chunk shortcut
        # _observe reads this flag rather than the meter holding its own bound _observe_legacy:
        # that would be a reference cycle, leaving a dropped meter to the cycle collector.
        self._legacy = kind == "completions"
        # With the accelerator the decoder meters itself (see the class docstring).
        self._late: list[int] = []  # readings of the token chunks the decoder handed to _note
        self._metered = hasattr(self.decoder, "set_meter")
        if self._metered:
            own = None if clock is time.perf_counter_ns else clock
            self.decoder.set_meter(_weak_note(self), own)  # type: ignore[attr-defined]
            self._sink = self._late
            self.feed = self.decoder.feed  # type: ignore[method-assign]

    @property
    def done(self) -> bool:
        """True once ``data: [DONE]`` arrived."""
        return self.decoder.done

    def feed(self, data: bytes) -> list[Any]:
        """Decode the next bytes; stamp the chunks they complete with one clock reading."""
        now = self.clock()
        try:
            chunks = self._decode(data)
        except Error as exc:
            self._failed(exc, now)
            raise
        if chunks:
            # The common read: one chunk, one choice, a string of content, nothing else to note.
            if len(chunks) == 1 and self._simple:
                chunk = chunks[0]
                choices = chunk.choices
                if len(choices) == 1:
                    choice = choices[0]
                    content = choice.delta.content
                    if (
                        content.__class__ is str
                        and content
                        and not choice.finish_reason
                        and not chunk.usage
                        and not self.decoder.done
                    ):
                        self._content += len(content)
                        self._tokens.append(now)
                        return chunks
            self._observe(chunks, now)
        if self._done is None and self.decoder.done:
            self._done = now
        return chunks

    def close(self) -> list[Any]:
        """End the stream; return the chunks a final unterminated event held."""
        try:
            chunks = self.decoder.close()
        except Error as exc:
            self._closed = True
            self._failed(exc, self.clock())
            raise
        if chunks:
            self._observe(chunks, self.clock())
        if self._end is None:
            done = self._done_at()
            self._end = self.clock() if done is None else done
        self._closed = True
        return chunks

    def fail(self, message: str, status: StreamStatus = "error", kind: str | None = None) -> None:
        """Record a failure the decoder cannot see (an HTTP error, a reset connection, a timeout).

        The first failure recorded wins; ``status`` is ``"error"`` or
        ``"truncated"``; ``kind`` becomes ``error_kind`` (default
        ``"truncated"`` or ``"error"``). The stream's end time is taken now if
        it had none.
        """
        self._record(message, status, kind, None)

    def fail_with(self, exc: BaseException) -> None:
        """Record ``exc`` (a transport error) as the failure, with its :func:`error_kind`."""
        kind = error_kind(exc)
        status: StreamStatus = "truncated" if kind == "truncated" else "error"
        text = str(exc) or type(exc).__name__
        self.fail(f"{type(exc).__name__}: {text}", status, kind)

    def iter(self, source: Iterable[bytes]) -> Iterator[Any]:
        """Yield the chunks of ``source`` as :func:`streamspec.iter_chunks` does, metering them.

        Reading stops at ``[DONE]``; on an error the chunks decoded before it
        are yielded, then the error is raised (and recorded in the metrics).
        """
        return iterate(self, source)

    def aiter(self, source: AsyncIterable[bytes]) -> AsyncIterator[Any]:
        """Async twin of :meth:`iter`."""
        return aiterate(self, source)

    # -- noting chunks -----------------------------------------------------------------------------
    # One read usually holds one chunk of one choice with a string content: that case costs
    # a handful of attribute reads (or nothing in Python, with the accelerator); anything else
    # goes through _chat_choice.

    def _note(self, reading: int, item: Any) -> None:
        """With the accelerator: a chunk its feed() did not meter, or the error it raised."""
        if isinstance(item, BaseException):
            if isinstance(item, Error):
                self._failed(item, reading)
        else:
            self._observe([item], reading)

    def _observe(self, chunks: list[Any], now: int) -> None:
        if self._legacy:
            self._observe_legacy(chunks, now)
            return
        if self._first_chunk is None or now < self._first_chunk:
            self._first_chunk = now
        tokens = chars = 0
        others = len(chunks)  # chunks that are not token chunks, once the loop is done
        for chunk in chunks:
            choices = chunk.choices
            if len(choices) == 1:
                choice = choices[0]
                content = choice.delta.content
                if (
                    content.__class__ is str
                    and content
                    and not choice.finish_reason
                    and not chunk.usage
                ):
                    chars += len(content)
                    tokens += 1
                    continue
            tokens += self._general(chunk)
        self._content += chars
        self._chunks += others - tokens  # token chunks are counted by the readings
        if tokens:
            if tokens == 1:
                self._sink.append(now)
            else:
                self._sink += [now] * tokens

    def _general(self, chunk: Any) -> bool:
        """Note what any chat chunk carries; True if it is a token chunk."""
        token = False
        for choice in chunk.choices:
            hit, text, thinking = _chat_choice(choice)
            self._content += text
            self._reasoning += thinking
            token = token or hit
            if choice.finish_reason and choice.index == 0:
                self._finish = choice.finish_reason
        if chunk.usage:
            self._usage = chunk.usage
        return token

    def _observe_legacy(self, chunks: list[Any], now: int) -> None:
        if self._first_chunk is None or now < self._first_chunk:
            self._first_chunk = now
        self._chunks += len(chunks)
        tokens = 0
        for chunk in chunks:
            token = False
            for choice in chunk.choices:
                text = choice.text
                if text:
                    self._content += len(text)
                    token = True
                if choice.finish_reason and choice.index == 0:
                    self._finish = choice.finish_reason
            tokens += token
            if chunk.usage:
                self._usage = chunk.usage
        if tokens:
            self._chunks -= tokens  # counted again by the readings
            self._sink += [now] * tokens

    def _failed(self, exc: Error, now: int) -> None:
        """Note the chunks ``exc`` hands over and record it, as of the reading ``now``."""
        chunks = list(exc.chunks)
        if (
            isinstance(exc, StreamError)
            and isinstance(exc.chunk, _Chunk | CreateCompletionResponse)
            and exc.chunk.choices
        ):
            chunks.append(exc.chunk)  # an OpenRouter-style chunk: choices plus an error member
        if chunks:
            self._observe(chunks, now)
        kind = error_kind(exc)
        self._record(exc.message, "truncated" if kind == "truncated" else "error", kind, now)

    def _record(
        self, message: str, status: StreamStatus, kind: str | None, now: int | None
    ) -> None:
        if self._status is None:
            self._status = status
            self._error = message
            self._kind_of_error = kind or ("truncated" if status == "truncated" else "error")
        if self._end is None:
            self._end = self.clock() if now is None else now

    # -- results ---------------------------------------------------------------------------------

    def _done_ns(self) -> int | None:
        """The reading of the read that brought ``[DONE]`` (None before it)."""
        if self._metered and self.decoder.done:
            # 0: [DONE] came without its blank line, found by close(), which sets the end
            return self.decoder.done_ns or None  # type: ignore[attr-defined]
        return self._done

    def _done_at(self) -> int | None:
        """The end of the stream: the read that brought ``[DONE]``, else ``_end``."""
        done = self._done_ns()
        return self._end if done is None else done

    def _stamps(self) -> list[int]:
        """Every token chunk's reading, in order."""
        if not self._metered:
            return self._tokens
        stamps: list[int] = self.decoder.meter_times()  # type: ignore[attr-defined]
        return sorted(stamps + self._late) if self._late else stamps  # two ordered runs

    def _token_span(self) -> tuple[int, int | None, LatencySummary | None]:
        """How many token chunks, the first one's reading, and the ITL summary."""
        if self._metered:
            late = self._late
            count = self.decoder.metered_tokens + len(late)  # type: ignore[attr-defined]
            ranks = _ranks(count - 1) if count > 1 else ()
            summed = self.decoder.meter_itl(late, ranks) if count else None  # type: ignore[attr-defined]
            if summed is not None:  # else the clock went back: work from the list
                first, last, squares, values = summed
                if count < 2:
                    return count, first, None
                at = dict(zip(ranks, values, strict=True)).__getitem__
                return count, first, _summary_ns(count - 1, last - first, squares, at)
        stamps = self._stamps()
        first = stamps[0] if stamps else None
        return len(stamps), first, summarize_ns(map(sub, stamps[1:], stamps))

    @property
    def token_times(self) -> list[int]:
        """The clock reading of every token chunk so far, in order (ns)."""
        return list(self._stamps())

    @property
    def itl_ns(self) -> list[int]:
        """Every gap between consecutive token chunks so far, in order (ns)."""
        stamps = self._stamps()
        return list(map(sub, stamps[1:], stamps))

    @property
    def end_ns(self) -> int | None:
        """The clock reading at the end of the stream (None while it goes on)."""
        return self._done_at()

    def result(self) -> StreamMetrics:
        """The metrics so far (call it after ``close()`` for the final figures).

        Before ``[DONE]`` and without an error, ``status`` is ``"truncated"``.
        """
        count, first_token, itl = self._token_span()
        if self._status is not None:
            status: StreamStatus = self._status
        else:
            status = "complete" if self.decoder.done else "truncated"
        error = self._error
        kind = self._kind_of_error
        if status == "truncated" and error is None and self._closed:
            error = "the stream ended without [DONE]"
            kind = "truncated"
        start = self.start_ns
        first = self._first_chunk
        if first_token is not None and (first is None or first_token < first):
            first = first_token
        ttft = (first_token - start) * _MS if first_token is not None else None
        end = self._done_at()
        e2el = (end - start) * _MS if end is not None else None
        usage = self._usage
        completion = _count(usage, "completion_tokens")
        basis: Literal["usage", "chunks"] = "chunks"
        tokens = count
        if completion is not None:
            tokens, basis = completion, "usage"
        tpot = rate = None
        if ttft is not None and e2el is not None and tokens > 1 and e2el > ttft:
            tpot = (e2el - ttft) / (tokens - 1)
            rate = 1000.0 / tpot
        content = self._content
        if self._metered:
            content += self.decoder.metered_chars  # type: ignore[attr-defined]
        return StreamMetrics(
            status=status,
            error=error,
            error_kind=kind,
            finish_reason=self._finish,
            chunks=self._chunks + count,
            token_chunks=count,
            content_chars=content,
            reasoning_chars=self._reasoning,
            time_to_first_chunk_ms=(first - start) * _MS if first is not None else None,
            ttft_ms=ttft,
            e2el_ms=e2el,
            tpot_ms=tpot,
            itl_ms=itl,
            prompt_tokens=_count(usage, "prompt_tokens"),
            completion_tokens=completion,
            total_tokens=_count(usage, "total_tokens"),
            output_tokens=tokens,
            output_tokens_basis=basis,
            tokens_per_second=rate,
        )
