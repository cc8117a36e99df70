"""ChunkDecoder on the fixture streams, on re-framed streams, on errors and at the limits.

Expectations come from fixtures/streams/MANIFEST.json and from a naive
reference decoder written here (split events on blank lines, ``json.loads``
each payload, ``msgspec.convert`` to the type). Every stream is fed whole,
byte by byte and at random split points, with identical results.
"""

from __future__ import annotations

import gc
import json
import random
import tracemalloc
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, NamedTuple

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splitting import (
    FIXTURE_NAMES,
    MANIFEST,
    Outcome,
    fixture,
    run_decoder,
    split_at,
    three_ways,
)
from streamspec import (
    ChunkDecoder,
    CompletionUsage,
    CreateChatCompletionStreamResponse,
    Error,
    EventTooLargeError,
    MalformedEventError,
    StreamError,
    TruncatedStreamError,
)
from streamspec.samples import synthetic_stream

Chunk = CreateChatCompletionStreamResponse


class SlimDelta(msgspec.Struct):
    content: str | None = None


class SlimChoice(msgspec.Struct):
    index: int
    delta: SlimDelta = msgspec.field(default_factory=SlimDelta)
    finish_reason: str | None = None


class Slim(msgspec.Struct):
    choices: list[SlimChoice] = []


# -- the reference decoder ----------------------------------------------------------------------


def reference_payloads(data: bytes) -> list[str]:
    """The data of each event, the naive way: normalize line endings, split on blank lines."""
    text = data.decode("utf-8", "replace").removeprefix("\ufeff")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    payloads = []
    for block in text.split("\n\n"):
        lines = []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            if name == "data":
                lines.append(value.removeprefix(" "))
        if lines:
            payloads.append("\n".join(lines))
    return payloads


def reference_decode(data: bytes, type: Any = Chunk) -> list[Any]:
    """Chunks up to [DONE]: ``json.loads`` each payload, then ``msgspec.convert``."""
    chunks = []
    for payload in reference_payloads(data):
        if payload == "[DONE]":
            break
        chunks.append(msgspec.convert(json.loads(payload), type))
    return chunks


# -- what the manifest records about a stream ---------------------------------------------------


class Summary(NamedTuple):
    text: str
    reasoning: str | None
    finish_reason: str | None
    tool_calls: list[dict[str, str]]
    usage: dict[str, Any] | None
    refusal: str | None


def summarize(chunks: list[Any], index: int = 0) -> Summary:
    """Accumulate choice ``index`` the way a client would."""
    text: list[str] = []
    reasoning: list[str] = []
    refusal: list[str] = []
    finish: str | None = None
    usage: Any = None
    calls: dict[tuple[str, Any], dict[str, str]] = {}
    for chunk in chunks:
        if isinstance(chunk.usage, CompletionUsage):
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.index != index:
                continue
            delta = choice.delta
            if isinstance(delta.content, str):
                text.append(delta.content)
            elif isinstance(delta.content, list):
                for block in delta.content:
                    if block.type == "text" and isinstance(block.text, str):
                        text.append(block.text)
                    elif block.type == "thinking" and isinstance(block.thinking, str):
                        reasoning.append(block.thinking)
                    elif block.type == "thinking" and isinstance(block.thinking, list):
                        # Magistral: a list of text parts.
                        reasoning += [p.text for p in block.thinking if isinstance(p.text, str)]
            # The same reasoning may come under either name: count it once.
            if isinstance(delta.reasoning_content, str) and delta.reasoning_content:
                reasoning.append(delta.reasoning_content)
            elif isinstance(delta.reasoning, str):
                reasoning.append(delta.reasoning)
            if isinstance(delta.refusal, str):
                refusal.append(delta.refusal)
            if isinstance(choice.finish_reason, str) and choice.finish_reason:
                finish = choice.finish_reason
            for call in delta.tool_calls or ():
                key = ("index", call.index) if isinstance(call.index, int) else ("id", call.id)
                entry = calls.setdefault(key, {"id": "", "name": "", "arguments": ""})
                if isinstance(call.id, str) and call.id and not entry["id"]:
                    entry["id"] = call.id
                function = call.function
                if function is None or isinstance(function, msgspec.UnsetType):
                    continue
                if isinstance(function.name, str) and function.name and not entry["name"]:
                    entry["name"] = function.name
                if isinstance(function.arguments, str):
                    entry["arguments"] += function.arguments
    return Summary(
        text="".join(text),
        reasoning="".join(reasoning) or None,
        finish_reason=finish,
        tool_calls=list(calls.values()),
        usage=msgspec.to_builtins(usage) if usage is not None else None,
        refusal="".join(refusal) or None,
    )


