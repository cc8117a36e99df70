"""Non-streamed chat completion responses (``"object": "chat.completion"``).

Lenient like stream chunks: see :mod:`streamspec.types._base`.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, UnsetType

from ._base import LenientStruct
from .common import (
    ChatChoiceLogprobs,
    ChatCompletionMessageToolCall,
    CompletionUsage,
    FunctionCall,
)
from .stream import ChatCompletionStreamContentBlock

__all__ = [
    "ChatChoice",
    "ChatCompletion",
    "ChatCompletionResponseMessage",
    "ChatCompletionResponseMessageAudio",
    "CreateChatCompletionResponse",
]


class ChatCompletionResponseMessageAudio(LenientStruct, kw_only=True):
    """Audio output: ``{"id", "expires_at", "data": <base64>, "transcript"}``."""

    id: str
    expires_at: int
    data: str
    transcript: str


class ChatCompletionResponseMessage(LenientStruct, kw_only=True):
    """The message a choice carries: ``{"role": "assistant", "content": "...", ...}``.

    ``reasoning_content`` and ``reasoning`` hold reasoning text under either
    name servers use. ``content`` is a string, or (Mistral's Magistral models)
    a list of typed blocks, the same :class:`ChatCompletionStreamContentBlock`
    that streamed deltas carry: thinking blocks then text blocks;
    :func:`streamspec.reasoning_text` and :func:`streamspec.content_text` read
    either. ``annotations`` (URL citations) are kept as raw objects.
    """

    role: str | UnsetType = UNSET
    content: str | list[ChatCompletionStreamContentBlock] | UnsetType | None = UNSET
    refusal: str | UnsetType | None = UNSET
    tool_calls: list[ChatCompletionMessageToolCall] | UnsetType | None = UNSET
    function_call: FunctionCall | UnsetType | None = UNSET
    audio: ChatCompletionResponseMessageAudio | UnsetType | None = UNSET
    reasoning_content: str | UnsetType | None = UNSET
    reasoning: str | UnsetType | None = UNSET
    annotations: list[dict[str, Any]] | UnsetType | None = UNSET


class ChatChoice(LenientStruct, kw_only=True):
    """One choice: ``{"index": 0, "message": {...}, "finish_reason": "stop", "logprobs": null}``."""

    index: int
    message: ChatCompletionResponseMessage
    finish_reason: str | UnsetType | None = UNSET
    logprobs: ChatChoiceLogprobs | UnsetType | None = UNSET


class CreateChatCompletionResponse(LenientStruct, kw_only=True):
    """A complete chat completion, as returned with ``stream: false``."""

    id: str | UnsetType = UNSET
    object: str | UnsetType = UNSET
    created: int | UnsetType = UNSET
    model: str | UnsetType = UNSET
    choices: list[ChatChoice]
    service_tier: str | UnsetType | None = UNSET
    system_fingerprint: str | UnsetType | None = UNSET
    usage: CompletionUsage | UnsetType | None = UNSET


ChatCompletion = CreateChatCompletionResponse
"""The openai-python name of :class:`CreateChatCompletionResponse`."""
