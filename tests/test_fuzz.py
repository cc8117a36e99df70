"""Random and damaged input: only streamspec errors escape, and the split never matters.

Inputs are random bytes, streams assembled from SSE and chunk fragments, and
fixture streams with random damage (byte flips, deletions, inserted line
endings, colons and braces, truncation). Each is fed to ChunkDecoder (going on
after recoverable errors, as documented) and to SSEParser, whole, at random
split points and, for the smaller ones, byte by byte. Any exception that is
not a :class:`streamspec.Error` fails the test (the helpers only catch those),
and every way of splitting must give the same outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splitting import (
    FIXTURE_NAMES,
    Outcome,
    assert_same,
    bytewise,
    fixture,
    run_decoder,
    run_parser,
    split_at,
)
from streamspec import ChunkDecoder


class SlimDelta(msgspec.Struct):
    content: str | None = None


class SlimChoice(msgspec.Struct):
    index: int
    delta: SlimDelta = msgspec.field(default_factory=SlimDelta)


class Slim(msgspec.Struct):
    choices: list[SlimChoice] = []


DECODERS: dict[str, Callable[[], Any]] = {
    "full": ChunkDecoder,
    "slim": partial(ChunkDecoder, Slim),
    "require-done": partial(ChunkDecoder, require_done=True),
}

FAST = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check_all_ways(raw: bytes, points: list[int], decoder: str, *, byte_by_byte: bool) -> None:
    runs: dict[str, list[bytes]] = {"split": split_at(raw, points)}
    if byte_by_byte:
        runs["byte by byte"] = bytewise(raw)
    decode = partial(run_decoder, factory=DECODERS[decoder], resume=True)
    whole: Outcome = decode([raw])
    for how, reads in runs.items():
        assert_same(whole, decode(reads), f"decoder {how}")
    whole_events = run_parser([raw])
    assert whole_events.error is None  # the SSE layer never fails below the size limit
    for how, reads in runs.items():
        assert_same(whole_events, run_parser(reads), f"parser {how}")


_points = st.lists(st.integers(0, 1 << 16), max_size=40)


@FAST
@given(st.binary(max_size=400), _points, st.sampled_from(sorted(DECODERS)))
def test_random_bytes(raw: bytes, points: list[int], decoder: str) -> None:
    check_all_ways(raw, [p % (len(raw) + 1) for p in points], decoder, byte_by_byte=True)


_CHUNK = (
    b'{"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"h\xc3\xa9"},"finish_reason":null}]}'
)
_FRAGMENTS = [
    b"data: ",
    b"data:",
    b"data",
    b"event: error",
    b"event: ping",
    b"id: 1",
    b"id: \x00",
    b"retry: 10",
    b": keep-alive",
    b":",
    b"error: x",
    b"\xef\xbb\xbf",
    _CHUNK,
    _CHUNK[:40],
    _CHUNK[40:],
    b'{"choices":[]}',
    b'{"choices":"nope"}',
    b'{"error":{"message":"boom","code":500}}',
    b'{"error":"plain","error_type":"generation"}',
    b'{"error":null,"choices":[]}',
    b'{"id":"x","error":{"message":"in chunk"},"choices":[{"index":0,"delta":{}}]}',
    b"[DONE]",
    b" [DONE]",
    b"{",
    b"}",
    b'"',
    b"\\",
    b"\xff",
    b"\xc3",
    b"null",
    b"123",
    b"\n",
    b"\n",
    b"\n\n",
    b"\r",
    b"\r\n",
    b"\r\n\r\n",
]


@FAST
@given(
    st.lists(st.sampled_from(_FRAGMENTS), max_size=40),
    _points,
    st.sampled_from(sorted(DECODERS)),
)
def test_streams_of_sse_fragments(parts: list[bytes], points: list[int], decoder: str) -> None:
    raw = b"".join(parts)
    check_all_ways(raw, [p % (len(raw) + 1) for p in points], decoder, byte_by_byte=True)


_INSERTS = [b"\n", b"\r", b":", b"{", b"\r\n", b"\n\n"]


@st.composite
def damaged_fixtures(draw: st.DrawFn) -> bytes:
    data = bytearray(fixture(draw(st.sampled_from(FIXTURE_NAMES), label="fixture")))
    for _ in range(draw(st.integers(1, 6), label="damage count")):
        kind = draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if not data:
            break
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif kind == "insert":
            data[pos:pos] = draw(st.sampled_from(_INSERTS))
        else:
            del data[pos:]
    return bytes(data)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(damaged_fixtures(), _points, st.sampled_from(sorted(DECODERS)))
def test_damaged_fixtures(raw: bytes, points: list[int], decoder: str) -> None:
    check_all_ways(raw, [p % (len(raw) + 1) for p in points], decoder, byte_by_byte=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FIXTURE_NAMES), _points)
def test_undamaged_fixtures_never_misbehave(name: str, points: list[int]) -> None:
    raw = fixture(name)
    check_all_ways(raw, [p % (len(raw) + 1) for p in points], "full", byte_by_byte=False)