_USAGE_DETAILS = {
    "prompt_tokens_details": ("cached_tokens", "audio_tokens"),
    "completion_tokens_details": (
        "reasoning_tokens",
        "audio_tokens",
        "accepted_prediction_tokens",
        "rejected_prediction_tokens",
    ),
}


def documented_usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """The manifest's usage restricted to the fields of the OpenAI usage object."""
    if usage is None:
        return None
    # A count the server left out stays out (usage is never derived).
    out = {
        k: usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens") if k in usage
    }
    for key, fields in _USAGE_DETAILS.items():
        if key in usage:
            details = usage[key]
            out[key] = None if details is None else {f: details[f] for f in fields if f in details}
    return out


def check_manifest(name: str, outcome: Outcome) -> None:
    expected = MANIFEST[name]
    chunks = list(outcome.items)
    kind = expected["expect"]
    if kind == "ok":
        assert outcome.error is None, outcome.errors
        assert outcome.done
    elif kind == "stream_error":
        assert outcome.error is StreamError, outcome.errors
        assert not outcome.done
        error = outcome.errors[0]
        assert error.error.message == expected["error_message"]
        # A chunk that carried the error next to its choices counts as a chunk.
        if error.chunk is not None and error.chunk.choices:
            chunks.append(error.chunk)
    else:
        assert kind == "truncated"
        assert outcome.error is TruncatedStreamError, outcome.errors
        assert not outcome.done
    assert len(chunks) == expected["n_chunks"]
    summary = summarize(chunks)
    assert summary.text == expected["text"]
    assert summary.reasoning == expected["reasoning"]
    assert summary.finish_reason == expected["finish_reason"]
    assert summary.tool_calls == expected["tool_calls"]
    assert summary.usage == documented_usage(expected["usage"])
    if "refusal" in expected:
        assert summary.refusal == expected["refusal"]
    for index, text in expected.get("text_by_index", {}).items():
        assert summarize(chunks, int(index)).text == text
    for index, finish in expected.get("finish_reason_by_index", {}).items():
        assert summarize(chunks, int(index)).finish_reason == finish


def random_points(data: bytes, seed: int, count: int = 40) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(len(data) + 1) for _ in range(count)]


OK_FIXTURES = [n for n in FIXTURE_NAMES if MANIFEST[n]["expect"] == "ok"]
ERROR_FIXTURES = [n for n in FIXTURE_NAMES if MANIFEST[n]["expect"] == "stream_error"]

# -- fixtures against the manifest --------------------------------------------------------------


def test_manifest_lists_every_fixture() -> None:
    from splitting import STREAMS

    assert sorted(p.name for p in STREAMS.glob("*.sse")) == FIXTURE_NAMES


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_matches_manifest(name: str) -> None:
    data = fixture(name)
    outcome = three_ways(run_decoder, data, random_points(data, seed=len(data)))
    check_manifest(name, outcome)


@pytest.mark.parametrize("name", OK_FIXTURES)
def test_fixture_matches_reference_decoder(name: str) -> None:
    data = fixture(name)
    expected = reference_decode(data)
    assert len(expected) == MANIFEST[name]["n_chunks"]  # the reference reads it right too
    outcome = three_ways(run_decoder, data, random_points(data, seed=1))
    assert outcome.items == expected


_WHOLE: dict[str, Outcome] = {}


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(FIXTURE_NAMES), st.data())
def test_fixture_random_splits(name: str, data) -> None:  # type: ignore[no-untyped-def]
    raw = fixture(name)
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=60), label="points")
    outcome = run_decoder(split_at(raw, points))
    if name not in _WHOLE:
        _WHOLE[name] = run_decoder([raw])
    assert outcome == _WHOLE[name]
    check_manifest(name, outcome)


@pytest.mark.parametrize("size", [2, 3, 5, 64, 1000])
def test_fixtures_in_fixed_size_reads(size: int) -> None:
    for name in FIXTURE_NAMES:
        data = fixture(name)
        outcome = run_decoder([data[i : i + size] for i in range(0, len(data), size)])
        check_manifest(name, outcome)


