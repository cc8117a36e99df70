"""Legacy completions streams: ``text_completion`` chunks in, one complete completion out.

``POST /v1/completions`` with ``"stream": true`` sends chunks of the same
shape as the whole response, each choice carrying the next piece of ``text``::

    data: {"id":"cmpl-1","object":"text_completion","created":1741003300,"model":"m",
           "choices":[{"index":0,"text":" Paris","logprobs":null,"finish_reason":null}]}
    data: {"id":"cmpl-1",...,"choices":[{"index":0,"text":"","finish_reason":"length"}]}
    data: {"id":"cmpl-1",...,"choices":[],"usage":{"prompt_tokens":5,...}}
    data: [DONE]

Decode them with ``ChunkDecoder(CreateCompletionResponse)``;
:func:`accumulate_completions` (or :class:`CompletionAccumulator`, one chunk at
a time) folds them into the :class:`~streamspec.CreateCompletionResponse` a
non-streamed request returns. :func:`streamspec.accumulate` calls it when the
chunks are legacy ones. The rules mirror the chat accumulator's:

* choices are keyed by ``index`` (``n > 1`` interleaves) and listed sorted;
* ``text`` pieces are concatenated;
* ``logprobs``: the parallel lists ``tokens``, ``token_logprobs``,
  ``top_logprobs`` and ``text_offset`` are concatenated (servers send
  ``text_offset`` counted from the start of the text, so it needs no shift);
  a chunk whose ``top_logprobs`` is ``null`` contributes one ``null`` per
  token, so the lists stay parallel;
* ``finish_reason`` is the last non-empty value, ``usage`` the last usage
  object (never a sum), ``system_fingerprint`` the last non-null value;
* ``id``, ``model`` and ``created`` take the first non-empty value;
  ``object`` is ``"text_completion"``.

A field no chunk carried stays :data:`msgspec.UNSET`; one only ever sent as
``null`` is ``None``. Work is linear in the size of the stream.

:func:`stream_kind` tells a chat stream from a legacy one by its first chunk
(``"object"``, or whether its choices carry ``delta`` or ``text``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from .types.common import CompletionUsage
from .types.completions import Choice, CreateCompletionResponse, Logprobs

__all__ = [
    "CompletionAccumulator",
    "StreamKind",
    "accumulate_completions",
    "stream_kind",
]

StreamKind = Literal["chat", "completions"]
"""``"chat"``: ``chat.completion.chunk`` chunks; ``"completions"``: legacy ``text_completion``."""

_decode_any = msgspec.json.Decoder().decode


def stream_kind(chunk: Any) -> StreamKind | None:
    """The kind of stream ``chunk`` belongs to, or None when it does not say.

    ``chunk`` is a decoded chunk (a Struct), a JSON object already decoded to a
    ``dict``, or an event's data (``bytes``/``str``). ``"object"`` decides when
    it is ``"text_completion"`` or ``"chat.completion.chunk"``; otherwise a
    choice with ``delta`` means chat and one with ``text`` means completions.
    A chunk with no choices and no ``object`` (a usage chunk, an error) says
    nothing: look at the next one.
    """
    from .types.stream import CreateChatCompletionStreamResponse

    if isinstance(chunk, CreateCompletionResponse):
        return "completions"
    if isinstance(chunk, CreateChatCompletionStreamResponse):
        return "chat"
    if isinstance(chunk, (bytes, bytearray, memoryview, str)):
        try:
            chunk = _decode_any(chunk)
        except msgspec.DecodeError:
            return None
    if not isinstance(chunk, dict):
        return None
    kind = chunk.get("object")
    if kind == "text_completion":
        return "completions"
    if kind in ("chat.completion.chunk", "chat.completion"):
        return "chat"
    choices = chunk.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if isinstance(choice, dict):
                if "delta" in choice or "message" in choice:
                    return "chat"
                if "text" in choice:
                    return "completions"
    return None


class _Parallel:
    """One of the parallel logprob lists, assembled from the chunks' pieces."""

    __slots__ = ("items", "listed", "null")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.listed = False  # a chunk sent a list
        self.null = False  # a chunk sent null

    def add(self, value: Any, padding: int = 0) -> None:
        if value is UNSET:
            return
        if value is None:
            self.null = True
            self.items.extend([None] * padding)
        else:
            self.listed = True
            self.items.extend(value)

    def result(self) -> Any:
        if self.listed:
            return list(self.items)
        return None if self.null else UNSET


