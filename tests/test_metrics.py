"""StreamMeter: counts and status against the fixtures' MANIFEST, timing with injected clocks.

No assertion here depends on the wall clock: timing logic runs on a fake
clock that the test advances by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from splitting import FIXTURE_NAMES, MANIFEST, fixture
from streamspec import (
    CreateCompletionResponse,
    Error,
    MalformedEventError,
    StreamError,
    iter_chunks,
)
from streamspec.metrics import (
    LatencySummary,
    StreamMeter,
    StreamMetrics,
    error_kind,
    is_token_chunk,
    summarize,
)
from streamspec.samples import sample_stream, synthetic_stream

MS = 1_000_000  # nanoseconds per millisecond


class FakeClock:
    """A clock the test sets by hand (integer nanoseconds); counts its readings."""

    def __init__(self, now: int = 0) -> None:
        self.now = now
        self.readings = 0

    def __call__(self) -> int:
        self.readings += 1
        return self.now


def events(data: bytes) -> list[bytes]:
    """One read per event (the blank line included), as a live socket delivers them."""
    pieces = data.split(b"\n\n")
    return [piece + b"\n\n" for piece in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])


def meter_stream(reads: list[bytes], **kwargs: Any) -> StreamMetrics:
    meter = StreamMeter(**kwargs)
    try:
        for _ in meter.iter(reads):
            pass
    except Error:
        pass
    return meter.result()


def sse(*chunks: dict[str, Any] | str) -> list[bytes]:
    """SSE events, one per item: a dict becomes a JSON chunk, a str is sent as the data."""
    out = []
    for chunk in chunks:
        payload = chunk if isinstance(chunk, str) else json.dumps(chunk)
        out.append(f"data: {payload}\n\n".encode())
    return out


def chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": choices,
        **extra,
    }


USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


# -- against the fixtures -----------------------------------------------------------------------


def expected_chars(entry: dict[str, Any]) -> int:
    by_index = entry.get("text_by_index")
    if by_index:
        return sum(len(text) for text in by_index.values())
    return len(entry["text"] or "")


@pytest.mark.parametrize("name", FIXTURE_NAMES)
@pytest.mark.parametrize("reads", ["whole", "events", "bytes"])
def test_fixture_counts_match_manifest(name: str, reads: str) -> None:
    entry = MANIFEST[name]
    data = fixture(name)
    if reads == "whole":
        pieces = [data]
    elif reads == "events":
        pieces = events(data)
    else:
        pieces = [data[i : i + 1] for i in range(len(data))]
    metrics = meter_stream(pieces)
    status = {"ok": "complete", "stream_error": "error", "truncated": "truncated"}
    assert metrics.status == status[entry["expect"]]
    assert metrics.chunks == entry["n_chunks"]
    assert metrics.content_chars == expected_chars(entry)
    assert metrics.reasoning_chars == len(entry["reasoning"] or "")
    assert metrics.finish_reason == entry["finish_reason"]
    usage = entry["usage"]
    if usage is None:
        assert (metrics.prompt_tokens, metrics.completion_tokens, metrics.total_tokens) == (
            None,
            None,
            None,
        )
    else:
        assert metrics.prompt_tokens == usage["prompt_tokens"]
        assert metrics.completion_tokens == usage["completion_tokens"]
        assert metrics.total_tokens == usage.get("total_tokens")  # None when left out
    if entry["error_message"] is not None:
        assert metrics.error is not None
        assert entry["error_message"] in metrics.error
    elif entry["expect"] == "ok":
        assert metrics.error is None


def test_token_chunks_and_first_token_on_the_sample() -> None:
    metrics = meter_stream(events(sample_stream("openai_text")))
    # The role chunk (content ""), the empty finish chunk and the usage chunk carry no token.
    assert metrics.token_chunks == metrics.chunks - 3
    assert metrics.time_to_first_token_ms is not None
    assert metrics.time_to_first_chunk_ms is not None
    assert metrics.time_to_first_token_ms >= metrics.time_to_first_chunk_ms
    assert metrics.tokens_per_second_basis in ("usage", None)


def test_tool_call_fragments_are_tokens() -> None:
    metrics = meter_stream(events(fixture("openai_tool_calls.sse")))
    assert metrics.content_chars == 0
    assert metrics.token_chunks > 0
    assert metrics.time_to_first_token_ms is not None


# -- timing, on a fake clock --------------------------------------------------------------------


def feed_at(meter: StreamMeter, clock: FakeClock, at_ms: int, data: bytes) -> list[Any]:
    clock.now = at_ms * MS
    return meter.feed(data)


def test_timing_from_injected_timestamps() -> None:
    clock = FakeClock(0)
    meter = StreamMeter(clock=clock)
    role, a, b, c, finish, usage, done = sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({"content": "!"}),
        chunk({}, "stop"),
        chunk(usage=USAGE),
        "[DONE]",
    )
    feed_at(meter, clock, 100, role)
    feed_at(meter, clock, 150, a)
    feed_at(meter, clock, 170, b)
    feed_at(meter, clock, 230, c)
    feed_at(meter, clock, 240, finish)
    feed_at(meter, clock, 250, usage)
    feed_at(meter, clock, 260, done)
    assert meter.close() == []
    metrics = meter.result()
    assert metrics.status == "complete"
    assert metrics.error is None
    assert metrics.chunks == 6
    assert metrics.token_chunks == 3
    assert metrics.content_chars == 6
    assert metrics.finish_reason == "stop"
    assert metrics.time_to_first_chunk_ms == pytest.approx(100)
    # TTFT: the first chunk with text, not the role chunk.
    assert metrics.ttft_ms == pytest.approx(150)
    # E2EL: to the read that brought [DONE].
    assert metrics.e2el_ms == pytest.approx(260)
    # ITL: gaps between token chunks only (150 -> 170 -> 230); the finish and usage
    # chunks are no tokens.
    assert metrics.itl_ms == LatencySummary(
        count=2,
        mean=pytest.approx(40),
        std=pytest.approx(20),
        min=pytest.approx(20),
        p50=pytest.approx(40),
        p90=pytest.approx(56),  # rank 0.9: 20 + 0.9 * (60 - 20)
        p95=pytest.approx(58),
        p99=pytest.approx(59.6),
        max=pytest.approx(60),
    )
    assert meter.itl_ns == [20 * MS, 60 * MS]
    # Three tokens from usage: TPOT = (E2EL - TTFT) / (3 - 1) = 55 ms.
    assert metrics.output_tokens == 3
    assert metrics.output_tokens_basis == "usage"
    assert metrics.completion_tokens == 3
    assert metrics.tpot_ms == pytest.approx(55)
    assert metrics.tokens_per_second == pytest.approx(1000 / 55)
    assert metrics.tokens_per_second_basis == "usage"


def test_rate_from_chunks_without_usage() -> None:
    clock = FakeClock(0)
    meter = StreamMeter(clock=clock)
    for at, data in zip(
        (10, 20, 30, 40, 50),
        sse(
            chunk({"content": "a"}),
            chunk({"content": "b"}),
            chunk({"reasoning_content": "c"}),
            chunk({"content": "d"}, "length"),
            "[DONE]",
        ),
        strict=True,
    ):
        feed_at(meter, clock, at, data)
    metrics = meter.result()
    assert metrics.status == "complete"
    assert metrics.completion_tokens is None
    assert metrics.token_chunks == 4
    assert metrics.reasoning_chars == 1
    assert metrics.output_tokens == 4
    assert metrics.output_tokens_basis == "chunks"
    assert metrics.ttft_ms == pytest.approx(10)
    assert metrics.e2el_ms == pytest.approx(50)
    assert metrics.tpot_ms == pytest.approx(40 / 3)
    assert metrics.tokens_per_second_basis == "chunks"
    assert metrics.finish_reason == "length"


def test_start_time_is_a_constructor_argument() -> None:
    clock = FakeClock(5 * MS)
    meter = StreamMeter(clock=clock, start_ns=2 * MS)
    feed_at(meter, clock, 12, sse(chunk({"content": "x"}))[0])
    assert meter.result().time_to_first_chunk_ms == pytest.approx(10)
    default = StreamMeter(clock=clock)  # default start: creation, on the same clock
    assert default.start_ns == clock.now


def test_one_clock_reading_per_feed_shared_by_its_chunks() -> None:
    clock = FakeClock(0)
    meter = StreamMeter(clock=clock)
    assert clock.readings == 1  # the start time
    two = b"".join(sse(chunk({"content": "a"}), chunk({"content": "b"})))
    feed_at(meter, clock, 10, two)
    assert clock.readings == 2
    feed_at(meter, clock, 25, b"data: ")  # completes nothing: its reading is not kept
    assert clock.readings == 3
    feed_at(meter, clock, 40, json.dumps(chunk({"content": "c"})).encode() + b"\n\n")
    assert clock.readings == 4
    assert meter.token_times == [10 * MS, 10 * MS, 40 * MS]
    gaps = meter.result().itl_ms
    assert gaps is not None
    assert (gaps.count, gaps.p50, gaps.max) == (2, pytest.approx(15), pytest.approx(30))


def test_nothing_to_measure() -> None:
    meter = StreamMeter(clock=FakeClock(0))
    metrics = meter.result()
    assert metrics.status == "truncated"
    assert metrics.chunks == 0
    assert metrics.time_to_first_chunk_ms is None
    assert metrics.time_to_first_token_ms is None
    assert metrics.inter_chunk_ms is None
    assert metrics.tokens_per_second is None
    assert metrics.tokens_per_second_basis is None


def test_single_token_has_no_rate() -> None:
    clock = FakeClock(0)
    meter = StreamMeter(clock=clock)
    feed_at(meter, clock, 5, b"".join(sse(chunk({"content": "x"}), chunk(usage=USAGE))))
    metrics = meter.result()
    assert metrics.tokens_per_second is None  # one read: no span to divide by
    assert metrics.completion_tokens == 3


# -- status -------------------------------------------------------------------------------------


def test_truncated_when_the_stream_ends_without_done() -> None:
    meter = StreamMeter()
    meter.feed(sse(chunk({"content": "x"}))[0])
    assert meter.result().status == "truncated"  # before close(): no [DONE] yet
    assert meter.close() == []
    metrics = meter.result()
    assert metrics.status == "truncated"
    assert metrics.error == "the stream ended without [DONE]"


def test_server_error_keeps_the_chunks_before_it() -> None:
    reads = [*sse(chunk({"content": "ab"})), b'data: {"error": {"message": "boom"}}\n\n']
    meter = StreamMeter()
    got: list[Any] = []
    with pytest.raises(StreamError):
        got.extend(meter.iter(reads))
    assert len(got) == 1
    metrics = meter.result()
    assert metrics.status == "error"
    assert metrics.error is not None
    assert "boom" in metrics.error
    assert metrics.chunks == 1
    assert metrics.content_chars == 2


def test_malformed_event_is_an_error() -> None:
    meter = StreamMeter()
    with pytest.raises(MalformedEventError):
        meter.feed(b"data: {not json}\n\n")
    metrics = meter.result()
    assert metrics.status == "error"
    assert metrics.error is not None
    assert "malformed event" in metrics.error


def test_fail_records_a_transport_error_once() -> None:
    meter = StreamMeter()
    meter.feed(sse(chunk({"content": "x"}))[0])
    meter.fail("connection reset")
    meter.fail("second failure")
    metrics = meter.result()
    assert (metrics.status, metrics.error) == ("error", "connection reset")


def test_error_after_done_is_not_seen() -> None:
    data = b"".join(sse(chunk({"content": "x"}), "[DONE]")) + b'data: {"error": "late"}\n\n'
    assert meter_stream([data]).status == "complete"


def test_metrics_encode_to_json() -> None:
    metrics = meter_stream(events(synthetic_stream(50)))
    encoded = msgspec.json.encode(metrics)
    decoded = json.loads(encoded)
    assert decoded["status"] == "complete"
    assert decoded["chunks"] == 53
    assert decoded["completion_tokens"] == 50
    assert set(decoded["itl_ms"]) == {
        "count",
        "mean",
        "std",
        "min",
        "p50",
        "p90",
        "p95",
        "p99",
        "max",
    }
    assert decoded["itl_ms"]["count"] == 49  # 50 token chunks
    assert msgspec.json.decode(encoded, type=StreamMetrics) == metrics


def test_iter_matches_iter_chunks() -> None:
    from streamspec import iter_chunks

    data = fixture("openai_n2.sse")
    assert list(StreamMeter().iter(events(data))) == list(iter_chunks(events(data)))


def test_aiter() -> None:
    async def source() -> AsyncIterator[bytes]:
        for piece in events(sample_stream("openai_text")):
            yield piece

    async def collect() -> tuple[int, StreamMetrics]:
        meter = StreamMeter()
        count = 0
        async for _ in meter.aiter(source()):
            count += 1
        return count, meter.result()

    count, metrics = asyncio.run(collect())
    assert count == metrics.chunks == 53
    assert metrics.status == "complete"


def _lines(data: bytes) -> Iterator[bytes]:
    yield from data.splitlines(keepends=True)


def test_line_by_line_reads() -> None:
    metrics = meter_stream(list(_lines(fixture("xinference_text.sse"))))
    assert metrics.status == "complete"
    assert metrics.chunks == MANIFEST["xinference_text.sse"]["n_chunks"]


# -- token chunks, legacy streams and error kinds -------------------------------------------------

COMPLETIONS = Path(__file__).resolve().parent.parent / "fixtures" / "streams" / "completions"
LEGACY = json.loads((COMPLETIONS / "MANIFEST.json").read_text())


@pytest.mark.parametrize("name", sorted(LEGACY))
@pytest.mark.parametrize("reads", ["whole", "events", "bytes"])
def test_legacy_completions_streams(name: str, reads: str) -> None:
    entry = LEGACY[name]
    data = (COMPLETIONS / name).read_bytes()
    pieces = {"whole": [data], "events": events(data),
              "bytes": [data[i : i + 1] for i in range(len(data))]}[reads]  # fmt: skip
    meter = StreamMeter(kind="completions")
    with contextlib.suppress(Error):
        for _ in meter.iter(pieces):
            pass
    metrics = meter.result()
    assert metrics.status == "complete"
    assert metrics.chunks == entry["n_chunks"]
    texts = entry["text_by_index"]
    assert metrics.content_chars == sum(len(text) for text in texts if text)
    # Every chunk with non-empty text is a token chunk; with one choice, that is one per text.
    decoded = list(iter_chunks([data], CreateCompletionResponse))
    expected = sum(1 for c in decoded if any(choice.text for choice in c.choices))
    assert metrics.token_chunks == expected
    usage = entry["usage"]
    if usage is not None and "completion_tokens" in usage:
        assert (metrics.output_tokens, metrics.output_tokens_basis) == (
            usage["completion_tokens"],
            "usage",
        )


@pytest.mark.parametrize(
    ("delta", "token"),
    [
        ({"content": "x"}, True),
        ({"content": ""}, False),
        ({"role": "assistant", "content": ""}, False),
        ({}, False),
        ({"reasoning_content": "think"}, True),
        ({"reasoning": "think"}, True),
        ({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": "Ok"}]}]}, True),
        ({"content": [{"type": "text", "text": ""}]}, False),
        ({"content": [{"type": "text", "text": "a"}]}, True),
        ({"refusal": "no"}, True),
        ({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f"}}]}, False),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"a'}}]}, True),
        ({"function_call": {"arguments": "{}"}}, True),
    ],
)
def test_token_chunk_definition(delta: dict[str, Any], token: bool) -> None:
    data = sse(chunk(delta))[0]
    [decoded] = StreamMeter().feed(data)
    assert is_token_chunk(decoded) is token
    meter = StreamMeter()
    meter.feed(data)
    assert meter.result().token_chunks == int(token)


def test_magistral_thinking_counts_as_reasoning() -> None:
    metrics = meter_stream(events(fixture("mistral_magistral_thinking.sse")))
    assert metrics.reasoning_chars > 0
    assert metrics.ttft_ms is not None


def test_n2_chunks_count_once() -> None:
    two = chunk()
    two["choices"] = [
        {"index": 0, "delta": {"content": "a"}, "finish_reason": None},
        {"index": 1, "delta": {"content": "bc"}, "finish_reason": None},
    ]
    metrics = meter_stream(sse(two, "[DONE]"))
    assert (metrics.token_chunks, metrics.content_chars) == (1, 3)


def test_done_in_the_read_of_the_last_token() -> None:
    clock = FakeClock(0)
    meter = StreamMeter(clock=clock)
    feed_at(meter, clock, 30, sse(chunk({"content": "a"}))[0])
    feed_at(meter, clock, 50, b"".join(sse(chunk({"content": "b"}), "[DONE]")))
    feed_at(meter, clock, 90, b"")  # a read after [DONE] changes nothing
    assert meter.close() == []
    metrics = meter.result()
    assert (metrics.ttft_ms, metrics.e2el_ms) == (pytest.approx(30), pytest.approx(50))
    assert metrics.tpot_ms == pytest.approx(20)


@pytest.mark.parametrize(
    ("reads", "kind"),
    [
        ([b"data: {nope}\n\n"], "malformed"),
        ([b'data: {"error": {"message": "x"}}\n\n'], "server_error"),
        ([b'data: {"choices": [{"index": 0, "delta": {"content": "a"'], "truncated"),
    ],
)
def test_error_kinds(reads: list[bytes], kind: str) -> None:
    metrics = meter_stream(reads)
    assert metrics.error_kind == kind
    assert metrics.status == ("truncated" if kind == "truncated" else "error")


def test_fail_with_transport_errors() -> None:
    import ssl

    for exc, kind in (
        (TimeoutError("slow"), "timeout"),
        (ConnectionResetError("reset"), "connection"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "tls"),
        (ssl.SSLError(1, "wrong version number"), "tls"),
    ):
        meter = StreamMeter()
        meter.fail_with(exc)
        assert meter.result().error_kind == kind
    assert error_kind(ValueError("x")) == "ValueError"


def test_summarize_is_order_free() -> None:
    values = [0.1 * i for i in range(1, 200)]
    shuffled = values[::-1]
    assert summarize(values) == summarize(shuffled)
    summary = summarize([10.0, 20.0])
    assert summary is not None
    assert (summary.p50, summary.std, summary.min) == (15.0, 5.0, 10.0)