# -- the same chunks under every framing the spec allows ----------------------------------------


def _payloads(name: str) -> list[str]:
    payloads = reference_payloads(fixture(name))
    assert payloads[-1] == "[DONE]"
    return payloads[:-1]


def _join(events: list[str], done: str = "data: [DONE]\n\n") -> bytes:
    return ("".join(events) + done).encode()


def _pretty(payload: str) -> str:
    pretty = json.dumps(json.loads(payload), indent=1, ensure_ascii=False)
    return "".join(f"data: {line}\n" for line in pretty.split("\n")) + "\n"


def _mixed(payloads: list[str]) -> bytes:
    endings = ["\n", "\r\n", "\r"]
    out = []
    for i, p in enumerate(payloads):
        a, b = endings[i % 3], endings[(i + 1) % 3]
        out.append(f": c{a}data: {p}{b}{a}")
    return ("".join(out) + "data: [DONE]\r\n\r\n").encode()


FRAMINGS: dict[str, Callable[[list[str]], bytes]] = {
    "lf": lambda ps: _join([f"data: {p}\n\n" for p in ps]),
    "crlf": lambda ps: _join([f"data: {p}\r\n\r\n" for p in ps], "data: [DONE]\r\n\r\n"),
    "cr": lambda ps: _join([f"data: {p}\r\r" for p in ps], "data: [DONE]\r\r"),
    "no-space": lambda ps: _join([f"data:{p}\n\n" for p in ps], "data:[DONE]\n\n"),
    "two-spaces": lambda ps: _join([f"data:  {p}\n\n" for p in ps], "data:  [DONE]\n\n"),
    "comments": lambda ps: _join([f": keep-alive\n\n:\ndata: {p}\n: x\n\n" for p in ps]),
    "id-retry": lambda ps: _join(
        [f"id: {i}\nretry: 1000\ndata: {p}\n\n" for i, p in enumerate(ps)]
    ),
    "unknown-fields": lambda ps: _join([f'foo: bar\nerror: {{"e": 1}}\ndata: {p}\n\n' for p in ps]),
    "phantom-blocks": lambda ps: _join(
        [f"event: ping\n\nid: 3\n\nretry: 10\n\ndata: {p}\n\n" for p in ps]
    ),
    "extra-blank-lines": lambda ps: _join([f"\n\ndata: {p}\n\n\n" for p in ps]),
    "json-over-two-lines": lambda ps: _join([f"data: {p[:1]}\ndata: {p[1:]}\n\n" for p in ps]),
    "pretty-json": lambda ps: _join([_pretty(p) for p in ps]),
    "bom": lambda ps: b"\xef\xbb\xbf" + _join([f"data: {p}\n\n" for p in ps]),
    "bom-crlf": lambda ps: b"\xef\xbb\xbf" + _join([f"data: {p}\r\n\r\n" for p in ps]),
    "mixed-endings": _mixed,
    "done-no-newline": lambda ps: _join([f"data: {p}\n\n" for p in ps], "data: [DONE]"),
    "done-then-garbage": lambda ps: _join(
        [f"data: {p}\n\n" for p in ps], "data: [DONE]\n\ndata: {bad\n\nevent: error\ndata: x\n\n"
    ),
    "cr-late": lambda ps: _join(
        [f"data: {p}\n\n" for p in ps[:-3]] + [f"data: {p}\r\r" for p in ps[-3:]]
    ),
}


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("name", ["openai_text.sse", "openai_tool_calls.sse"])
def test_same_chunks_under_any_framing(name: str, framing: str) -> None:
    payloads = _payloads(name)
    expected = [msgspec.convert(json.loads(p), Chunk) for p in payloads]
    data = FRAMINGS[framing](payloads)
    outcome = three_ways(run_decoder, data, random_points(data, seed=7))
    assert outcome.error is None, outcome.errors
    assert outcome.items == expected
    assert outcome.done


# -- errors: where, what, and nothing lost ------------------------------------------------------


def _event_start(data: bytes, pos: int) -> int:
    """Where the event holding byte ``pos`` starts: just after the last blank line before it."""
    found = [
        i + len(sep)
        for sep in (b"\n\n", b"\r\n\r\n", b"\r\r")
        if (i := data.rfind(sep, 0, pos)) >= 0
    ]
    return max(found, default=0)


