"""Size limits and the order of errors never depend on how the bytes are split.

A differential fuzz. Each stream mixes data events, error payloads and
``event: error`` events, ``[DONE]``, malformed JSON, comments, other fields,
multi-line data, blank-line runs, LF, CRLF and CR line endings, a JSON body
instead of a stream, and blocks over a random ``max_event_size`` (10 to 400
bytes). It is decoded by the compiled hot path (when built) and the pure-Python
one, whole, byte by byte and at random splits, going on after recoverable
errors as documented. Every run must give the same outcome: the chunks, each
error with its class, message, ``event_index``, ``offset``, payload and chunk,
``events`` and ``bytes_consumed``, ``done``. And that outcome must be what a
naive reference decoder, written here from the rules in the
:mod:`streamspec.decoder` docstring, gives.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paths import PATHS, compiled_misses_a_cut_error_key
from splitting import Outcome, assert_same, bytewise, run_decoder, split_at
from streamspec import (
    CreateChatCompletionStreamResponse,
    EventTooLargeError,
    MalformedEventError,
    StreamError,
    TruncatedStreamError,
    salvage,
)

Chunk = CreateChatCompletionStreamResponse
_decode_any = msgspec.json.Decoder().decode

SLIM_PATHS = {
    name: cls
    for name, cls in PATHS.items()
    if not (name == "c" and compiled_misses_a_cut_error_key())  # an older build of the C path
}


# -- the reference ------------------------------------------------------------------------------

_LINE = re.compile(rb"([^\r\n]*)(\r\n|\r|\n)")
_WS = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"


def _error_of_payload(data: str) -> Any:
    """The error a payload reports: a non-empty ``error`` member, or None."""
    try:
        value = _decode_any(data)
    except msgspec.DecodeError:
        return None
    if isinstance(value, dict) and value.get("error") not in (None, "", False, 0, {}):
        return value["error"]
    return None


def _outcome(data: str, event: bytes) -> tuple[str, Any]:
    """What one event's data decodes to: ("chunk", c), ("done", None) or an error kind."""
    if event == b"error":
        return "stream", None
    try:
        chunk, _ = salvage(data)  # what does not fit the type is dropped, as the decoder does
    except msgspec.DecodeError:
        if data.strip() == "[DONE]":
            return "done", None
        return ("stream", None) if _error_of_payload(data) is not None else ("malformed", None)
    if chunk.error:
        return "stream", chunk
    return "chunk", chunk


def reference(raw: bytes, limit: int) -> tuple[list[Any], list[tuple[type, int, int]], bool, int]:
    """Chunks, errors (class, event_index, offset), done and events, by the rules, naively.

    The whole stream is at hand: lines are cut with one regex, every block is
    measured from its first line's first byte, every event handled in turn.
    """
    chunks: list[Any] = []
    errors: list[tuple[type, int, int]] = []
    body = raw[3:] if raw.startswith(_BOM) else raw
    start = len(raw) - len(body.lstrip(_WS))
    if body.lstrip(_WS)[:1] == b"{":  # a JSON document, not a stream
        size = len(raw.rstrip(_WS)) - start
        if size > limit:
            return [], [(EventTooLargeError, 0, start)], False, 0
        document = raw[start:].decode("utf-8", "replace")
        try:
            value = _decode_any(document)
        except msgspec.DecodeError:
            value = None
        reported = isinstance(value, dict) and (
            value.get("error") not in (None, "", False, 0, {}) or value.get("object") == "error"
        )
        return [], [(StreamError if reported else MalformedEventError, 0, start)], False, 0
    pos = 3 if raw.startswith(_BOM) else 0
    matches = list(_LINE.finditer(raw, pos))
    lines = [(m.start(1), m.group(1)) for m in matches]
    ended = matches[-1].end() if matches else pos
    final = raw[ended:]
    events = 0
    block = -1
    data: list[bytes] = []
    kind = b""

    def dispatch(at_end: bool) -> str | None:
        nonlocal events, data, kind, block
        if data:
            text = b"\n".join(data).decode("utf-8", "replace")
            what, chunk = _outcome(text, kind)
            index, offset = events, block
            events += 1
            if what == "done":
                return "done"
            if what == "chunk":
                chunks.append(chunk)
            elif what == "stream":
                errors.append((StreamError, index, offset))
            else:
                errors.append(
                    (TruncatedStreamError if at_end else MalformedEventError, index, offset)
                )
                if at_end:
                    return "stop"
        data, kind, block = [], b"", -1
        return None

    def line(offset: int, value: bytes) -> str | None:
        nonlocal block, kind
        if block < 0:
            block = offset
        if offset + len(value) - block > limit:
            errors.append((EventTooLargeError, events, block))
            return "stop"
        if value[:1] == b":":
            return None
        name, _, rest = value.partition(b":")
        rest = rest[1:] if rest[:1] == b" " else rest
        if name == b"data":
            data.append(rest)
        elif name == b"event":
            kind = rest
        return None

    for offset, value in lines:
        if not value:
            if dispatch(False) == "done":
                return chunks, errors, True, events
        elif line(offset, value) == "stop":
            return chunks, errors, False, events
    if final and line(ended, final) == "stop":
        return chunks, errors, False, events
    # close(): a final event without its blank line is still decoded.
    done = (final or block >= 0) and dispatch(True) == "done"
    return chunks, errors, bool(done), events


