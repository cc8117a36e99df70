"""Pieces shared by requests, responses and stream chunks.

Open enumerations are exported as ``Literal`` aliases naming the documented
values; lenient types store them as plain ``str`` so that a server sending a
value outside the list (``"eos"``, ``"on_demand"``) still decodes.
"""

from __future__ import annotations

from typing import Literal

from msgspec import UNSET, UnsetType

from ._base import LenientStruct

__all__ = [
    "ChatCompletionMessageToolCall",
    "ChatCompletionTokenLogprob",
    "ChatChoiceLogprobs",
    "ChatCompletionToolType",
    "CompletionTokensDetails",
    "CompletionUsage",
    "ErrorObject",
    "ErrorResponse",
    "FinishReason",
    "FunctionCall",
    "PromptTokensDetails",
    "Role",
    "ServiceTier",
    "ServiceTierResponse",
    "TopLogprobs",
]

Role = Literal["developer", "system", "user", "assistant", "tool", "function"]
"""The ``role`` of a message author."""

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]
"""Documented ``finish_reason`` values of a chat choice. Servers send others."""

ServiceTier = Literal["auto", "default", "flex", "scale", "priority"]
"""``service_tier`` a request may ask for."""

ServiceTierResponse = Literal["auto", "default", "flex", "scale", "priority"]
"""Documented ``service_tier`` values echoed by a response. Servers send others."""

ChatCompletionToolType = Literal["function"]
"""The ``type`` of a tool. Only ``"function"`` is documented."""


class FunctionCall(LenientStruct, kw_only=True):
    """A complete function call: ``{"name": "get_weather", "arguments": "{\\"city\\":...}"}``.

    ``arguments`` is the JSON text the model generated, not parsed: it may be
    invalid JSON.
    """

    name: str
    arguments: str


class ChatCompletionMessageToolCall(LenientStruct, kw_only=True):
    """A complete tool call in a message: ``{"id", "type": "function", "function"}``.

    ``type`` is kept as an open string (absent on some servers' output).
    """

    id: str
    function: FunctionCall
    type: str | UnsetType = UNSET


class PromptTokensDetails(LenientStruct, kw_only=True):
    """``usage.prompt_tokens_details``: ``{"cached_tokens": 0, "audio_tokens": 0}``."""

    audio_tokens: int | UnsetType | None = UNSET
    cached_tokens: int | UnsetType | None = UNSET


class CompletionTokensDetails(LenientStruct, kw_only=True):
    """``usage.completion_tokens_details``: reasoning, audio and prediction token counts."""

    accepted_prediction_tokens: int | UnsetType | None = UNSET
    audio_tokens: int | UnsetType | None = UNSET
    reasoning_tokens: int | UnsetType | None = UNSET
    rejected_prediction_tokens: int | UnsetType | None = UNSET


class CompletionUsage(LenientStruct, kw_only=True):
    """Token usage: ``{"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}``.

    Lenient like the rest of a chunk: a count the server left out reads as
    :data:`msgspec.UNSET` and is never derived from the others (relays that sum
    usage drop ``total_tokens``; add the parts yourself if you need it). A
    count that is not an integer does not fit; the chunk decoder's salvage step
    reads an integral float (``12.0``) as ``12`` and drops any other value
    (``12.5``, ``"12"``, ``null``) to UNSET, with a note. Either details
    object may be absent or ``null``. Extension keys (``cost``, Groq's float
    timings, ``prompt_cache_hit_tokens``) are ignored.
    """

    prompt_tokens: int | UnsetType = UNSET
    completion_tokens: int | UnsetType = UNSET
    total_tokens: int | UnsetType = UNSET
    prompt_tokens_details: PromptTokensDetails | UnsetType | None = UNSET
    completion_tokens_details: CompletionTokensDetails | UnsetType | None = UNSET


class TopLogprobs(LenientStruct, kw_only=True):
    """One alternative token: ``{"token": " the", "logprob": -0.01, "bytes": [32, ...]}``."""

    token: str
    logprob: float
    bytes: list[int] | UnsetType | None = UNSET


class ChatCompletionTokenLogprob(LenientStruct, kw_only=True):
    """A sampled token with its log probability and the most likely alternatives.

    ``bytes`` is absent on some servers (TGI); ``top_logprobs`` may be absent.
    """

    token: str
    logprob: float
    bytes: list[int] | UnsetType | None = UNSET
    top_logprobs: list[TopLogprobs] | UnsetType = UNSET


class ChatChoiceLogprobs(LenientStruct, kw_only=True):
    """``choices[].logprobs``: ``{"content": [...], "refusal": null}``."""

    content: list[ChatCompletionTokenLogprob] | UnsetType | None = UNSET
    refusal: list[ChatCompletionTokenLogprob] | UnsetType | None = UNSET


class ErrorObject(LenientStruct, kw_only=True):
    """The error object servers send: ``{"message", "type", "param", "code"}``.

    ``code`` is a string or null on OpenAI, an integer on vLLM. TGI and
    Xinference send a bare string instead of this object; the decoder wraps it
    here with ``message`` set to that string.
    """

    message: str = ""
    type: str | UnsetType | None = UNSET
    param: str | UnsetType | None = UNSET
    code: str | int | UnsetType | None = UNSET


class ErrorResponse(LenientStruct, kw_only=True):
    """The body of an HTTP error response: ``{"error": {...}}``."""

    error: ErrorObject