@pytest.mark.parametrize("name", ERROR_FIXTURES)
def test_stream_error_located(name: str) -> None:
    data = fixture(name)
    marker = data.find(b"event: error")
    if marker < 0:
        marker = data.find(b'"error"')
    start = _event_start(data, marker)
    outcome = three_ways(run_decoder, data, random_points(data, seed=3))
    error = outcome.errors[0]
    assert error.type is StreamError
    assert error.offset == start
    before = [p for p in reference_payloads(data[:start]) if p != "[DONE]"]
    assert error.event_index == len(before)
    assert error.position == len(before)  # every chunk before the error was handed over
    assert MANIFEST[name]["error_message"] in error.message


def test_vllm_error_then_done_continues() -> None:
    decoder = ChunkDecoder()
    data = fixture("vllm_error.sse")
    with pytest.raises(StreamError) as info:
        decoder.feed(data)
    assert len(info.value.chunks) == MANIFEST["vllm_error.sse"]["n_chunks"]
    assert info.value.error.code == 500
    assert decoder.feed(b"") == []
    assert decoder.done
    assert decoder.close() == []


def _chunk_json(content: str, **extra: Any) -> str:
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
        **extra,
    }
    return json.dumps(chunk, ensure_ascii=False)


def _chunk(content: str, **extra: Any) -> Chunk:
    return msgspec.convert(json.loads(_chunk_json(content, **extra)), Chunk)


def _stream(*payloads: str, sep: str = "\n") -> bytes:
    return "".join(f"data: {p}{sep}{sep}" for p in payloads).encode()


BAD_JSON = '{"id": "x", "choices": [{bad json'
WRONG_TYPE = '{"id": "x", "choices": "nope"}'


@pytest.mark.parametrize("sep", ["\n", "\r\n", "\r"])
def test_malformed_events_located_and_skipped(sep: str) -> None:
    data = _stream(
        _chunk_json("a"),
        BAD_JSON,
        _chunk_json("b"),
        WRONG_TYPE,
        _chunk_json("c"),
        "[DONE]",
        sep=sep,
    )
    # Without salvage a payload of the wrong shape is a malformed event too.
    strict = partial(ChunkDecoder, salvage=False)
    outcome = three_ways(
        partial(run_decoder, factory=strict, resume=True), data, random_points(data, seed=5)
    )
    assert outcome.items == [_chunk("a"), _chunk("b"), _chunk("c")]
    assert outcome.done
    first, second = outcome.errors
    assert first.type is MalformedEventError
    assert (first.position, first.event_index) == (1, 1)
    assert first.offset == data.index(b"data: " + BAD_JSON.encode())
    assert "bad json" in first.message
    assert str(first.offset) in first.message
    assert second.type is MalformedEventError
    assert (second.position, second.event_index) == (2, 3)
    assert second.offset == data.index(b"data: " + WRONG_TYPE.encode())
    assert "$.choices" in second.message
    assert "nope" in second.message


def test_malformed_error_keeps_chunks_and_continues() -> None:
    decoder = ChunkDecoder()
    data = _stream(_chunk_json("a"), BAD_JSON, _chunk_json("b"), _chunk_json("c"))
    with pytest.raises(MalformedEventError) as info:
        decoder.feed(data)
    assert info.value.chunks == [_chunk("a")]
    assert info.value.event_index == 1
    # ``data`` is the event's data: the one space after "data:" is not part of it.
    data_field = info.value.data
    assert (data_field.decode() if isinstance(data_field, bytes) else data_field) == BAD_JSON
    assert decoder.feed(b"") == [_chunk("b"), _chunk("c")]
    assert decoder.close() == []
    assert not decoder.done


def test_malformed_snippet_is_short() -> None:
    bad = '{"junk": "' + "z" * 5000
    with pytest.raises(MalformedEventError) as info:
        ChunkDecoder().feed(_stream(bad))
    message = str(info.value)
    assert '{"junk": "zzz' in message
    assert len(message) < 400


def test_malformed_report_same_however_split() -> None:
    # After a comment block the bad event may be read with the comment or alone.
    data = b": keep-alive\n\ndata: {bad\n\n" + _stream(_chunk_json("a"))
    outcome = three_ways(partial(run_decoder, resume=True), data)
    assert outcome.items == [_chunk("a")]
    (error,) = outcome.errors
    assert error.type is MalformedEventError
    assert "'{bad'" in error.message  # the event's data, without the space after "data:"


