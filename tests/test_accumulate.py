"""Accumulation of streamed chunks into a complete response.

Expectations come from fixtures/streams/MANIFEST.json (written by hand from
the streams), from hand-built chunks, and from the openai SDK's own
accumulation (``ChatCompletionStreamState``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from msgspec import UNSET
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk as SDKChunk

import streamspec
from streamspec import (
    CompletionTokensDetails,
    CompletionUsage,
    CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse,
    PromptTokensDetails,
)
from streamspec.accumulate import ChunkAccumulator, accumulate

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "streams"
MANIFEST: dict[str, dict[str, Any]] = json.loads((FIXTURES / "MANIFEST.json").read_text("utf-8"))

decode_chunk = msgspec.json.Decoder(CreateChatCompletionStreamResponse).decode


def fixture_chunks(name: str) -> list[CreateChatCompletionStreamResponse]:
    """The chunks of a fixture, up to its end or its error.

    A chunk that reports an error but also carries choices (OpenRouter) is
    part of the response, as MANIFEST.json counts it.
    """
    chunks: list[CreateChatCompletionStreamResponse] = []
    try:
        chunks.extend(streamspec.iter_chunks([(FIXTURES / name).read_bytes()]))
    except streamspec.StreamError as exc:
        if isinstance(exc.chunk, CreateChatCompletionStreamResponse) and exc.chunk.choices:
            chunks.append(exc.chunk)
    except streamspec.TruncatedStreamError:
        pass
    return chunks


def chunk(obj: dict[str, Any]) -> CreateChatCompletionStreamResponse:
    """A chunk from its JSON form, decoded as from the wire."""
    return decode_chunk(json.dumps(obj))


def delta_chunk(
    delta: dict[str, Any] | None = None, *, index: int = 0, **choice: Any
) -> CreateChatCompletionStreamResponse:
    """A one-choice chunk; ``delta=None`` leaves the delta key out."""
    body: dict[str, Any] = {"index": index, **choice}
    if delta is not None:
        body["delta"] = delta
    return chunk({"choices": [body]})


def text_of(value: object) -> str:
    return value if isinstance(value, str) else ""


def filtered(expected: dict[str, Any], struct: type[msgspec.Struct]) -> dict[str, Any]:
    """``expected`` restricted to the fields ``struct`` models (extension keys dropped)."""
    nested: dict[str, type[msgspec.Struct]] = {
        "prompt_tokens_details": PromptTokensDetails,
        "completion_tokens_details": CompletionTokensDetails,
    }
    out: dict[str, Any] = {}
    for key, value in expected.items():
        if key not in struct.__struct_fields__:
            continue
        out[key] = filtered(value, nested[key]) if isinstance(value, dict) else value
    return out


# -- every fixture against MANIFEST.json ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_fixture_matches_manifest(name: str) -> None:
    expected = MANIFEST[name]
    chunks = fixture_chunks(name)
    accumulator = ChunkAccumulator()
    for item in chunks:
        accumulator.add(item)
    result = accumulator.result()
    assert accumulator.chunks == expected["n_chunks"]
    assert result.object == "chat.completion"
    assert result.choices, "every fixture has at least one choice"
    choice = result.choices[0]
    message = choice.message
    assert text_of(message.content) == expected["text"]
    assert (message.reasoning_content or None) == expected["reasoning"]
    assert message.reasoning is UNSET
    assert (choice.finish_reason or None) == expected["finish_reason"]
    calls = [
        {"id": call.id, "name": call.function.name, "arguments": call.function.arguments}
        for call in (message.tool_calls or [])
    ]
    assert calls == expected["tool_calls"]
    if expected["usage"] is None:
        assert result.usage in (UNSET, None)
    else:
        assert msgspec.to_builtins(result.usage) == filtered(expected["usage"], CompletionUsage)
    if "refusal" in expected:
        assert message.refusal == expected["refusal"]
    if "text_by_index" in expected:
        assert [c.index for c in result.choices] == sorted(map(int, expected["text_by_index"]))
        for c in result.choices:
            assert c.message.content == expected["text_by_index"][str(c.index)]
            assert c.finish_reason == expected["finish_reason_by_index"][str(c.index)]
    # The one-call form agrees with the incremental one.
    assert accumulate(chunks) == result


def test_reasoning_fixture_reasoning_field_is_left_unset() -> None:
    result = accumulate(fixture_chunks("groq_reasoning.sse"))  # sends `reasoning`
    message = result.choices[0].message
    assert message.reasoning is UNSET
    assert message.reasoning_content == MANIFEST["groq_reasoning.sse"]["reasoning"]
    assert b'"reasoning":' not in msgspec.json.encode(result)


def test_together_text_key_is_not_counted() -> None:
    # Together duplicates each token in a choice-level "text" key.
    result = accumulate(fixture_chunks("together_eos.sse"))
    assert result.choices[0].message.content == MANIFEST["together_eos.sse"]["text"]


# -- tool calls ----------------------------------------------------------------------------------


def test_tool_calls_without_index_are_told_apart_by_id() -> None:
    result = accumulate(
        [
            delta_chunk(
                {
                    "tool_calls": [
                        {
                            "id": "a",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{1"},
                        },
                        {
                            "id": "b",
                            "type": "function",
                            "function": {"name": "g", "arguments": "{2"},
                        },
                    ]
                }
            ),
            delta_chunk({"tool_calls": [{"id": "b", "function": {"arguments": "}"}}]}),
            delta_chunk({"tool_calls": [{"id": "a", "function": {"arguments": "}"}}]}),
        ]
    )
    calls = result.choices[0].message.tool_calls
    assert isinstance(calls, list)
    assert [(c.id, c.type, c.function.name, c.function.arguments) for c in calls] == [
        ("a", "function", "f", "{1}"),
        ("b", "function", "g", "{2}"),
    ]


def test_fragment_with_neither_index_nor_id_continues_the_latest_call() -> None:
    result = accumulate(
        [
            delta_chunk({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "["}}]}),
            delta_chunk({"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": "("}}]}),
            delta_chunk({"tool_calls": [{"function": {"arguments": ")"}}]}),
        ]
    )
    calls = result.choices[0].message.tool_calls
    assert isinstance(calls, list)
    assert [(c.id, c.function.arguments) for c in calls] == [("a", "["), ("b", "()")]


def test_repeated_id_and_type_on_every_fragment_do_not_duplicate() -> None:
    # TGI: the same id on every fragment, name null after the first.
    fragments = ['{"loc', 'ation":', '"Genève"}']
    chunks = [
        delta_chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "0",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        )
    ] + [
        delta_chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "0",
                        "type": "function",
                        "function": {"name": None, "arguments": part},
                    }
                ]
            }
        )
        for part in fragments
    ]
    calls = accumulate(chunks).choices[0].message.tool_calls
    assert isinstance(calls, list)
    assert len(calls) == 1
    assert (calls[0].id, calls[0].type) == ("0", "function")
    assert calls[0].function.name == "get_weather"
    assert calls[0].function.arguments == '{"location":"Genève"}'


def test_null_id_and_name_on_later_fragments_do_not_erase() -> None:
    # SGLang: id null, name null after the first fragment.
    chunks = [
        delta_chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "search", "arguments": ""},
                    }
                ]
            }
        ),
        delta_chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": None,
                        "type": None,
                        "function": {"name": None, "arguments": '{"q": 1}'},
                    }
                ]
            }
        ),
        delta_chunk({"tool_calls": [{"index": 0, "id": "", "function": {"name": ""}}]}),
        # A later, different id or name on the same index does not replace the first.
        delta_chunk({"tool_calls": [{"index": 0, "id": "call_2", "function": {"name": "other"}}]}),
    ]
    calls = accumulate(chunks).choices[0].message.tool_calls
    assert isinstance(calls, list)
    assert [(c.id, c.type, c.function.name, c.function.arguments) for c in calls] == [
        ("call_1", "function", "search", '{"q": 1}')
    ]


def test_first_fragment_without_arguments_and_indexes_from_one() -> None:
    chunks = [
        delta_chunk({"tool_calls": [{"index": 1, "id": "x", "function": {"name": "f"}}]}),
        delta_chunk({"tool_calls": [{"index": 2, "id": "y", "function": {"name": "g"}}]}),
        delta_chunk({"tool_calls": [{"index": 2, "function": {"arguments": "{}"}}]}),
        delta_chunk({"tool_calls": [{"index": 1, "function": {"arguments": "[]"}}]}),
    ]
    calls = accumulate(chunks).choices[0].message.tool_calls
    assert isinstance(calls, list)
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("x", "f", "[]"),
        ("y", "g", "{}"),
    ]
    assert all(c.type is UNSET for c in calls)  # no fragment carried a type


def test_one_delta_with_two_fragments_of_the_same_call() -> None:
    chunks = [
        delta_chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "c", "function": {"name": "f", "arguments": '{"a"'}},
                    {"index": 0, "function": {"arguments": ": 1}"}},
                ]
            }
        )
    ]
    calls = accumulate(chunks).choices[0].message.tool_calls
    assert isinstance(calls, list)
    assert [(c.id, c.function.arguments) for c in calls] == [("c", '{"a": 1}')]


def test_legacy_function_call_is_accumulated() -> None:
    chunks = [
        delta_chunk({"role": "assistant", "function_call": {"name": "f", "arguments": ""}}),
        delta_chunk({"function_call": {"arguments": '{"x":'}}),
        delta_chunk({"function_call": {"arguments": " 2}"}}),
        delta_chunk({}, finish_reason="function_call"),
    ]
    choice = accumulate(chunks).choices[0]
    assert choice.message.function_call == streamspec.FunctionCall(name="f", arguments='{"x": 2}')
    assert choice.finish_reason == "function_call"


# -- text, reasoning, refusal ----------------------------------------------------------------------


def test_reasoning_under_both_names_in_one_delta_is_counted_once() -> None:
    chunks = [
        delta_chunk({"reasoning_content": "Let me", "reasoning": "Let me"}),
        delta_chunk({"reasoning": " think"}),
        delta_chunk({"reasoning_content": ".", "reasoning": None}),
        delta_chunk({"reasoning_content": None, "reasoning": " Done", "content": None}),
        delta_chunk({"content": "42"}),
    ]
    message = accumulate(chunks).choices[0].message
    assert message.reasoning_content == "Let me think. Done"
    assert message.reasoning is UNSET
    assert message.content == "42"


def test_content_blocks_text_and_thinking() -> None:
    chunks = [
        delta_chunk({"role": "assistant", "content": []}),
        delta_chunk({"content": [{"type": "thinking", "thinking": "Hmm"}]}),
        delta_chunk({"content": [{"type": "thinking", "thinking": "", "signature": "sig"}]}),
        delta_chunk({"content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]}),
        delta_chunk({"content": [{"type": "image", "url": "x"}]}),
        delta_chunk({"content": " world"}),
    ]
    message = accumulate(chunks).choices[0].message
    assert message.content == "Hello world"
    assert message.reasoning_content == "Hmm"


def test_thinking_block_next_to_a_reasoning_field_is_counted_once() -> None:
    chunks = [
        delta_chunk(
            {"reasoning_content": "Same", "content": [{"type": "thinking", "thinking": "Same"}]}
        )
    ]
    assert accumulate(chunks).choices[0].message.reasoning_content == "Same"


def magistral(*parts: Any, **block: Any) -> dict[str, Any]:
    """A Magistral delta: one thinking block whose ``thinking`` is a list of parts."""
    return {"content": [{"type": "thinking", "thinking": list(parts), **block}]}


def test_magistral_thinking_parts_are_reasoning() -> None:
    chunks = [
        delta_chunk({"role": "assistant", "content": ""}),
        delta_chunk(magistral({"type": "text", "text": "Okay"})),
        delta_chunk(magistral({"type": "text", "text": ", so "}, {"type": "text", "text": "東京"})),
        delta_chunk(magistral({"type": "text", "text": ""}, closed=True)),
        delta_chunk(magistral()),
        delta_chunk({"content": [{"type": "text", "text": "Tokyo"}]}),
        delta_chunk({"content": " 🗼"}, finish_reason="stop"),
    ]
    message = accumulate(chunks).choices[0].message
    assert message.reasoning_content == "Okay, so 東京"
    assert message.content == "Tokyo 🗼"
    assert message.reasoning is UNSET


def test_magistral_parts_of_other_types_are_skipped() -> None:
    chunks = [delta_chunk(magistral({"type": "image_url"}, {"type": "text", "text": "seen"}))]
    assert accumulate(chunks).choices[0].message.reasoning_content == "seen"


def test_magistral_thinking_next_to_a_reasoning_field_is_counted_once() -> None:
    delta = {"reasoning": "Once", **magistral({"type": "text", "text": "Once"})}
    assert accumulate([delta_chunk(delta)]).choices[0].message.reasoning_content == "Once"


def test_accumulated_text_matches_reasoning_text_and_content_text() -> None:
    # The helpers that meter chunks and accumulate agree on every fixture.
    for name in sorted(MANIFEST):
        chunks = fixture_chunks(name)
        for index in {c.index for chunk in chunks for c in chunk.choices}:
            deltas = [c.delta for chunk in chunks for c in chunk.choices if c.index == index]
            message = next(c for c in accumulate(chunks).choices if c.index == index).message
            assert "".join(map(streamspec.content_text, deltas)) == text_of(message.content)
            assert "".join(map(streamspec.reasoning_text, deltas)) == text_of(
                message.reasoning_content
            )


def test_refusal_concatenated_and_content_null() -> None:
    chunks = [
        delta_chunk({"role": "assistant", "content": None, "refusal": ""}),
        delta_chunk({"refusal": "I can\u2019t"}),
        delta_chunk({"refusal": " help."}),
        delta_chunk({}, finish_reason="stop"),
    ]
    message = accumulate(chunks).choices[0].message
    assert message.refusal == "I can\u2019t help."
    assert message.content is None


def test_logprobs_lists_are_concatenated() -> None:
    def entry(token: str, logprob: float) -> dict[str, Any]:
        return {
            "token": token,
            "logprob": logprob,
            "bytes": list(token.encode()),
            "top_logprobs": [],
        }

    chunks = [
        delta_chunk({"content": ""}, logprobs={"content": [], "refusal": None}),
        delta_chunk({"content": "Hi"}, logprobs={"content": [entry("Hi", -0.1)], "refusal": None}),
        delta_chunk({"content": " there"}, logprobs={"content": [entry(" there", -0.5)]}),
        delta_chunk({}, logprobs=None, finish_reason="stop"),
    ]
    logprobs = accumulate(chunks).choices[0].logprobs
    assert isinstance(logprobs, streamspec.ChatChoiceLogprobs)
    assert isinstance(logprobs.content, list)
    assert [(t.token, t.logprob) for t in logprobs.content] == [("Hi", -0.1), (" there", -0.5)]
    assert logprobs.refusal is None


# -- finish reason, usage, choices --------------------------------------------------------------


def test_usage_twice_is_not_summed() -> None:
    usage = {"prompt_tokens": 18, "completion_tokens": 33, "total_tokens": 51}
    chunks = [
        delta_chunk({"content": "Hi"}),
        chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage}),
        chunk({"choices": [], "usage": usage}),
    ]
    assert accumulate(chunks).usage == CompletionUsage(
        prompt_tokens=18, completion_tokens=33, total_tokens=51
    )


def test_cumulative_usage_keeps_the_last_one() -> None:
    chunks = [
        chunk(
            {
                "choices": [{"index": 0, "delta": {"content": str(n)}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n},
            }
        )
        for n in (1, 2, 3)
    ] + [chunk({"choices": [], "usage": None})]
    result = accumulate(chunks)
    assert result.usage == CompletionUsage(prompt_tokens=5, completion_tokens=3, total_tokens=8)
    assert result.choices[0].message.content == "123"


def test_finish_chunk_followed_by_usage_and_annotation_chunks() -> None:
    chunks = [
        delta_chunk({"role": "assistant", "content": "Hi"}, finish_reason=None),
        delta_chunk({}, finish_reason="stop"),
        chunk(
            {
                "choices": [],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        ),
        delta_chunk(None, finish_reason=None),  # Azure annotation chunk: no delta
        delta_chunk({"content": ""}, finish_reason=""),  # SGLang: "" means none
    ]
    result = accumulate(chunks)
    assert result.choices[0].finish_reason == "stop"
    assert result.choices[0].message.content == "Hi"
    assert result.usage == CompletionUsage(prompt_tokens=1, completion_tokens=1, total_tokens=2)


def test_n2_interleaved_choices_sorted_by_index() -> None:
    chunks = [
        delta_chunk({"role": "assistant", "content": ""}, index=1),
        delta_chunk({"content": "B1"}, index=1),
        delta_chunk({"role": "assistant", "content": "A1"}, index=0),
        delta_chunk({"content": "B2"}, index=1),
        delta_chunk({}, index=1, finish_reason="length"),
        delta_chunk({"content": "A2"}, index=0),
        delta_chunk({}, index=0, finish_reason="stop"),
    ]
    result = accumulate(chunks)
    assert [(c.index, c.message.content, c.finish_reason) for c in result.choices] == [
        (0, "A1A2", "stop"),
        (1, "B1B2", "length"),
    ]


def test_one_chunk_holding_several_choices() -> None:
    chunks = [
        chunk(
            {
                "choices": [
                    {"index": 2, "delta": {"content": "c"}},
                    {"index": 0, "delta": {"content": "a"}},
                ]
            }
        ),
        chunk({"choices": [{"index": 0, "delta": {"content": "a"}}]}),
    ]
    result = accumulate(chunks)
    assert [(c.index, c.message.content) for c in result.choices] == [(0, "aa"), (2, "c")]


def test_usage_counts_left_out_stay_unset() -> None:
    usage = {"prompt_tokens": 19, "completion_tokens": 11}
    result = accumulate([delta_chunk({"content": "x"}), chunk({"choices": [], "usage": usage})])
    assert isinstance(result.usage, CompletionUsage)
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (19, 11)
    assert result.usage.total_tokens is UNSET
    assert msgspec.to_builtins(result.usage) == usage


def test_error_false_and_salvaged_chunks_are_accumulated() -> None:
    events = [
        '{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hal"}}],"error":false}',
        '{"choices":[{"index":0,"delta":{"content":"lo","role":3}}],"error":{}}',
        '{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"error":0}',
        '{"choices":[],"usage":{"prompt_tokens":4.0,"completion_tokens":2,"total_tokens":6}}',
        "[DONE]",
    ]
    body = "".join(f"data: {e}\n\n" for e in events).encode()
    result = accumulate(streamspec.iter_chunks([body]))
    message = result.choices[0].message
    assert (message.role, message.content) == ("assistant", "Hallo")
    assert result.choices[0].finish_reason == "stop"
    assert result.usage == CompletionUsage(prompt_tokens=4, completion_tokens=2, total_tokens=6)


# -- top-level fields, roles, absent fields -----------------------------------------------------


def test_top_level_fields() -> None:
    chunks = [
        chunk({"id": "", "object": "", "created": 0, "model": "", "choices": []}),
        chunk(
            {
                "id": "chatcmpl-1",
                "created": 100,
                "model": "gpt-x",
                "service_tier": "default",
                "system_fingerprint": "fp_1",
                "choices": [{"index": 0, "delta": {"content": "a"}}],
            }
        ),
        chunk(
            {
                "id": "chatcmpl-2",
                "created": 200,
                "model": "other",
                "service_tier": "fast",
                "system_fingerprint": None,
                "choices": [{"index": 0, "delta": {"content": "b"}}],
            }
        ),
        chunk(
            {
                "id": "chatcmpl-3",
                "service_tier": None,
                "system_fingerprint": "fp_2",
                "choices": [],
            }
        ),
    ]
    result = accumulate(chunks)
    assert (result.id, result.model, result.created) == ("chatcmpl-1", "gpt-x", 100)
    assert (result.service_tier, result.system_fingerprint) == ("fast", "fp_2")
    assert result.object == "chat.completion"


def test_first_id_kept_when_created_never_arrives() -> None:
    chunks = [
        chunk({"id": "first", "model": "m1", "choices": [{"index": 0, "delta": {"content": "a"}}]}),
        chunk(
            {"id": "second", "model": "m2", "choices": [{"index": 0, "delta": {"content": "b"}}]}
        ),
    ]
    result = accumulate(chunks)
    assert (result.id, result.model, result.created) == ("first", "m1", UNSET)


def test_roles() -> None:
    chunks = [
        delta_chunk({"role": None, "content": "a"}),
        delta_chunk({"role": "assistant", "content": "b"}),
        delta_chunk({"role": None, "content": "c"}),
        delta_chunk({"content": "d"}, index=1),
        delta_chunk({"role": "tool", "content": "e"}, index=2),
    ]
    result = accumulate(chunks)
    assert [c.message.role for c in result.choices] == ["assistant", "assistant", "tool"]


def test_fields_never_seen_stay_unset() -> None:
    result = accumulate([delta_chunk({"content": "Hi"}), delta_chunk({"content": "!"})])
    assert msgspec.json.decode(msgspec.json.encode(result)) == {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}}],
    }


def test_fields_only_seen_as_null_are_null() -> None:
    chunks = [
        chunk(
            {
                "id": "x",
                "system_fingerprint": None,
                "service_tier": None,
                "usage": None,
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "role": "assistant",
                            "content": None,
                            "refusal": None,
                            "reasoning_content": None,
                            "tool_calls": None,
                            "function_call": None,
                            "audio": None,
                        },
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
            }
        )
    ]
    encoded = msgspec.json.decode(msgspec.json.encode(accumulate(chunks)))
    assert encoded == {
        "id": "x",
        "object": "chat.completion",
        "service_tier": None,
        "system_fingerprint": None,
        "usage": None,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "tool_calls": None,
                    "function_call": None,
                    "audio": None,
                    "reasoning_content": None,
                },
                "finish_reason": None,
                "logprobs": None,
            }
        ],
    }


def test_audio_fragments() -> None:
    chunks = [
        delta_chunk({"audio": {"id": "audio_1", "transcript": "Hel", "data": "AAA"}}),
        delta_chunk({"audio": {"transcript": "lo", "data": "BBB"}}),
        delta_chunk({"audio": {"expires_at": 1700000000}}),
    ]
    audio = accumulate(chunks).choices[0].message.audio
    assert audio == streamspec.ChatCompletionResponseMessageAudio(
        id="audio_1", expires_at=1700000000, data="AAABBB", transcript="Hello"
    )


def test_no_chunks() -> None:
    result = accumulate([])
    assert result == CreateChatCompletionResponse(object="chat.completion", choices=[])


# -- snapshots ------------------------------------------------------------------------------------


def test_snapshot_mid_stream() -> None:
    name = "openai_text.sse"
    expected_text = MANIFEST[name]["text"]
    chunks = fixture_chunks(name)
    accumulator = ChunkAccumulator()
    previous = ""
    for position, item in enumerate(chunks):
        accumulator.add(item)
        snapshot = accumulator.snapshot()
        if not snapshot.choices:
            continue
        text = text_of(snapshot.choices[0].message.content)
        assert expected_text.startswith(text)
        assert text.startswith(previous)
        previous = text
        if position == 10:
            snapshot.choices[0].message.content = "tampered"  # a copy: no effect later
    final = accumulator.result()
    assert final.choices[0].message.content == expected_text
    assert accumulator.snapshot() == final


def test_snapshot_tool_calls_mid_stream() -> None:
    chunks = fixture_chunks("openai_tool_calls.sse")
    expected = MANIFEST["openai_tool_calls.sse"]["tool_calls"]
    accumulator = ChunkAccumulator()
    for item in chunks:
        accumulator.add(item)
        calls = accumulator.snapshot().choices[0].message.tool_calls
        for call, want in zip(calls or [], expected, strict=False):
            assert want["arguments"].startswith(call.function.arguments)
    calls = accumulator.result().choices[0].message.tool_calls
    assert [c.function.arguments for c in calls or []] == [c["arguments"] for c in expected]


# -- against the openai SDK's own accumulation ---------------------------------------------------

OPENAI_FIXTURES = [
    "openai_text.sse",
    "openai_tool_calls.sse",
    "openai_n2.sse",
    "openai_logprobs.sse",
    "openai_refusal.sse",
]


def sdk_chunks(name: str) -> list[SDKChunk]:
    """The fixture's chunks parsed by the SDK's models from the raw JSON lines."""
    out = []
    for line in (FIXTURES / name).read_text("utf-8").splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            out.append(SDKChunk.model_validate(json.loads(line[6:])))
    return out


@pytest.mark.parametrize("name", OPENAI_FIXTURES)
def test_matches_openai_sdk_accumulation(name: str) -> None:
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for item in sdk_chunks(name):
        state.handle_chunk(item)
    sdk = state.current_completion_snapshot
    ours = accumulate(fixture_chunks(name))

    assert (ours.id, ours.model, ours.created) == (sdk.id, sdk.model, sdk.created)
    assert ours.system_fingerprint == sdk.system_fingerprint
    assert ours.service_tier == sdk.service_tier
    sdk_usage = sdk.usage.model_dump(exclude_none=True) if sdk.usage else None
    ours_usage = msgspec.to_builtins(ours.usage) if ours.usage else None
    assert ours_usage == sdk_usage
    sdk_choices = sorted(sdk.choices, key=lambda c: c.index)
    assert len(ours.choices) == len(sdk_choices)
    for mine, theirs in zip(ours.choices, sdk_choices, strict=True):
        assert mine.index == theirs.index
        assert mine.finish_reason == theirs.finish_reason
        assert mine.message.role == theirs.message.role
        assert mine.message.content == theirs.message.content
        assert mine.message.refusal == theirs.message.refusal
        calls = [
            (c.id, c.type, c.function.name, c.function.arguments)
            for c in (mine.message.tool_calls or [])
        ]
        sdk_calls = [
            (c.id, c.type, c.function.name, c.function.arguments)
            for c in (theirs.message.tool_calls or [])
        ]
        assert calls == sdk_calls
        if theirs.logprobs is None:
            assert mine.logprobs in (UNSET, None)
        else:
            assert isinstance(mine.logprobs, streamspec.ChatChoiceLogprobs)
            assert [(t.token, t.logprob) for t in mine.logprobs.content or []] == [
                (t.token, t.logprob) for t in theirs.logprobs.content or []
            ]
            assert bool(mine.logprobs.refusal) == bool(theirs.logprobs.refusal)
