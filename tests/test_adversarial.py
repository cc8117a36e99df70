"""Hostile and odd input stays inside streamspec's error hierarchy, on both hot paths.

Each class of input an attacker or a broken server can send is generated, not
picked: nesting of any depth, ``retry:`` values of any length, numbers out of
every range, invalid UTF-8 anywhere, exceptions raised by the chunk type
itself, error keys cut at every point, CRLF streams cut at every point,
every kind of bytes-like read. Each runs on the compiled hot path (when
built) and the pure-Python one, whole and split, through ``feed``, ``close``
and the iterators. Only :class:`streamspec.Error` subclasses may escape (the
helpers catch nothing else), the events after a bad one in the same read are
still decoded, and the split never matters.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paths import PATHS, compiled_lets_out, compiled_misses_a_cut_error_key
from splitting import Outcome, assert_same, bytewise, run_decoder, split_at
from streamspec import (
    Error,
    MalformedEventError,
    SSEParser,
    StreamError,
    TruncatedStreamError,
)
from streamspec.iterate import aiterate, iterate
from streamspec.sse import MAX_RETRY

paths = pytest.mark.parametrize("path", sorted(PATHS))

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Slim(msgspec.Struct):
    """A projection without an ``error`` field."""

    choices: list[Any] = []


class Picky(msgspec.Struct):
    """A chunk type whose own validation raises something other than ValueError."""

    choices: list[Any] = []

    def __post_init__(self) -> None:
        if self.choices == ["boom"]:
            raise KeyError("boom")


def paths_unless(raw: bytes, type: Any = None) -> pytest.MarkDecorator:
    """Both paths; the compiled one skipped when this build lets ``raw``'s exception out."""
    skip = pytest.mark.skipif(
        compiled_lets_out(raw, type),
        reason="this build of the C accelerator lets an exception from decoding out of feed()",
    )
    return pytest.mark.parametrize(
        "path", [pytest.param(p, marks=[skip] if p == "c" else []) for p in sorted(PATHS)]
    )


def chunk(text: str) -> bytes:
    return b'data: {"choices":[{"index":0,"delta":{"content":"' + text.encode() + b'"}}]}\n\n'


A, B, C = chunk("a"), chunk("b"), chunk("c")
DEEP = paths_unless(b"data: " + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"\n\n")


SLIM_SPLIT = pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            p,
            marks=pytest.mark.skipif(
                p == "c" and compiled_misses_a_cut_error_key(),
                reason="this build of the C accelerator misses an error key cut across reads",
            ),
        )
        for p in sorted(PATHS)
    ],
)


def texts(chunks: list[Any]) -> list[str]:
    return [c.choices[0].delta.content for c in chunks]


def all_ways(path: str, raw: bytes, **options: Any) -> Outcome:
    """Whole, byte by byte and in reads of 5 on one path; going on after errors."""
    run = partial(run_decoder, factory=partial(PATHS[path], **options), resume=True)
    whole = run([raw])
    assert_same(whole, run(bytewise(raw)), f"{path}: byte by byte")
    assert_same(whole, run([raw[i : i + 5] for i in range(0, len(raw), 5)]), f"{path}: reads of 5")
    return whole


# -- nesting of any depth -----------------------------------------------------------------------

TOO_DEEP = 20_000
"""Deeper than msgspec decodes on any supported Python (3.11 stops near 1,000, 3.13 near 9,000)."""


def nested(depth: int, kind: str) -> bytes:
    if kind == "object":
        return b'{"a":' * depth + b"1" + b"}" * depth
    if kind == "array-in-field":  # where the chunk type expects a list
        return b'{"choices":' + b"[" * depth + b"]" * depth + b"}"
    if kind == "unknown-field":  # a field the type does not know: msgspec still walks it
        return b'{"x":' + b"[" * depth + b"]" * depth + b',"choices":[]}'
    return b'{"error":' + b'{"e":' * depth + b"1" + b"}" * depth + b"}"


@DEEP
@settings(max_examples=30, deadline=None)
@given(
    depth=st.sampled_from([1, 10, 200, 1_000, 5_000, 50_000]),
    kind=st.sampled_from(["object", "array-in-field", "unknown-field", "error-member"]),
    slim=st.booleans(),
)
def test_any_nesting_depth(path: str, depth: int, kind: str, slim: bool) -> None:
    raw = A + b"data: " + nested(depth, kind) + b"\n\n" + B
    options = {"type": Slim} if slim else {}
    outcome = all_ways(path, raw, **options)
    assert len(outcome.items) in (2, 3)  # a shallow one may decode
    for error in outcome.errors:
        assert error.type in (MalformedEventError, StreamError)
        assert (error.event_index, error.offset) == (1, len(A))


@DEEP
def test_deep_nesting_does_not_lose_the_events_after_it(path: str) -> None:
    bad = b"data: " + nested(TOO_DEEP, "object") + b"\n\n"
    decoder = PATHS[path]()
    with pytest.raises(MalformedEventError) as info:
        decoder.feed(A + bad + B + C + b"data: [DONE]\n\n")
    assert texts(info.value.chunks) == ["a"]
    assert (info.value.event_index, info.value.offset) == (1, len(A))
    assert "nested too deeply" in info.value.reason
    assert texts(decoder.feed(b"")) == ["b", "c"]
    assert decoder.done