@pytest.mark.parametrize("sep", ["\n", "\r\n"])
@pytest.mark.parametrize(
    "factory", [ChunkDecoder, partial(ChunkDecoder, Slim)], ids=["full", "slim"]
)
def test_invalid_utf8_in_payload_is_replaced(sep: str, factory: Callable[[], Any]) -> None:
    # Event data is UTF-8 decoded with replacement: never an exception.
    bad = b'{"id":"\xff","choices":[{"index":0,"delta":{"content":"caf\xc3"}}]}'
    data = b"data: " + bad + sep.encode() * 2 + _stream(_chunk_json("b"), "[DONE]", sep=sep)
    outcome = three_ways(partial(run_decoder, factory=factory), data, [9, 20, 70])
    assert outcome.error is None, outcome.errors
    assert outcome.done
    text = bad.decode("utf-8", "replace")
    assert outcome.items == [
        msgspec.convert(json.loads(text), factory().type),
        msgspec.convert(json.loads(_chunk_json("b")), factory().type),
    ]


STREAM_ERRORS = {
    "object-int-code": (
        '{"error": {"message": "m", "type": "t", "param": null, "code": 500}}',
        {"message": "m", "type": "t", "code": 500},
    ),
    "object-null-code": (
        '{"error": {"message": "m2", "type": "server_error", "param": null, "code": null}}',
        {"message": "m2", "type": "server_error", "code": None},
    ),
    "plain-string": (
        '{"error": "boom", "error_type": "generation"}',
        {"message": "boom", "type": "generation"},
    ),
    "plain-string-alone": ('{"error": "CUDA out of memory"}', {"message": "CUDA out of memory"}),
}


@pytest.mark.parametrize("kind", STREAM_ERRORS)
@pytest.mark.parametrize("sep", ["\n", "\r\n"])
def test_stream_error_payloads(kind: str, sep: str) -> None:
    payload, fields = STREAM_ERRORS[kind]
    data = _stream(_chunk_json("a"), payload, _chunk_json("b"), "[DONE]", sep=sep)
    decoder = ChunkDecoder()
    with pytest.raises(StreamError) as info:
        decoder.feed(data)
    exc = info.value
    assert exc.chunks == [_chunk("a")]
    for key, value in fields.items():
        assert getattr(exc.error, key) == value
    assert exc.event_index == 1
    assert exc.offset == data.index(b"data: " + payload.encode())
    assert fields["message"] in str(exc)
    assert decoder.feed(b"") == [_chunk("b")]
    assert decoder.done
    outcome = three_ways(partial(run_decoder, resume=True), data, random_points(data, seed=9))
    assert outcome.items == [_chunk("a"), _chunk("b")]
    assert [e.type for e in outcome.errors] == [StreamError]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ('{"error": {"message": "upstream timed out", "code": "timeout"}}', "upstream timed out"),
        ("gateway exploded", "gateway exploded"),
    ],
    ids=["envelope", "plain-text"],
)
def test_error_event(payload: str, message: str) -> None:
    data = (
        f"data: {_chunk_json('a')}\n\nevent: error\ndata: {payload}\n\ndata: {_chunk_json('b')}\n\n"
    ).encode()
    outcome = three_ways(partial(run_decoder, resume=True), data, random_points(data, seed=2))
    assert outcome.items == [_chunk("a"), _chunk("b")]
    (error,) = outcome.errors
    assert error.type is StreamError
    assert error.error.message == message
    assert (error.position, error.event_index) == (1, 1)
    assert error.offset == data.index(b"event: error")


def test_error_member_inside_a_chunk() -> None:
    bad = _chunk_json("", error={"code": "server_error", "message": "Provider disconnected"})
    data = _stream(_chunk_json("a"), bad)
    outcome = three_ways(run_decoder, data, random_points(data, seed=4))
    assert outcome.items == [_chunk("a")]
    (error,) = outcome.errors
    assert error.type is StreamError
    assert error.error.message == "Provider disconnected"
    assert error.chunk == msgspec.convert(json.loads(bad), Chunk)
    assert len(error.chunk.choices) == 1


