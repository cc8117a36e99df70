"""Faithful encoding: ``encode(decode(doc))`` gives back the document's JSON.

The rule: compared after ``json.loads``, the re-encoded document equals the input,
except that an explicit null of an optional field may be dropped. A key the input
lacked is never added, and keys whose value is not null are never dropped. Keys
outside the schema (server extensions) are ignored on decode, so they are listed
below and removed from the expectation.

The second half builds requests with hypothesis and checks ``decode(encode(x)) == x``.
"""

from __future__ import annotations

import json
import math
import string
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec import UNSET

from documents import DOCUMENTS, document_names, encoded
from streamspec import (
    AudioUrl,
    ChatCompletionAudio,
    ChatCompletionFunctionCallOption,
    ChatCompletionFunctions,
    ChatCompletionMessageToolCall,
    ChatCompletionNamedToolChoice,
    ChatCompletionRequestAssistantMessage,
    ChatCompletionRequestAssistantMessageAudio,
    ChatCompletionRequestDeveloperMessage,
    ChatCompletionRequestFunctionMessage,
    ChatCompletionRequestMessageContentPartAudio,
    ChatCompletionRequestMessageContentPartAudioUrl,
    ChatCompletionRequestMessageContentPartImage,
    ChatCompletionRequestMessageContentPartRefusal,
    ChatCompletionRequestMessageContentPartText,
    ChatCompletionRequestMessageContentPartVideo,
    ChatCompletionRequestSystemMessage,
    ChatCompletionRequestToolMessage,
    ChatCompletionRequestUserMessage,
    ChatCompletionStreamOptions,
    ChatCompletionTool,
    CreateChatCompletionRequest,
    CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse,
    CreateCompletionRequest,
    CreateCompletionResponse,
    FunctionCall,
    FunctionName,
    FunctionObject,
    ImageUrl,
    InputAudio,
    PredictionContent,
    ResponseFormatJsonObject,
    ResponseFormatJsonSchema,
    ResponseFormatJsonSchemaFormat,
    ResponseFormatText,
    VideoUrl,
    WebSearchLocation,
    WebSearchOptions,
    WebSearchUserLocation,
)

KeyPath = tuple[str | int, ...]