@paths
def test_deep_nesting_at_close_and_in_an_error_event(path: str) -> None:
    decoder = PATHS[path]()
    assert texts(decoder.feed(A + b"data: " + nested(TOO_DEEP, "object"))) == ["a"]
    with pytest.raises(TruncatedStreamError) as info:
        decoder.close()
    assert info.value.offset == len(A)
    event = b"event: error\ndata: " + nested(TOO_DEEP, "object") + b"\n\n"
    outcome = all_ways(path, A + event + B)
    assert texts(outcome.items) == ["a", "b"]
    assert [e.type for e in outcome.errors] == [StreamError]


@DEEP
@pytest.mark.parametrize("depth", [TOO_DEEP, 5 * TOO_DEEP])
def test_deep_nesting_through_the_iterators(path: str, depth: int) -> None:
    reads = [A, b"data: " + nested(depth, "object") + b"\n\n", B]
    got: list[Any] = []
    with pytest.raises(MalformedEventError):
        got.extend(iterate(PATHS[path](), reads))
    assert texts(got) == ["a"]

    async def source() -> AsyncIterator[bytes]:
        for data in reads:
            yield data

    async def consume(out: list[Any]) -> None:
        async for item in aiterate(PATHS[path](), source()):
            out.append(item)

    got = []
    with pytest.raises(MalformedEventError):
        asyncio.run(consume(got))
    assert texts(got) == ["a"]


# -- the chunk type's own exceptions ------------------------------------------------------------


@paths_unless(b'data: {"choices": ["boom"]}\n\n', Picky)
def test_an_exception_from_the_type_is_a_malformed_event(path: str) -> None:
    raw = b'data: {"choices": []}\n\ndata: {"choices": ["boom"]}\n\ndata: {"choices": [1]}\n\n'
    outcome = all_ways(path, raw, type=Picky)
    assert outcome.items == [Picky([]), Picky([1])]
    (error,) = outcome.errors
    assert error.type is MalformedEventError
    assert "KeyError" in error.message


# -- numbers, strings and bytes of every kind ---------------------------------------------------

_hostile_values = st.sampled_from(
    [
        b"1" + b"0" * 5000,
        b"-" + b"9" * 400,
        b"1e999999",
        b"-1e-999999",
        b"1." + b"5" * 5000,
        b"NaN",
        b"Infinity",
        b'"\\ud800"',
        b'"\\u0000"',
        b'"\xff\xfe"',
        b'"\xc3"',
        b'"\xed\xa0\x80"',
        b"\xef\xbb\xbf{}",
        b"{}" * 3,
        b'"' + b"\\" * 501 + b'"',
        b"tru",
        b"nul",
        b"[" * 3000,
        b"]",
    ]
)
_fields = st.sampled_from(
    [b"created", b"index", b"content", b"x", b"\xff\xfe", b"error", b"choices", b"usage"]
)


@st.composite
def hostile_payloads(draw: st.DrawFn) -> bytes:
    field = draw(_fields)
    value = draw(_hostile_values)
    if draw(st.booleans()):
        return b'{"' + field + b'":' + value + b"}"
    return (
        b'{"choices":[{"index":0,"delta":{"'
        + field
        + b'":'
        + value
        + b'}}],"usage":{"prompt_tokens":'
        + draw(_hostile_values)
        + b"}}"
    )


_names = st.sampled_from([b"data", b"dat\xffa", b"\xff", b"data\x00", b"event", b"id", b"retry"])


@st.composite
def hostile_streams(draw: st.DrawFn) -> bytes:
    out = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.integers(0, 3))
        if kind == 0:
            out.append(b"data: " + draw(hostile_payloads()) + b"\n\n")
        elif kind == 1:
            out.append(draw(_names) + b": " + draw(_hostile_values) + b"\n\n")
        elif kind == 2:
            out.append(b"retry: " + b"9" * draw(st.integers(1, 6000)) + b"\n" + A)
        else:
            out.append(A)
    raw = b"".join(out)
    return raw.replace(b"\n", b"\r\n") if draw(st.booleans()) else raw


@DEEP
@SETTINGS
@given(raw=hostile_streams(), points=st.lists(st.integers(0, 1 << 16), max_size=10))
def test_hostile_streams_stay_in_the_hierarchy(path: str, raw: bytes, points: list[int]) -> None:
    run = partial(run_decoder, factory=PATHS[path], resume=True)
    whole = run([raw])
    assert_same(whole, run(split_at(raw, [p % (len(raw) + 1) for p in points])), "split")
    assert_same(whole, run([raw[i : i + 7] for i in range(0, len(raw), 7)]), "reads of 7")
    for error in whole.errors:
        assert issubclass(error.type, Error)


# -- retry: any run of digits -------------------------------------------------------------------