@pytest.mark.parametrize(
    "payload",
    [
        _chunk_json("a", error=None),
        _chunk_json("error"),
        _chunk_json('{"error": "not mine"}'),
        _chunk_json("x", logprobs={"content": [{"token": "error", "logprob": 0.0}]}),
    ],
    ids=["error-null", "content-is-error", "content-quotes-error-json", "nested-error-string"],
)
def test_not_an_error(payload: str) -> None:
    data = _stream(payload, "[DONE]")
    outcome = three_ways(run_decoder, data, random_points(data, seed=6))
    assert outcome.error is None
    assert outcome.items == [msgspec.convert(json.loads(payload), Chunk)]


# -- close() ------------------------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["", "\n", "\r", "\r\n"], ids=["none", "lf", "cr", "crlf"])
def test_close_decodes_final_event_without_blank_line(ending: str) -> None:
    data = (f"data: {_chunk_json('a')}\n\ndata: {_chunk_json('b')}" + ending).encode()
    outcome = three_ways(run_decoder, data, random_points(data, seed=8))
    assert outcome.error is None
    assert outcome.items == [_chunk("a"), _chunk("b")]
    assert not outcome.done


def test_close_decodes_final_multi_line_event() -> None:
    payload = _chunk_json("z")
    data = f"data: {payload[:1]}\ndata: {payload[1:]}".encode()
    assert three_ways(run_decoder, data).items == [_chunk("z")]


@pytest.mark.parametrize("ending", ["", "\n", "\r\n"])
def test_close_final_done_without_blank_line(ending: str) -> None:
    data = (f"data: {_chunk_json('a')}\n\ndata: [DONE]" + ending).encode()
    outcome = three_ways(
        partial(run_decoder, factory=partial(ChunkDecoder, require_done=True)), data
    )
    assert outcome.error is None
    assert outcome.items == [_chunk("a")]
    assert outcome.done


@pytest.mark.parametrize("sep", ["\n", "\r\n"])
def test_close_inside_truncated_json(sep: str) -> None:
    data = _stream(_chunk_json("a"), sep=sep) + b'data: {"id": "chatcmpl-1", "choices": [{"ind'
    outcome = three_ways(run_decoder, data, random_points(data, seed=10))
    assert outcome.items == [_chunk("a")]
    (error,) = outcome.errors
    assert error.type is TruncatedStreamError
    assert error.event_index == 1
    assert error.offset == data.rindex(b"data: ")
    assert "ind" in error.message
    assert not outcome.done


def test_truncated_error_carries_pending_bytes() -> None:
    decoder = ChunkDecoder()
    assert decoder.feed(b'data: {"id": "x", "cho') == []
    with pytest.raises(TruncatedStreamError) as info:
        decoder.close()
    assert b'{"id": "x", "cho' in info.value.pending


def test_close_at_boundary_without_done_is_quiet() -> None:
    data = fixture("openai_text.sse").replace(b"data: [DONE]\n\n", b"")
    outcome = three_ways(run_decoder, data, random_points(data, seed=11))
    assert outcome.error is None
    assert not outcome.done
    assert len(outcome.items) == MANIFEST["openai_text.sse"]["n_chunks"]


def test_close_after_trailing_comment_is_quiet() -> None:
    data = _stream(_chunk_json("a")) + b": keep-alive"
    outcome = three_ways(run_decoder, data)
    assert outcome.error is None
    assert outcome.items == [_chunk("a")]


@pytest.mark.parametrize("name", ["openai_text.sse", "xinference_text.sse"])
def test_require_done(name: str) -> None:
    data = fixture(name)
    cut = data[: data.index(b"data: [DONE]")]
    strict = partial(run_decoder, factory=partial(ChunkDecoder, require_done=True))
    complete = three_ways(strict, data)
    assert complete.error is None
    assert complete.done
    truncated = three_ways(strict, cut, random_points(cut, seed=12))
    assert truncated.error is TruncatedStreamError
    assert truncated.errors[0].offset == len(cut)  # where [DONE] was missing
    assert truncated.items == complete.items  # nothing decoded is lost
    assert not truncated.done


