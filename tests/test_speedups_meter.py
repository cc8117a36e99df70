"""``DecoderCore.set_meter``: per-read clock readings taken inside ``feed()``.

With the meter on, each ``feed()`` reads ``time.perf_counter_ns()``'s clock
once; every chunk it returns is filed under that reading: a token chunk (one
choice, non-empty text content, no finish reason, no usage)
is kept by the decoder (``meter_times()``) with its code points added to
``metered_chars``; the note is called with ``(reading, chunk)`` for any other.
``done_ns`` is the reading of the feed that saw [DONE].
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pytest

import streamspec
from splitting import bytewise
from streamspec import ChunkDecoder
from streamspec._fastpath import IMPLEMENTATION

if IMPLEMENTATION != "c":
    pytest.skip("the C accelerator is not built (or disabled)", allow_module_level=True)


def chunk(content: Any = "héllo", *, finish: Any = None, usage: Any = None, n: int = 1) -> bytes:
    choice = {"index": 0, "delta": {} if content is None else {"content": content}}
    choice["finish_reason"] = finish
    body: dict[str, Any] = {"id": "c", "object": "chat.completion.chunk", "created": 1,
                            "model": "m", "choices": [choice] * n}  # fmt: skip
    if usage is not None:
        body["usage"] = usage
    return b"data: " + msgspec.json.encode(body) + b"\n\n"


def note(into: list[tuple[int, Any]]) -> Any:
    """A note that keeps what it is given."""

    def keep(reading: int, item: Any) -> None:
        into.append((reading, item))

    return keep


USAGE = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
KINDS: dict[str, tuple[bytes, bool]] = {
    "token": (chunk("héllo"), True),
    "empty content": (chunk(""), False),
    "no content": (chunk(None), False),
    "finish": (chunk("x", finish="stop"), False),
    "usage": (chunk("x", usage=USAGE), False),
    "two choices": (chunk("x", n=2), False),
    "no choices": (chunk("x", n=0), False),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_chunk_is_filed_under_its_feed_reading(kind: str) -> None:
    data, is_token = KINDS[kind]
    decoder = ChunkDecoder()
    others: list[tuple[int, Any]] = []
    decoder.set_meter(note(others))  # type: ignore[attr-defined]
    before = time.perf_counter_ns()
    out = decoder.feed(data)
    tokens = decoder.meter_times()  # type: ignore[attr-defined]
    after = time.perf_counter_ns()
    assert len(out) == 1
    if is_token:
        assert others == []
        assert len(tokens) == 1
        assert before <= tokens[0] <= after
        assert decoder.metered_chars == len("héllo")  # type: ignore[attr-defined]
    else:
        assert tokens == []
        assert [chunk for _, chunk in others] == out
        assert before <= others[0][0] <= after
        assert decoder.metered_chars == 0  # type: ignore[attr-defined]


def test_one_reading_per_feed_and_done_ns() -> None:
    stream = chunk("a") + chunk("bc") + chunk("d", finish="stop") + chunk(None, usage=USAGE)
    decoder = ChunkDecoder()
    others: list[tuple[int, Any]] = []
    decoder.set_meter(note(others))  # type: ignore[attr-defined]
    assert decoder.done_ns == 0  # type: ignore[attr-defined]
    out = decoder.feed(stream)
    assert len(out) == 4
    tokens = decoder.meter_times()  # type: ignore[attr-defined]
    assert len(tokens) == 2
    assert len(set(tokens)) == 1  # the same reading
    assert [reading for reading, _ in others] == tokens
    assert decoder.metered_chars == 3  # type: ignore[attr-defined]
    before = time.perf_counter_ns()
    assert decoder.feed(b"data: [DONE]\n\n") == []
    assert before <= decoder.done_ns <= time.perf_counter_ns()  # type: ignore[attr-defined]


@pytest.mark.parametrize("how", ["whole", "byte by byte"])
def test_metering_does_not_change_what_is_decoded(how: str) -> None:
    stream = b"".join(chunk(f"t{i}") for i in range(5)) + b": ping\n\n" + chunk("z", finish="stop")
    stream += b"data: [DONE]\n\n"
    reads = [stream] if how == "whole" else bytewise(stream)
    plain, metered = ChunkDecoder(), ChunkDecoder()
    others: list[tuple[int, Any]] = []
    metered.set_meter(note(others))  # type: ignore[attr-defined]
    a = [c for data in reads for c in plain.feed(data)]
    b = [c for data in reads for c in metered.feed(data)]
    tokens = metered.meter_times()  # type: ignore[attr-defined]
    assert a == b
    # The read that holds [DONE] meters its token chunks like any other read.
    assert len(tokens) == 5
    assert [c for _, c in others] == a[5:]
    assert metered.metered_chars == 10  # type: ignore[attr-defined]
    assert metered.done_ns > 0  # type: ignore[attr-defined]
    if how == "whole":
        assert tokens == [metered.done_ns] * 5  # type: ignore[attr-defined]
    assert tokens == sorted(tokens)


def test_errors_are_raised_as_without_the_meter() -> None:
    decoder = ChunkDecoder()
    others: list[tuple[int, Any]] = []
    decoder.set_meter(note(others))  # type: ignore[attr-defined]
    with pytest.raises(streamspec.StreamError) as info:
        decoder.feed(chunk("a") + b'data: {"error":{"message":"boom"}}\n\n')
    assert len(info.value.chunks) == 1
    assert decoder.metered_tokens == 0  # type: ignore[attr-defined]
    # the chunks of a feed that raised are not stamped; the error is filed with its reading
    assert [item for _, item in others] == [info.value]


def test_other_chunk_types_and_turning_it_off() -> None:
    class Slim(msgspec.Struct):
        choices: list[Any] = []

    decoder = ChunkDecoder(Slim)
    others: list[tuple[int, Any]] = []
    decoder.set_meter(note(others))  # type: ignore[attr-defined]
    assert len(decoder.feed(chunk("a"))) == 1
    assert decoder.meter_times() == []  # type: ignore[attr-defined]
    assert len(others) == 1  # not the default chunk type: left to the caller
    decoder.set_meter(None)  # type: ignore[attr-defined]
    decoder.feed(chunk("b"))
    assert len(others) == 1
    with pytest.raises(TypeError):
        decoder.set_meter([])  # type: ignore[attr-defined]


def test_a_note_that_raises_is_the_feeds_error() -> None:
    def broken(reading: int, item: Any) -> None:
        raise ValueError("note failed")

    decoder = ChunkDecoder()
    decoder.set_meter(broken)  # type: ignore[attr-defined]
    assert len(decoder.feed(chunk("a"))) == 1  # token chunks do not call the note
    with pytest.raises(ValueError, match="note failed"):
        decoder.feed(chunk("b", finish="stop"))
    seen: list[tuple[int, Any]] = []
    decoder.set_meter(note(seen))  # type: ignore[attr-defined]
    assert decoder.metered_tokens == 0  # type: ignore[attr-defined]
    with pytest.raises(streamspec.StreamError):
        decoder.feed(b'data: {"error": {"message": "x"}}\n\n')
    assert [type(item) for _, item in seen] == [streamspec.StreamError]


def test_legacy_completions_chunks_are_metered_too() -> None:
    def legacy(text: str, finish: Any = None) -> bytes:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        body = {"id": "c", "object": "text_completion", "created": 1, "model": "m",
                "choices": [choice]}  # fmt: skip
        return b"data: " + msgspec.json.encode(body) + b"\n\n"

    decoder = ChunkDecoder(streamspec.CreateCompletionResponse)
    others: list[tuple[int, Any]] = []
    decoder.set_meter(note(others))  # type: ignore[attr-defined]
    out = decoder.feed(legacy("héllo") + legacy("") + legacy("x", finish="stop"))
    assert len(out) == 3
    assert decoder.metered_tokens == 1  # type: ignore[attr-defined]
    assert decoder.metered_chars == len("héllo")  # type: ignore[attr-defined]
    assert [chunk for _, chunk in others] == out[1:]  # empty text, a finish reason: the caller's