def summary(outcome: Outcome) -> tuple[list[Any], list[tuple[type, int, int]], bool, int]:
    errors = [(e.type, e.event_index or 0, e.offset or 0) for e in outcome.errors]
    return (
        outcome.items,
        errors,
        outcome.done,
        outcome.counts[-2 if len(outcome.counts) > 1 else -1],
    )


# -- the streams --------------------------------------------------------------------------------


def _chunk(text: str) -> bytes:
    return msgspec.json.encode(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": text}}],
        }
    )


_texts = st.text(alphabet='ab é"\\\n東', max_size=120)

# Each piece is a list of lines (the last empty one ends the block) or raw bytes.
_piece = st.one_of(
    st.builds(lambda t: [b"data: " + _chunk(t), b""], _texts),
    st.builds(lambda t: [b"data:" + _chunk(t), b""], _texts),
    st.just([b'data: {"error": {"message": "overloaded", "code": 503}}', b""]),
    st.just([b'data: {"error": "plain", "error_type": "generation"}', b""]),
    st.just([b'data: {"choices": [], "error": null}', b""]),
    st.just([b"event: error", b"data: upstream failed", b""]),
    st.just([b"data: [DONE]", b""]),
    st.just([b"data: {bad json", b""]),
    st.just([b'data: {"choices": "nope"}', b""]),
    st.just([b"data: ", b""]),
    st.builds(lambda n: [b": " + b"k" * n, b""], st.integers(0, 450)),
    st.builds(lambda n: [b": ping"] * n + [b""], st.integers(1, 40)),
    st.just([b"id: 7", b"event: ping", b""]),
    st.builds(lambda t: [b'data: {"choices":', b"data: " + t.encode() + b"[]}", b""], st.just("")),
    st.builds(lambda n: [b""] * n, st.integers(1, 60)),
    st.builds(lambda n: [b"data: " + _chunk("x" * n), b""], st.integers(0, 500)),
    st.just([b"data: " + _chunk("cut")[:20]]),  # an event whose end never comes
)
_ending = st.sampled_from([b"\n", b"\n", b"\r\n", b"\r"])


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 15)) == 0:  # a JSON body instead of a stream
        body = draw(
            st.sampled_from(
                [
                    b'{"error": {"message": "bad key", "type": "auth", "code": 401}}',
                    b'\n  {"error": "model not found"}\n',
                    b'{"object": "error", "message": "too long", "code": 400}',
                    b'{"id": "chatcmpl-1", "object": "chat.completion", "choices": []}',
                    b'{"error": {"message": "' + b"m" * 300 + b'"}}',
                    b'{"error": {"message": "cut',
                ]
            )
        )
        return body
    mixed = draw(st.booleans())
    stream_ending = draw(_ending)
    out = []
    for lines in draw(st.lists(_piece, max_size=10)):
        ending = draw(_ending) if mixed else stream_ending
        out.append(b"".join(line + ending for line in lines))
    return b"".join(out)


FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(streams(), st.integers(10, 400), st.lists(st.integers(0, 1 << 16), max_size=12), st.data())
def test_same_outcome_however_split_on_both_paths(
    raw: bytes, limit: int, points: list[int], data: st.DataObject
) -> None:
    expected = reference(raw, limit)
    cuts = [p % (len(raw) + 1) for p in points]
    small = data.draw(st.integers(1, 9), label="small read size")
    reads = {
        "byte by byte": bytewise(raw),
        "split": split_at(raw, cuts),
        f"reads of {small}": [raw[i : i + small] for i in range(0, len(raw), small)],
    }
    first: Outcome | None = None
    for path, cls in PATHS.items():
        run = partial(run_decoder, factory=partial(cls, max_event_size=limit), resume=True)
        whole = run([raw])
        assert summary(whole) == expected, f"{path} path, whole"
        if first is None:
            first = whole
        else:
            assert_same(first, whole, f"{path} path whole (against the python path)")
        for how, pieces in reads.items():
            assert_same(whole, run(pieces), f"{path} path {how}")


# -- the rules, one by one ----------------------------------------------------------------------

A = b"data: " + _chunk("a") + b"\n\n"
B = b"data: " + _chunk("b") + b"\n\n"
BIG = b"data: " + _chunk("x" * 200) + b"\n\n"
ERR = b'data: {"error": {"message": "boom"}}\n\n'


def _all_ways(raw: bytes, limit: int) -> Outcome:
    outcomes = []
    for cls in PATHS.values():
        run = partial(run_decoder, factory=partial(cls, max_event_size=limit), resume=True)
        whole = run([raw])
        for reads in (bytewise(raw), split_at(raw, range(7, len(raw), 13))):
            assert_same(whole, run(reads), "split")
        outcomes.append(whole)
    assert all(o == outcomes[0] for o in outcomes)
    return outcomes[0]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_error_then_oversized_event_reports_both_in_order(ending: bytes) -> None:
    raw = (A + ERR + BIG + B).replace(b"\n", ending)
    outcome = _all_ways(raw, 150)
    assert [e.type for e in outcome.errors] == [StreamError, EventTooLargeError]
    assert [(e.event_index, e.offset) for e in outcome.errors] == [
        (1, len(A.replace(b"\n", ending))),
        (2, len((A + ERR).replace(b"\n", ending))),
    ]
    assert len(outcome.items) == 1


def test_malformed_then_oversized_reports_both() -> None:
    raw = A + b"data: {nope\n\n" + BIG
    outcome = _all_ways(raw, 150)
    assert [e.type for e in outcome.errors] == [MalformedEventError, EventTooLargeError]


@pytest.mark.parametrize("after", [BIG, b": " + b"x" * 500 + b"\n\n", b"data: {bad\n\n"])
def test_bytes_after_done_are_ignored_limits_included(after: bytes) -> None:
    raw = A + b"data: [DONE]\n\n" + after
    outcome = _all_ways(raw, 150)
    assert outcome.error is None
    assert outcome.done
    assert outcome.counts[:2] == (2, len(A) + len(b"data: [DONE]\n\n"))


def test_oversized_comment_block_counts() -> None:
    raw = A + b": " + b"c" * 200 + b"\n\n" + B
    outcome = _all_ways(raw, 150)
    assert outcome.error is EventTooLargeError
    assert (outcome.errors[0].event_index, outcome.errors[0].offset) == (1, len(A))


def test_limit_is_inclusive_and_blank_lines_do_not_count() -> None:
    event = b"data: " + _chunk("y" * 40)
    raw = b"\n\n\n" + event + b"\n\n" + b"\n" * 300 + B
    assert len(B) - 2 <= len(event)
    outcome = _all_ways(raw, len(event))
    assert outcome.error is None
    assert len(outcome.items) == 2
    over = _all_ways(raw, len(event) - 1)
    assert over.error is EventTooLargeError
    assert over.errors[0].offset == 3


class Slim(msgspec.Struct):
    """A projection without an ``error`` field: errors are found by the byte probe."""

    choices: list[Any] = []


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.integers(10, 400), st.lists(st.integers(0, 1 << 16), max_size=12))
def test_slim_type_same_outcome_however_split_on_both_paths(
    raw: bytes, limit: int, points: list[int]
) -> None:
    cuts = [p % (len(raw) + 1) for p in points]
    first: Outcome | None = None
    for path, cls in SLIM_PATHS.items():
        run = partial(run_decoder, factory=partial(cls, Slim, max_event_size=limit), resume=True)
        whole = run([raw])
        if first is None:
            first = whole
        else:
            assert_same(first, whole, f"{path} path whole (against the python path)")
        for how, pieces in {"byte by byte": bytewise(raw), "split": split_at(raw, cuts)}.items():
            assert_same(whole, run(pieces), f"{path} path {how}")