@pytest.mark.parametrize("trailer", [b"\n", b"\n\n", b": ping\n\n"], ids=["lf", "lflf", "ping"])
def test_require_done_offset_is_end_of_stream(trailer: bytes) -> None:
    data = _stream(_chunk_json("a")) + trailer
    strict = partial(run_decoder, factory=partial(ChunkDecoder, require_done=True))
    outcome = three_ways(strict, data)
    assert outcome.items == [_chunk("a")]
    assert outcome.error is TruncatedStreamError
    assert outcome.errors[0].offset == len(data)


def test_done_then_later_bytes_ignored() -> None:
    decoder = ChunkDecoder(max_event_size=1024)
    assert decoder.feed(_stream(_chunk_json("a"), "[DONE]")) == [_chunk("a")]
    assert decoder.done
    assert decoder.feed(b"data: {not json\n\n") == []
    assert decoder.feed(b"event: error\ndata: x\n\n") == []
    assert decoder.feed(b"x" * 4096) == []
    assert decoder.close() == []


@pytest.mark.parametrize("name", ["framing_truncated_mid_event.sse", "xinference_text.sse"])
def test_truncated_fixture_and_cut_crlf_stream(name: str) -> None:
    data = fixture(name)
    if name == "xinference_text.sse":
        data = data[: data.index(b"data: [DONE]") - 40]
    outcome = three_ways(run_decoder, data, random_points(data, seed=13))
    assert outcome.error is TruncatedStreamError
    assert outcome.errors[0].offset == _event_start(data, len(data) - 1)


# -- a slim projection --------------------------------------------------------------------------


def _slim_text(chunks: list[Slim]) -> str:
    return "".join(c.delta.content or "" for s in chunks for c in s.choices if c.index == 0)


SLIM = partial(run_decoder, factory=partial(ChunkDecoder, Slim))


@pytest.mark.parametrize("name", ["openai_text.sse", "tgi_text.sse", "xinference_text.sse"])
def test_slim_projection(name: str) -> None:
    data = fixture(name)
    outcome = three_ways(SLIM, data, random_points(data, seed=14))
    assert outcome.error is None
    assert outcome.done
    assert outcome.items == reference_decode(data, Slim)
    assert _slim_text(outcome.items) == MANIFEST[name]["text"]
    assert all(type(c) is Slim for c in outcome.items)


@pytest.mark.parametrize("name", ERROR_FIXTURES)
def test_slim_projection_still_sees_errors(name: str) -> None:
    # Slim has no ``error`` field: the error must be found all the same.
    data = fixture(name)
    outcome = three_ways(SLIM, data, random_points(data, seed=15))
    assert outcome.error is StreamError
    error = outcome.errors[0]
    assert error.error.message == MANIFEST[name]["error_message"]
    chunks = list(outcome.items)
    if isinstance(error.chunk, Slim) and error.chunk.choices:
        chunks.append(error.chunk)
    assert len(chunks) == MANIFEST[name]["n_chunks"]
    assert _slim_text(chunks) == MANIFEST[name]["text"]


def test_slim_projection_content_error_is_not_an_error() -> None:
    data = _stream(_chunk_json("error"), _chunk_json('"error"'), "[DONE]")
    outcome = three_ways(SLIM, data)
    assert outcome.error is None
    assert _slim_text(outcome.items) == 'error"error"'


# -- max_event_size -----------------------------------------------------------------------------

MiB = 1024 * 1024
READ = 64 * 1024


def _endless(prefix: bytes, unit: bytes) -> Iterator[bytes]:
    yield prefix
    while True:
        yield unit


def _feed_until_error(decoder: ChunkDecoder, reads: Iterator[bytes]) -> tuple[int, Error | None]:
    """Feed until an error (or 4 MiB): the bytes fed before the failing read, and the error."""
    fed = 0
    for data in reads:
        try:
            decoder.feed(data)
        except Error as exc:
            return fed, exc
        fed += len(data)
        if fed > 4 * MiB:
            break
    return fed, None


