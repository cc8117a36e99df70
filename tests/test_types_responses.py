"""Chat completion responses and stream chunks: lenient decoding, UNSET versus null.

Expectations come from the documents in ``fixtures/documents/responses`` and
``fixtures/documents/chunks`` and from the response policy: absent optional fields
are UNSET, explicit nulls are None, open enums are plain strings, unknown fields
are ignored, and an absent ``delta`` or ``choices`` reads as empty.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from msgspec import UNSET

import streamspec
import streamspec.types
from documents import (
    CHUNKS,
    RESPONSES,
    check_invalid,
    document_names,
    encoded,
    invalid_documents,
    read_document,
)
from streamspec import (
    ChatChoice,
    ChatChoiceLogprobs,
    ChatChoiceStream,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessageToolCall,
    ChatCompletionMessageToolCallChunk,
    ChatCompletionResponseMessage,
    ChatCompletionResponseMessageAudio,
    ChatCompletionStreamContentBlock,
    ChatCompletionStreamResponseDelta,
    ChatCompletionStreamResponseDeltaAudio,
    ChatCompletionStreamThinkingPart,
    ChatCompletionTokenLogprob,
    Completion,
    CompletionTokensDetails,
    CompletionUsage,
    CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse,
    CreateCompletionResponse,
    ErrorObject,
    FunctionCall,
    FunctionCallStream,
    PromptTokensDetails,
    TopLogprobs,
)
from streamspec.types import common, completions, request, response, stream

INVALID_TYPES = {"CreateChatCompletionResponse", "CreateChatCompletionStreamResponse"}

decode_response = msgspec.json.Decoder(CreateChatCompletionResponse).decode
decode_chunk = msgspec.json.Decoder(CreateChatCompletionStreamResponse).decode

EMPTY_DELTA_FIELDS = [f.name for f in msgspec.structs.fields(ChatCompletionStreamResponseDelta)]


def response_doc(name: str) -> tuple[dict[str, Any], CreateChatCompletionResponse]:
    return read_document(RESPONSES / name, decode_response)


def chunk_doc(name: str) -> tuple[dict[str, Any], CreateChatCompletionStreamResponse]:
    return read_document(CHUNKS / name, decode_chunk)


def only_message(resp: CreateChatCompletionResponse) -> ChatCompletionResponseMessage:
    (choice,) = resp.choices
    return choice.message


def only_delta(chunk: CreateChatCompletionStreamResponse) -> ChatCompletionStreamResponseDelta:
    (choice,) = chunk.choices
    return choice.delta


# --- complete responses --------------------------------------------------------------------


@pytest.mark.parametrize("name", document_names(RESPONSES))
def test_response_document_decodes(name: str) -> None:
    doc, resp = response_doc(name)
    assert type(resp) is CreateChatCompletionResponse
    assert [type(c) for c in resp.choices] == [ChatChoice] * len(doc["choices"])
    for wire, choice in zip(doc["choices"], resp.choices, strict=True):
        assert choice.index == wire["index"]
        assert type(choice.message) is ChatCompletionResponseMessage
        content = choice.message.content
        if isinstance(content, list):  # typed blocks (Magistral)
            content = msgspec.to_builtins(content)
        assert content == wire["message"].get("content", UNSET)
        assert choice.finish_reason == wire.get("finish_reason", UNSET)
    for key in ("id", "object", "created", "model", "service_tier", "system_fingerprint"):
        assert getattr(resp, key) == doc.get(key, UNSET), key
    if isinstance(doc.get("usage"), dict):
        assert type(resp.usage) is CompletionUsage
        assert resp.usage.total_tokens == doc["usage"]["total_tokens"]


def test_basic_text_with_both_usage_details() -> None:
    doc, resp = response_doc("basic_text.json")
    msg = only_message(resp)
    assert msg.role == "assistant"
    assert msg.content == doc["choices"][0]["message"]["content"]
    assert msg.refusal is None
    assert msg.annotations == []
    assert msg.tool_calls is UNSET
    assert msg.audio is UNSET
    assert msg.reasoning_content is UNSET
    assert resp.choices[0].logprobs is None
    usage = resp.usage
    assert isinstance(usage, CompletionUsage)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (19, 38, 57)
    assert usage.prompt_tokens_details == PromptTokensDetails(cached_tokens=0, audio_tokens=0)
    assert type(usage.completion_tokens_details) is CompletionTokensDetails
    assert usage.completion_tokens_details == CompletionTokensDetails(
        reasoning_tokens=0,
        audio_tokens=0,
        accepted_prediction_tokens=0,
        rejected_prediction_tokens=0,
    )


def test_parallel_tool_calls() -> None:
    doc, resp = response_doc("tool_calls_parallel.json")
    msg = only_message(resp)
    assert msg.content is None
    assert isinstance(msg.tool_calls, list)
    assert [type(c) for c in msg.tool_calls] == [ChatCompletionMessageToolCall] * 2
    wire = doc["choices"][0]["message"]["tool_calls"]
    for call, expected in zip(msg.tool_calls, wire, strict=True):
        assert call.id == expected["id"]
        assert call.type == "function"
        assert type(call.function) is FunctionCall
        assert call.function == FunctionCall(**expected["function"])
    assert json.loads(msg.tool_calls[1].function.arguments)["city"] == "Z\u00fcrich"
    assert resp.choices[0].finish_reason == "tool_calls"


def test_logprobs_with_top_logprobs() -> None:
    doc, resp = response_doc("logprobs_top.json")
    (choice,) = resp.choices
    logprobs = choice.logprobs
    assert type(logprobs) is ChatChoiceLogprobs
    assert logprobs.refusal is None
    assert isinstance(logprobs.content, list)
    wire = doc["choices"][0]["logprobs"]["content"]
    assert len(logprobs.content) == len(wire)
    for token, expected in zip(logprobs.content, wire, strict=True):
        assert type(token) is ChatCompletionTokenLogprob
        assert (token.token, token.logprob, token.bytes) == (
            expected["token"],
            expected["logprob"],
            expected["bytes"],
        )
        assert isinstance(token.top_logprobs, list)
        assert [type(t) for t in token.top_logprobs] == [TopLogprobs] * len(
            expected["top_logprobs"]
        )
        assert [t.logprob for t in token.top_logprobs] == [
            t["logprob"] for t in expected["top_logprobs"]
        ]
    # The token bytes rebuild the message text, emoji split across tokens included.
    text = b"".join(bytes(t.bytes) for t in logprobs.content if isinstance(t.bytes, list))
    assert text.decode("utf-8") == choice.message.content
    assert logprobs.content[-1].logprob == 0.0


def test_audio_output() -> None:
    doc, resp = response_doc("audio_output.json")
    msg = only_message(resp)
    assert msg.content is None
    assert type(msg.audio) is ChatCompletionResponseMessageAudio
    assert msg.audio == ChatCompletionResponseMessageAudio(**doc["choices"][0]["message"]["audio"])
    assert resp.choices[0].logprobs is UNSET
    assert isinstance(resp.usage, CompletionUsage)
    assert isinstance(resp.usage.completion_tokens_details, CompletionTokensDetails)
    assert resp.usage.completion_tokens_details.audio_tokens == 254


def test_refusal() -> None:
    _, resp = response_doc("refusal.json")
    msg = only_message(resp)
    assert msg.content is None
    assert msg.refusal == "I'm sorry, I can't assist with that request."
    assert isinstance(resp.usage, CompletionUsage)
    assert resp.usage.prompt_tokens_details is UNSET
    assert resp.usage.completion_tokens_details == CompletionTokensDetails(reasoning_tokens=0)
    assert resp.service_tier is UNSET


def test_n_greater_than_one() -> None:
    doc, resp = response_doc("n3_choices.json")
    assert [c.index for c in resp.choices] == [0, 1, 2]
    assert [c.finish_reason for c in resp.choices] == ["stop", "stop", "length"]
    assert [c.message.content for c in resp.choices] == [
        c["message"]["content"] for c in doc["choices"]
    ]


def test_reasoning_content() -> None:
    doc, resp = response_doc("reasoning_content_deepseek.json")
    msg = only_message(resp)
    assert msg.reasoning_content == doc["choices"][0]["message"]["reasoning_content"]
    assert msg.reasoning is UNSET
    assert msg.refusal is UNSET
    assert isinstance(resp.usage, CompletionUsage)
    assert resp.usage.completion_tokens_details == CompletionTokensDetails(reasoning_tokens=117)
    assert isinstance(resp.usage.completion_tokens_details, CompletionTokensDetails)
    assert resp.usage.completion_tokens_details.audio_tokens is UNSET
    assert not hasattr(resp.usage, "prompt_cache_hit_tokens")


def test_reasoning_field_and_vllm_nulls() -> None:
    doc, resp = response_doc("reasoning_vllm.json")
    msg = only_message(resp)
    wire = doc["choices"][0]["message"]
    assert msg.reasoning == wire["reasoning"]
    assert msg.reasoning_content == wire["reasoning_content"]
    assert msg.tool_calls == []
    assert (msg.annotations, msg.audio, msg.function_call, msg.refusal) == (None,) * 4
    assert (resp.service_tier, resp.system_fingerprint) == (None, None)
    assert isinstance(resp.usage, CompletionUsage)
    assert resp.usage.prompt_tokens_details is None
    assert resp.usage.completion_tokens_details is UNSET


def test_usage_details_null_and_open_service_tier() -> None:
    _, resp = response_doc("usage_details_null.json")
    assert resp.service_tier == "on_demand"
    assert isinstance(resp.usage, CompletionUsage)
    assert resp.usage.prompt_tokens_details is None
    assert resp.usage.completion_tokens_details is None
    assert only_message(resp).refusal is UNSET


def test_legacy_function_call() -> None:
    doc, resp = response_doc("function_call_legacy.json")
    msg = only_message(resp)
    assert msg.function_call == FunctionCall(**doc["choices"][0]["message"]["function_call"])
    assert resp.choices[0].finish_reason == "function_call"
    assert resp.choices[0].logprobs is UNSET
    assert resp.system_fingerprint is UNSET


def test_annotations_kept_as_objects() -> None:
    doc, resp = response_doc("web_search_annotations.json")
    assert only_message(resp).annotations == doc["choices"][0]["message"]["annotations"]
    assert resp.system_fingerprint == ""


def test_content_filter_and_reasoning_only_servers() -> None:
    _, resp = response_doc("content_filter_azure.json")
    assert resp.choices[0].finish_reason == "content_filter"
    _, resp = response_doc("minimal_ollama.json")
    assert only_message(resp).reasoning is not UNSET
    assert resp.choices[0].logprobs is UNSET


@pytest.mark.parametrize(
    "finish_reason", ["insufficient_system_resource", "eos", "abort", "error", ""]
)
def test_open_finish_reason_in_response(finish_reason: str) -> None:
    doc = {
        "id": "chatcmpl-1",
        "choices": [{"index": 0, "message": {"content": "x"}, "finish_reason": finish_reason}],
    }
    resp = decode_response(msgspec.json.encode(doc))
    assert resp.choices[0].finish_reason == finish_reason
    assert resp.choices[0].message.role is UNSET


# --- stream chunks -------------------------------------------------------------------------


@pytest.mark.parametrize("name", document_names(CHUNKS))
def test_chunk_document_decodes(name: str) -> None:
    doc, chunk = chunk_doc(name)
    assert type(chunk) is CreateChatCompletionStreamResponse
    assert len(chunk.choices) == len(doc.get("choices", []))
    for wire, choice in zip(doc.get("choices", []), chunk.choices, strict=True):
        assert type(choice) is ChatChoiceStream
        assert choice.index == wire["index"]
        assert type(choice.delta) is ChatCompletionStreamResponseDelta
        assert choice.finish_reason == wire.get("finish_reason", UNSET)
        for key in ("role", "reasoning_content", "reasoning", "refusal"):
            assert getattr(choice.delta, key) == wire.get("delta", {}).get(key, UNSET), key
    for key in ("id", "object", "created", "model", "service_tier", "system_fingerprint"):
        assert getattr(chunk, key) == doc.get(key, UNSET), key


def test_first_chunk_role_and_empty_content() -> None:
    _, chunk = chunk_doc("openai_first_role.json")
    delta = only_delta(chunk)
    assert delta.role == "assistant"
    assert delta.content == ""
    assert delta.refusal is None
    assert delta.tool_calls is UNSET
    assert chunk.usage is None
    assert chunk.choices[0].logprobs is None
    assert chunk.choices[0].finish_reason is None
    assert not hasattr(chunk, "obfuscation")


def test_content_chunk_without_usage_key() -> None:
    doc, chunk = chunk_doc("openai_content_logprobs.json")
    assert "usage" not in doc
    assert chunk.usage is UNSET
    (choice,) = chunk.choices
    assert choice.delta.content == "Bonjour"
    assert isinstance(choice.logprobs, ChatChoiceLogprobs)
    assert isinstance(choice.logprobs.content, list)
    (token,) = choice.logprobs.content
    assert token.top_logprobs == [
        TopLogprobs(**t) for t in doc["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    ]


def test_finish_chunk_with_empty_delta() -> None:
    _, chunk = chunk_doc("openai_finish.json")
    delta = only_delta(chunk)
    for name in EMPTY_DELTA_FIELDS:
        assert getattr(delta, name) is UNSET, name
    assert chunk.choices[0].finish_reason == "stop"
    assert encoded(chunk)["choices"][0]["delta"] == {}


def test_usage_chunk() -> None:
    doc, chunk = chunk_doc("openai_usage_only.json")
    assert chunk.choices == []
    assert encoded(chunk)["choices"] == []
    assert chunk.usage == msgspec.convert(doc["usage"], CompletionUsage)
    assert isinstance(chunk.usage, CompletionUsage)
    assert chunk.usage.prompt_tokens_details == PromptTokensDetails(cached_tokens=0, audio_tokens=0)


def test_tool_call_fragments() -> None:
    _, first = chunk_doc("openai_tool_call_first.json")
    delta = only_delta(first)
    assert isinstance(delta.tool_calls, list)
    (call,) = delta.tool_calls
    assert type(call) is ChatCompletionMessageToolCallChunk
    assert (call.index, call.id, call.type) == (0, "call_8qty38bSJ7Ny0h4qVd6yCvDd", "function")
    assert type(call.function) is FunctionCallStream
    assert call.function == FunctionCallStream(name="get_weather", arguments="")
    assert delta.content is UNSET

    _, later = chunk_doc("openai_tool_call_args.json")
    delta = only_delta(later)
    assert isinstance(delta.tool_calls, list)
    (call,) = delta.tool_calls
    assert (call.index, call.id, call.type) == (1, UNSET, UNSET)
    # The fragment ends inside the argument JSON, with a \u escape that the
    # argument text keeps verbatim.
    assert call.function == FunctionCallStream(arguments=r'{"city":"Z\u00fc')
    assert isinstance(call.function, FunctionCallStream)
    assert call.function.name is UNSET


def test_refusal_and_audio_deltas() -> None:
    _, chunk = chunk_doc("openai_refusal.json")
    assert only_delta(chunk).refusal == " with that request."
    assert chunk.service_tier is UNSET
    doc, chunk = chunk_doc("openai_audio.json")
    audio = only_delta(chunk).audio
    assert type(audio) is ChatCompletionStreamResponseDeltaAudio
    assert audio == ChatCompletionStreamResponseDeltaAudio(**doc["choices"][0]["delta"]["audio"])
    assert chunk.choices[0].logprobs is UNSET


def test_choice_index_is_identity() -> None:
    _, chunk = chunk_doc("openai_n2_index1.json")
    assert [c.index for c in chunk.choices] == [1]


def test_azure_filter_chunk_keeps_blank_strings() -> None:
    _, chunk = chunk_doc("azure_prompt_filter.json")
    assert (chunk.id, chunk.object, chunk.model, chunk.created) == ("", "", "", 0)
    assert chunk.choices == []
    assert chunk.usage is UNSET


def test_absent_delta_reads_as_empty_and_stays_absent() -> None:
    doc, chunk = chunk_doc("azure_annotation_no_delta.json")
    assert "delta" not in doc["choices"][0]
    delta = only_delta(chunk)
    assert delta == ChatCompletionStreamResponseDelta()
    for name in EMPTY_DELTA_FIELDS:
        assert getattr(delta, name) is UNSET, name
    assert chunk.choices[0].finish_reason is None
    assert "delta" not in encoded(chunk)["choices"][0]


def test_delta_is_frozen() -> None:
    _, chunk = chunk_doc("openai_content.json")
    with pytest.raises(AttributeError):
        chunk.choices[0].delta.content = "changed"  # type: ignore[misc]


def test_absent_object_key() -> None:
    _, chunk = chunk_doc("mistral_no_object.json")
    assert chunk.object is UNSET
    assert "object" not in encoded(chunk)
    delta = only_delta(chunk)
    assert isinstance(delta.tool_calls, list)
    (call,) = delta.tool_calls
    assert call.type is UNSET
    assert call.index == 0
    assert chunk.choices[0].finish_reason == "tool_calls"
    assert isinstance(chunk.usage, CompletionUsage)


def test_open_finish_reasons_in_chunks() -> None:
    expected = {
        "together_eos.json": "eos",
        "sglang_abort.json": "abort",
        "openrouter_error.json": "error",
        "relay_role_null_finish_empty.json": "",
        "fireworks_perf.json": "length",
        "gemini_tool_calls_no_index.json": "stop",
    }
    for name, reason in expected.items():
        _, chunk = chunk_doc(name)
        assert chunk.choices[0].finish_reason == reason, name


def test_together_extra_choice_keys() -> None:
    _, chunk = chunk_doc("together_eos.json")
    delta = only_delta(chunk)
    assert (delta.role, delta.content, delta.tool_calls) == ("assistant", "", None)
    assert not hasattr(chunk.choices[0], "text")
    assert not hasattr(delta, "token_id")


def test_service_tier_outside_documented_values() -> None:
    _, chunk = chunk_doc("groq_on_demand.json")
    assert chunk.service_tier == "on_demand"
    assert chunk.usage is UNSET
    assert not hasattr(chunk, "x_groq")


def test_reasoning_deltas() -> None:
    doc, chunk = chunk_doc("deepseek_reasoning.json")
    delta = only_delta(chunk)
    assert delta.content is None
    assert delta.reasoning_content == doc["choices"][0]["delta"]["reasoning_content"]
    assert delta.reasoning is UNSET
    _, chunk = chunk_doc("vllm_reasoning.json")
    delta = only_delta(chunk)
    assert delta.reasoning == delta.reasoning_content == " It is Helsinki;"
    assert delta.content is UNSET


def test_sglang_null_tool_call_fields() -> None:
    _, chunk = chunk_doc("sglang_tool_null_ids.json")
    delta = only_delta(chunk)
    assert (delta.role, delta.content, delta.reasoning_content) == (None, None, None)
    assert isinstance(delta.tool_calls, list)
    (call,) = delta.tool_calls
    assert call.id is None
    assert isinstance(call.function, FunctionCallStream)
    assert call.function.name is None
    assert call.function.arguments == '"Krak\u00f3w"}'
    assert chunk.usage is None


def test_tool_calls_without_index() -> None:
    doc, chunk = chunk_doc("gemini_tool_calls_no_index.json")
    delta = only_delta(chunk)
    assert isinstance(delta.tool_calls, list)
    assert [c.index for c in delta.tool_calls] == [UNSET, UNSET]
    assert [c.id for c in delta.tool_calls] == [
        c["id"] for c in doc["choices"][0]["delta"]["tool_calls"]
    ]
    assert all("index" not in c for c in encoded(chunk)["choices"][0]["delta"]["tool_calls"])


def test_content_blocks() -> None:
    doc, chunk = chunk_doc("aggregator_content_blocks.json")
    content = only_delta(chunk).content
    assert isinstance(content, list)
    assert [type(b) for b in content] == [ChatCompletionStreamContentBlock] * 3
    assert [b.type for b in content] == ["thinking", "text", "text"]
    wire = doc["choices"][0]["delta"]["content"]
    assert content[0].thinking == wire[0]["thinking"]
    assert content[0].text is UNSET
    assert [b.text for b in content[1:]] == [b["text"] for b in wire[1:]]
    assert content[1].thinking is UNSET


def test_magistral_thinking_parts() -> None:
    doc, chunk = chunk_doc("mistral_magistral_thinking.json")
    delta = only_delta(chunk)
    content = delta.content
    assert isinstance(content, list)
    thinking, text = content
    assert thinking.type == "thinking"
    assert thinking.thinking == [
        ChatCompletionStreamThinkingPart(type="text", text=" That is "),
        ChatCompletionStreamThinkingPart(type="text", text="ありがとう"),
    ]
    assert streamspec.reasoning_text(thinking) == " That is ありがとう"
    assert streamspec.reasoning_text(text) == ""
    assert streamspec.content_text(text) == "En japonais,"
    assert streamspec.content_text(thinking) == ""
    assert streamspec.reasoning_text(delta) == " That is ありがとう"
    assert streamspec.content_text(delta) == "En japonais,"
    assert encoded(chunk) == doc


THINKING_X = {"type": "thinking", "thinking": "x"}
THINKING_PARTS = {
    "type": "thinking",
    "thinking": [
        {"type": "text", "text": "b"},
        {"type": "image", "text": "skipped"},
        {"text": "c"},
    ],
}
TEXT_A, TEXT_B = {"type": "text", "text": "a"}, {"type": "text", "text": "b"}


@pytest.mark.parametrize(
    ("delta", "reasoning", "content"),
    [
        ({"content": "Hi", "reasoning_content": "r"}, "r", "Hi"),
        ({"reasoning": "vllm"}, "vllm", ""),
        ({"reasoning_content": "once", "reasoning": "once"}, "once", ""),
        ({"reasoning_content": "named", "content": [THINKING_X]}, "named", ""),
        ({"content": [{"type": "thinking", "thinking": "a"}, THINKING_PARTS]}, "abc", ""),
        ({"content": [{"type": "thinking", "thinking": []}, {"type": "text"}]}, "", ""),
        ({"content": [TEXT_A, {"type": "image"}, TEXT_B]}, "", "ab"),
        ({"content": None}, "", ""),
        ({}, "", ""),
    ],
)
def test_reasoning_and_content_text_of_a_delta(
    delta: dict[str, Any], reasoning: str, content: str
) -> None:
    decoded = msgspec.convert(delta, ChatCompletionStreamResponseDelta)
    assert streamspec.reasoning_text(decoded) == reasoning
    assert streamspec.content_text(decoded) == content


def test_magistral_response_content_is_a_list_of_blocks() -> None:
    doc, resp = response_doc("mistral_magistral_thinking.json")
    message = only_message(resp)
    assert isinstance(message.content, list)
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert streamspec.reasoning_text(message) == "Okay, « merci » in Japanese is ありがとう."
    assert streamspec.content_text(message) == "En japonais : **ありがとう** 🙏"
    assert (
        encoded(resp)["choices"][0]["message"]["content"] == doc["choices"][0]["message"]["content"]
    )


def test_usage_counts_may_be_absent() -> None:
    doc, chunk = chunk_doc("relay_usage_no_total.json")
    usage = chunk.usage
    assert isinstance(usage, CompletionUsage)
    assert (usage.prompt_tokens, usage.completion_tokens) == (19, 11)
    assert usage.total_tokens is UNSET  # never derived from the others
    assert encoded(chunk) == doc
    assert msgspec.json.decode(b"{}", type=CompletionUsage) == CompletionUsage()


@pytest.mark.parametrize("value", ["false", "0", "0.0", "[]", "{}", '""', "null"])
def test_error_member_holds_any_json_value(value: str) -> None:
    chunk = decode_chunk(b'{"choices": [], "error": %s}' % value.encode())
    assert not streamspec.error_report(chunk.error)


def test_error_false_chunk_round_trips() -> None:
    doc, chunk = chunk_doc("relay_error_false.json")
    assert chunk.error is False
    assert only_delta(chunk).content == "Bonjour"
    assert encoded(chunk) == doc


def test_error_member_in_chunk() -> None:
    _, chunk = chunk_doc("openrouter_error.json")
    assert type(chunk.error) is ErrorObject
    assert chunk.error.code == 502
    assert chunk.error.message == "Provider returned error"
    assert chunk.error.type is UNSET
    _, chunk = chunk_doc("tgi_string_error.json")
    assert isinstance(chunk.error, str)
    assert chunk.error.startswith("Input validation error")


def test_absent_choices_read_as_empty_and_stay_absent() -> None:
    doc, chunk = chunk_doc("tgi_string_error.json")
    assert "choices" not in doc
    assert len(chunk.choices) == 0
    assert list(chunk.choices) == []
    assert "choices" not in encoded(chunk)


def test_role_null_and_unknown_model_name() -> None:
    _, chunk = chunk_doc("relay_role_null_finish_empty.json")
    delta = only_delta(chunk)
    assert delta.role is None
    assert delta.content == "Tsch\u00fcss!"
    assert chunk.model == "default"


def test_extension_keys_ignored() -> None:
    _, chunk = chunk_doc("llamacpp_timings.json")
    assert not hasattr(chunk, "timings")
    assert chunk.choices[0].finish_reason == "stop"
    _, chunk = chunk_doc("fireworks_perf.json")
    assert isinstance(chunk.usage, CompletionUsage)
    assert chunk.usage.completion_tokens == 64


def test_escaped_unicode() -> None:
    _, chunk = chunk_doc("escaped_unicode.json")
    assert only_delta(chunk).content == "<b>K\u00f8benhavn</b> \U0001f1e9\U0001f1f0 & Malm\u00f6"


# --- absent optional fields read as UNSET and stay absent ---------------------------------

# The smallest valid object of each lenient type: only its required fields.
MINIMAL: list[tuple[type[Any], dict[str, Any]]] = [
    (CreateChatCompletionResponse, {"choices": []}),
    (ChatChoice, {"index": 0, "message": {}}),
    (ChatCompletionResponseMessage, {}),
    (
        ChatCompletionResponseMessageAudio,
        {"id": "audio_1", "expires_at": 1, "data": "", "transcript": ""},
    ),
    (ChatCompletionMessageToolCall, {"id": "call_1", "function": {"name": "f", "arguments": ""}}),
    (CompletionUsage, {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}),
    (PromptTokensDetails, {}),
    (CompletionTokensDetails, {}),
    (ChatChoiceLogprobs, {}),
    (ChatCompletionTokenLogprob, {"token": "a", "logprob": -0.5}),
    (TopLogprobs, {"token": "a", "logprob": -0.5}),
    (CreateChatCompletionStreamResponse, {}),
    (ChatChoiceStream, {"index": 0}),
    (ChatCompletionStreamResponseDelta, {}),
    (ChatCompletionMessageToolCallChunk, {}),
    (FunctionCallStream, {}),
    (ChatCompletionStreamResponseDeltaAudio, {}),
    (ChatCompletionStreamContentBlock, {"type": "text"}),
    (ErrorObject, {}),
    (CreateCompletionResponse, {"choices": []}),
    (streamspec.Choice, {"text": "", "index": 0}),
    (streamspec.Logprobs, {}),
]
# Absent fields that read as an empty value instead of UNSET.
EMPTY_DEFAULTS: dict[tuple[type[Any], str], Any] = {
    (ChatChoiceStream, "delta"): lambda v: v == ChatCompletionStreamResponseDelta(),
    (CreateChatCompletionStreamResponse, "choices"): lambda v: len(v) == 0 and list(v) == [],
    (ErrorObject, "message"): lambda v: v == "",
}


@pytest.mark.parametrize(("kind", "doc"), MINIMAL, ids=[k.__name__ for k, _ in MINIMAL])
def test_absent_optional_fields_are_unset(kind: type[Any], doc: dict[str, Any]) -> None:
    value = msgspec.json.decode(msgspec.json.encode(doc), type=kind)
    for field in msgspec.structs.fields(kind):
        if field.encode_name in doc:
            continue
        got = getattr(value, field.name)
        if (kind, field.name) in EMPTY_DEFAULTS:
            assert EMPTY_DEFAULTS[kind, field.name](got), field.name
        else:
            assert got is UNSET, field.name
    assert encoded(value) == doc


@pytest.mark.parametrize(("kind", "doc"), MINIMAL, ids=[k.__name__ for k, _ in MINIMAL])
def test_unknown_fields_are_ignored(kind: type[Any], doc: dict[str, Any]) -> None:
    extended = {**doc, "x_vendor": {"trace": [1, 2]}, "native_finish_reason": None}
    value = msgspec.json.decode(msgspec.json.encode(extended), type=kind)
    assert encoded(value) == doc


# --- invalid documents ---------------------------------------------------------------------


@pytest.mark.parametrize("name", invalid_documents(INVALID_TYPES))
def test_invalid_response_document_names_its_path(name: str) -> None:
    check_invalid(name)


# --- the public surface --------------------------------------------------------------------


def test_openai_python_aliases() -> None:
    assert ChatCompletionChunk is CreateChatCompletionStreamResponse
    assert ChatCompletion is CreateChatCompletionResponse
    assert Completion is CreateCompletionResponse
    assert stream.ChatCompletionChunk is streamspec.ChatCompletionChunk
    assert response.ChatCompletion is streamspec.ChatCompletion
    assert completions.Completion is streamspec.Completion


TYPE_MODULES = [common, request, response, stream, completions]


@pytest.mark.parametrize("module", TYPE_MODULES, ids=lambda m: m.__name__)
def test_type_module_names_importable_from_top_level(module: Any) -> None:
    assert len(module.__all__) == len(set(module.__all__))
    for name in module.__all__:
        assert name in streamspec.__all__, name
        assert getattr(streamspec, name) is getattr(module, name), name
        assert getattr(streamspec.types, name) is getattr(module, name), name


@pytest.mark.parametrize("module", TYPE_MODULES, ids=lambda m: m.__name__)
def test_every_struct_of_a_type_module_is_exported(module: Any) -> None:
    structs = {
        name
        for name, value in vars(module).items()
        if isinstance(value, type)
        and issubclass(value, msgspec.Struct)
        and value.__module__ == module.__name__
        and not name.startswith("_")
    }
    assert structs <= set(module.__all__)


def test_types_package_all_is_the_union_of_the_modules() -> None:
    union = [name for module in TYPE_MODULES for name in module.__all__]
    assert sorted(streamspec.types.__all__) == sorted(union)
    assert set(union) <= set(streamspec.__all__)
    namespace: dict[str, Any] = {}
    exec("from streamspec import *", namespace)
    assert set(union) <= set(namespace)
