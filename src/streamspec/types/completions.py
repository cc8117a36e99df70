"""Legacy text completions (``POST /v1/completions``), request and response.

``prompt`` is a string, a list of strings, a list of token ids, or a list of
token-id lists. msgspec unions admit one array type only, so the field is
declared as ``str | list[str | int | list[int]]`` and
``CreateCompletionRequest.__post_init__`` rejects mixed lists such as
``["a", 1]`` with a :class:`msgspec.ValidationError` that names ``prompt``.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from msgspec import UNSET, Meta, UnsetType

from ._base import LenientStruct, StrictStruct
from .common import CompletionUsage
from .request import ChatCompletionStreamOptions, LogitBias, Penalty, Stop

__all__ = [
    "Choice",
    "Completion",
    "CompletionFinishReason",
    "CreateCompletionRequest",
    "CreateCompletionResponse",
    "Logprobs",
    "Prompt",
    "PromptItem",
]

CompletionFinishReason = Literal["stop", "length", "content_filter"]
"""Documented ``finish_reason`` values of a legacy completion choice."""

TokenId = Annotated[int, Meta(ge=0, le=4_294_967_295)]
PromptItem = Union[str, TokenId, list[TokenId]]  # noqa: UP007
"""One element of a list ``prompt``: all elements of one prompt share a kind."""
Prompt = Union[str, list[PromptItem]]  # noqa: UP007
"""``prompt``: ``"text"``, ``["a", "b"]``, ``[1, 2]`` or ``[[1, 2], [3]]``."""


def _prompt_kind(item: PromptItem) -> str:
    if isinstance(item, str):
        return "string"
    if isinstance(item, int):
        return "token id"
    return "token-id list"


class CreateCompletionRequest(StrictStruct, kw_only=True):
    """The body of ``POST /v1/completions``."""

    model: str
    prompt: Prompt
    best_of: Annotated[int, Meta(ge=0, le=20)] | UnsetType | None = UNSET
    echo: bool | UnsetType | None = UNSET
    frequency_penalty: Penalty | UnsetType | None = UNSET
    logit_bias: LogitBias | UnsetType | None = UNSET
    logprobs: Annotated[int, Meta(ge=0, le=5)] | UnsetType | None = UNSET
    max_tokens: Annotated[int, Meta(ge=0)] | UnsetType | None = UNSET
    n: Annotated[int, Meta(ge=1, le=128)] | UnsetType | None = UNSET
    presence_penalty: Penalty | UnsetType | None = UNSET
    seed: int | UnsetType | None = UNSET
    stop: Stop | UnsetType | None = UNSET
    stream: bool | UnsetType | None = UNSET
    stream_options: ChatCompletionStreamOptions | UnsetType | None = UNSET
    suffix: str | UnsetType | None = UNSET
    temperature: Annotated[float, Meta(ge=0.0, le=2.0)] | UnsetType | None = UNSET
    top_p: Annotated[float, Meta(ge=0.0, le=1.0)] | UnsetType | None = UNSET
    user: str | UnsetType = UNSET

    def __post_init__(self) -> None:
        prompt = self.prompt
        if isinstance(prompt, str) or not prompt:
            return
        first = _prompt_kind(prompt[0])
        for position, item in enumerate(prompt):
            kind = _prompt_kind(item)
            if kind != first:
                raise ValueError(
                    f"Invalid `prompt`: a list prompt must hold only strings, only token ids or"
                    f" only token-id lists; item 0 is a {first}, item {position} is a {kind}"
                )


class Logprobs(LenientStruct, kw_only=True):
    """Legacy logprobs: parallel lists ``tokens``, ``token_logprobs``, ``top_logprobs``...."""

    tokens: list[str] | UnsetType = UNSET
    token_logprobs: list[float | None] | UnsetType = UNSET
    top_logprobs: list[dict[str, float] | None] | UnsetType | None = UNSET
    text_offset: list[int] | UnsetType = UNSET


class Choice(LenientStruct, kw_only=True):
    """``{"text": "...", "index": 0, "logprobs": null, "finish_reason": "length"}``.

    ``finish_reason`` is an open string; see :data:`CompletionFinishReason`.
    """

    text: str
    index: int
    logprobs: Logprobs | UnsetType | None = UNSET
    finish_reason: str | UnsetType | None = UNSET


class CreateCompletionResponse(LenientStruct, kw_only=True):
    """A legacy completion (``"object": "text_completion"``), whole or one streamed chunk."""

    id: str | UnsetType = UNSET
    object: str | UnsetType = UNSET
    created: int | UnsetType = UNSET
    model: str | UnsetType = UNSET
    choices: list[Choice]
    system_fingerprint: str | UnsetType | None = UNSET
    usage: CompletionUsage | UnsetType | None = UNSET


Completion = CreateCompletionResponse
"""The openai-python name of :class:`CreateCompletionResponse`."""
