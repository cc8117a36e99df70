"""What the gateway reports for each request: :class:`GatewayRecord`.

Chat completions are folded by :class:`~streamspec.accumulate.ChunkAccumulator`,
legacy completions (``"object": "text_completion"`` chunks) by
:class:`~streamspec.accumulate_completions.CompletionAccumulator`.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from ..types.common import CompletionUsage
from ..types.completions import CreateCompletionResponse
from ..types.response import CreateChatCompletionResponse

__all__ = [
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
      ``"client_disconnected"`` (the client left before the end reached it,
      streamed or not: the upstream request is then closed at once).
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
    * ``http_status``: the status the client got (499 when it left before
      any response started); ``upstream_status``: the upstream's (None if it
      never answered).
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


def empty_response(endpoint: Endpoint) -> CreateChatCompletionResponse | CreateCompletionResponse:
    """The ``response`` of a record for a request that produced none."""
    if endpoint == "completions":
        return CreateCompletionResponse(object="text_completion", choices=[])
    return CreateChatCompletionResponse(object="chat.completion", choices=[])


def usage_of(response: Any) -> CompletionUsage | None:
    """The usage a response carries, or None."""
    usage = getattr(response, "usage", None)
    return usage if isinstance(usage, CompletionUsage) else None
