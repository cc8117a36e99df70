"""Accumulation: streamed chunks in, one complete ``chat.completion`` out.

:func:`accumulate` folds a whole stream; :class:`ChunkAccumulator` does the same
one chunk at a time and can show the response so far (:meth:`ChunkAccumulator.snapshot`).
Both return a :class:`~streamspec.CreateChatCompletionResponse`, as if the
request had been made with ``stream: false``.

The rules follow what real servers send (see the fixtures this package is
tested against):

* Choices are keyed by ``index``, not by position: with ``n > 1`` the chunks
  interleave. The result lists choices sorted by index.
* ``content`` and ``refusal`` are concatenated. ``content`` given as a list of
  typed blocks contributes its ``text`` blocks.
* Reasoning comes from ``reasoning_content``, else ``reasoning`` (a delta that
  carries both is counted once), else from ``thinking`` content blocks, whose
  ``thinking`` is a string or a list of text parts (Magistral), as
  :func:`streamspec.reasoning_text` reads them. It is stored in the result
  message's ``reasoning_content``; ``reasoning`` is left :data:`msgspec.UNSET`.
* Tool-call fragments are grouped by ``index``, or by ``id`` when a fragment
  has no index (Gemini sends whole calls told apart by id); a fragment with
  neither continues the latest call. Calls keep their order of first
  appearance. ``id``, ``type`` and ``function.name`` take the first non-empty
  value (a repeated or ``null`` value neither duplicates nor erases it);
  ``function.arguments`` fragments are concatenated in order.
* ``logprobs.content`` and ``logprobs.refusal`` lists are concatenated.
* ``finish_reason`` is the last non-empty value (chunks may follow the
  finishing one; ``""`` means none). ``usage`` is the last usage object seen,
  never a sum, as the server sent it: a count it left out stays
  :data:`msgspec.UNSET` (never derived from the others). ``role`` is the first
  non-empty value, ``"assistant"`` by default.
* ``id``, ``model`` and ``created`` take the first non-empty value;
  ``system_fingerprint`` and ``service_tier`` the last non-null one.
  ``object`` is ``"chat.completion"``.
* A field no chunk carried stays :data:`msgspec.UNSET`; a field servers only
  ever sent as ``null`` is ``None``. Nothing else is invented, except where
  the result type requires a value: a tool call whose ``id`` or
  ``function.name`` never arrived gets ``""``, and streamed audio lacking
  ``id`` or ``expires_at`` gets ``""`` or ``0``.

Work is linear in the size of the stream: pieces of text are collected in
lists and joined once per :meth:`~ChunkAccumulator.result` or
:meth:`~ChunkAccumulator.snapshot` call, never per chunk.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from typing import Any, overload

from msgspec import UNSET, UnsetType

from .types.common import (
    ChatChoiceLogprobs,
    ChatCompletionMessageToolCall,
    ChatCompletionTokenLogprob,
    CompletionUsage,
    FunctionCall,
)
from .types.completions import CreateCompletionResponse
from .types.response import (
    ChatChoice,
    ChatCompletionResponseMessage,
    ChatCompletionResponseMessageAudio,
    CreateChatCompletionResponse,
)
from .types.stream import (
    EMPTY_DELTA,
    ChatCompletionMessageToolCallChunk,
    ChatCompletionStreamResponseDelta,
    ChatCompletionStreamResponseDeltaAudio,
    CreateChatCompletionStreamResponse,
    FunctionCallStream,
    reasoning_text,
)

__all__ = ["ChunkAccumulator", "accumulate"]


def _joined(parts: list[str]) -> str:
    """Join ``parts`` and keep the result as the only part, so a later join only adds the rest."""
    if len(parts) == 1:
        return parts[0]
    text = "".join(parts)
    parts[:] = (text,)
    return text


def _text(parts: list[str], null: bool) -> str | UnsetType | None:
    """A text field's value: the joined pieces, ``None`` if only null was seen, else UNSET."""
    if parts:
        return _joined(parts)
    return None if null else UNSET