@pytest.mark.parametrize(
    ("prefix", "unit"),
    [
        (b"data: ", b"x" * READ),
        (_stream(_chunk_json("a")) + b"data: ", b"x" * READ),
        (b"data: {}\r\r: ", b"x" * READ),
        (b": ", b"x" * READ),
        (b"", b"data: " + b"x" * (READ - 7) + b"\n"),
        (b"", b"data: " + b"x" * (READ - 7) + b"\r"),
    ],
    ids=["data-line", "after-a-chunk", "cr-mode", "comment", "many-lines-lf", "many-lines-cr"],
)
def test_event_too_large_raised_promptly(prefix: bytes, unit: bytes) -> None:
    decoder = ChunkDecoder(max_event_size=MiB)
    fed, exc = _feed_until_error(decoder, _endless(prefix, unit))
    assert isinstance(exc, EventTooLargeError), f"no error after {fed} bytes of one event"
    # The reads before the failing one held at most the limit (plus the prefix):
    # the error came with the read that crossed it.
    assert fed <= MiB + len(prefix)
    assert exc.limit == MiB
    # The decoder is finished.
    with pytest.raises(Error):
        decoder.feed(_stream(_chunk_json("b")))


def test_event_too_large_whole_or_split() -> None:
    # A complete oversize event is over the limit whether it came in one read or many.
    limit = 4096
    data = _stream(_chunk_json("a"), _chunk_json("x" * (3 * limit)), _chunk_json("b"))
    factory = partial(ChunkDecoder, max_event_size=limit)
    outcome = three_ways(partial(run_decoder, factory=factory), data, [100, 5000])
    assert outcome.items == [_chunk("a")]
    assert outcome.error is EventTooLargeError
    assert outcome.errors[0].event_index == 1
    assert outcome.errors[0].offset == data.index(b"data: ", 10)


@pytest.mark.parametrize("sep", ["\n", "\r\n"])
def test_event_too_large_keeps_chunks_of_the_same_feed(sep: str) -> None:
    limit = 4096
    data = (
        _stream(_chunk_json("a"), sep=sep)
        + b": c"
        + sep.encode() * 2
        + b"data: "
        + b"x" * (2 * limit)
    )
    with pytest.raises(EventTooLargeError) as info:
        ChunkDecoder(max_event_size=limit).feed(data)
    assert info.value.chunks == [_chunk("a")]


# -- linear work, flat memory -------------------------------------------------------------------


@pytest.mark.parametrize("sep", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_one_huge_event_in_small_reads_is_linear(sep: bytes) -> None:
    # 100 MiB in 4 KiB reads: quadratic buffering would take hours, not seconds.
    size = 100 * MiB
    read = 4096
    decoder = ChunkDecoder(max_event_size=size + MiB)
    head = b'data: {"choices": [{"index": 0, "delta": {"content": "'
    block = b"ab" * (read // 2)
    out = decoder.feed(head)
    for _ in range(size // read):
        out += decoder.feed(block)
    out += decoder.feed(b'"}}]}' + sep + sep + b"data: [DONE]" + sep + sep)
    assert decoder.done
    assert len(out) == 1
    content = out[0].choices[0].delta.content
    assert len(content) == size
    assert content[:4] == "abab"
    assert content.count("ab") == size // 2


def _peak_while_streaming(data: bytes) -> tuple[int, int]:
    reads = [data[i : i + READ] for i in range(0, len(data), READ)]
    decoder = ChunkDecoder()
    count = 0
    gc.collect()
    tracemalloc.start()
    try:
        for chunk_bytes in reads:
            count += len(decoder.feed(chunk_bytes))
        count += len(decoder.close())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoder.done
    return count, peak


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
def test_memory_flat_while_streaming(crlf: bool) -> None:
    def stream(tokens: int) -> bytes:
        data = synthetic_stream(tokens)
        return data.replace(b"\n", b"\r\n") if crlf else data

    # A role chunk, the token chunks, a finish chunk and a usage chunk.
    short_count, short_peak = _peak_while_streaming(stream(2000))
    long_count, long_peak = _peak_while_streaming(stream(20000))
    assert short_count == 2000 + 3
    assert long_count == 20000 + 3
    assert long_peak < 4 * MiB
    assert long_peak < short_peak + 256 * 1024, (short_peak, long_peak)


def test_reference_reads_the_sample_stream() -> None:
    data = synthetic_stream(50, "tools")
    assert three_ways(run_decoder, data, random_points(data, 0)).items == reference_decode(data)


@pytest.mark.parametrize("kind", ["text", "tools", "logprobs", "n4"])
def test_synthetic_streams_match_reference(kind: str) -> None:
    data = synthetic_stream(300, kind)
    outcome = three_ways(run_decoder, data, random_points(data, seed=16))
    assert outcome.done
    assert outcome.items == reference_decode(data)
