"""Chat completion requests (``POST /v1/chat/completions`` bodies), validated strictly.

Messages are a union tagged by ``role``; content parts are unions tagged by
``type``, one union per role as the API defines it. Decoding bad input raises
:class:`msgspec.ValidationError` with the JSON path, for example
``Invalid value 'robot' - at `$.messages[0].role```. Unknown keys are ignored,
so server-specific parameters (``top_k``, ``chat_template_kwargs``) pass
through validation without being kept.

Where the Rust transcription these names come from and the live wire format
differ, these types follow the wire (noted on each type).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, Union

from msgspec import UNSET, Meta, UnsetType

from ._base import StrictStruct
from .common import ChatCompletionMessageToolCall, FunctionCall, ServiceTier

__all__ = [
    "AudioUrl",
    "ChatCompletionAudio",
    "ChatCompletionAudioFormat",
    "ChatCompletionAudioVoice",
    "ChatCompletionFunctionCall",
    "ChatCompletionFunctionCallOption",
    "ChatCompletionFunctions",
    "ChatCompletionModalities",
    "ChatCompletionNamedToolChoice",
    "ChatCompletionRequestAssistantMessage",
    "ChatCompletionRequestAssistantMessageAudio",
    "ChatCompletionRequestAssistantMessageContent",
    "ChatCompletionRequestAssistantMessageContentPart",
    "ChatCompletionRequestDeveloperMessage",
    "ChatCompletionRequestDeveloperMessageContent",
    "ChatCompletionRequestFunctionMessage",
    "ChatCompletionRequestMessage",
    "ChatCompletionRequestMessageContentPartAudio",
    "ChatCompletionRequestMessageContentPartAudioUrl",
    "ChatCompletionRequestMessageContentPartImage",
    "ChatCompletionRequestMessageContentPartRefusal",
    "ChatCompletionRequestMessageContentPartText",
    "ChatCompletionRequestMessageContentPartVideo",
    "ChatCompletionRequestSystemMessage",
    "ChatCompletionRequestSystemMessageContent",
    "ChatCompletionRequestSystemMessageContentPart",
    "ChatCompletionRequestToolMessage",
    "ChatCompletionRequestToolMessageContent",
    "ChatCompletionRequestToolMessageContentPart",
    "ChatCompletionRequestUserMessage",
    "ChatCompletionRequestUserMessageContent",
    "ChatCompletionRequestUserMessageContentPart",
    "ChatCompletionStreamOptions",
    "ChatCompletionTool",
    "ChatCompletionToolChoiceOption",
    "CreateChatCompletionRequest",
    "FunctionName",
    "FunctionObject",
    "ImageDetail",
    "ImageUrl",
    "InputAudio",
    "InputAudioFormat",
    "PredictionContent",
    "PredictionContentContent",
    "ReasoningEffort",
    "ResponseFormat",
    "ResponseFormatJsonObject",
    "ResponseFormatJsonSchema",
    "ResponseFormatJsonSchemaFormat",
    "ResponseFormatText",
    "Stop",
    "VideoUrl",
    "WebSearchContextSize",
    "WebSearchLocation",
    "WebSearchOptions",
    "WebSearchUserLocation",
    "WebSearchUserLocationType",
]

ImageDetail = Literal["auto", "low", "high"]
InputAudioFormat = Literal["wav", "mp3"]
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
ChatCompletionModalities = Literal["text", "audio"]
ChatCompletionAudioVoice = Literal[
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer",
    "verse", "marin", "cedar",
]  # fmt: skip
ChatCompletionAudioFormat = Literal["wav", "aac", "mp3", "flac", "opus", "pcm16"]
WebSearchContextSize = Literal["low", "medium", "high"]
WebSearchUserLocationType = Literal["approximate"]

Stop = Union[str, Annotated[list[str], Meta(max_length=4)]]  # noqa: UP007
"""``stop``: one sequence or up to four."""

# --- content parts (tagged by "type") ---------------------------------------------------------


class ChatCompletionRequestMessageContentPartText(
    StrictStruct, tag_field="type", tag="text", kw_only=True
):
    """``{"type": "text", "text": "..."}``.

    Also used for developer, system, tool and prediction parts: the Rust
    transcription drops ``type`` there, but the wire carries ``"type": "text"``.
    """

    text: str


class ChatCompletionRequestMessageContentPartRefusal(
    StrictStruct, tag_field="type", tag="refusal", kw_only=True
):
    """``{"type": "refusal", "refusal": "..."}`` in an assistant message."""

    refusal: str


class ImageUrl(StrictStruct, kw_only=True):
    """``{"url": "https://..." | "data:image/png;base64,...", "detail": "auto", "uuid": ...}``."""

    url: str
    detail: ImageDetail | UnsetType | None = UNSET
    uuid: uuid.UUID | UnsetType | None = UNSET


class VideoUrl(StrictStruct, kw_only=True):
    """``{"url": ..., "detail": ..., "uuid": ...}`` of a video part."""

    url: str
    detail: ImageDetail | UnsetType | None = UNSET
    uuid: uuid.UUID | UnsetType | None = UNSET


class AudioUrl(StrictStruct, kw_only=True):
    """``{"url": ..., "uuid": ...}`` of an audio URL part."""

    url: str
    uuid: uuid.UUID | UnsetType | None = UNSET


class InputAudio(StrictStruct, kw_only=True):
    """``{"data": <base64>, "format": "wav" | "mp3"}``."""

    data: str
    format: InputAudioFormat


class ChatCompletionRequestMessageContentPartImage(
    StrictStruct, tag_field="type", tag="image_url", kw_only=True
):
    """``{"type": "image_url", "image_url": {...}}``."""

    image_url: ImageUrl


class ChatCompletionRequestMessageContentPartVideo(
    StrictStruct, tag_field="type", tag="video_url", kw_only=True
):
    """``{"type": "video_url", "video_url": {...}}``."""

    video_url: VideoUrl


class ChatCompletionRequestMessageContentPartAudioUrl(
    StrictStruct, tag_field="type", tag="audio_url", kw_only=True
):
    """``{"type": "audio_url", "audio_url": {...}}``."""

    audio_url: AudioUrl


class ChatCompletionRequestMessageContentPartAudio(
    StrictStruct, tag_field="type", tag="input_audio", kw_only=True
):
    """``{"type": "input_audio", "input_audio": {"data": ..., "format": ...}}``."""

    input_audio: InputAudio


ChatCompletionRequestUserMessageContentPart = Union[  # noqa: UP007
    ChatCompletionRequestMessageContentPartText,
    ChatCompletionRequestMessageContentPartImage,
    ChatCompletionRequestMessageContentPartVideo,
    ChatCompletionRequestMessageContentPartAudioUrl,
    ChatCompletionRequestMessageContentPartAudio,
]
ChatCompletionRequestAssistantMessageContentPart = Union[  # noqa: UP007
    ChatCompletionRequestMessageContentPartText,
    ChatCompletionRequestMessageContentPartRefusal,
]
ChatCompletionRequestSystemMessageContentPart = ChatCompletionRequestMessageContentPartText
ChatCompletionRequestToolMessageContentPart = ChatCompletionRequestMessageContentPartText

ChatCompletionRequestDeveloperMessageContent = Union[  # noqa: UP007
    str, list[ChatCompletionRequestMessageContentPartText]
]
ChatCompletionRequestSystemMessageContent = Union[  # noqa: UP007
    str, list[ChatCompletionRequestSystemMessageContentPart]
]
ChatCompletionRequestUserMessageContent = Union[  # noqa: UP007
    str, list[ChatCompletionRequestUserMessageContentPart]
]
ChatCompletionRequestAssistantMessageContent = Union[  # noqa: UP007
    str, list[ChatCompletionRequestAssistantMessageContentPart]
]
ChatCompletionRequestToolMessageContent = Union[  # noqa: UP007
    str, list[ChatCompletionRequestToolMessageContentPart]
]

# --- messages (tagged by "role") --------------------------------------------------------------


class ChatCompletionRequestDeveloperMessage(
    StrictStruct, tag_field="role", tag="developer", kw_only=True
):
    """``{"role": "developer", "content": "..." | [text parts], "name": ...}``."""

    content: ChatCompletionRequestDeveloperMessageContent
    name: str | UnsetType = UNSET


class ChatCompletionRequestSystemMessage(
    StrictStruct, tag_field="role", tag="system", kw_only=True
):
    """``{"role": "system", "content": "..." | [text parts], "name": ...}``."""

    content: ChatCompletionRequestSystemMessageContent
    name: str | UnsetType = UNSET


class ChatCompletionRequestUserMessage(StrictStruct, tag_field="role", tag="user", kw_only=True):
    """``{"role": "user", "content": "..." | [parts]}``.

    Parts: text, image_url, input_audio, video_url and audio_url.
    """

    content: ChatCompletionRequestUserMessageContent
    name: str | UnsetType = UNSET


class ChatCompletionRequestAssistantMessageAudio(StrictStruct, kw_only=True):
    """``{"id": ...}``: a previous audio response referenced by id."""

    id: str


class ChatCompletionRequestAssistantMessage(
    StrictStruct, tag_field="role", tag="assistant", kw_only=True
):
    """``{"role": "assistant", "content": ..., "tool_calls": [...], ...}``.

    ``content`` may be null or absent when ``tool_calls`` or ``function_call``
    is given. ``reasoning_content`` echoes a previous turn's reasoning back to
    servers that accept it.
    """

    content: ChatCompletionRequestAssistantMessageContent | UnsetType | None = UNSET
    refusal: str | UnsetType | None = UNSET
    name: str | UnsetType = UNSET
    audio: ChatCompletionRequestAssistantMessageAudio | UnsetType | None = UNSET
    tool_calls: list[ChatCompletionMessageToolCall] | UnsetType = UNSET
    function_call: FunctionCall | UnsetType | None = UNSET
    reasoning_content: str | UnsetType | None = UNSET


class ChatCompletionRequestToolMessage(StrictStruct, tag_field="role", tag="tool", kw_only=True):
    """``{"role": "tool", "content": ..., "tool_call_id": "call_..."}``."""

    content: ChatCompletionRequestToolMessageContent
    tool_call_id: str


class ChatCompletionRequestFunctionMessage(
    StrictStruct, tag_field="role", tag="function", kw_only=True
):
    """Deprecated ``{"role": "function", "content": ... | null, "name": ...}``."""

    content: str | None
    name: str


ChatCompletionRequestMessage = Union[  # noqa: UP007
    ChatCompletionRequestDeveloperMessage,
    ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage,
    ChatCompletionRequestAssistantMessage,
    ChatCompletionRequestToolMessage,
    ChatCompletionRequestFunctionMessage,
]
"""A message of the conversation, tagged by ``role``."""

# --- tools ------------------------------------------------------------------------------------


class FunctionObject(StrictStruct, kw_only=True):
    """``{"name", "description", "parameters": <JSON Schema>, "strict"}``."""

    name: str
    description: str | UnsetType = UNSET
    parameters: dict[str, Any] | UnsetType = UNSET
    strict: bool | UnsetType | None = UNSET


class ChatCompletionTool(StrictStruct, kw_only=True):
    """``{"type": "function", "function": {...}}``."""

    type: Literal["function"]
    function: FunctionObject


class FunctionName(StrictStruct, kw_only=True):
    """``{"name": "get_weather"}``."""

    name: str


class ChatCompletionNamedToolChoice(StrictStruct, kw_only=True):
    """``{"type": "function", "function": {"name": ...}}``: force one tool."""

    type: Literal["function"]
    function: FunctionName


ChatCompletionToolChoiceOption = Union[  # noqa: UP007
    Literal["none", "auto", "required"], ChatCompletionNamedToolChoice
]
"""``tool_choice``: ``"none"``, ``"auto"``, ``"required"`` or a named tool."""


class ChatCompletionFunctions(StrictStruct, kw_only=True):
    """Deprecated ``functions[]`` entry: ``{"name", "description", "parameters"}``."""

    name: str
    description: str | UnsetType = UNSET
    parameters: dict[str, Any] | UnsetType = UNSET


class ChatCompletionFunctionCallOption(StrictStruct, kw_only=True):
    """``{"name": ...}``: force one function (deprecated ``function_call``)."""

    name: str


ChatCompletionFunctionCall = Union[  # noqa: UP007
    Literal["none", "auto"], ChatCompletionFunctionCallOption
]
"""Deprecated ``function_call``: ``"none"``, ``"auto"`` or ``{"name": ...}``."""

# --- response formats (tagged by "type") ------------------------------------------------------


class ResponseFormatJsonSchema(StrictStruct, kw_only=True):
    """The ``json_schema`` object: ``{"name", "description", "schema", "strict"}``."""

    name: str
    description: str | UnsetType = UNSET
    schema: dict[str, Any] | UnsetType = UNSET
    strict: bool | UnsetType | None = UNSET


class ResponseFormatText(StrictStruct, tag_field="type", tag="text", kw_only=True):
    """``{"type": "text"}``."""


class ResponseFormatJsonObject(StrictStruct, tag_field="type", tag="json_object", kw_only=True):
    """``{"type": "json_object"}``: JSON mode."""


class ResponseFormatJsonSchemaFormat(
    StrictStruct, tag_field="type", tag="json_schema", kw_only=True
):
    """``{"type": "json_schema", "json_schema": {...}}``: Structured Outputs."""

    json_schema: ResponseFormatJsonSchema


ResponseFormat = Union[  # noqa: UP007
    ResponseFormatText, ResponseFormatJsonObject, ResponseFormatJsonSchemaFormat
]
"""``response_format``, tagged by ``type``."""

# --- other request options --------------------------------------------------------------------

PredictionContentContent = Union[  # noqa: UP007
    str, list[ChatCompletionRequestMessageContentPartText]
]


class PredictionContent(StrictStruct, tag_field="type", tag="content", kw_only=True):
    """``{"type": "content", "content": "..." | [text parts]}`` (Predicted Outputs).

    Text parts carry ``"type": "text"`` on the wire.
    """

    content: PredictionContentContent


class ChatCompletionAudio(StrictStruct, kw_only=True):
    """``audio``: ``{"voice": "alloy", "format": "wav"}``."""

    voice: ChatCompletionAudioVoice
    format: ChatCompletionAudioFormat


class ChatCompletionStreamOptions(StrictStruct, kw_only=True):
    """``stream_options``: ``{"include_usage": true}``."""

    include_usage: bool | UnsetType | None = UNSET
    include_obfuscation: bool | UnsetType | None = UNSET


class WebSearchLocation(StrictStruct, kw_only=True):
    """``{"country": "US", "region", "city", "timezone"}``, all optional."""

    country: str | UnsetType | None = UNSET
    region: str | UnsetType | None = UNSET
    city: str | UnsetType | None = UNSET
    timezone: str | UnsetType | None = UNSET


class WebSearchUserLocation(StrictStruct, kw_only=True):
    """``{"type": "approximate", "approximate": {...}}``."""

    type: WebSearchUserLocationType
    approximate: WebSearchLocation


class WebSearchOptions(StrictStruct, kw_only=True):
    """``web_search_options``: ``{"search_context_size", "user_location"}``."""

    search_context_size: WebSearchContextSize | UnsetType | None = UNSET
    user_location: WebSearchUserLocation | UnsetType | None = UNSET


Penalty = Annotated[float, Meta(ge=-2.0, le=2.0)]
LogitBias = dict[str, Annotated[float, Meta(ge=-100, le=100)]]


class CreateChatCompletionRequest(StrictStruct, kw_only=True):
    """The body of ``POST /v1/chat/completions``.

    Required: ``messages`` (at least one) and ``model``. Every other field is
    optional and may be ``null``; numeric ranges follow the API reference.
    ``mm_processor_kwargs`` is a multimodal-server extension passed through as is.
    ``verbosity`` (``"low"``, ``"medium"``, ``"high"``), ``prompt_cache_key`` and
    ``safety_identifier`` are API fields the Rust transcription lacks.
    """

    messages: Annotated[list[ChatCompletionRequestMessage], Meta(min_length=1)]
    model: str
    store: bool | UnsetType | None = UNSET
    reasoning_effort: ReasoningEffort | UnsetType | None = UNSET
    metadata: dict[str, str] | UnsetType | None = UNSET
    frequency_penalty: Penalty | UnsetType | None = UNSET
    logit_bias: LogitBias | UnsetType | None = UNSET
    logprobs: bool | UnsetType | None = UNSET
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | UnsetType | None = UNSET
    max_tokens: Annotated[int, Meta(ge=0)] | UnsetType | None = UNSET
    max_completion_tokens: Annotated[int, Meta(ge=0)] | UnsetType | None = UNSET
    n: Annotated[int, Meta(ge=1, le=128)] | UnsetType | None = UNSET
    modalities: list[ChatCompletionModalities] | UnsetType | None = UNSET
    prediction: PredictionContent | UnsetType | None = UNSET
    audio: ChatCompletionAudio | UnsetType | None = UNSET
    presence_penalty: Penalty | UnsetType | None = UNSET
    response_format: ResponseFormat | UnsetType | None = UNSET
    seed: int | UnsetType | None = UNSET
    service_tier: ServiceTier | UnsetType | None = UNSET
    stop: Stop | UnsetType | None = UNSET
    stream: bool | UnsetType | None = UNSET
    stream_options: ChatCompletionStreamOptions | UnsetType | None = UNSET
    temperature: Annotated[float, Meta(ge=0.0, le=2.0)] | UnsetType | None = UNSET
    top_p: Annotated[float, Meta(ge=0.0, le=1.0)] | UnsetType | None = UNSET
    tools: list[ChatCompletionTool] | UnsetType = UNSET
    tool_choice: ChatCompletionToolChoiceOption | UnsetType = UNSET
    parallel_tool_calls: bool | UnsetType | None = UNSET
    user: str | UnsetType = UNSET
    web_search_options: WebSearchOptions | UnsetType | None = UNSET
    function_call: ChatCompletionFunctionCall | UnsetType = UNSET
    functions: list[ChatCompletionFunctions] | UnsetType = UNSET
    mm_processor_kwargs: dict[str, Any] | UnsetType | None = UNSET
    verbosity: Literal["low", "medium", "high"] | UnsetType | None = UNSET
    prompt_cache_key: str | UnsetType | None = UNSET
    safety_identifier: str | UnsetType | None = UNSET