class _ToolCall:
    """One tool call (or the legacy ``function_call``) being assembled from fragments."""

    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self) -> None:
        self.id = ""
        self.type = ""
        self.name = ""
        self.arguments: list[str] = []

    def add_function(self, function: FunctionCallStream) -> None:
        """Take ``function.name`` (first non-empty) and append ``function.arguments``."""
        if not self.name:
            name = function.name
            if name:
                self.name = name
        arguments = function.arguments
        if arguments:
            self.arguments.append(arguments)

    def function(self) -> FunctionCall:
        """The complete function call so far."""
        return FunctionCall(name=self.name, arguments=_joined(self.arguments))

    def result(self) -> ChatCompletionMessageToolCall:
        """The complete tool call so far."""
        return ChatCompletionMessageToolCall(
            id=self.id, type=self.type or UNSET, function=self.function()
        )


class _Audio:
    """An audio response being assembled: ``data`` and ``transcript`` are concatenated."""

    __slots__ = ("data", "expires_at", "id", "transcript")

    def __init__(self) -> None:
        self.id = ""
        self.expires_at = 0
        self.data: list[str] = []
        self.transcript: list[str] = []

    def add(self, audio: ChatCompletionStreamResponseDeltaAudio) -> None:
        if not self.id and audio.id:
            self.id = audio.id
        if isinstance(audio.expires_at, int):
            self.expires_at = audio.expires_at
        if audio.data:
            self.data.append(audio.data)
        if audio.transcript:
            self.transcript.append(audio.transcript)

    def result(self) -> ChatCompletionResponseMessageAudio:
        return ChatCompletionResponseMessageAudio(
            id=self.id,
            expires_at=self.expires_at,
            data=_joined(self.data),
            transcript=_joined(self.transcript),
        )


