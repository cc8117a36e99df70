"""Chat completion requests: tagged unions, strict validation, UNSET versus null.

Every expectation below comes from the documents in ``fixtures/documents/requests``
and ``fixtures/documents/invalid`` or from the request policy: messages are tagged
by ``role``, content parts by ``type`` with one union per role, enums are closed,
required fields are required, unknown keys are ignored, and errors name the JSON path.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
import pytest
from msgspec import UNSET

import streamspec
from documents import (
    INVALID,
    MANIFEST,
    REQUESTS,
    check_invalid,
    document_names,
    invalid_documents,
    read_document,
)
from streamspec import (
    AudioUrl,
    ChatCompletionAudio,
    ChatCompletionFunctionCallOption,
    ChatCompletionFunctions,
    ChatCompletionMessageToolCall,
    ChatCompletionNamedToolChoice,
    ChatCompletionRequestAssistantMessage,
    ChatCompletionRequestAssistantMessageAudio,
    ChatCompletionRequestAssistantMessageContentPart,
    ChatCompletionRequestDeveloperMessage,
    ChatCompletionRequestFunctionMessage,
    ChatCompletionRequestMessage,
    ChatCompletionRequestMessageContentPartAudio,
    ChatCompletionRequestMessageContentPartAudioUrl,
    ChatCompletionRequestMessageContentPartImage,
    ChatCompletionRequestMessageContentPartRefusal,
    ChatCompletionRequestMessageContentPartText,
    ChatCompletionRequestMessageContentPartVideo,
    ChatCompletionRequestSystemMessage,
    ChatCompletionRequestSystemMessageContentPart,
    ChatCompletionRequestToolMessage,
    ChatCompletionRequestToolMessageContentPart,
    ChatCompletionRequestUserMessage,
    ChatCompletionRequestUserMessageContentPart,
    ChatCompletionStreamOptions,
    ChatCompletionTool,
    CreateChatCompletionRequest,
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

REQUEST_FILES = document_names(REQUESTS)

# The invalid documents of these types are checked here; the others in
# test_types_completions.py (legacy) and test_types_responses.py (responses, chunks).
INVALID_TYPES = {"CreateChatCompletionRequest"}
ALL_INVALID_TYPES = {
    "CreateChatCompletionRequest",
    "CreateCompletionRequest",
    "CreateCompletionResponse",
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
}

ROLE_CLASSES: dict[str, type[Any]] = {
    "developer": ChatCompletionRequestDeveloperMessage,
    "system": ChatCompletionRequestSystemMessage,
    "user": ChatCompletionRequestUserMessage,
    "assistant": ChatCompletionRequestAssistantMessage,
    "tool": ChatCompletionRequestToolMessage,
    "function": ChatCompletionRequestFunctionMessage,
}

PART_CLASSES: dict[str, type[Any]] = {
    "text": ChatCompletionRequestMessageContentPartText,
    "refusal": ChatCompletionRequestMessageContentPartRefusal,
    "image_url": ChatCompletionRequestMessageContentPartImage,
    "input_audio": ChatCompletionRequestMessageContentPartAudio,
    "video_url": ChatCompletionRequestMessageContentPartVideo,
    "audio_url": ChatCompletionRequestMessageContentPartAudioUrl,
}

# One wire example of every content part type.
PARTS: dict[str, dict[str, Any]] = {
    "text": {"type": "text", "text": "Bonjour"},
    "refusal": {"type": "refusal", "refusal": "I can't help with that."},
    "image_url": {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
    "input_audio": {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    "video_url": {"type": "video_url", "video_url": {"url": "https://example.com/a.mp4"}},
    "audio_url": {"type": "audio_url", "audio_url": {"url": "https://example.com/a.mp3"}},
}

# The part types each role accepts in list content (from the API reference).
ALLOWED_PARTS: dict[str, set[str]] = {
    "user": {"text", "image_url", "input_audio", "video_url", "audio_url"},
    "assistant": {"text", "refusal"},
    "system": {"text"},
    "developer": {"text"},
    "tool": {"text"},
}

decode_request = msgspec.json.Decoder(CreateChatCompletionRequest).decode


def read(name: str) -> tuple[dict[str, Any], CreateChatCompletionRequest]:
    return read_document(REQUESTS / name, decode_request)


def message(role: str, content: Any) -> dict[str, Any]:
    """A minimal valid message of ``role`` carrying ``content``."""
    msg: dict[str, Any] = {"role": role, "content": content}
    if role == "tool":
        msg["tool_call_id"] = "call_abc123"
    if role == "function":
        msg["name"] = "get_weather"
    return msg


def request_with(*messages: dict[str, Any], **fields: Any) -> bytes:
    return msgspec.json.encode({"model": "gpt-4o-mini", "messages": list(messages), **fields})


# --- every document decodes, every message to its own class --------------------------------


@pytest.mark.parametrize("name", REQUEST_FILES)
def test_request_document_decodes_messages_to_their_role_classes(name: str) -> None:
    doc, req = read(name)
    assert type(req) is CreateChatCompletionRequest
    assert req.model == doc["model"]
    assert len(req.messages) == len(doc["messages"])
    for wire, msg in zip(doc["messages"], req.messages, strict=True):
        assert type(msg) is ROLE_CLASSES[wire["role"]]
        content = wire.get("content")
        if isinstance(content, list):
            assert isinstance(msg.content, list)
            assert [type(part) for part in msg.content] == [
                PART_CLASSES[part["type"]] for part in content
            ]
        elif isinstance(content, str):
            assert msg.content == content


def test_every_role_and_part_type_appears_in_the_documents() -> None:
    roles: set[str] = set()
    parts: set[tuple[str, str]] = set()
    string_content: set[str] = set()
    for name in REQUEST_FILES:
        for msg in json.loads((REQUESTS / name).read_bytes())["messages"]:
            roles.add(msg["role"])
            if isinstance(msg.get("content"), list):
                parts.update((msg["role"], part["type"]) for part in msg["content"])
            elif isinstance(msg.get("content"), str):
                string_content.add(msg["role"])
    assert roles == set(ROLE_CLASSES)
    assert string_content == set(ROLE_CLASSES)
    assert parts == {(role, kind) for role, kinds in ALLOWED_PARTS.items() for kind in kinds}


@pytest.mark.parametrize(("role", "cls"), list(ROLE_CLASSES.items()))
def test_message_role_selects_class(role: str, cls: type[Any]) -> None:
    wire = message(role, "Hola")
    req = decode_request(request_with(wire))
    assert type(req.messages[0]) is cls
    alone = msgspec.json.decode(msgspec.json.encode(wire), type=ChatCompletionRequestMessage)
    assert type(alone) is cls
    assert alone.content == "Hola"


@pytest.mark.parametrize(
    ("role", "kind"),
    sorted((role, kind) for role, kinds in ALLOWED_PARTS.items() for kind in kinds),
)
def test_allowed_part_selects_class(role: str, kind: str) -> None:
    req = decode_request(request_with(message(role, [PARTS[kind]])))
    msg = req.messages[0]
    assert type(msg) is ROLE_CLASSES[role]
    assert isinstance(msg.content, list)
    assert type(msg.content[0]) is PART_CLASSES[kind]


@pytest.mark.parametrize(
    ("role", "kind"),
    sorted(
        (role, kind) for role, kinds in ALLOWED_PARTS.items() for kind in PARTS if kind not in kinds
    ),
)
def test_part_not_allowed_for_role_is_rejected(role: str, kind: str) -> None:
    doc = request_with(message("user", "Hi"), message(role, [PARTS["text"], PARTS[kind]]))
    with pytest.raises(msgspec.ValidationError) as info:
        decode_request(doc)
    assert str(info.value) == f"Invalid value '{kind}' - at `$.messages[1].content[1].type`"


@pytest.mark.parametrize(
    ("union", "kinds"),
    [
        (ChatCompletionRequestUserMessageContentPart, ALLOWED_PARTS["user"]),
        (ChatCompletionRequestAssistantMessageContentPart, ALLOWED_PARTS["assistant"]),
        (ChatCompletionRequestSystemMessageContentPart, ALLOWED_PARTS["system"]),
        (ChatCompletionRequestToolMessageContentPart, ALLOWED_PARTS["tool"]),
    ],
)
def test_part_unions_decode_each_member_to_its_class(union: Any, kinds: set[str]) -> None:
    for kind in PARTS:
        wire = msgspec.json.encode(PARTS[kind])
        if kind in kinds:
            assert type(msgspec.json.decode(wire, type=union)) is PART_CLASSES[kind]
        else:
            with pytest.raises(msgspec.ValidationError, match=f"Invalid value '{kind}'"):
                msgspec.json.decode(wire, type=union)


def test_unknown_role_names_the_path() -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        decode_request(request_with(message("robot", "beep")))
    assert str(info.value) == "Invalid value 'robot' - at `$.messages[0].role`"


@pytest.mark.parametrize("role", ["developer", "system", "user", "assistant", "tool"])
def test_string_and_list_content(role: str) -> None:
    as_string = decode_request(request_with(message(role, "Grüß Gott"))).messages[0]
    assert as_string.content == "Grüß Gott"
    as_list = decode_request(request_with(message(role, [PARTS["text"]]))).messages[0]
    assert as_list.content == [ChatCompletionRequestMessageContentPartText(text="Bonjour")]


# --- the documents, field by field ---------------------------------------------------------


def test_all_roles_string_content() -> None:
    doc, req = read("all_roles_string_content.json")
    classes = [type(m) for m in req.messages]
    assert classes == [ROLE_CLASSES[m["role"]] for m in doc["messages"]]
    developer, system, user, assistant, tool, function, _, _ = req.messages
    assert isinstance(developer, ChatCompletionRequestDeveloperMessage)
    assert developer.name == "policy"
    assert isinstance(system, ChatCompletionRequestSystemMessage)
    assert system.name == "support_bot"
    assert isinstance(user, ChatCompletionRequestUserMessage)
    assert user.name == "ivan_petrov"
    assert isinstance(assistant, ChatCompletionRequestAssistantMessage)
    assert assistant.content == doc["messages"][3]["content"]
    assert isinstance(assistant.tool_calls, list)
    (call,) = assistant.tool_calls
    assert type(call) is ChatCompletionMessageToolCall
    assert type(call.function) is FunctionCall
    assert call.type == "function"
    assert call.function.arguments == '{"order_id":"4821"}'
    assert isinstance(tool, ChatCompletionRequestToolMessage)
    assert tool.tool_call_id == call.id
    assert isinstance(function, ChatCompletionRequestFunctionMessage)
    assert function.name == "get_order_status"
    assert function.content == '{"status":"in_transit"}'
    assert isinstance(req.tools, list)
    assert type(req.tools[0]) is ChatCompletionTool
    assert req.tool_choice is UNSET


def test_all_roles_list_content() -> None:
    doc, req = read("all_roles_list_content.json")
    developer = req.messages[0]
    assert isinstance(developer, ChatCompletionRequestDeveloperMessage)
    assert developer.content == [
        ChatCompletionRequestMessageContentPartText(text=part["text"])
        for part in doc["messages"][0]["content"]
    ]
    refusing = req.messages[5]
    assert isinstance(refusing, ChatCompletionRequestAssistantMessage)
    assert refusing.content == [
        ChatCompletionRequestMessageContentPartRefusal(
            refusal=doc["messages"][5]["content"][0]["refusal"]
        )
    ]
    calling = req.messages[7]
    assert isinstance(calling, ChatCompletionRequestAssistantMessage)
    assert calling.content is None
    assert calling.refusal is UNSET
    tool = req.messages[8]
    assert isinstance(tool, ChatCompletionRequestToolMessage)
    assert isinstance(tool.content, list)
    assert len(tool.content) == 2
    assert all(type(p) is ChatCompletionRequestMessageContentPartText for p in tool.content)


def test_user_multimodal_parts() -> None:
    doc, req = read("user_multimodal_parts.json")
    user = req.messages[1]
    assert isinstance(user, ChatCompletionRequestUserMessage)
    assert isinstance(user.content, list)
    assert [type(p) for p in user.content] == [
        ChatCompletionRequestMessageContentPartText,
        ChatCompletionRequestMessageContentPartImage,
        ChatCompletionRequestMessageContentPartImage,
        ChatCompletionRequestMessageContentPartAudio,
        ChatCompletionRequestMessageContentPartVideo,
        ChatCompletionRequestMessageContentPartAudioUrl,
        ChatCompletionRequestMessageContentPartAudio,
        ChatCompletionRequestMessageContentPartText,
    ]
    wire = doc["messages"][1]["content"]
    _, image, data_image, wav, video, audio_url, mp3, _ = user.content
    assert isinstance(image, ChatCompletionRequestMessageContentPartImage)
    assert type(image.image_url) is ImageUrl
    assert image.image_url.detail == "high"
    assert image.image_url.uuid == uuid.UUID(wire[1]["image_url"]["uuid"])
    assert isinstance(data_image, ChatCompletionRequestMessageContentPartImage)
    assert data_image.image_url.url.startswith("data:image/png;base64,")
    assert data_image.image_url.detail == "low"
    assert data_image.image_url.uuid is UNSET
    assert isinstance(wav, ChatCompletionRequestMessageContentPartAudio)
    assert wav.input_audio == InputAudio(data=wire[3]["input_audio"]["data"], format="wav")
    assert isinstance(mp3, ChatCompletionRequestMessageContentPartAudio)
    assert mp3.input_audio.format == "mp3"
    assert isinstance(video, ChatCompletionRequestMessageContentPartVideo)
    assert video.video_url == VideoUrl(
        url=wire[4]["video_url"]["url"],
        detail="auto",
        uuid=uuid.UUID("b1c7e0d2-94a3-4f5e-8d6c-2a1b3c4d5e6f"),
    )
    assert isinstance(audio_url, ChatCompletionRequestMessageContentPartAudioUrl)
    assert audio_url.audio_url == AudioUrl(
        url="https://example.com/audio.mp3",
        uuid=uuid.UUID("67e55044-10b1-426f-9247-bb680e5fe0c8"),
    )
    assert req.mm_processor_kwargs == doc["mm_processor_kwargs"]
    assert req.max_completion_tokens == 512


def test_tools_and_tool_choice_auto() -> None:
    doc, req = read("tools_tool_choice_auto.json")
    assert isinstance(req.tools, list)
    weather, flights = req.tools
    assert type(weather) is ChatCompletionTool
    assert weather.type == "function"
    assert type(weather.function) is FunctionObject
    assert weather.function.strict is True
    assert weather.function.parameters == doc["tools"][0]["function"]["parameters"]
    assert flights.function.strict is UNSET
    assert flights.function.description == doc["tools"][1]["function"]["description"]
    assert req.tool_choice == "auto"
    assert req.parallel_tool_calls is True
    assert req.temperature == 0
    assistant = req.messages[2]
    assert isinstance(assistant, ChatCompletionRequestAssistantMessage)
    assert assistant.content is None
    assert isinstance(assistant.tool_calls, list)
    assert [c.id for c in assistant.tool_calls] == [m["tool_call_id"] for m in doc["messages"][3:]]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("tool_choice_none.json", "none"),
        ("tool_choice_required.json", "required"),
        (
            "tool_choice_named.json",
            ChatCompletionNamedToolChoice(
                type="function", function=FunctionName(name="extract_invoice")
            ),
        ),
        ("tools_tool_choice_auto.json", "auto"),
    ],
)
def test_tool_choice_forms(name: str, expected: Any) -> None:
    _, req = read(name)
    assert type(req.tool_choice) is type(expected)
    assert req.tool_choice == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("deprecated_functions_auto.json", "auto"),
        ("deprecated_function_call_none.json", "none"),
        (
            "deprecated_function_call_named.json",
            ChatCompletionFunctionCallOption(name="get_current_weather"),
        ),
    ],
)
def test_deprecated_function_call_forms(name: str, expected: Any) -> None:
    doc, req = read(name)
    assert type(req.function_call) is type(expected)
    assert req.function_call == expected
    assert isinstance(req.functions, list)
    assert [type(f) for f in req.functions] == [ChatCompletionFunctions] * len(doc["functions"])
    assert [f.name for f in req.functions] == [f["name"] for f in doc["functions"]]


def test_deprecated_function_messages() -> None:
    doc, req = read("deprecated_functions_auto.json")
    assistant, function = req.messages[1], req.messages[2]
    assert isinstance(assistant, ChatCompletionRequestAssistantMessage)
    assert assistant.function_call == FunctionCall(**doc["messages"][1]["function_call"])
    assert assistant.tool_calls is UNSET
    assert isinstance(function, ChatCompletionRequestFunctionMessage)
    assert function.content == doc["messages"][2]["content"]
    _, req = read("deprecated_function_call_none.json")
    null_function = req.messages[1]
    assert isinstance(null_function, ChatCompletionRequestFunctionMessage)
    assert null_function.content is None
    _, req = read("deprecated_function_call_named.json")
    assert isinstance(req.functions, list)
    assert req.functions[1] == ChatCompletionFunctions(name="get_time")


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("response_format_text.json", ResponseFormatText),
        ("response_format_json_object.json", ResponseFormatJsonObject),
        ("response_format_json_schema.json", ResponseFormatJsonSchemaFormat),
    ],
)
def test_response_format_kinds(name: str, cls: type[Any]) -> None:
    _, req = read(name)
    assert type(req.response_format) is cls


def test_response_format_json_schema() -> None:
    doc, req = read("response_format_json_schema.json")
    fmt = req.response_format
    assert isinstance(fmt, ResponseFormatJsonSchemaFormat)
    assert type(fmt.json_schema) is ResponseFormatJsonSchema
    wire = doc["response_format"]["json_schema"]
    assert fmt.json_schema.name == "calendar_event"
    assert fmt.json_schema.description == wire["description"]
    assert fmt.json_schema.strict is True
    assert fmt.json_schema.schema == wire["schema"]


def test_prediction_string_and_text_parts() -> None:
    doc, req = read("prediction_string.json")
    assert type(req.prediction) is PredictionContent
    assert req.prediction.content == doc["prediction"]["content"]
    doc, req = read("prediction_text_parts.json")
    assert isinstance(req.prediction, PredictionContent)
    assert req.prediction.content == [
        ChatCompletionRequestMessageContentPartText(text=p["text"])
        for p in doc["prediction"]["content"]
    ]


def test_audio_output_and_modalities() -> None:
    _, req = read("audio_output.json")
    assert req.modalities == ["text", "audio"]
    assert req.audio == ChatCompletionAudio(voice="coral", format="mp3")
    assert type(req.audio) is ChatCompletionAudio
    previous = req.messages[1]
    assert isinstance(previous, ChatCompletionRequestAssistantMessage)
    assert previous.audio == ChatCompletionRequestAssistantMessageAudio(
        id="audio_6772f2c0e4ec8190b1b6e5b2e5b0cf01"
    )
    assert previous.content is UNSET


def test_web_search_options() -> None:
    doc, req = read("web_search.json")
    options = req.web_search_options
    assert type(options) is WebSearchOptions
    assert options.search_context_size == "medium"
    assert type(options.user_location) is WebSearchUserLocation
    assert options.user_location.type == "approximate"
    assert options.user_location.approximate == WebSearchLocation(
        **doc["web_search_options"]["user_location"]["approximate"]
    )


def test_streaming_and_sampling_options() -> None:
    doc, req = read("streaming_sampling_options.json")
    assert req.stream is True
    assert req.stream_options == ChatCompletionStreamOptions(
        include_usage=True, include_obfuscation=False
    )
    assert req.stop == ["</answer>", "\nObservation:"]
    assert req.logit_bias == {"50256": -100.0, "1734": 5.0, "22174": -2.5}
    assert req.logprobs is True
    assert req.top_logprobs == 5
    assert req.n == 2
    assert req.seed == 424242
    assert req.presence_penalty == pytest.approx(0.6)
    assert req.frequency_penalty == pytest.approx(-0.5)
    assert req.top_p == pytest.approx(0.95)
    assert req.user == doc["user"]
    assert req.store is True
    assert req.metadata == doc["metadata"]


def test_stop_as_string() -> None:
    _, req = read("basic_string_content.json")
    assert req.stop == "\n\n"
    assert req.max_tokens == 256


@pytest.mark.parametrize(
    ("name", "effort", "tier"),
    [
        ("reasoning_options.json", "high", "flex"),
        ("gpt5_options.json", "minimal", "priority"),
        ("reasoning_content_echo.json", UNSET, "auto"),
    ],
)
def test_reasoning_effort_and_service_tier(name: str, effort: Any, tier: str) -> None:
    _, req = read(name)
    assert req.reasoning_effort == effort
    assert req.service_tier == tier


def test_reasoning_content_echoed_in_assistant_message() -> None:
    doc, req = read("reasoning_content_echo.json")
    assistant = req.messages[1]
    assert isinstance(assistant, ChatCompletionRequestAssistantMessage)
    assert assistant.reasoning_content == doc["messages"][1]["reasoning_content"]


def test_gpt5_options() -> None:
    doc, req = read("gpt5_options.json")
    assert req.verbosity == "low"
    assert req.prompt_cache_key == doc["prompt_cache_key"]
    assert req.safety_identifier == doc["safety_identifier"]


def test_bounds_are_inclusive() -> None:
    _, req = read("bounds.json")
    assert (req.temperature, req.top_p) == (2.0, 0.0)
    assert (req.frequency_penalty, req.presence_penalty) == (2.0, -2.0)
    assert (req.n, req.top_logprobs) == (128, 20)
    assert req.logit_bias == {"15339": 100.0, "50256": -100.0}
    assert isinstance(req.stop, list)
    assert len(req.stop) == 4
    assert (req.max_tokens, req.max_completion_tokens) == (0, 0)
    assert req.seed == -(2**63)


# --- UNSET, null and unknown keys ----------------------------------------------------------


def test_explicit_nulls_are_none_and_absent_fields_are_unset() -> None:
    doc, req = read("explicit_nulls.json")
    for field in msgspec.structs.fields(CreateChatCompletionRequest):
        value = getattr(req, field.name)
        if field.name not in doc:
            assert value is UNSET, field.name
        elif doc[field.name] is None:
            assert value is None, field.name
    assert req.stream is False
    assert req.web_search_options == WebSearchOptions(search_context_size=None, user_location=None)
    image = req.messages[0].content[1]
    assert isinstance(image, ChatCompletionRequestMessageContentPartImage)
    assert (image.image_url.detail, image.image_url.uuid) == (None, None)
    assistant = req.messages[1]
    assert isinstance(assistant, ChatCompletionRequestAssistantMessage)
    for name in ("content", "refusal", "audio", "function_call", "reasoning_content"):
        assert getattr(assistant, name) is None, name
    assert assistant.name is UNSET
    assert isinstance(req.tools, list)
    assert req.tools[0].function.strict is None
    assert req.tools[0].function.parameters is UNSET


def test_null_and_absent_encode_differently() -> None:
    req = decode_request(request_with(message("user", "Hi"), temperature=None))
    assert req.temperature is None
    assert req.top_p is UNSET
    encoded = json.loads(msgspec.json.encode(req))
    assert encoded["temperature"] is None
    assert "top_p" not in encoded
    assert set(encoded) == {"model", "messages", "temperature"}


def test_unknown_keys_are_ignored_at_every_level() -> None:
    doc, req = read("server_extensions.json")
    for key in ("top_k", "min_p", "repetition_penalty", "skip_special_tokens"):
        assert key in doc
        assert not hasattr(req, key)
    part = req.messages[1].content[0]
    assert part == ChatCompletionRequestMessageContentPartText(
        text=doc["messages"][1]["content"][0]["text"]
    )
    encoded = json.loads(msgspec.json.encode(req))
    assert "top_k" not in encoded
    assert "chat_template_kwargs" not in encoded
    assert "cache_control" not in encoded["messages"][1]["content"][0]


# The smallest valid object of each request type: only its required fields.
MINIMAL: list[tuple[type[Any], dict[str, Any]]] = [
    (CreateChatCompletionRequest, {"model": "m", "messages": [{"role": "user", "content": ""}]}),
    (ChatCompletionRequestDeveloperMessage, {"role": "developer", "content": ""}),
    (ChatCompletionRequestSystemMessage, {"role": "system", "content": ""}),
    (ChatCompletionRequestUserMessage, {"role": "user", "content": ""}),
    (ChatCompletionRequestAssistantMessage, {"role": "assistant"}),
    (ChatCompletionRequestToolMessage, {"role": "tool", "content": "", "tool_call_id": "c"}),
    (ChatCompletionRequestFunctionMessage, {"role": "function", "content": None, "name": "f"}),
    (ImageUrl, {"url": "https://e.com/a.png"}),
    (VideoUrl, {"url": "https://e.com/a.mp4"}),
    (AudioUrl, {"url": "https://e.com/a.mp3"}),
    (FunctionObject, {"name": "f"}),
    (ChatCompletionFunctions, {"name": "f"}),
    (ResponseFormatJsonSchema, {"name": "s"}),
    (ChatCompletionStreamOptions, {}),
    (WebSearchOptions, {}),
    (WebSearchLocation, {}),
]


@pytest.mark.parametrize(("kind", "doc"), MINIMAL, ids=[k.__name__ for k, _ in MINIMAL])
def test_absent_request_fields_are_unset(kind: type[Any], doc: dict[str, Any]) -> None:
    value = msgspec.json.decode(msgspec.json.encode(doc), type=kind)
    for field in msgspec.structs.fields(kind):
        if field.encode_name not in doc and field.name != "role":
            assert getattr(value, field.name) is UNSET, field.name
    assert json.loads(msgspec.json.encode(value)) == doc


# --- closed enums --------------------------------------------------------------------------

# Values the seeds and the API reference document for each closed enum.
ENUM_VALUES: list[tuple[str, list[Any], Any]] = [
    ("reasoning_effort", ["none", "minimal", "low", "medium", "high", "xhigh"], "extreme"),
    ("service_tier", ["auto", "default", "flex", "scale", "priority"], "on_demand"),
    ("verbosity", ["low", "medium", "high"], "verbose"),
    ("tool_choice", ["none", "auto", "required"], "any"),
    ("function_call", ["none", "auto"], "required"),
]


@pytest.mark.parametrize(("field", "values", "bad"), ENUM_VALUES)
def test_closed_enum_fields(field: str, values: list[Any], bad: Any) -> None:
    for value in values:
        req = decode_request(request_with(message("user", "Hi"), **{field: value}))
        assert getattr(req, field) == value
    for wrong in (bad, values[0].upper()):
        with pytest.raises(msgspec.ValidationError) as info:
            decode_request(request_with(message("user", "Hi"), **{field: wrong}))
        assert f"'{wrong}'" in str(info.value)
        assert str(info.value).endswith(f"- at `$.{field}`")


VOICES = ["alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"]
AUDIO_FORMATS = ["wav", "aac", "mp3", "flac", "opus", "pcm16"]


@pytest.mark.parametrize("voice", VOICES)
def test_audio_voices(voice: str) -> None:
    req = decode_request(
        request_with(message("user", "Hi"), audio={"voice": voice, "format": "wav"})
    )
    assert req.audio == ChatCompletionAudio(voice=voice, format="wav")


@pytest.mark.parametrize("fmt", AUDIO_FORMATS)
def test_audio_formats(fmt: str) -> None:
    req = decode_request(
        request_with(message("user", "Hi"), audio={"voice": "alloy", "format": fmt})
    )
    assert isinstance(req.audio, ChatCompletionAudio)
    assert req.audio.format == fmt


@pytest.mark.parametrize(
    ("part", "path"),
    [
        (
            {"type": "image_url", "image_url": {"url": "https://e.com/a.png", "detail": "medium"}},
            "$.messages[0].content[0].image_url.detail",
        ),
        (
            {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "flac"}},
            "$.messages[0].content[0].input_audio.format",
        ),
        (
            {"type": "video_url", "video_url": {"url": "https://e.com/a.mp4", "detail": "max"}},
            "$.messages[0].content[0].video_url.detail",
        ),
    ],
)
def test_closed_enums_inside_parts(part: dict[str, Any], path: str) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        decode_request(request_with(message("user", [part])))
    assert str(info.value).endswith(f"- at `{path}`")


@pytest.mark.parametrize("detail", ["auto", "low", "high"])
def test_image_details(detail: str) -> None:
    part = {"type": "image_url", "image_url": {"url": "https://e.com/a.png", "detail": detail}}
    msg = decode_request(request_with(message("user", [part]))).messages[0]
    assert msg.content == [
        ChatCompletionRequestMessageContentPartImage(
            image_url=ImageUrl(url="https://e.com/a.png", detail=detail)
        )
    ]


# --- invalid documents ---------------------------------------------------------------------


def test_manifest_lists_every_invalid_document() -> None:
    files = {p.name for p in INVALID.glob("*.json")} - {"MANIFEST.json"}
    assert files == set(MANIFEST)
    for name, entry in MANIFEST.items():
        assert entry["type"] in ALL_INVALID_TYPES, name
        assert entry["type"] in streamspec.__all__, name
        assert entry["path"].startswith("$"), name


@pytest.mark.parametrize("name", invalid_documents(INVALID_TYPES))
def test_invalid_request_document_names_its_path(name: str) -> None:
    check_invalid(name)
