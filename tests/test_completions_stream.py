"""Legacy ``/v1/completions`` streams: decoding, stream kind, accumulation.

The fixtures in ``fixtures/streams/completions/`` are ``text_completion``
streams as vLLM, OpenAI and llama.cpp send them; ``MANIFEST.json`` there holds
hand-written expectations. Every stream decodes the same whole, byte by byte
and at random splits, and accumulates to what the manifest says.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import msgspec
import pytest

from splitting import run_decoder, three_ways
from streamspec import (
    ChunkDecoder,
    CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse,
    CreateCompletionResponse,
    Logprobs,
    accumulate,
)
from streamspec.accumulate_completions import (
    CompletionAccumulator,
    accumulate_completions,
    stream_kind,
)

LEGACY = Path(__file__).resolve().parent.parent / "fixtures" / "streams" / "completions"
MANIFEST: dict[str, dict[str, Any]] = json.loads((LEGACY / "MANIFEST.json").read_text("utf-8"))
NAMES = sorted(MANIFEST)


def legacy(name: str) -> bytes:
    return (LEGACY / name).read_bytes()


def decode(data: bytes) -> list[CreateCompletionResponse]:
    outcome = run_decoder([data], lambda: ChunkDecoder(CreateCompletionResponse))
    assert outcome.error is None
    assert outcome.done
    return outcome.items


def test_manifest_lists_every_fixture() -> None:
    assert sorted(p.name for p in LEGACY.glob("*.sse")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_decodes_the_same_however_split(name: str) -> None:
    data = legacy(name)
    points = random.Random(name).sample(range(len(data)), 40)
    outcome = three_ways(
        lambda reads: run_decoder(reads, lambda: ChunkDecoder(CreateCompletionResponse)),
        data,
        points,
    )
    assert outcome.error is None
    assert outcome.done
    assert len(outcome.items) == MANIFEST[name]["n_chunks"]


@pytest.mark.parametrize("name", NAMES)
def test_accumulates_to_the_manifest(name: str) -> None:
    entry = MANIFEST[name]
    chunks = decode(legacy(name))
    response = accumulate_completions(chunks)
    assert isinstance(response, CreateCompletionResponse)
    assert response.object == "text_completion"
    assert (response.id, response.model, response.created) == (
        entry["id"],
        entry["model"],
        entry["created"],
    )
    assert [c.index for c in response.choices] == list(range(len(entry["text_by_index"])))
    assert [c.text for c in response.choices] == entry["text_by_index"]
    assert [c.finish_reason for c in response.choices] == entry["finish_reason_by_index"]
    assert response.usage is not None
    assert msgspec.to_builtins(response.usage) == entry["usage"] | (
        {"prompt_tokens_details": None} if name == "vllm_completions.sse" else {}
    )
    tokens = [
        c.logprobs.tokens if isinstance(c.logprobs, Logprobs) else None for c in response.choices
    ]
    assert tokens == entry["logprob_tokens_by_index"]
    if "token_logprobs_by_index" in entry:
        [choice] = response.choices
        assert isinstance(choice.logprobs, Logprobs)
        assert choice.logprobs.token_logprobs == entry["token_logprobs_by_index"][0]
        assert choice.logprobs.text_offset == entry["text_offset_by_index"][0]
        assert isinstance(choice.logprobs.top_logprobs, list)
        assert len(choice.logprobs.top_logprobs) == len(entry["logprob_tokens_by_index"][0])


@pytest.mark.parametrize("name", NAMES)
def test_accumulate_picks_the_legacy_accumulator(name: str) -> None:
    chunks = decode(legacy(name))
    assert accumulate(iter(chunks)) == accumulate_completions(chunks)


def test_accumulate_of_nothing_is_an_empty_chat_completion() -> None:
    response = accumulate([])
    assert isinstance(response, CreateChatCompletionResponse)
    assert response.choices == []


@pytest.mark.parametrize("name", NAMES)
def test_snapshot_mid_stream_then_result(name: str) -> None:
    chunks = decode(legacy(name))
    accumulator = CompletionAccumulator()
    half = len(chunks) // 2
    accumulator.extend(chunks[:half])
    early = accumulator.snapshot()
    expected_early = accumulate_completions(chunks[:half])
    assert early == expected_early
    for chunk in chunks[half:]:
        accumulator.add(chunk)
    assert accumulator.chunks == len(chunks)
    assert accumulator.result() == accumulate_completions(chunks)
    assert accumulator.result() == accumulator.result()  # result() can be called again


def test_accumulated_response_encodes_as_a_completion() -> None:
    response = accumulate_completions(decode(legacy("openai_completions_logprobs.sse")))
    again = msgspec.json.decode(msgspec.json.encode(response), type=CreateCompletionResponse)
    assert again == response


def test_null_top_logprobs_keep_the_lists_parallel() -> None:
    body = [
        {
            "text": "a",
            "logprobs": {"tokens": ["a"], "token_logprobs": [-1.0], "top_logprobs": None},
        },
        {
            "text": "bc",
            "logprobs": {
                "tokens": ["b", "c"],
                "token_logprobs": [-2.0, -3.0],
                "top_logprobs": [{"b": -2.0}, {"c": -3.0}],
            },
        },
        {
            "text": "d",
            "logprobs": {"tokens": ["d"], "token_logprobs": [-4.0], "top_logprobs": None},
        },
    ]
    chunks = [
        msgspec.convert({"choices": [{"index": 0, **c}]}, CreateCompletionResponse) for c in body
    ]
    [choice] = accumulate_completions(chunks).choices
    assert choice.text == "abcd"
    assert isinstance(choice.logprobs, Logprobs)
    assert choice.logprobs.tokens == ["a", "b", "c", "d"]
    assert choice.logprobs.top_logprobs == [None, {"b": -2.0}, {"c": -3.0}, None]
    assert choice.logprobs.text_offset is msgspec.UNSET  # never sent


def test_fields_never_sent_stay_unset_and_nulls_stay_null() -> None:
    chunks = [
        msgspec.convert(c, CreateCompletionResponse)
        for c in (
            {"choices": [{"index": 0, "text": "x", "finish_reason": None, "logprobs": None}]},
            {"choices": [{"index": 0, "text": "y"}], "usage": None},
        )
    ]
    response = accumulate_completions(chunks)
    assert response.id is msgspec.UNSET
    assert response.system_fingerprint is msgspec.UNSET
    assert response.usage is None
    [choice] = response.choices
    assert (choice.text, choice.finish_reason, choice.logprobs) == ("xy", None, None)


# -- stream kind ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b'{"object": "text_completion", "choices": []}', "completions"),
        (b'{"choices": [{"index": 0, "text": "hi"}]}', "completions"),
        (b'{"object": "chat.completion.chunk", "choices": []}', "chat"),
        (b'{"object": "", "choices": [{"index": 0, "delta": {"content": "hi"}}]}', "chat"),
        (b'{"choices": [], "usage": {"prompt_tokens": 1}}', None),
        (b'{"error": {"message": "boom"}}', None),
        (b"[DONE]", None),
        (b"[1, 2]", None),
    ],
)
def test_stream_kind_of_a_payload(payload: bytes, kind: str | None) -> None:
    assert stream_kind(payload) == kind
    assert stream_kind(payload.decode()) == kind
    try:
        value = json.loads(payload)
    except ValueError:
        return
    assert stream_kind(value) == kind


def test_stream_kind_of_decoded_chunks() -> None:
    [legacy_chunk, *_] = decode(legacy("vllm_completions.sse"))
    assert stream_kind(legacy_chunk) == "completions"
    assert stream_kind(CreateChatCompletionStreamResponse(choices=[])) == "chat"
    assert stream_kind(42) is None


@pytest.mark.parametrize("name", NAMES)
def test_first_event_of_every_fixture_tells_legacy(name: str) -> None:
    first = legacy(name).split(b"\n\n", 1)[0]
    assert first.startswith(b"data: ")
    assert stream_kind(first[len(b"data: ") :]) == "completions"
