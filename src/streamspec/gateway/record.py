"""What the gateway reports for each request: :class:`GatewayRecord`, and the folding behind it.

Chat completions are folded by :class:`~streamspec.accumulate.ChunkAccumulator`;
legacy completions (``"object": "text_completion"`` chunks) by
:class:`CompletionAccumulator`: text concatenated per choice ``index``, the
last non-empty ``finish_reason``, the last usage object.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from ..types.common import CompletionUsage
from ..types.completions import Choice, CreateCompletionResponse, Logprobs
from ..types.response import CreateChatCompletionResponse

__all__ = [
    "CompletionAccumulator",
    "Endpoint",
    "ErrorKind",
    "GatewayRecord",
    "GatewayStatus",
]

GatewayStatus = Literal["complete", "truncated", "error", "client_disconnected"]
"""How a proxied request ended; see :class:`GatewayRecord`."""

Endpoint = Literal["chat.completions", "completions"]
"""Which OpenAI endpoint a request went to."""

ErrorKind = Literal[
    "invalid_request",
    "body_too_large",
    "rejected",
    "hook_failed",
    "upstream_unreachable",
    "upstream_timeout",
    "upstream_auth",
    "upstream_http",
    "upstream_error",
    "upstream_invalid",
    "truncated",
    "deadline",
    "client_disconnected",
    "gateway",
]
"""Why a request did not complete, one word per cause (the ``kind`` label of the metrics)."""


class GatewayRecord(msgspec.Struct, kw_only=True):
    """What the gateway saw of one request, handed to ``on_complete`` once it ended.

    * ``status``: ``"complete"`` (``[DONE]`` reached the client, or a
      non-streamed response succeeded), ``"truncated"`` (the upstream stalled,
      trickled past a deadline, died mid-event or ended before finishing),
      ``"error"`` (an upstream error, mid-stream or as an HTTP status, no
      upstream at all, or a request the gateway refused) or
      ``"client_disconnected"`` (the client left before the end reached it).
    * ``error_kind``: the cause when the status is not ``"complete"`` (see
      :data:`ErrorKind`); ``error``: a message for the operator.
    * ``endpoint``: ``"chat.completions"`` or ``"completions"``.
    * ``request_model``: the ``model`` the client asked for;
      ``upstream_model``: the one sent upstream (after mapping).
    * ``context``: what the ``on_request`` hook returned (a key id, a tenant...).
    * ``response``: the accumulated response (a ``chat.completion`` or a
      ``text_completion``); empty when there was none.
    * ``usage``: the last usage the upstream reported; ``usage_reported`` is
      False when the upstream sent none (``usage`` is then None, never invented).
    * ``chunks``: chunks decoded from the upstream stream.
    * ``stream``: whether the client asked for a stream.
    * ``http_status``: the status the client got; ``upstream_status``: the
      upstream's (None if it never answered).
    * ``request_id``: the upstream's ``x-request-id``, when it sent a usable one.
    * ``duration``: seconds from the request to its end; ``ttft``: seconds to
      the first chunk with a choice (None if there was none).
    """

    status: GatewayStatus
    request_model: str | None
    response: CreateChatCompletionResponse | CreateCompletionResponse
    usage: CompletionUsage | None = None
    usage_reported: bool = False
    error: str | None = None
    error_kind: ErrorKind | None = None
    endpoint: Endpoint = "chat.completions"
    upstream_model: str | None = None
    context: Any = None
    chunks: int = 0
    stream: bool = True
    http_status: int | None = None
    upstream_status: int | None = None
    request_id: str | None = None
    duration: float = 0.0
    ttft: float | None = None


class _Text:
    __slots__ = ("finish_reason", "index", "logprobs", "text")

    def __init__(self, index: int) -> None:
        self.index = index
        self.text: list[str] = []
        self.finish_reason: str | UnsetType | None = UNSET
        self.logprobs: Logprobs | UnsetType | None = UNSET


class CompletionAccumulator:
    """Folds legacy ``text_completion`` chunks into one :class:`CreateCompletionResponse`.

    The same interface as :class:`~streamspec.accumulate.ChunkAccumulator`:
    ``add``, ``extend``, ``result``, ``snapshot`` and ``chunks``. Logprobs are
    kept from the first chunk that carries them only.
    """

    __slots__ = ("_choices", "_head", "_usage", "chunks")

    def __init__(self) -> None:
        self._choices: dict[int, _Text] = {}
        self._head: CreateCompletionResponse | None = None
        self._usage: CompletionUsage | UnsetType | None = UNSET
        self.chunks = 0

    def add(self, chunk: CreateCompletionResponse) -> None:
        self.extend((chunk,))

    def extend(self, chunks: Iterable[CreateCompletionResponse]) -> None:
        choices = self._choices
        for chunk in chunks:
            self.chunks += 1
            if self._head is None and chunk.id is not UNSET:
                self._head = chunk
            usage = chunk.usage
            if usage:
                self._usage = usage
            elif usage is None and self._usage is UNSET:
                self._usage = None
            for choice in chunk.choices:
                state = choices.get(choice.index)
                if state is None:
                    state = choices[choice.index] = _Text(choice.index)
                state.text.append(choice.text)
                if choice.finish_reason:
                    state.finish_reason = choice.finish_reason
                elif state.finish_reason is UNSET and choice.finish_reason is not UNSET:
                    state.finish_reason = None
                if choice.logprobs and state.logprobs is UNSET:
                    state.logprobs = choice.logprobs

    def result(self) -> CreateCompletionResponse:
        head = self._head
        return CreateCompletionResponse(
            id=head.id if head else UNSET,
            object="text_completion",
            created=head.created if head else UNSET,
            model=head.model if head else UNSET,
            choices=[
                Choice(
                    text="".join(state.text),
                    index=state.index,
                    logprobs=state.logprobs,
                    finish_reason=state.finish_reason,
                )
                for _, state in sorted(self._choices.items())
            ],
            system_fingerprint=head.system_fingerprint if head else UNSET,
            usage=self._usage,
        )

    def snapshot(self) -> CreateCompletionResponse:
        return self.result()


def empty_response(endpoint: Endpoint) -> CreateChatCompletionResponse | CreateCompletionResponse:
    """The ``response`` of a record for a request that produced none."""
    if endpoint == "completions":
        return CreateCompletionResponse(object="text_completion", choices=[])
    return CreateChatCompletionResponse(object="chat.completion", choices=[])


def usage_of(response: Any) -> CompletionUsage | None:
    """The usage a response carries, or None."""
    usage = getattr(response, "usage", None)
    return usage if isinstance(usage, CompletionUsage) else None