# Keys of each document that the schema does not model (server extensions).
EXTENSION_KEYS: dict[str, list[KeyPath]] = {
    "requests/server_extensions.json": [
        ("top_k",),
        ("min_p",),
        ("repetition_penalty",),
        ("skip_special_tokens",),
        ("chat_template_kwargs",),
        ("messages", 1, "content", 0, "cache_control"),
    ],
    "completions/response_vllm.json": [
        ("choices", 0, "stop_reason"),
        ("choices", 0, "prompt_logprobs"),
        ("kv_transfer_params",),
    ],
    "responses/audio_output.json": [
        ("usage", "prompt_tokens_details", "text_tokens"),
        ("usage", "prompt_tokens_details", "image_tokens"),
        ("usage", "completion_tokens_details", "text_tokens"),
    ],
    "responses/reasoning_content_deepseek.json": [
        ("usage", "prompt_cache_hit_tokens"),
        ("usage", "prompt_cache_miss_tokens"),
    ],
    "responses/reasoning_vllm.json": [
        ("choices", 0, "stop_reason"),
        ("choices", 0, "token_ids"),
        ("prompt_logprobs",),
        ("prompt_token_ids",),
        ("kv_transfer_params",),
    ],
    "responses/usage_details_null.json": [
        ("usage", "queue_time"),
        ("usage", "prompt_time"),
        ("usage", "completion_time"),
        ("usage", "total_time"),
        ("usage_breakdown",),
        ("x_groq",),
    ],
    "responses/content_filter_azure.json": [
        ("choices", 0, "content_filter_results"),
        ("prompt_filter_results",),
    ],
    "chunks/openai_first_role.json": [("obfuscation",)],
    "chunks/openai_content.json": [("obfuscation",)],
    "chunks/openai_finish.json": [("obfuscation",)],
    "chunks/openai_usage_only.json": [("obfuscation",)],
    "chunks/openai_tool_call_first.json": [("obfuscation",)],
    "chunks/openai_tool_call_args.json": [("obfuscation",)],
    "chunks/openai_n2_index1.json": [("obfuscation",)],
    "chunks/azure_prompt_filter.json": [("prompt_filter_results",)],
    "chunks/azure_annotation_no_delta.json": [
        ("choices", 0, "content_filter_offsets"),
        ("choices", 0, "content_filter_results"),
    ],
    "chunks/together_eos.json": [
        ("choices", 0, "text"),
        ("choices", 0, "seed"),
        ("choices", 0, "delta", "token_id"),
        ("usage", "cached_tokens"),
    ],
    "chunks/groq_on_demand.json": [("x_groq",)],
    "chunks/vllm_reasoning.json": [
        ("choices", 0, "stop_reason"),
        ("choices", 0, "token_ids"),
        ("prompt_token_ids",),
    ],
    "chunks/sglang_tool_null_ids.json": [("choices", 0, "matched_stop")],
    "chunks/sglang_abort.json": [("choices", 0, "matched_stop")],
    "chunks/aggregator_content_blocks.json": [("choices", 0, "delta", "content", 0, "signature")],
    "chunks/openrouter_error.json": [
        ("provider",),
        ("error", "metadata"),
        ("choices", 0, "native_finish_reason"),
    ],
    "chunks/tgi_string_error.json": [("error_type",)],
    "chunks/llamacpp_timings.json": [("timings",)],
    "chunks/fireworks_perf.json": [("perf_metrics",)],
}


def document_type(relative: str) -> type[Any]:
    folder, name = relative.split("/")
    if folder == "requests":
        return CreateChatCompletionRequest
    if folder == "responses":
        return CreateChatCompletionResponse
    if folder == "chunks":
        return CreateChatCompletionStreamResponse
    assert folder == "completions"
    return CreateCompletionRequest if name.startswith("request_") else CreateCompletionResponse


VALID_DOCUMENTS = sorted(
    f"{folder}/{name}"
    for folder in ("requests", "completions", "responses", "chunks")
    for name in document_names(DOCUMENTS / folder)
)


def without(doc: Any, path: KeyPath) -> None:
    """Delete the key at ``path``; it must exist."""
    *parents, last = path
    for step in parents:
        doc = doc[step]
    assert isinstance(doc, dict)
    assert last in doc, path
    del doc[last]


def assert_faithful(original: Any, output: Any, where: str = "$") -> None:
    """``output`` is ``original``, except that explicit nulls may be missing from objects."""
    if isinstance(original, dict):
        assert isinstance(output, dict), where
        added = set(output) - set(original)
        assert not added, f"{where}: keys added {sorted(added)}"
        for key, value in original.items():
            if key not in output:
                assert value is None, f"{where}.{key}: dropped a non-null value {value!r}"
            else:
                assert_faithful(value, output[key], f"{where}.{key}")
    elif isinstance(original, list):
        assert isinstance(output, list), where
        assert len(output) == len(original), where
        for i, (a, b) in enumerate(zip(original, output, strict=True)):
            assert_faithful(a, b, f"{where}[{i}]")
    elif isinstance(original, bool) or original is None or isinstance(original, str):
        assert type(output) is type(original), f"{where}: {original!r} became {output!r}"
        assert output == original, where
    else:
        assert isinstance(original, (int, float))
        assert isinstance(output, (int, float)), where
        assert not isinstance(output, bool), where
        assert output == original, f"{where}: {original!r} became {output!r}"


def test_every_valid_document_is_covered() -> None:
    folders = {d.split("/")[0] for d in VALID_DOCUMENTS}
    assert folders == {"requests", "completions", "responses", "chunks"}
    assert set(EXTENSION_KEYS) <= set(VALID_DOCUMENTS)


