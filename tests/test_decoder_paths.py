"""The decoder's fast paths agree with the plain spec algorithm on any stream and any split.

``ChunkDecoder`` frames runs of data-only events with byte operations and hands
everything else to ``SSEParser``. These tests build streams that mix both kinds
of input (comments, ``event:``/``id:`` fields, multi-line data, blank-line runs,
CR and CRLF endings, ``[DONE]``, error payloads, malformed JSON), cut them into
reads at random points, and compare the decoder's output with a reference that
runs ``SSEParser`` over the whole stream and decodes each event on its own.
"""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamspec
import streamspec.samples
from streamspec import ChunkDecoder, SSEParser


def reference(stream: bytes) -> tuple[list[Any], str | None, bool]:
    """Decode with SSEParser over the whole stream, then one event at a time."""
    parser = SSEParser()
    events = parser.feed(stream)
    chunks: list[Any] = []
    for event in events:
        if event.data.strip() == "[DONE]":
            return chunks, None, True
        if event.event == "error":
            return chunks, "StreamError", False
        try:
            chunk, _ = streamspec.salvage(event.data)  # what does not fit is dropped
        except msgspec.DecodeError:
            try:
                body = json.loads(event.data)
            except ValueError:
                body = None
            if isinstance(body, dict) and body.get("error") not in (None, ""):
                return chunks, "StreamError", False
            return chunks, "MalformedEventError", False
        if chunk.error:
            return chunks, "StreamError", False
        chunks.append(chunk)
    return chunks, None, False


def decode_in_reads(stream: bytes, cuts: list[int]) -> tuple[list[Any], str | None, bool]:
    """Feed ``stream`` cut at ``cuts``; stop at the first error like the reference does."""
    decoder = ChunkDecoder()
    chunks: list[Any] = []
    bounds = [0, *sorted(set(cuts)), len(stream)]
    try:
        for start, end in pairwise(bounds):
            chunks += decoder.feed(stream[start:end])
        # What a final event lacking its blank line holds is a close() matter,
        # which the reference does not model: compare complete events only.
    except streamspec.Error as exc:
        return chunks + exc.chunks, type(exc).__name__, decoder.done
    return chunks, None, decoder.done


def chunk_json(index: int, text: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
        },
        ensure_ascii=index % 2 == 0,
        separators=(",", ":") if index % 3 else (", ", ": "),
    ).encode()


TEXTS = ["Hé", " 👩‍💻", " 東京", "\n", " ok", '"q"', "a\\b", ""]

# Pieces of SSE, each ending at an event boundary (except where noted).
piece = st.one_of(
    st.builds(
        lambda i, t: b"data: " + chunk_json(i, t) + b"\n\n",
        st.integers(0, 5),
        st.sampled_from(TEXTS),
    ),
    st.builds(
        lambda i, t: b"data:" + chunk_json(i, t) + b"\n\n",
        st.integers(0, 5),
        st.sampled_from(TEXTS),
    ),
    st.just(b": keep-alive\n\n"),
    st.just(b":\n"),
    st.just(b"\n"),
    st.just(b"event: message\n"),
    st.just(b"id: 7\n"),
    st.just(b"retry: 100\n"),
    st.builds(lambda t: b"data: " + chunk_json(1, t) + b"\r\n\r\n", st.sampled_from(TEXTS)),
    st.builds(lambda t: b"data: " + chunk_json(2, t) + b"\r\r", st.sampled_from(TEXTS)),
    st.builds(lambda t: b'data: {"id":"x",\ndata: "choices":[]}\n\n', st.none()),
    st.just(b'data: {"choices": []}\n\n'),
    st.just(b"data: \n\n"),
    st.just(b'data: {"error": {"message": "overloaded", "code": 503}}\n\n'),
    st.just(b'data: {"error": "plain text error", "error_type": "generation"}\n\n'),
    st.just(b'event: error\ndata: {"message": "bad"}\n\n'),
    st.just(b'data: {"choices": [{"index": 0, "delta": {}}], "error": null}\n\n'),
    st.just(b'data: {"choices": "nope"}\n\n'),
    st.just(b'data: ["nope"]\n\n'),
    st.just(b"data: {not json}\n\n"),
    st.just(b'data: {"a": "\xff\xfe"}\n\n'),
    st.just(b"data: [DONE]\n\n"),
    st.just(b"data:[DONE]\n\n"),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(piece, max_size=12), st.data())
