"""Static type checks, run by ``mypy --strict`` (see tests/test_typing.py), never executed.

Each ``assert_type`` states the type a user's checker must infer; mypy fails the
run when the inferred type differs.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import msgspec
from msgspec import UnsetType

import streamspec
from streamspec import (
    ChatChoice,
    ChatChoiceStream,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessageToolCallChunk,
    ChatCompletionRequestMessage,
    ChatCompletionRequestUserMessage,
    ChatCompletionRequestUserMessageContentPart,
    ChatCompletionStreamContentBlock,
    ChatCompletionStreamResponseDelta,
    ChatCompletionToolChoiceOption,
    ChunkDecoder,
    CompletionUsage,
    CreateChatCompletionRequest,
    CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse,
    CreateCompletionRequest,
    ErrorObject,
    Prompt,
    Stop,
    aiter_chunks,
    iter_chunks,
)

if sys.version_info >= (3, 11):
    from typing import assert_type
else:
    from typing_extensions import assert_type


class MySlimStruct(msgspec.Struct):
    """A projection holding only what a gateway needs."""

    id: str = ""
    usage: CompletionUsage | None = None


def check_chunk_decoder() -> None:
    assert_type(ChunkDecoder(), ChunkDecoder[CreateChatCompletionStreamResponse])
    assert_type(ChunkDecoder().feed(b""), list[CreateChatCompletionStreamResponse])
    assert_type(ChunkDecoder().close(), list[CreateChatCompletionStreamResponse])
    assert_type(ChunkDecoder(max_event_size=1024).feed(b""), list[ChatCompletionChunk])
    assert_type(ChunkDecoder(MySlimStruct), ChunkDecoder[MySlimStruct])
    assert_type(ChunkDecoder(MySlimStruct).feed(b""), list[MySlimStruct])
    assert_type(ChunkDecoder(MySlimStruct, require_done=True).close(), list[MySlimStruct])
    decoder = ChunkDecoder(CreateChatCompletionStreamResponse)
    assert_type(decoder, ChunkDecoder[CreateChatCompletionStreamResponse])
    assert_type(decoder.done, bool)
    assert_type(decoder.events, int)
    assert_type(decoder.bytes_consumed, int)


def check_salvage(
    delta: ChatCompletionStreamResponseDelta, block: ChatCompletionStreamContentBlock
) -> None:
    seen: list[streamspec.SalvageNote] = []
    decoder = ChunkDecoder(salvage=True, on_salvage=seen.append)
    assert_type(decoder, ChunkDecoder[CreateChatCompletionStreamResponse])
    assert_type(ChunkDecoder(MySlimStruct, salvage=False), ChunkDecoder[MySlimStruct])
    log = decoder.salvaged
    assert_type(log, streamspec.SalvageLog)
    assert_type(log.events, int)
    assert_type(log.values, int)
    assert_type(log.notes, list[streamspec.SalvageNote])
    note = log.notes[0]
    assert_type(note.event, int | None)
    assert_type(note.path, str)
    assert_type(note.action, Literal["dropped", "converted"])
    assert_type(
        streamspec.salvage(b"{}"),
        tuple[CreateChatCompletionStreamResponse, list[streamspec.SalvageNote]],
    )
    assert_type(
        streamspec.salvage(b"{}", MySlimStruct), tuple[MySlimStruct, list[streamspec.SalvageNote]]
    )
    assert_type(streamspec.reasoning_text(delta), str)
    assert_type(streamspec.content_text(block), str)
    assert_type(streamspec.error_report(False), ErrorObject | None)
    if isinstance(block.thinking, list):
        assert_type(block.thinking[0].text, str | UnsetType)


def check_iter_chunks(source: list[bytes]) -> None:
    assert_type(iter_chunks(source), Iterator[CreateChatCompletionStreamResponse])
    assert_type(iter_chunks(iter(source)), Iterator[CreateChatCompletionStreamResponse])
    assert_type(iter_chunks(source, MySlimStruct), Iterator[MySlimStruct])
    assert_type(iter_chunks(source, require_done=True), Iterator[ChatCompletionChunk])
    for chunk in iter_chunks(source):
        assert_type(chunk, CreateChatCompletionStreamResponse)
    for slim in iter_chunks(source, MySlimStruct):
        assert_type(slim, MySlimStruct)


async def check_aiter_chunks(source: AsyncIterator[bytes]) -> None:
    assert_type(aiter_chunks(source), AsyncIterator[CreateChatCompletionStreamResponse])
    assert_type(aiter_chunks(source, MySlimStruct), AsyncIterator[MySlimStruct])
    async for chunk in aiter_chunks(source):
        assert_type(chunk, CreateChatCompletionStreamResponse)
    async for slim in aiter_chunks(source, MySlimStruct):
        assert_type(slim, MySlimStruct)


def check_chunk_fields(chunk: CreateChatCompletionStreamResponse) -> None:
    assert_type(chunk.id, str | UnsetType)
    assert_type(chunk.object, str | UnsetType)
    assert_type(chunk.created, int | UnsetType)
    assert_type(chunk.choices, list[ChatChoiceStream])
    assert_type(chunk.usage, CompletionUsage | UnsetType | None)
    assert_type(chunk.service_tier, str | UnsetType | None)
    assert_type(chunk.error, ErrorObject | str | bool | int | float | list[Any] | UnsetType | None)
    choice = chunk.choices[0]
    assert_type(choice.index, int)
    assert_type(choice.finish_reason, str | UnsetType | None)
    assert_type(choice.delta, ChatCompletionStreamResponseDelta)
    delta = choice.delta
    assert_type(delta.content, str | list[ChatCompletionStreamContentBlock] | UnsetType | None)
    assert_type(delta.reasoning_content, str | UnsetType | None)
    assert_type(delta.reasoning, str | UnsetType | None)
    assert_type(delta.tool_calls, list[ChatCompletionMessageToolCallChunk] | UnsetType | None)
    if isinstance(delta.tool_calls, list):
        call = delta.tool_calls[0]
        assert_type(call.index, int | UnsetType)
        assert_type(call.id, str | UnsetType | None)


def check_response_fields(resp: CreateChatCompletionResponse) -> None:
    assert_type(resp, ChatCompletion)
    assert_type(resp.choices, list[ChatChoice])
    message = resp.choices[0].message
    assert_type(message.content, str | list[ChatCompletionStreamContentBlock] | UnsetType | None)
    assert_type(message.role, str | UnsetType)
    assert_type(resp.usage, CompletionUsage | UnsetType | None)
    if isinstance(resp.usage, CompletionUsage):
        assert_type(resp.usage.total_tokens, int | UnsetType)
        assert_type(
            resp.usage.prompt_tokens_details, streamspec.PromptTokensDetails | UnsetType | None
        )


def check_request_fields(raw: bytes) -> None:
    req = msgspec.json.decode(raw, type=CreateChatCompletionRequest)
    assert_type(req, CreateChatCompletionRequest)
    assert_type(req.messages, list[ChatCompletionRequestMessage])
    assert_type(req.model, str)
    assert_type(req.temperature, float | UnsetType | None)
    assert_type(req.n, int | UnsetType | None)
    assert_type(req.stop, Stop | UnsetType | None)
    assert_type(req.tool_choice, ChatCompletionToolChoiceOption | UnsetType)
    assert_type(req.reasoning_effort, streamspec.ReasoningEffort | UnsetType | None)
    assert_type(req.service_tier, streamspec.ServiceTier | UnsetType | None)
    assert_type(req.verbosity, Literal["low", "medium", "high"] | UnsetType | None)
    message = req.messages[0]
    if isinstance(message, ChatCompletionRequestUserMessage):
        assert_type(message.content, str | list[ChatCompletionRequestUserMessageContentPart])
        assert_type(message.name, str | UnsetType)


def check_completion_request(raw: bytes) -> None:
    req = msgspec.json.decode(raw, type=CreateCompletionRequest)
    assert_type(req.prompt, Prompt)
    assert_type(req.echo, bool | UnsetType | None)


def check_aliases() -> None:
    assert_type(ChatCompletionChunk(), CreateChatCompletionStreamResponse)
    assert_type(streamspec.Completion(choices=[]), streamspec.CreateCompletionResponse)