class _Choice:
    """The state of one legacy choice (one ``index``) while its chunks arrive."""

    __slots__ = (
        "finish_reason",
        "index",
        "logprobs",
        "text",
        "text_offset",
        "token_logprobs",
        "tokens",
        "top_logprobs",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.text: list[str] = []
        self.finish_reason: str | UnsetType | None = UNSET
        # UNSET: no logprobs key seen; None: only null seen; True: an object seen.
        self.logprobs: bool | UnsetType | None = UNSET
        self.tokens = _Parallel()
        self.token_logprobs = _Parallel()
        self.top_logprobs = _Parallel()
        self.text_offset = _Parallel()

    def add_logprobs(self, logprobs: Logprobs) -> None:
        self.logprobs = True
        tokens = logprobs.tokens
        self.tokens.add(tokens)
        self.token_logprobs.add(logprobs.token_logprobs)
        count = len(tokens) if isinstance(tokens, list) else 0
        self.top_logprobs.add(logprobs.top_logprobs, count)
        self.text_offset.add(logprobs.text_offset)

    def result(self) -> Choice:
        logprobs: Logprobs | UnsetType | None
        if self.logprobs is True:
            logprobs = Logprobs(
                tokens=self.tokens.result(),
                token_logprobs=self.token_logprobs.result(),
                top_logprobs=self.top_logprobs.result(),
                text_offset=self.text_offset.result(),
            )
        else:
            logprobs = self.logprobs  # type: ignore[assignment]
        text = "".join(self.text)
        self.text[:] = [text] if text else []
        return Choice(
            text=text,
            index=self.index,
            logprobs=logprobs,
            finish_reason=self.finish_reason,
        )


class CompletionAccumulator:
    """Folds legacy completion chunks, one :meth:`add` at a time, into a complete response.

    ``add(chunk)`` takes each :class:`~streamspec.CreateCompletionResponse`
    chunk in stream order; ``extend(chunks)`` several. ``result()`` (or
    ``snapshot()`` mid-stream) returns the
    :class:`~streamspec.CreateCompletionResponse` built from the chunks so far
    (see :mod:`streamspec.accumulate_completions` for the rules). ``chunks``
    counts the chunks added.
    """

    __slots__ = ("_choices", "_created", "_fingerprint", "_id", "_model", "_usage", "chunks")

    def __init__(self) -> None:
        self._choices: dict[int, _Choice] = {}
        self._id: str | UnsetType = UNSET
        self._model: str | UnsetType = UNSET
        self._created: int | UnsetType = UNSET
        self._fingerprint: str | UnsetType | None = UNSET
        self._usage: CompletionUsage | UnsetType | None = UNSET
        self.chunks = 0

    def add(self, chunk: CreateCompletionResponse) -> None:
        """Fold one chunk into the response."""
        self.chunks += 1
        if not self._id and chunk.id is not UNSET:
            self._id = chunk.id
        if not self._model and chunk.model is not UNSET:
            self._model = chunk.model
        if not self._created and chunk.created is not UNSET:
            self._created = chunk.created
        fingerprint = chunk.system_fingerprint
        if fingerprint is not UNSET and (fingerprint is not None or self._fingerprint is UNSET):
            self._fingerprint = fingerprint
        usage = chunk.usage
        if usage:
            self._usage = usage
        elif usage is None and self._usage is UNSET:
            self._usage = None
        choices = self._choices
        for choice in chunk.choices:
            state = choices.get(choice.index)
            if state is None:
                state = choices[choice.index] = _Choice(choice.index)
            if choice.text:
                state.text.append(choice.text)
            reason = choice.finish_reason
            if reason:
                state.finish_reason = reason
            elif reason is not UNSET and state.finish_reason is UNSET:
                state.finish_reason = None  # null or "": seen, but no reason yet
            logprobs = choice.logprobs
            if logprobs:
                state.add_logprobs(logprobs)
            elif logprobs is None and state.logprobs is UNSET:
                state.logprobs = None

    def extend(self, chunks: Iterable[CreateCompletionResponse]) -> None:
        """Fold chunks, in stream order, into the response."""
        for chunk in chunks:
            self.add(chunk)

    def result(self) -> CreateCompletionResponse:
        """The response accumulated from every chunk added so far."""
        return CreateCompletionResponse(
            id=self._id,
            object="text_completion",
            created=self._created,
            model=self._model,
            choices=[self._choices[index].result() for index in sorted(self._choices)],
            system_fingerprint=self._fingerprint,
            usage=self._usage,
        )

    def snapshot(self) -> CreateCompletionResponse:
        """A mid-stream view: the same as :meth:`result` for the chunks added so far."""
        return self.result()


def accumulate_completions(chunks: Iterable[CreateCompletionResponse]) -> CreateCompletionResponse:
    """Fold a legacy stream's chunks into the complete ``text_completion`` response."""
    accumulator = CompletionAccumulator()
    accumulator.extend(chunks)
    return accumulator.result()