@pytest.mark.parametrize("relative", VALID_DOCUMENTS)
def test_document_round_trips_faithfully(relative: str) -> None:
    raw = (DOCUMENTS / relative).read_bytes()
    expected = json.loads(raw)
    for path in EXTENSION_KEYS.get(relative, []):
        without(expected, path)
    value = msgspec.json.decode(raw, type=document_type(relative))
    assert_faithful(expected, encoded(value))


@pytest.mark.parametrize("relative", VALID_DOCUMENTS)
def test_document_decode_encode_decode_is_stable(relative: str) -> None:
    kind = document_type(relative)
    first = msgspec.json.decode((DOCUMENTS / relative).read_bytes(), type=kind)
    again = msgspec.json.decode(msgspec.json.encode(first), type=kind)
    assert again == first


@pytest.mark.parametrize(
    ("doc", "kind"),
    [
        ({"choices": [{"index": 0, "delta": {}}]}, CreateChatCompletionStreamResponse),
        ({"choices": [{"index": 0}]}, CreateChatCompletionStreamResponse),
        ({"choices": []}, CreateChatCompletionStreamResponse),
        ({}, CreateChatCompletionStreamResponse),
        ({"object": ""}, CreateChatCompletionStreamResponse),
        (
            {
                "choices": [
                    {"index": 0, "delta": {"tool_calls": [{"index": 0, "type": "function"}]}}
                ]
            },
            CreateChatCompletionStreamResponse,
        ),
        (
            {
                "choices": [],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            },
            CreateChatCompletionStreamResponse,
        ),
        (
            {"choices": [{"index": 0, "message": {}, "finish_reason": None, "logprobs": None}]},
            CreateChatCompletionResponse,
        ),
        ({"choices": []}, CreateCompletionResponse),
    ],
)
def test_absent_stays_absent_and_present_stays_present(doc: Any, kind: type[Any]) -> None:
    assert_faithful(doc, encoded(msgspec.json.decode(json.dumps(doc), type=kind)))


def test_faithfulness_check_catches_changes() -> None:
    assert_faithful({"a": None, "b": [1, 2.5]}, {"b": [1.0, 2.5]})
    for original, output in [
        ({"index": 0}, {}),
        ({}, {"delta": {}}),
        ({"a": True}, {"a": 1}),
        ({"a": [1]}, {"a": [1, 2]}),
        ({"a": ""}, {"a": None}),
    ]:
        with pytest.raises(AssertionError):
            assert_faithful(original, output)


# --- hypothesis: requests built in Python survive encode then decode ----------------------

# JSON text: any character but lone surrogates, which UTF-8 cannot carry.
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
names = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=16)
int64 = st.integers(-(2**63), 2**63 - 1)
finite = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | int64 | finite | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(text, json_values, max_size=4)


def maybe(strategy: st.SearchStrategy[Any], nullable: bool = True) -> st.SearchStrategy[Any]:
    """Absent (UNSET), null when ``nullable``, or a value."""
    options = [st.just(UNSET), strategy]
    if nullable:
        options.insert(1, st.none())
    return st.one_of(*options)


def ranged(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False)


urls = st.sampled_from(
    [
        "https://example.com/a.png",
        "https://cdn.example.org/v/clip.mp4",
        "data:image/png;base64,iVBORw0KGgo=",
        "https://example.com/audio.mp3",
    ]
)
details = maybe(st.sampled_from(["auto", "low", "high"]))
uuids = maybe(st.uuids())

