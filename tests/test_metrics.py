"""StreamMeter: counts and status against the fixtures' MANIFEST, timing with injected clocks.

No assertion here depends on the wall clock: timing logic runs on a fake
clock that the test advances by hand.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest

from splitting import FIXTURE_NAMES, MANIFEST, fixture
from streamspec import Error, MalformedEventError, StreamError
from streamspec.metrics import LatencySummary, StreamMeter, StreamMetrics
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
    assert metrics.time_to_first_token_ms == pytest.approx(150)
    assert metrics.duration_ms == pytest.approx(250)
    # Gaps 50, 20, 60, 10, 10 ms: sorted 10, 10, 20, 50, 60.
    assert metrics.inter_chunk_ms == LatencySummary(
        count=5,
        mean=pytest.approx(30),
        p50=pytest.approx(20),
        p90=pytest.approx(56),  # rank 3.6: 50 + 0.6 * (60 - 50)
        p99=pytest.approx(59.6),
        max=pytest.approx(60),
    )
    # Three tokens from usage; two gaps between the first and the last token: 80 ms.
    assert metrics.completion_tokens == 3
    assert metrics.tokens_per_second == pytest.approx(2 / 0.080)
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
    assert metrics.tokens_per_second == pytest.approx(3 / 0.030)
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
    feed_at(meter, clock, 25, b"data: ")  # completes nothing: no reading
    assert clock.readings == 2
    feed_at(meter, clock, 40, json.dumps(chunk({"content": "c"})).encode() + b"\n\n")
    assert clock.readings == 3
    assert meter.timestamps == [10 * MS, 10 * MS, 40 * MS]
    gaps = meter.result().inter_chunk_ms
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
    assert set(decoded["inter_chunk_ms"]) == {"count", "mean", "p50", "p90", "p99", "max"}
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