class _Choice:
    """The state of one choice (one ``index``) while its chunks arrive."""

    __slots__ = (
        "audio",
        "audio_null",
        "by_id",
        "by_index",
        "content",
        "content_null",
        "finish_reason",
        "function_call",
        "function_call_null",
        "index",
        "logprobs",
        "logprobs_content",
        "logprobs_content_null",
        "logprobs_refusal",
        "logprobs_refusal_null",
        "reasoning",
        "reasoning_null",
        "refusal",
        "refusal_null",
        "role",
        "tool_calls",
        "tool_calls_null",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.role = ""
        self.content: list[str] = []
        self.content_null = False
        self.reasoning: list[str] = []
        self.reasoning_null = False
        self.refusal: list[str] = []
        self.refusal_null = False
        self.finish_reason: str | UnsetType | None = UNSET
        # None until a delta carries ``tool_calls``; then the calls in order of first appearance.
        self.tool_calls: list[_ToolCall] | None = None
        self.tool_calls_null = False
        self.by_index: dict[object, _ToolCall] = {}
        self.by_id: dict[str, _ToolCall] = {}
        self.function_call: _ToolCall | None = None
        self.function_call_null = False
        self.audio: _Audio | None = None
        self.audio_null = False
        # UNSET: no logprobs key seen; None: only null seen; True: an object seen.
        self.logprobs: bool | UnsetType | None = UNSET
        self.logprobs_content: list[ChatCompletionTokenLogprob] = []
        self.logprobs_content_null: bool | UnsetType = UNSET
        self.logprobs_refusal: list[ChatCompletionTokenLogprob] = []
        self.logprobs_refusal_null: bool | UnsetType = UNSET

    # -- the less common parts of a delta, off the hot path ------------------------------------

    def add_other(self, delta: ChatCompletionStreamResponseDelta) -> None:
        """Take a delta's role, reasoning, refusal, legacy function call and audio."""
        if not self.role:
            role = delta.role
            if role:
                self.role = role
        reasoning = delta.reasoning_content
        if reasoning:
            self.reasoning.append(reasoning)
        else:
            other = delta.reasoning
            if other:
                self.reasoning.append(other)
            elif reasoning == "" or other == "":
                self.reasoning.append("")
            elif reasoning is None or other is None:
                self.reasoning_null = True
        refusal = delta.refusal
        if refusal.__class__ is str:
            self.refusal.append(refusal)
        elif refusal is None:
            self.refusal_null = True
        function_call = delta.function_call
        if function_call is not UNSET:
            if function_call is None:
                self.function_call_null = True
            else:
                if self.function_call is None:
                    self.function_call = _ToolCall()
                self.function_call.add_function(function_call)
        audio = delta.audio
        if audio is not UNSET:
            if audio is None:
                self.audio_null = True
            else:
                if self.audio is None:
                    self.audio = _Audio()
                self.audio.add(audio)

    def add_tool_calls(self, fragments: Iterable[ChatCompletionMessageToolCallChunk]) -> None:
        """Merge tool-call fragments: by ``index``, else by ``id``, else into the latest call."""
        calls = self.tool_calls
        if calls is None:
            calls = self.tool_calls = []
        by_index = self.by_index
        by_id = self.by_id
        for fragment in fragments:
            index = fragment.index
            call_id = fragment.id
            call: _ToolCall | None
            if index.__class__ is int:
                try:
                    call = by_index[index]
                except KeyError:
                    call = by_index[index] = _ToolCall()
                    calls.append(call)
            elif call_id:
                call = by_id.get(call_id)
                if call is None:
                    call = _ToolCall()
                    calls.append(call)
            elif calls:
                call = calls[-1]
            else:
                call = _ToolCall()
                calls.append(call)
            if call_id and not call.id:
                call.id = call_id
                by_id.setdefault(call_id, call)
            if not call.type:
                kind = fragment.type
                if kind:
                    call.type = kind
            function = fragment.function
            if function:
                if not call.name:
                    name = function.name
                    if name:
                        call.name = name
                arguments = function.arguments
                if arguments:
                    call.arguments.append(arguments)

    def note_tool_calls(self, value: list[ChatCompletionMessageToolCallChunk] | None) -> None:
        """Record ``tool_calls`` that carried no fragment: ``[]`` or ``null``."""
        if value is None:
            self.tool_calls_null = True
        elif self.tool_calls is None:
            self.tool_calls = []

    def add_content(self, content: Any, delta: ChatCompletionStreamResponseDelta) -> None:
        """Take non-string ``content``: ``null``, or a list of typed blocks."""
        if content is None:
            self.content_null = True
            return
        # Thinking blocks are reasoning, unless the delta also names its reasoning.
        thinking = not (delta.reasoning_content or delta.reasoning)
        for block in content:
            kind = block.type
            if kind == "text":
                if block.text.__class__ is str:
                    self.content.append(block.text)
            elif kind == "thinking" and thinking:
                text = reasoning_text(block)  # a string, or a list of text parts (Magistral)
                if text:
                    self.reasoning.append(text)

    def add_logprobs(self, logprobs: ChatChoiceLogprobs) -> None:
        """Concatenate ``logprobs.content`` and ``logprobs.refusal``."""
        self.logprobs = True
        content = logprobs.content
        if content:
            self.logprobs_content.extend(content)
        elif content is not UNSET and self.logprobs_content_null is UNSET:
            self.logprobs_content_null = content is None
        refusal = logprobs.refusal
        if refusal:
            self.logprobs_refusal.extend(refusal)
        elif refusal is not UNSET and self.logprobs_refusal_null is UNSET:
            self.logprobs_refusal_null = refusal is None

    # -- output --------------------------------------------------------------------------------

    def result(self) -> ChatChoice:
        tool_calls: list[ChatCompletionMessageToolCall] | UnsetType | None
        if self.tool_calls is not None:
            tool_calls = [call.result() for call in self.tool_calls]
        else:
            tool_calls = None if self.tool_calls_null else UNSET
        function_call: FunctionCall | UnsetType | None
        if self.function_call is not None:
            function_call = self.function_call.function()
        else:
            function_call = None if self.function_call_null else UNSET
        audio: ChatCompletionResponseMessageAudio | UnsetType | None
        if self.audio is not None:
            audio = self.audio.result()
        else:
            audio = None if self.audio_null else UNSET
        message = ChatCompletionResponseMessage(
            role=self.role or "assistant",
            content=_text(self.content, self.content_null),
            refusal=_text(self.refusal, self.refusal_null),
            tool_calls=tool_calls,
            function_call=function_call,
            audio=audio,
            reasoning_content=_text(self.reasoning, self.reasoning_null),
        )
        logprobs: ChatChoiceLogprobs | UnsetType | None = self.logprobs  # type: ignore[assignment]
        if self.logprobs:
            logprobs = ChatChoiceLogprobs(
                content=self._logprob_list(self.logprobs_content, self.logprobs_content_null),
                refusal=self._logprob_list(self.logprobs_refusal, self.logprobs_refusal_null),
            )
        return ChatChoice(
            index=self.index,
            message=message,
            finish_reason=self.finish_reason,
            logprobs=logprobs,
        )

    @staticmethod
    def _logprob_list(
        items: list[ChatCompletionTokenLogprob], null: bool | UnsetType
    ) -> list[ChatCompletionTokenLogprob] | UnsetType | None:
        if items:
            return list(items)
        if null is UNSET:
            return UNSET
        return None if null else []


class ChunkAccumulator:
    """Folds stream chunks, one :meth:`add` at a time, into a complete response.

    ``add(chunk)`` takes each :class:`~streamspec.CreateChatCompletionStreamResponse`
    in stream order (as :class:`~streamspec.ChunkDecoder` returns them);
    ``extend(chunks)`` takes several at once (a decoder's ``feed()`` result).
    ``result()`` and ``snapshot()`` return the
    :class:`~streamspec.CreateChatCompletionResponse` built from the chunks
    added so far (see :mod:`streamspec.accumulate` for the rules). Both may be
    called any number of times, mid-stream or at the end. Each call builds new
    response, choice and message objects (``usage`` and logprob entries are the
    chunks' own objects); text pieces are joined once per call, never per
    chunk.

    ``chunks`` counts the chunks added.
    """

    __slots__ = (
        "_choices",
        "_created",
        "_fingerprint",
        "_head_pending",
        "_id",
        "_model",
        "_service_tier",
        "_usage",
        "chunks",
    )

    def __init__(self) -> None:
        self._choices: dict[int, _Choice] = {}
        self._id: str | UnsetType = UNSET
        self._model: str | UnsetType = UNSET
        self._created: int | UnsetType = UNSET
        self._head_pending = True  # id, model or created still lacks a non-empty value
        self._fingerprint: str | UnsetType | None = UNSET
        self._service_tier: str | UnsetType | None = UNSET
        self._usage: CompletionUsage | UnsetType | None = UNSET
        self.chunks = 0

    def add(self, chunk: CreateChatCompletionStreamResponse) -> None:
        """Fold one chunk into the response."""
        self.extend((chunk,))

    def extend(self, chunks: Iterable[CreateChatCompletionStreamResponse]) -> None:
        """Fold chunks, in stream order, into the response: ``add()`` for each, only faster."""
        unset = UNSET
        empty = EMPTY_DELTA
        text = str
        choices = self._choices
        fingerprint = self._fingerprint
        tier = self._service_tier
        usage = self._usage
        head_pending = self._head_pending
        count = 0
        try:
            for chunk in chunks:
                count += 1
                if head_pending:
                    head_pending = self._take_head(chunk)
                # system_fingerprint, service_tier: the last non-null value ("" counts).
                value: Any = chunk.system_fingerprint
                if value or (value is not unset and (value is not None or fingerprint is unset)):
                    fingerprint = value
                value = chunk.service_tier
                if value or (value is not unset and (value is not None or tier is unset)):
                    tier = value
                value = chunk.usage
                if value:
                    usage = value
                elif value is None and usage is unset:
                    usage = None
                for choice in chunk.choices:
                    try:
                        state = choices[choice.index]
                    except KeyError:
                        state = choices[choice.index] = _Choice(choice.index)
                    delta = choice.delta
                    if delta is not empty:
                        content: Any = delta.content
                        if content.__class__ is text:
                            state.content.append(content)
                        elif content is not unset:
                            state.add_content(content, delta)
                        tool_calls = delta.tool_calls
                        if tool_calls:
                            for fragment in tool_calls:
                                # Most fragments only continue a call's arguments.
                                function = fragment.function
                                if (
                                    function
                                    and fragment.id is unset
                                    and fragment.type is unset
                                    and function.name is unset
                                ):
                                    call = state.by_index.get(fragment.index)
                                    if call is not None:
                                        arguments = function.arguments
                                        if arguments:
                                            call.arguments.append(arguments)
                                        continue
                                state.add_tool_calls((fragment,))
                        elif tool_calls is not unset:
                            state.note_tool_calls(tool_calls)
                        if not (
                            delta.reasoning_content is unset
                            and delta.reasoning is unset
                            and delta.role is unset
                            and delta.refusal is unset
                            and delta.function_call is unset
                            and delta.audio is unset
                        ):
                            state.add_other(delta)
                    value = choice.finish_reason
                    if value:
                        state.finish_reason = value
                    elif state.finish_reason is unset and value is not unset:
                        state.finish_reason = None  # null or "": seen, but no reason yet
                    value = choice.logprobs
                    if value:
                        state.add_logprobs(value)
                    elif value is None and state.logprobs is unset:
                        state.logprobs = None
        finally:
            self.chunks += count
            self._fingerprint = fingerprint
            self._service_tier = tier
            self._usage = usage

    def _take_head(self, chunk: CreateChatCompletionStreamResponse) -> bool:
        """``id``, ``model``, ``created``: the first non-empty value, else the first value.

        Returns whether one of them still lacks a non-empty value.
        """
        if not self._id and chunk.id is not UNSET:
            self._id = chunk.id
        if not self._model and chunk.model is not UNSET:
            self._model = chunk.model
        if not self._created and chunk.created is not UNSET:
            self._created = chunk.created
        self._head_pending = not (self._id and self._model and self._created)
        return self._head_pending

    def result(self) -> CreateChatCompletionResponse:
        """The response accumulated from every chunk added so far."""
        return CreateChatCompletionResponse(
            id=self._id,
            object="chat.completion",
            created=self._created,
            model=self._model,
            choices=[self._choices[index].result() for index in sorted(self._choices)],
            service_tier=self._service_tier,
            system_fingerprint=self._fingerprint,
            usage=self._usage,
        )

    def snapshot(self) -> CreateChatCompletionResponse:
        """A mid-stream view: the same as :meth:`result`, for the chunks added so far.

        Cheap enough to call after every chunk of a live stream: it joins the
        pieces of text once, and an earlier call's joined text is reused as one
        piece.
        """
        return self.result()


@overload
def accumulate(
    chunks: Iterable[CreateChatCompletionStreamResponse],
) -> CreateChatCompletionResponse: ...


@overload
def accumulate(chunks: Iterable[CreateCompletionResponse]) -> CreateCompletionResponse: ...


def accumulate(
    chunks: Iterable[CreateChatCompletionStreamResponse] | Iterable[CreateCompletionResponse],
) -> CreateChatCompletionResponse | CreateCompletionResponse:
    """Fold a stream's chunks into the complete response a non-streamed request returns.

    ``chunks`` is any iterable of decoded chunks (for example
    :func:`streamspec.iter_chunks` over the response bytes). Returns a
    :class:`~streamspec.CreateChatCompletionResponse`; see
    :mod:`streamspec.accumulate` for how each field is combined. Legacy
    ``text_completion`` chunks (:class:`~streamspec.CreateCompletionResponse`)
    give a :class:`~streamspec.CreateCompletionResponse` instead (see
    :mod:`streamspec.accumulate_completions`); the first chunk decides.
    """
    iterator = iter(chunks)
    first = next(iterator, None)
    if isinstance(first, CreateCompletionResponse):
        from .accumulate_completions import accumulate_completions

        return accumulate_completions(chain((first,), iterator))  # type: ignore[arg-type]
    accumulator = ChunkAccumulator()
    if first is not None:
        accumulator.extend(chain((first,), iterator))  # type: ignore[arg-type]
    return accumulator.result()