def expected_retry(digits: str) -> int:
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(MAX_RETRY)) or (
        len(significant) == len(str(MAX_RETRY)) and significant > str(MAX_RETRY)
    ):
        return MAX_RETRY
    return int(significant)


@settings(max_examples=80, deadline=None)
@given(
    digits=st.one_of(
        st.text(alphabet="0123456789", min_size=1, max_size=30),
        st.integers(1, 20_000).map(lambda n: "7" * n),
        st.integers(1, 5_000).map(lambda n: "0" * n + "12"),
    )
)
def test_retry_with_any_number_of_digits(digits: str) -> None:
    raw = b"retry: " + digits.encode() + b"\ndata: x\n\n"
    (event,) = SSEParser().feed(raw)
    assert event.retry == expected_retry(digits)
    for path in PATHS:
        assert texts(all_ways(path, raw.replace(b"data: x", A[:-2])).items) == ["a"]


def test_retry_bound_is_not_below_what_clients_use() -> None:
    assert SSEParser().feed(b"retry: 86400000\ndata: x\n\n")[0].retry == 86_400_000
    assert MAX_RETRY == 2**63 - 1
    # Python's int-conversion limit does not matter, whatever it is set to.
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        (event,) = SSEParser().feed(b"retry: " + b"5" * 700 + b"\ndata: x\n\n")
    finally:
        sys.set_int_max_str_digits(limit)
    assert event.retry == MAX_RETRY


# -- slim projections: the error key cut anywhere -----------------------------------------------


@SLIM_SPLIT
@pytest.mark.parametrize(
    "payload",
    [b'{"error": {"message": "boom"}}', b'{"choices": [], "error": "plain"}'],
    ids=["envelope", "member"],
)
def test_slim_type_sees_an_error_key_cut_at_any_point(path: str, payload: bytes) -> None:
    event = b"data: " + payload + b"\n\n"
    raw = A + event + B
    for cut in range(len(A), len(A) + len(event) + 1):
        decoder = PATHS[path](Slim)
        got: list[Any] = []
        errors = []
        for data in (raw[:cut], raw[cut:], b""):
            try:
                got += decoder.feed(data)
            except StreamError as exc:
                got += exc.chunks
                errors.append(exc)
        assert len(got) == 2, cut
        assert [e.event_index for e in errors] == [1], cut


# -- bytes_consumed never counts an unfinished event --------------------------------------------


@st.composite
def framed_streams(draw: st.DrawFn) -> bytes:
    ending = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    pieces = draw(
        st.lists(
            st.sampled_from(
                [A, B, b": ping\n\n", b'data: {"error": {"message": "x"}}\n\n', b"\n", b"id: 1\n"]
            ),
            max_size=8,
        )
    )
    return b"".join(pieces).replace(b"\n", ending)


@paths
@SETTINGS
@given(raw=framed_streams(), points=st.lists(st.integers(0, 1 << 12), max_size=8))
def test_forwarding_bytes_consumed_forwards_whole_events(
    path: str, raw: bytes, points: list[int]
) -> None:
    decoder = PATHS[path]()
    delivered = 0
    for data in split_at(raw, [p % (len(raw) + 1) for p in points]):
        for more in (data, b""):
            try:
                delivered += len(decoder.feed(more))
            except StreamError as exc:
                delivered += len(exc.chunks) + 1
        # What a gateway forwarded so far decodes, on its own, to exactly what was delivered.
        forwarded = raw[: decoder.bytes_consumed]
        check = run_decoder([forwarded], factory=PATHS[path], resume=True)
        assert check.error in (None, StreamError), check.errors
        assert len(check.items) + len(check.errors) == delivered
        assert decoder.bytes_consumed <= len(raw)


# -- reads of every bytes-like type -------------------------------------------------------------

_reads_of = {
    "bytes": bytes,
    "bytearray": bytearray,
    "memoryview": memoryview,
    "memoryview of bytearray": lambda b: memoryview(bytearray(b)),
}


@paths
@SETTINGS
@given(raw=framed_streams(), points=st.lists(st.integers(0, 1 << 12), max_size=8))
def test_every_bytes_like_read_decodes_the_same(path: str, raw: bytes, points: list[int]) -> None:
    raw = A + b"id: 5\n\n" + raw + C
    reads = split_at(raw, [p % (len(raw) + 1) for p in points])
    run = partial(run_decoder, factory=PATHS[path], resume=True)
    expected = run(reads)
    for name, convert in _reads_of.items():
        assert_same(expected, run([convert(r) for r in reads]), name)  # type: ignore[operator]


@paths
@pytest.mark.parametrize(
    "bad",
    ["data: x\n\n", 5, None, [b"data: x\n\n"], object()],
    ids=["str", "int", "none", "list", "object"],
)
def test_other_reads_are_a_type_error(path: str, bad: Any) -> None:
    decoder = PATHS[path]()
    assert texts(decoder.feed(A)) == ["a"]
    with pytest.raises(TypeError, match="bytes, bytearray or memoryview"):
        decoder.feed(bad)
    assert texts(decoder.feed(B)) == ["b"]  # nothing was consumed