text_part = st.builds(ChatCompletionRequestMessageContentPartText, text=text)
refusal_part = st.builds(ChatCompletionRequestMessageContentPartRefusal, refusal=text)
image_part = st.builds(
    ChatCompletionRequestMessageContentPartImage,
    image_url=st.builds(ImageUrl, url=urls, detail=details, uuid=uuids),
)
video_part = st.builds(
    ChatCompletionRequestMessageContentPartVideo,
    video_url=st.builds(VideoUrl, url=urls, detail=details, uuid=uuids),
)
audio_url_part = st.builds(
    ChatCompletionRequestMessageContentPartAudioUrl,
    audio_url=st.builds(AudioUrl, url=urls, uuid=uuids),
)
input_audio_part = st.builds(
    ChatCompletionRequestMessageContentPartAudio,
    input_audio=st.builds(InputAudio, data=text, format=st.sampled_from(["wav", "mp3"])),
)
user_part = st.one_of(text_part, image_part, video_part, audio_url_part, input_audio_part)
assistant_part = st.one_of(text_part, refusal_part)


def content(part: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """String content or a list of parts."""
    return st.one_of(text, st.lists(part, max_size=4))


tool_calls = st.lists(
    st.builds(
        ChatCompletionMessageToolCall,
        id=names,
        function=st.builds(FunctionCall, name=names, arguments=text),
        type=maybe(st.just("function"), nullable=False),
    ),
    max_size=3,
)

developer_message = st.builds(
    ChatCompletionRequestDeveloperMessage,
    content=content(text_part),
    name=maybe(names, nullable=False),
)
system_message = st.builds(
    ChatCompletionRequestSystemMessage,
    content=content(text_part),
    name=maybe(names, nullable=False),
)
user_message = st.builds(
    ChatCompletionRequestUserMessage,
    content=content(user_part),
    name=maybe(names, nullable=False),
)
assistant_message = st.builds(
    ChatCompletionRequestAssistantMessage,
    content=maybe(content(assistant_part)),
    refusal=maybe(text),
    name=maybe(names, nullable=False),
    audio=maybe(st.builds(ChatCompletionRequestAssistantMessageAudio, id=names)),
    tool_calls=maybe(tool_calls, nullable=False),
    function_call=maybe(st.builds(FunctionCall, name=names, arguments=text)),
    reasoning_content=maybe(text),
)
tool_message = st.builds(
    ChatCompletionRequestToolMessage, content=content(text_part), tool_call_id=names
)
function_message = st.builds(
    ChatCompletionRequestFunctionMessage, content=st.none() | text, name=names
)
messages = st.lists(
    st.one_of(
        developer_message,
        system_message,
        user_message,
        assistant_message,
        tool_message,
        function_message,
    ),
    min_size=1,
    max_size=6,
)

tools = st.lists(
    st.builds(
        ChatCompletionTool,
        type=st.just("function"),
        function=st.builds(
            FunctionObject,
            name=names,
            description=maybe(text, nullable=False),
            parameters=maybe(json_objects, nullable=False),
            strict=maybe(st.booleans()),
        ),
    ),
    max_size=3,
)
tool_choice = st.one_of(
    st.sampled_from(["none", "auto", "required"]),
    st.builds(
        ChatCompletionNamedToolChoice,
        type=st.just("function"),
        function=st.builds(FunctionName, name=names),
    ),
)
function_call = st.one_of(
    st.sampled_from(["none", "auto"]), st.builds(ChatCompletionFunctionCallOption, name=names)
)
functions = st.lists(
    st.builds(
        ChatCompletionFunctions,
        name=names,
        description=maybe(text, nullable=False),
        parameters=maybe(json_objects, nullable=False),
    ),
    max_size=3,
)
response_format = st.one_of(
    st.builds(ResponseFormatText),
    st.builds(ResponseFormatJsonObject),
    st.builds(
        ResponseFormatJsonSchemaFormat,
        json_schema=st.builds(
            ResponseFormatJsonSchema,
            name=names,
            description=maybe(text, nullable=False),
            schema=maybe(json_objects, nullable=False),
            strict=maybe(st.booleans()),
        ),
    ),
)
prediction = st.builds(PredictionContent, content=content(text_part))
audio = st.builds(
    ChatCompletionAudio,
    voice=st.sampled_from(["alloy", "ash", "ballad", "coral", "echo", "sage", "verse", "cedar"]),
    format=st.sampled_from(["wav", "aac", "mp3", "flac", "opus", "pcm16"]),
)
web_search_options = st.builds(
    WebSearchOptions,
    search_context_size=maybe(st.sampled_from(["low", "medium", "high"])),
    user_location=maybe(
        st.builds(
            WebSearchUserLocation,
            type=st.just("approximate"),
            approximate=st.builds(
                WebSearchLocation,
                country=maybe(text),
                region=maybe(text),
                city=maybe(text),
                timezone=maybe(text),
            ),
        )
    ),
)
stop = st.one_of(text, st.lists(text, max_size=4))

chat_requests = st.builds(
    CreateChatCompletionRequest,
    messages=messages,
    model=names,
    store=maybe(st.booleans()),
    reasoning_effort=maybe(st.sampled_from(["none", "minimal", "low", "medium", "high"])),
    metadata=maybe(st.dictionaries(text, text, max_size=3)),
    frequency_penalty=maybe(ranged(-2, 2)),
    logit_bias=maybe(
        st.dictionaries(st.from_regex(r"[0-9]{1,6}", fullmatch=True), ranged(-100, 100))
    ),
    logprobs=maybe(st.booleans()),
    top_logprobs=maybe(st.integers(0, 20)),
    max_tokens=maybe(st.integers(0, 2**31)),
    max_completion_tokens=maybe(st.integers(0, 2**31)),
    n=maybe(st.integers(1, 128)),
    modalities=maybe(st.lists(st.sampled_from(["text", "audio"]), max_size=2)),
    prediction=maybe(prediction),
    audio=maybe(audio),
    presence_penalty=maybe(ranged(-2, 2)),
    response_format=maybe(response_format),
    seed=maybe(int64),
    service_tier=maybe(st.sampled_from(["auto", "default", "flex", "scale", "priority"])),
    stop=maybe(stop),
    stream=maybe(st.booleans()),
    stream_options=maybe(
        st.builds(
            ChatCompletionStreamOptions,
            include_usage=maybe(st.booleans()),
            include_obfuscation=maybe(st.booleans()),
        )
    ),
    temperature=maybe(ranged(0, 2)),
    top_p=maybe(ranged(0, 1)),
    tools=maybe(tools, nullable=False),
    tool_choice=maybe(tool_choice, nullable=False),
    parallel_tool_calls=maybe(st.booleans()),
    user=maybe(text, nullable=False),
    web_search_options=maybe(web_search_options),
    function_call=maybe(function_call, nullable=False),
    functions=maybe(functions, nullable=False),
    mm_processor_kwargs=maybe(json_objects),
    verbosity=maybe(st.sampled_from(["low", "medium", "high"])),
    prompt_cache_key=maybe(text),
    safety_identifier=maybe(text),
)


def assert_unset_fields_absent(value: msgspec.Struct, wire: Any) -> None:
    """Every UNSET field is missing from ``wire``; every other field is present."""
    assert isinstance(wire, dict)
    for field in msgspec.structs.fields(value):
        key = field.encode_name
        inner = getattr(value, field.name)
        if inner is UNSET:
            assert key not in wire, key
        else:
            assert key in wire, key
            if isinstance(inner, msgspec.Struct):
                assert_unset_fields_absent(inner, wire[key])
            elif isinstance(inner, list):
                for item, item_wire in zip(inner, wire[key], strict=True):
                    if isinstance(item, msgspec.Struct):
                        assert_unset_fields_absent(item, item_wire)


@settings(max_examples=300, deadline=None)
@given(chat_requests)
def test_chat_request_round_trips(req: CreateChatCompletionRequest) -> None:
    encoded = msgspec.json.encode(req)
    decoded = msgspec.json.decode(encoded, type=CreateChatCompletionRequest)
    assert decoded == req
    assert [type(m) for m in decoded.messages] == [type(m) for m in req.messages]
    for before, after in zip(req.messages, decoded.messages, strict=True):
        if isinstance(before.content, list):
            assert isinstance(after.content, list)
            assert [type(p) for p in after.content] == [type(p) for p in before.content]
    assert_unset_fields_absent(req, json.loads(encoded))
    assert msgspec.json.encode(decoded) == encoded


# --- hypothesis: legacy prompts ------------------------------------------------------------

token_ids = st.integers(0, 2**32 - 1)
prompts = st.one_of(
    text,
    st.lists(text, max_size=4),
    st.lists(token_ids, max_size=8),
    st.lists(st.lists(token_ids, max_size=5), max_size=4),
)

completion_requests = st.builds(
    CreateCompletionRequest,
    model=names,
    prompt=prompts,
    best_of=maybe(st.integers(0, 20)),
    echo=maybe(st.booleans()),
    logprobs=maybe(st.integers(0, 5)),
    max_tokens=maybe(st.integers(0, 2**31)),
    n=maybe(st.integers(1, 128)),
    seed=maybe(int64),
    stop=maybe(stop),
    stream=maybe(st.booleans()),
    suffix=maybe(text),
    temperature=maybe(ranged(0, 2)),
    top_p=maybe(ranged(0, 1)),
    user=maybe(text, nullable=False),
)


@settings(max_examples=300, deadline=None)
@given(completion_requests)
def test_completion_request_round_trips(req: CreateCompletionRequest) -> None:
    encoded = msgspec.json.encode(req)
    decoded = msgspec.json.decode(encoded, type=CreateCompletionRequest)
    assert decoded == req
    assert json.loads(encoded)["prompt"] == req.prompt
    assert_unset_fields_absent(req, json.loads(encoded))


def prompt_kind(item: Any) -> str:
    return "str" if isinstance(item, str) else "int" if isinstance(item, int) else "list"


@st.composite
def mixed_prompts(draw: st.DrawFn) -> list[Any]:
    """A list prompt holding at least two of: strings, token ids, token-id lists."""
    by_kind = {"str": text, "int": token_ids, "list": st.lists(token_ids, max_size=3)}
    first, second = draw(st.permutations(list(by_kind)))[:2]
    items = [draw(by_kind[first]), draw(by_kind[second])]
    items += draw(st.lists(st.one_of(*by_kind.values()), max_size=4))
    return draw(st.permutations(items))


@settings(max_examples=200, deadline=None)
@given(mixed_prompts())
def test_mixed_prompts_are_rejected(prompt: list[Any]) -> None:
    assert len({prompt_kind(item) for item in prompt}) >= 2
    doc = msgspec.json.encode({"model": "davinci-002", "prompt": prompt})
    with pytest.raises(msgspec.ValidationError, match="`prompt`"):
        msgspec.json.decode(doc, type=CreateCompletionRequest)


@settings(max_examples=100, deadline=None)
@given(st.lists(text, min_size=1) | st.lists(token_ids, min_size=1))
def test_uniform_prompt_lists_decode(prompt: list[Any]) -> None:
    doc = msgspec.json.encode({"model": "davinci-002", "prompt": prompt})
    assert msgspec.json.decode(doc, type=CreateCompletionRequest).prompt == prompt


def test_float_values_survive_exactly() -> None:
    # Shortest round-trip float text: no value drifts across encode then decode.
    for value in (0.1, 1 / 3, 2.0, 5e-324, math.nextafter(2.0, 0.0), 1e-07):
        req = CreateChatCompletionRequest(
            messages=[ChatCompletionRequestUserMessage(content="x")],
            model="m",
            temperature=value,
        )
        decoded = msgspec.json.decode(msgspec.json.encode(req), type=CreateChatCompletionRequest)
        assert decoded.temperature == value