def test_fast_paths_match_the_spec_algorithm(pieces: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(pieces)
    expected = reference(stream)
    cuts = data.draw(st.lists(st.integers(1, max(len(stream) - 1, 1)), max_size=20))
    assert decode_in_reads(stream, cuts) == expected
    assert decode_in_reads(stream, []) == expected
    assert decode_in_reads(stream, list(range(1, len(stream)))) == expected


@pytest.mark.parametrize("read_size", [1, 7, 64, 333, 4096, 65536])
def test_synthetic_stream_any_read_size(read_size: int) -> None:
    stream = streamspec.samples.synthetic_stream(300, "tools")
    expected = reference(stream)
    cuts = list(range(read_size, len(stream), read_size))
    assert decode_in_reads(stream, cuts) == expected
    assert expected[2] is True
    assert len(expected[0]) == stream.count(b"\n\n") - 1


def test_continues_after_a_malformed_event_in_a_batch() -> None:
    good = [b"data: " + chunk_json(i, f"t{i}") + b"\n\n" for i in range(6)]
    stream = b"".join(good[:3]) + b"data: {oops}\n\n" + b"".join(good[3:]) + b"data: [DONE]\n\n"
    decoder = ChunkDecoder()
    with pytest.raises(streamspec.MalformedEventError) as info:
        decoder.feed(stream)
    assert [c.choices[0].delta.content for c in info.value.chunks] == ["t0", "t1", "t2"]
    assert info.value.event_index == 3
    assert info.value.offset == sum(map(len, good[:3]))
    rest = decoder.feed(b"")
    assert [c.choices[0].delta.content for c in rest] == ["t3", "t4", "t5"]
    assert decoder.done


def test_the_compiled_and_python_framing_agree() -> None:
    """``split_events`` in C and in Python have one contract; check it on tricky buffers."""
    from streamspec import _fastpath

    try:
        from streamspec import _speedups
    except ImportError:
        pytest.skip("the C accelerator is not built")

    def normalized(result: tuple[list[bytes], int] | None) -> object:
        if result is None:
            return None
        payloads, stop = result
        return [p.removesuffix(b"\n") for p in payloads], stop

    samples = [
        b"",
        b"data: {}\n\n",
        b"data:{}\n\ndata: [1]\n\n",
        b"data: {}\n\ndata: {",
        b"data: {}\n\ndata: {}\n",
        b"data: {}\n\n\n",
        b"\ndata: {}\n\n",
        b"data: {}\n\n: c\n\n",
        b"data: {}\ndata: {}\n\n",
        b"data:\n\n",
        b"dat",
        b"data: {}\n\nid: 1\n",
        b"event: x\ndata: {}\n\n",
        b"data: {}\n\nx",
    ]
    for sample in samples:
        for start in range(len(sample) + 1):
            expected = normalized(_fastpath.py_split_events(sample, start))
            assert normalized(_speedups.split_events(sample, start)) == expected, (sample, start)
    heads = [b"data: {", b"data: {}", b"data: {}\n", b"da", b": c", b"data: {}\nid: 1"]
    for head in heads:
        for sample in samples:
            if not (head.endswith(b"\n") and sample.startswith(b"\n")) and b"\n\n" not in sample:
                continue  # the caller passes a head only with the rest of its event
            expected = normalized(_fastpath.py_split_events(sample, 0, head))
            assert normalized(_speedups.split_events(sample, 0, head)) == expected, (head, sample)
