"""SSEParser against the WHATWG event-stream rules (HTML Living Standard, "Server-sent events").

The rules, from "Parsing an event stream" and "Interpreting an event stream":

* The stream is UTF-8; one leading BOM is stripped; invalid bytes decode to
  U+FFFD (the Encoding Standard's decoder, which replaces each maximal
  invalid subpart by one U+FFFD).
* Lines end in CRLF, LF or a lone CR.
* An empty line dispatches the event. A line starting with ":" is a comment.
  Otherwise the field name is everything before the first ":", the value
  everything after it minus one leading U+0020 SPACE; a line without ":" is a
  field whose value is the empty string.
* ``data`` appends value + LF to the data buffer; ``event`` sets the event type
  buffer; ``id`` sets the last event ID buffer unless the value contains NUL;
  ``retry`` counts only if the value is ASCII digits; other fields are ignored.
* On dispatch: the last event ID is set from its buffer (it persists across
  events); if the data buffer is empty, the data and event type buffers are
  reset and nothing is dispatched; otherwise one trailing LF is dropped from
  the data, the event is dispatched, and data and event type are reset.
* At the end of the stream an incomplete event is discarded.

``ServerSentEvent`` maps the spec's "message" default to ``event=None``, an
empty last event ID to ``id=None``, and carries ``retry`` only on the event of
the block that set it.

Every case is fed whole, byte by byte, at every single split point and at
random splits, and must give the same events.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splitting import Outcome, bytewise, run_parser, split_at, three_ways
from streamspec import EventTooLargeError, ServerSentEvent, SSEParser


def E(
    data: str, event: str | None = None, id: str | None = None, retry: int | None = None
) -> ServerSentEvent:
    return ServerSentEvent(event=event, data=data, id=id, retry=retry)


def case(raw: bytes, events: list[ServerSentEvent], *, clean: bool = True, id: str) -> object:
    """A stream, the events the spec gives for it, and whether it ends at an event boundary."""
    return pytest.param(raw, events, clean, id=id)


BOM = b"\xef\xbb\xbf"

CASES = [
    # -- line endings ------------------------------------------------------------------------
    case(b"data: a\n\n", [E("a")], id="lf"),
    case(b"data: a\r\n\r\n", [E("a")], id="crlf"),
    case(b"data: a\r\r", [E("a")], id="cr"),
    case(b"data: a\rdata: b\r\rdata: c\r\r", [E("a\nb"), E("c")], id="cr-only-stream"),
    case(b"data: a\r\ndata: b\rdata: c\n\r\n", [E("a\nb\nc")], id="mixed-endings-one-event"),
    case(b"data: a\r\ndata: b\r\n\r\n", [E("a\nb")], id="crlf-counts-once"),
    case(b"data: a\n\rdata: b\n\n", [E("a"), E("b")], id="lf-then-cr-is-a-blank-line"),
    case(b"data: a\r\r\ndata: b\n\n", [E("a"), E("b")], id="cr-then-crlf-is-a-blank-line"),
    case(b"data: a\rb\n\n", [E("a")], id="cr-inside-a-line-ends-it"),
    case(b"data: 1\n\ndata: 2\r\n\r\ndata: 3\r\r", [E("1"), E("2"), E("3")], id="three-styles"),
    # -- byte order mark ---------------------------------------------------------------------
    case(BOM + b"data: a\n\n", [E("a")], id="bom-stripped"),
    case(BOM + BOM + b"data: a\n\ndata: b\n\n", [E("b")], id="only-one-bom-stripped"),
    case(b"data: a\n\n" + BOM + b"data: b\n\n", [E("a")], id="bom-later-is-content"),
    case(b"\xef\xbbdata: a\n\ndata: b\n\n", [E("b")], id="partial-bom-is-content"),
    case(BOM + b"\r\ndata: a\r\n\r\n", [E("a")], id="bom-then-crlf"),
    case(BOM, [], id="bom-alone"),
    case(b"data: " + BOM + b"a\n\n", [E("\ufeffa")], id="bom-in-value-kept"),
    # -- UTF-8 decoding ----------------------------------------------------------------------
    case("data: é🚀東京\n\n".encode(), [E("é🚀東京")], id="multibyte"),
    case("data: 👩‍💻🇫🇷\n\n".encode(), [E("👩‍💻🇫🇷")], id="emoji-sequences"),
    case(b"data: \xff\n\n", [E("\ufffd")], id="invalid-byte"),
    case(b"data: caf\xc3\n\n", [E("caf\ufffd")], id="truncated-2-byte"),
    case(b"data: \xc3(\n\n", [E("\ufffd(")], id="bad-continuation"),
    case(b"data: \xf0\x9f\x98!\n\n", [E("\ufffd!")], id="truncated-4-byte-one-replacement"),
    case(b"data: \xed\xa0\x80\n\n", [E("\ufffd\ufffd\ufffd")], id="encoded-surrogate"),
    case(b"data: \xc0\xaf\n\n", [E("\ufffd\ufffd")], id="overlong"),
    case(b"data: caf\xe9 ok\n\n", [E("caf\ufffd ok")], id="latin-1-byte"),
    case(
        b"event: \xff\nid: \xfe\ndata: x\n\n",
        [E("x", event="\ufffd", id="\ufffd")],
        id="invalid-in-event-and-id",
    ),
    case(b"da\xffta: x\n\n", [], id="invalid-in-field-name"),
    # -- comments ----------------------------------------------------------------------------
    case(b": hello\ndata: a\n\n", [E("a")], id="comment"),
    case(b":\n\ndata: a\n\n", [E("a")], id="bare-colon"),
    case(b": keep-alive\n\n", [], id="comment-only-block"),
    case(b"data: a\n: c\ndata: b\n\n", [E("a\nb")], id="comment-between-data-lines"),
    case(b":data: x\n\n", [], id="commented-out-data"),
    case(b": ping - 2025-01-01 00:00:00\r\n\r\ndata: a\r\n\r\n", [E("a")], id="ping-crlf"),
    # -- field parsing -----------------------------------------------------------------------
    case(b"data:a\n\n", [E("a")], id="no-space-after-colon"),
    case(b"data:  a\n\n", [E(" a")], id="two-spaces-keep-one"),
    case(b"data:\ta\n\n", [E("\ta")], id="tab-kept"),
    case(b"data: a \n\n", [E("a ")], id="trailing-space-kept"),
    case(b"data: a: b\n\n", [E("a: b")], id="colon-in-value"),
    case(b"data\n\n", [E("")], id="data-without-colon"),
    case(b"data:\n\n", [E("")], id="data-colon-empty"),
    case(b"data: \n\n", [E("")], id="data-colon-space-empty"),
    case(b"data: a\ndata\ndata: b\n\n", [E("a\n\nb")], id="empty-data-line-in-middle"),
    case(b"data: a\ndata:\n\n", [E("a\n")], id="one-trailing-lf-dropped"),
    case(b"data: a\ndata: b\ndata: c\n\n", [E("a\nb\nc")], id="multi-line-data"),
    case(b"Data: a\n\nDATA: b\n\n", [], id="field-names-case-sensitive"),
    case(b" data: a\n\n", [], id="leading-space-in-name"),
    case(b"data : a\n\n", [], id="space-before-colon"),
    case(b"foo: bar\ndata: a\n\n", [E("a")], id="unknown-field-ignored"),
    case(b"foo: bar\n\n", [], id="unknown-field-only"),
    case(b'error: {"message": "boom"}\n\n', [], id="error-field-is-unknown"),
    case(b"data: a\x00b\n\n", [E("a\x00b")], id="nul-in-data-kept"),
    # -- event type --------------------------------------------------------------------------
    case(b"event: add\ndata: a\n\n", [E("a", event="add")], id="event"),
    case(b"event: add\ndata: a\n\ndata: b\n\n", [E("a", "add"), E("b")], id="event-reset"),
    case(b"event: add\n\ndata: b\n\n", [E("b")], id="event-reset-without-data"),
    case(b"event: a\nevent: b\ndata: x\n\n", [E("x", event="b")], id="last-event-wins"),
    case(b"event:\ndata: x\n\n", [E("x")], id="empty-event-is-default"),
    case(b"event\ndata: x\n\n", [E("x")], id="event-without-colon"),
    case(b"data: x\nevent: e\n\n", [E("x", event="e")], id="event-after-data"),
    case(b"event: error\ndata: {}\n\n", [E("{}", event="error")], id="error-event-ordinary"),
    # -- last event ID -----------------------------------------------------------------------
    case(b"id: 1\ndata: a\n\n", [E("a", id="1")], id="id"),
    case(b"id: 1\ndata: a\n\ndata: b\n\n", [E("a", id="1"), E("b", id="1")], id="id-persists"),
    case(b"id: 7\n\ndata: a\n\n", [E("a", id="7")], id="id-only-block-sets-id"),
    case(b"id: 1\ndata: a\n\nid\ndata: b\n\n", [E("a", id="1"), E("b")], id="id-reset-no-colon"),
    case(b"id: 1\ndata: a\n\nid:\ndata: b\n\n", [E("a", id="1"), E("b")], id="id-reset-empty"),
    case(
        b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
        [E("a", id="1"), E("b", id="1")],
        id="id-with-nul-ignored",
    ),
    case(b"id: a\x00\ndata: x\n\n", [E("x")], id="first-id-with-nul-ignored"),
    case(b"id:  5\ndata: x\n\n", [E("x", id=" 5")], id="id-two-spaces"),
    case(b"id: 1\nid: 2\ndata: x\n\n", [E("x", id="2")], id="last-id-wins"),
    case(
        b"id: 1\ndata: a\n\nid: 2\n\n: c\n\ndata: b\n\n",
        [E("a", id="1"), E("b", id="2")],
        id="id-change-without-data",
    ),
    # -- retry -------------------------------------------------------------------------------
    case(b"retry: 1000\ndata: a\n\n", [E("a", retry=1000)], id="retry"),
    case(b"retry:250\ndata: a\n\n", [E("a", retry=250)], id="retry-no-space"),
    case(b"retry: 007\ndata: a\n\n", [E("a", retry=7)], id="retry-leading-zeros"),
    case(b"data: a\nretry: 9\n\n", [E("a", retry=9)], id="retry-after-data"),
    case(b"retry: 1000\ndata: a\n\ndata: b\n\n", [E("a", retry=1000), E("b")], id="retry-once"),
    case(b"retry: 5\n\ndata: a\n\n", [E("a")], id="retry-only-block"),
    case(b"retry: 10a\ndata: a\n\n", [E("a")], id="retry-non-digit"),
    case(b"retry: -1\ndata: a\n\n", [E("a")], id="retry-negative"),
    case(b"retry: 1.5\ndata: a\n\n", [E("a")], id="retry-float"),
    case(b"retry: +5\ndata: a\n\n", [E("a")], id="retry-plus"),
    case(b"retry:  100\ndata: a\n\n", [E("a")], id="retry-second-space-not-digit"),
    case(b"retry: 100 \ndata: a\n\n", [E("a")], id="retry-trailing-space"),
    case("retry: ١٢\ndata: a\n\n".encode(), [E("a")], id="retry-arabic-indic-digits"),
    case("retry: ²\ndata: a\n\n".encode(), [E("a")], id="retry-superscript-digit"),
    case(b"retry: 100\nretry: x\ndata: a\n\n", [E("a", retry=100)], id="bad-retry-ignored"),
    # -- dispatch ----------------------------------------------------------------------------
    case(b"\n\n\n\r\n\r", [], id="blank-lines-only"),
    case(b"event: ping\n\n", [], id="event-only-no-phantom"),
    case(b"id: 1\n\n", [], id="id-only-no-phantom"),
    case(b"retry: 10\n\n", [], id="retry-only-no-phantom"),
    case(b"event: x\nid: 2\nretry: 3\n: c\n\n", [], id="fields-without-data-no-phantom"),
    case(b"\ndata: a\n\n", [E("a")], id="blank-line-first"),
    case(b"data: 1\n\ndata: 2\n\ndata: 3\n\n", [E("1"), E("2"), E("3")], id="three-events"),
    case(b"data: [DONE]\n\ndata: a\n\n", [E("[DONE]"), E("a")], id="done-is-ordinary"),
    # -- end of stream -----------------------------------------------------------------------
    case(b"", [], id="empty-stream"),
    case(b"data: a", [], clean=False, id="unterminated-line"),
    case(b"data: a\n", [], clean=False, id="no-blank-line"),
    case(b"data: a\r", [], clean=False, id="cr-no-blank-line"),
    case(b"data: a\r\n", [], clean=False, id="crlf-no-blank-line"),
    case(b"data: a\n\ndata: b\n", [E("a")], clean=False, id="last-event-discarded"),
]


def _check(raw: bytes, events: list[ServerSentEvent], clean: bool, outcome: Outcome) -> None:
    assert outcome.error is None
    assert outcome.items == events
    assert outcome.done == clean


@pytest.mark.parametrize(("raw", "events", "clean"), CASES)
def test_case_whole_and_byte_by_byte(
    raw: bytes, events: list[ServerSentEvent], clean: bool
) -> None:
    _check(raw, events, clean, three_ways(run_parser, raw))


@pytest.mark.parametrize(("raw", "events", "clean"), CASES)
def test_case_every_single_split(raw: bytes, events: list[ServerSentEvent], clean: bool) -> None:
    for point in range(1, len(raw)):
        outcome = run_parser([raw[:point], raw[point:]])
        assert outcome.items == events, f"split at {point}"
        assert outcome.done == clean, f"split at {point}"


_CASE_VALUES = [p.values for p in CASES]  # type: ignore[attr-defined]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_CASE_VALUES), st.data())
def test_case_random_splits(value: tuple[bytes, list[ServerSentEvent], bool], data) -> None:  # type: ignore[no-untyped-def]
    raw, events, clean = value
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=len(raw) + 1), label="points")
    _check(raw, events, clean, run_parser(split_at(raw, points)))


# -- explicit read boundaries -------------------------------------------------------------------


@pytest.mark.parametrize(
    "reads",
    [
        [b"data: a\r", b"\ndata: b\r\n\r\n"],
        [b"data: a\r", b"\n", b"data: b\r", b"\n\r", b"\n"],
        [b"data: a\r", b"", b"\ndata: b\r\n\r\n"],
    ],
    ids=["crlf-split", "every-crlf-split", "empty-read-between"],
)
def test_crlf_split_between_reads_counts_once(reads: list[bytes]) -> None:
    # Were the LF after a read-final CR taken as a second line ending, it would
    # be a blank line and dispatch "a" alone.
    assert run_parser(reads).items == [E("a\nb")]


def test_cr_at_end_of_read_then_data_starts_a_new_line() -> None:
    assert run_parser([b"data: a\r", b"data: b\r\r"]).items == [E("a\nb")]


@pytest.mark.parametrize(
    "reads",
    [
        [b"\xef", b"\xbb", b"\xbfdata: a\n\n"],
        [b"\xef\xbb", b"\xbf", b"data: a\n\n"],
        [b"\xef", b"\xbb\xbfdata: a\n\n"],
        [b"", b"\xef\xbb\xbf", b"data: a\n\n"],
    ],
    ids=["1-1-rest", "2-1-rest", "1-rest", "empty-first"],
)
def test_bom_split_across_reads(reads: list[bytes]) -> None:
    assert run_parser(reads).items == [E("a")]


def test_multibyte_split_inside_character() -> None:
    raw = "data: é🚀\n\n".encode()
    for point in range(7, 13):
        assert run_parser([raw[:point], raw[point:]]).items == [E("é🚀")], point


def test_close_returns_nothing_for_unterminated_event() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: a\n\ndata: {"partial') == [E("a")]
    assert parser.pending
    assert parser.close() == []


# -- size limit ---------------------------------------------------------------------------------


LIMIT = 1024


def _limited() -> SSEParser:
    return SSEParser(max_event_size=LIMIT)


@pytest.mark.parametrize(
    ("prefix", "unit"),
    [
        (b"data: ", b"x" * 100),
        (b": ", b"x" * 100),
        (b"", b"x" * 100),
        (b"", b"data: " + b"x" * 193 + b"\n"),  # one event of ever more lines
        (b"", b"data: " + b"x" * 193 + b"\r"),
    ],
    ids=["endless-data-line", "endless-comment", "endless-field-name", "endless-event-lf", "cr"],
)
def test_event_too_large_raised_promptly(prefix: bytes, unit: bytes) -> None:
    parser = _limited()
    fed = 0
    error = None
    for data in [prefix] + [unit] * (10 * LIMIT // len(unit)):
        try:
            parser.feed(data)
        except EventTooLargeError as exc:
            error = exc
            break
        fed += len(data)
    assert error is not None
    # Raised by the read that took the event past the limit, not by a later one:
    # the reads before it held at most LIMIT bytes.
    assert fed <= LIMIT
    assert error.limit == LIMIT
    assert error.event_index == 0


_OVERSIZE = b"data: a\n\ndata: " + b"x" * (3 * LIMIT) + b"\n\n"


def test_event_too_large_keeps_earlier_events_of_the_same_feed() -> None:
    # Every error carries what the same call had already produced: "a" is not lost.
    with pytest.raises(EventTooLargeError) as info:
        _limited().feed(_OVERSIZE)
    assert info.value.chunks == [E("a")]


@pytest.mark.parametrize("size", [len(_OVERSIZE), 1, 7, 64])
def test_event_too_large_offset_is_where_the_event_starts(size: int) -> None:
    reads = [_OVERSIZE[i : i + size] for i in range(0, len(_OVERSIZE), size)]
    outcome = run_parser(reads, _limited)
    assert outcome.error is EventTooLargeError
    assert outcome.errors[0].event_index == 1
    assert outcome.errors[0].offset == _OVERSIZE.index(b"data: x")


def test_event_too_large_same_outcome_however_split() -> None:
    outcome = three_ways(lambda reads: run_parser(reads, _limited), _OVERSIZE, [3, 500, 2000])
    assert outcome.items == [E("a")]
    assert outcome.error is EventTooLargeError


def test_event_under_the_limit_passes() -> None:
    raw = b"data: " + b"x" * (LIMIT // 2) + b"\n\n"
    assert three_ways(lambda reads: run_parser(reads, _limited), raw).items == [
        E("x" * (LIMIT // 2))
    ]


# -- an independent reading of the spec, against random streams --------------------------------


_LINE_END = re.compile(r"\r\n|\r|\n")


def spec_parse(raw: bytes) -> tuple[list[ServerSentEvent], bool]:
    """The spec's algorithm over the whole stream at once.

    Returns the events and whether the stream ended at an event boundary (no
    partial line, no line of an undispatched block).
    """
    text = raw.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    *lines, rest = _LINE_END.split(text)
    events: list[ServerSentEvent] = []
    data: list[str] = []
    event_type = ""
    last_id = ""
    retry: int | None = None
    in_block = False
    for line in lines:
        if line == "":
            if data:
                events.append(E("\n".join(data), event_type or None, last_id or None, retry))
            data, event_type, retry, in_block = [], "", None, False
            continue
        in_block = True
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event_type = value
        elif name == "id":
            if "\x00" not in value:
                last_id = value
        elif name == "retry" and value and all("0" <= c <= "9" for c in value):
            retry = int(value)
    return events, not (rest or in_block)


_NAMES = [b"data", b"event", b"id", b"retry", b"", b":", b"foo", b"dat", b"Data", b" data"]
_SEPARATORS = [b":", b": ", b":  ", b"", b" :"]
_VALUES = [
    b"",
    b"a",
    b"12",
    b"x y",
    b"[DONE]",
    b'{"k": 1}',
    b"\x00",
    "é🚀".encode(),
    BOM,
    b"1a",
    b"\xff",
    b"\xc3",
    b"\xf0\x9f",
]
_ENDINGS = [b"\n", b"\r", b"\r\n"]

_line = st.builds(
    lambda name, sep, value, end: name + sep + value + end,
    st.sampled_from(_NAMES),
    st.sampled_from(_SEPARATORS),
    st.sampled_from(_VALUES),
    st.sampled_from(_ENDINGS),
)
_blank = st.sampled_from(_ENDINGS)
_stream = st.builds(
    lambda bom, parts, tail: bom + b"".join(parts) + tail,
    st.sampled_from([b"", b"", BOM]),
    st.lists(st.one_of(_line, _line, _blank), max_size=30),
    st.sampled_from([b"", b"", b"data: tail", b"\r"]),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_stream, st.data())
def test_random_streams_match_the_spec(raw: bytes, data) -> None:  # type: ignore[no-untyped-def]
    events, clean = spec_parse(raw)
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=12), label="points")
    for reads in ([raw], bytewise(raw), split_at(raw, points)):
        outcome = run_parser(reads)
        assert outcome.error is None
        assert outcome.items == events
        assert outcome.done == clean


def test_spec_reference_agrees_with_the_table() -> None:
    # The reference reading used above gives the hand-written expectations too.
    for param in CASES:
        raw, events, clean = param.values  # type: ignore[attr-defined]
        assert spec_parse(raw) == (events, clean), param.id  # type: ignore[attr-defined]
