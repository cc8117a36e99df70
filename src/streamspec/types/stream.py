"""Streaming chunks: one ``CreateChatCompletionStreamResponse`` per SSE ``data:`` event.

A typical OpenAI event on the wire::

    data: {"id":"chatcmpl-...","object":"chat.completion.chunk","created":1758037512,
           "model":"gpt-4o-2024-08-06","system_fingerprint":"fp_...","choices":[{"index":0,
           "delta":{"content":" the"},"logprobs":null,"finish_reason":null}],"usage":null}

Every type here is lenient: see :mod:`streamspec.types._base`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, cast

from msgspec import UNSET, UnsetType

from ._base import FrozenLenientStruct, LenientStruct
from .common import ChatChoiceLogprobs, CompletionUsage, ErrorObject

__all__ = [
    "ChatChoiceStream",
    "ChatCompletionChunk",
    "ChatCompletionResponseStream",
    "ChatCompletionMessageToolCallChunk",
    "ChatCompletionStreamContentBlock",
    "ChatCompletionStreamThinkingPart",
    "ChatCompletionStreamResponseDelta",
    "ChatCompletionStreamResponseDeltaAudio",
    "CreateChatCompletionStreamResponse",
    "CreateChatCompletionStreamResponseChoices",
    "FunctionCallStream",
    "content_text",
    "reasoning_text",
]


class FunctionCallStream(LenientStruct, kw_only=True):
    """A fragment of a function call: ``{"name": "get_weather", "arguments": "{\\"ci"}``.

    The first fragment usually carries ``name``; later ones carry pieces of
    ``arguments`` to concatenate. vLLM omits ``arguments`` on the first
    fragment; SGLang repeats ``"name": null``.
    """

    name: str | UnsetType | None = UNSET
    arguments: str | UnsetType | None = UNSET


class ChatCompletionMessageToolCallChunk(LenientStruct, kw_only=True):
    """A tool call fragment: ``{"index": 0, "id": "call_...", "function": {...}}``.

    ``index`` identifies the call across fragments; Gemini omits it and tells
    calls apart by ``id``. ``id`` and ``type`` appear on the first fragment (TGI
    repeats them; SGLang sends ``null``; Mistral omits ``type``).
    """

    index: int | UnsetType = UNSET
    id: str | UnsetType | None = UNSET
    type: str | UnsetType | None = UNSET
    function: FunctionCallStream | UnsetType | None = UNSET


class ChatCompletionStreamThinkingPart(LenientStruct, kw_only=True):
    """One part of a thinking block's ``thinking`` list: ``{"type": "text", "text": "Okay"}``.

    Mistral's Magistral models stream reasoning this way. Parts of another
    ``type`` decode and are ignored by :func:`reasoning_text`.
    """

    type: str | UnsetType = UNSET
    text: str | UnsetType = UNSET


class ChatCompletionStreamContentBlock(LenientStruct, kw_only=True):
    """A typed content block some servers send in ``delta.content`` instead of a string.

    ``{"type": "text", "text": "Hi"}`` is content. A thinking block is
    reasoning, its text given as a string (relays of Claude:
    ``{"type": "thinking", "thinking": "Let me see"}``) or as a list of text
    parts (Magistral: ``{"type": "thinking", "thinking": [{"type": "text",
    "text": "Okay"}]}``). Other block types decode with their ``type`` and are
    otherwise ignored. :func:`content_text` and :func:`reasoning_text` read a
    block's text.
    """

    type: str
    text: str | UnsetType = UNSET
    thinking: str | list[ChatCompletionStreamThinkingPart] | UnsetType = UNSET


class ChatCompletionStreamResponseDeltaAudio(LenientStruct, kw_only=True):
    """A fragment of an audio response (``modalities: ["audio"]``)."""

    id: str | UnsetType = UNSET
    data: str | UnsetType = UNSET
    transcript: str | UnsetType = UNSET
    expires_at: int | UnsetType = UNSET


class ChatCompletionStreamResponseDelta(FrozenLenientStruct, kw_only=True, frozen=True):
    """What a chunk adds to a choice's message: ``{"role": "assistant", "content": "Hi"}``.

    Every field may be absent (``{}`` on finish chunks) or ``null``. ``content``
    may also be a list of :class:`ChatCompletionStreamContentBlock`. Reasoning
    text arrives as ``reasoning_content`` (DeepSeek, SGLang, llama.cpp) or
    ``reasoning`` (vLLM 0.11+, Ollama, Groq, OpenRouter), both modelled, or
    as thinking blocks in ``content`` (Magistral, relays of Claude).
    :func:`reasoning_text` and :func:`content_text` give a delta's reasoning
    and content text, each counted once.

    Deltas are frozen: one shared empty instance stands for an absent ``delta``.
    Use :func:`msgspec.structs.replace` to derive a modified delta.
    """

    role: str | UnsetType | None = UNSET
    content: str | list[ChatCompletionStreamContentBlock] | UnsetType | None = UNSET
    reasoning_content: str | UnsetType | None = UNSET
    reasoning: str | UnsetType | None = UNSET
    refusal: str | UnsetType | None = UNSET
    tool_calls: list[ChatCompletionMessageToolCallChunk] | UnsetType | None = UNSET
    function_call: FunctionCallStream | UnsetType | None = UNSET
    audio: ChatCompletionStreamResponseDeltaAudio | UnsetType | None = UNSET


EMPTY_DELTA = ChatCompletionStreamResponseDelta()
"""The delta an absent ``delta`` key decodes to; omitted again when encoding."""


class ChatChoiceStream(LenientStruct, kw_only=True):
    """One choice of a chunk: ``{"index": 0, "delta": {...}, "finish_reason": null}``.

    ``index`` is the choice's identity, not its position: with ``n > 1`` OpenAI
    sends one choice per chunk and the indexes interleave. ``finish_reason`` is
    an open string (``"eos"``, ``"abort"``, ``""``...); see
    :data:`streamspec.FinishReason` for the documented values. An absent
    ``delta`` reads as an empty one.
    """

    index: int
    delta: ChatCompletionStreamResponseDelta = EMPTY_DELTA
    finish_reason: str | UnsetType | None = UNSET
    logprobs: ChatChoiceLogprobs | UnsetType | None = UNSET


NO_CHOICES = cast("list[ChatChoiceStream]", ())
"""What an absent ``choices`` key decodes to: empty, and omitted again when encoding."""


class CreateChatCompletionStreamResponse(LenientStruct, kw_only=True):
    """A streamed chunk of a chat completion (``"object": "chat.completion.chunk"``).

    Servers blank or omit ``id``, ``object``, ``model`` and ``created``; those
    read as :data:`msgspec.UNSET` when absent. ``choices`` is ``[]`` on usage
    chunks and Azure's prompt-filter chunk, and reads as an empty sequence when
    absent. ``usage`` is ``null`` or absent except on the chunks that carry it.
    Extension keys (``obfuscation``, ``x_groq``, ``prompt_filter_results``...)
    are ignored.

    ``error`` holds whatever the payload's ``error`` member was: an
    :class:`ErrorObject` when a server reports an error inside a chunk
    (OpenRouter) or as the whole payload (``{"error": {...}}``), a plain string
    (TGI), and also ``false``, ``0``, ``[]`` or ``{}``, which some relays put in
    normal chunks. Only an error report makes :class:`streamspec.ChunkDecoder`
    raise :class:`streamspec.StreamError`: a non-blank string, ``true``, or an
    object carrying a non-empty ``message``, ``type`` or ``code`` (see
    :func:`streamspec.error_report`).
    """

    id: str | UnsetType = UNSET
    object: str | UnsetType = UNSET
    created: int | UnsetType = UNSET
    model: str | UnsetType = UNSET
    choices: list[ChatChoiceStream] = NO_CHOICES
    service_tier: str | UnsetType | None = UNSET
    system_fingerprint: str | UnsetType | None = UNSET
    usage: CompletionUsage | UnsetType | None = UNSET
    error: ErrorObject | str | bool | int | float | list[Any] | UnsetType | None = UNSET


ChatCompletionChunk = CreateChatCompletionStreamResponse
"""The openai-python name of :class:`CreateChatCompletionStreamResponse`."""

CreateChatCompletionStreamResponseChoices = ChatChoiceStream
"""The generated OpenAPI name of a chunk's choice: :class:`ChatChoiceStream`."""

ChatCompletionResponseStream = AsyncIterator[CreateChatCompletionStreamResponse]
"""A stream of chunks, as :func:`streamspec.aiter_chunks` yields them."""


# -- the text a delta carries -------------------------------------------------------------------


def _thinking(block: ChatCompletionStreamContentBlock) -> str:
    """The text of a thinking block: its ``thinking`` string, or its text parts joined."""
    thinking = block.thinking
    if isinstance(thinking, str):
        return thinking
    if isinstance(thinking, list):
        return "".join(
            [
                part.text
                for part in thinking
                if isinstance(part.text, str) and (part.type == "text" or part.type is UNSET)
            ]
        )
    return ""


class _Texts(Protocol):
    """What carries text: a delta, or a complete response's message."""

    @property
    def content(self) -> str | list[ChatCompletionStreamContentBlock] | UnsetType | None: ...

    @property
    def reasoning_content(self) -> str | UnsetType | None: ...

    @property
    def reasoning(self) -> str | UnsetType | None: ...


def reasoning_text(item: _Texts | ChatCompletionStreamContentBlock) -> str:
    """The reasoning text a delta, a message or one content block carries; ``""`` if none.

    For a delta (or a response's message): ``reasoning_content``, else
    ``reasoning`` (one carrying both counts once), else its thinking blocks in
    ``content``. A thinking
    block's text is its ``thinking`` string, or the ``text`` of its parts
    joined (Magistral; parts whose ``type`` is other than ``"text"`` are
    skipped). Blocks of other types carry no reasoning.
    """
    if isinstance(item, ChatCompletionStreamContentBlock):
        return _thinking(item) if item.type == "thinking" else ""
    named = item.reasoning_content or item.reasoning
    if named:
        return named
    content = item.content
    if isinstance(content, list):
        return "".join([_thinking(block) for block in content if block.type == "thinking"])
    return ""


def content_text(item: _Texts | ChatCompletionStreamContentBlock) -> str:
    """The content text a delta, a message or one content block carries; ``""`` if none.

    ``content`` as a string, or the ``text`` of its ``"text"`` blocks joined.
    Thinking blocks are reasoning, not content: see :func:`reasoning_text`.
    """
    if isinstance(item, ChatCompletionStreamContentBlock):
        return item.text if item.type == "text" and isinstance(item.text, str) else ""
    content = item.content
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join([b.text for b in content if b.type == "text" and isinstance(b.text, str)])
    return ""
