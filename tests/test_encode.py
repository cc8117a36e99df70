"""Encoding chunks back to SSE: round trips through ChunkDecoder and through the openai SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState

import streamspec
from mock_upstream import MockUpstream
from streamspec import CreateChatCompletionStreamResponse, ErrorObject
from streamspec.accumulate import accumulate
from streamspec.encode import EventEncoder, encode_done, encode_error, encode_event

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "streams"
MANIFEST: dict[str, dict[str, Any]] = json.loads((FIXTURES / "MANIFEST.json").read_text("utf-8"))
OK_FIXTURES = sorted(name for name, entry in MANIFEST.items() if entry["expect"] == "ok")

decode_chunk = msgspec.json.Decoder(CreateChatCompletionStreamResponse).decode


def fixture_chunks(name: str) -> list[CreateChatCompletionStreamResponse]:
    return list(streamspec.iter_chunks([(FIXTURES / name).read_bytes()]))


def decode_all(data: bytes, size: int | None = None) -> tuple[list[Any], bool]:
    """Decode ``data`` fed in reads of ``size`` bytes (all at once if None)."""
    decoder = streamspec.ChunkDecoder()
    out: list[Any] = []
    step = size or len(data) or 1
    for start in range(0, len(data), step):
        out += decoder.feed(data[start : start + step])
    out += decoder.close()
    return out, decoder.done


# -- round trips through ChunkDecoder ------------------------------------------------------------


@pytest.mark.parametrize("name", OK_FIXTURES)
def test_round_trip_every_ok_fixture(name: str) -> None:
    chunks = fixture_chunks(name)
    assert len(chunks) == MANIFEST[name]["n_chunks"]
    encoded = b"".join(encode_event(chunk) for chunk in chunks) + encode_done()
    assert EventEncoder().events(chunks) + EventEncoder.done() == encoded
    for size in (None, 1, 5, 64):
        decoded, done = decode_all(encoded, size)
        assert decoded == chunks, f"reads of {size} bytes"
        assert done
    assert accumulate(decode_all(encoded)[0]) == accumulate(chunks)


@pytest.mark.parametrize(
    "name", sorted(name for name, entry in MANIFEST.items() if entry["expect"] != "ok")
)
def test_round_trip_chunks_before_an_error(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    chunks: list[CreateChatCompletionStreamResponse] = []
    with pytest.raises(streamspec.Error):
        chunks.extend(streamspec.iter_chunks([data]))
    assert chunks
    encoded = EventEncoder().events(chunks)
    assert decode_all(encoded, 3) == (chunks, False)


def test_event_format() -> None:
    chunk = decode_chunk('{"id":"x","choices":[{"index":0,"delta":{"content":"hé 🚀"}}]}')
    assert encode_event(chunk) == (
        'data: {"id":"x","choices":[{"index":0,"delta":{"content":"hé 🚀"}}]}\n\n'.encode()
    )


def test_absent_keys_stay_absent_and_explicit_ones_stay() -> None:
    text = (
        '{"choices":[{"index":0,"finish_reason":"stop"},'
        '{"index":1,"delta":{},"finish_reason":null,"logprobs":null}],"usage":null}'
    )
    assert encode_event(decode_chunk(text)) == b"data: " + text.encode() + b"\n\n"
    assert encode_event(decode_chunk("{}")) == b"data: {}\n\n"


def test_encoder_buffer_reuse_keeps_earlier_results() -> None:
    encoder = EventEncoder()
    long = encoder.event({"content": "x" * 1000})
    short = encoder.event({"a": 1})
    assert long == b'data: {"content":"' + b"x" * 1000 + b'"}\n\n'
    assert short == b'data: {"a":1}\n\n'
    assert encoder.events([]) == b""
    assert encoder.events([{"a": 1}, [2]]) == b'data: {"a":1}\n\ndata: [2]\n\n'


def test_encode_done() -> None:
    assert encode_done() == b"data: [DONE]\n\n"
    assert EventEncoder().done() == b"data: [DONE]\n\n"


# -- error events ---------------------------------------------------------------------------------


def test_encode_error_from_a_message() -> None:
    assert encode_error("boom") == (
        b'data: {"error":{"message":"boom","type":null,"param":null,"code":null}}\n\n'
    )
    assert encode_error("boom", event=True) == (
        b'event: error\ndata: {"error":{"message":"boom","type":null,"param":null,"code":null}}\n\n'
    )


def test_encode_error_from_an_error_object() -> None:
    error = ErrorObject(message="EngineCore failed", type="InternalServerError", code=500)
    assert json.loads(encode_error(error)[6:]) == {
        "error": {
            "message": "EngineCore failed",
            "type": "InternalServerError",
            "param": None,
            "code": 500,
        }
    }
    assert EventEncoder().error(error, event=True) == encode_error(error, event=True)


@pytest.mark.parametrize("event", [False, True])
def test_chunk_decoder_reads_encoded_errors(event: bool) -> None:
    error = ErrorObject(message="overloaded", type="server_error", code="busy")
    stream = encode_event(decode_chunk('{"choices":[]}')) + encode_error(error, event=event)
    decoder = streamspec.ChunkDecoder()
    with pytest.raises(streamspec.StreamError) as caught:
        decoder.feed(stream)
    assert (caught.value.error.message, caught.value.error.type, caught.value.error.code) == (
        "overloaded",
        "server_error",
        "busy",
    )
    assert len(caught.value.chunks) == 1


def test_empty_message_still_makes_an_error() -> None:
    decoder = streamspec.ChunkDecoder()
    with pytest.raises(streamspec.StreamError):
        decoder.feed(encode_error(""))


# -- the openai SDK reading re-encoded streams over HTTP ----------------------------------------

SDK_FIXTURES = [
    "openai_text.sse",
    "openai_tool_calls.sse",
    "openai_n2.sse",
    "openai_logprobs.sse",
    "openai_refusal.sse",
    "mistral_tool_calls.sse",
    "vllm_reasoning.sse",
    "deepseek_reasoning.sse",
    "xinference_text.sse",
    "ollama_tool_calls.sse",
    "together_eos.sse",
]


@pytest.fixture(scope="module")
def reencoded() -> Iterator[MockUpstream]:
    streams = {
        name: EventEncoder().events(fixture_chunks(name)) + encode_done() for name in SDK_FIXTURES
    }
    streams["with-error"] = EventEncoder().events(
        fixture_chunks("openai_text.sse")[:5]
    ) + encode_error("went wrong")
    streams["with-error-event"] = EventEncoder().events(
        fixture_chunks("openai_text.sse")[:5]
    ) + encode_error(ErrorObject(message="event form", code=503), event=True)
    with MockUpstream(streams, token_delay=0) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def sdk(reencoded: MockUpstream) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=reencoded.base_url, api_key="test", max_retries=0)
    yield client
    client.close()


@pytest.mark.parametrize("name", SDK_FIXTURES)
def test_openai_sdk_reads_reencoded_stream(sdk: openai.OpenAI, name: str) -> None:
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    stream = sdk.chat.completions.create(
        model=name, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    count = 0
    for chunk in stream:
        state.handle_chunk(chunk)
        count += 1
    assert count == MANIFEST[name]["n_chunks"]
    theirs = sorted(state.current_completion_snapshot.choices, key=lambda c: c.index)
    ours = accumulate(fixture_chunks(name)).choices
    assert [c.index for c in ours] == [c.index for c in theirs]
    for mine, their in zip(ours, theirs, strict=True):
        assert (mine.message.content or "") == (their.message.content or "")
        assert mine.finish_reason == their.finish_reason
        assert [
            (c.id, c.function.name, c.function.arguments) for c in mine.message.tool_calls or []
        ] == [(c.id, c.function.name, c.function.arguments) for c in their.message.tool_calls or []]
    # And both agree with the hand-written expectations.
    first = theirs[0]
    assert (first.message.content or "") == MANIFEST[name]["text"]
    assert first.finish_reason == MANIFEST[name]["finish_reason"]


@pytest.mark.parametrize(
    ("model", "message"), [("with-error", "went wrong"), ("with-error-event", "event form")]
)
def test_openai_sdk_raises_on_encoded_error(sdk: openai.OpenAI, model: str, message: str) -> None:
    received: list[object] = []
    stream = sdk.chat.completions.create(model=model, messages=[], stream=True)
    with pytest.raises(openai.APIError) as caught:
        received.extend(stream)
    assert not isinstance(caught.value, openai.APIConnectionError)
    assert caught.value.message == message
    assert len(received) == 5
