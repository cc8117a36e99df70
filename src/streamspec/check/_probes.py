"""The msgspec types a check decodes each payload with, so that most chunks need no Python walk.

A *probe* is a chunk type whose Structs reject unknown keys
(``forbid_unknown_fields``). A payload it decodes carries no key outside the
probe's fields, so its only notes are the extension fields the probe declares
(read back from the decoded object); a payload it rejects goes to the exact,
slower walk of :mod:`streamspec.check._walk`. Two tiers per kind and mode:

* tier 1: the specification's keys, plus top-level extension fields that
  OpenAI sends on every chunk (``obfuscation``), counted over a whole read;
* tier 2: also the extension fields servers put in every choice or delta
  (``reasoning_content``, ``reasoning``, vLLM's ``stop_reason``), read back
  per choice, and for strict checks tool calls (whose rules span chunks).

A stream moves to tier 2 the first time tier 1 rejects one of its payloads,
and stays there.

Decoding checks (``strict=False``) use probes built from streamspec's own
lenient types, keeping exactly their field types: a probe accepts a payload
only if the lenient type does. Strict checks use hand-written types of the
OpenAI specification (closed enums, required fields, positive ``created``):
a payload the strict probe accepts has no value-level spec problem, and only
the stream-wide rules (``id`` and ``created`` constant, tool call indexes,
``usage`` placement) are left to Python.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec
from msgspec import UNSET, Meta, UnsetType

from ..types.common import (
    ChatChoiceLogprobs,
    ChatCompletionTokenLogprob,
    CompletionTokensDetails,
    CompletionUsage,
    PromptTokensDetails,
    TopLogprobs,
)
from ..types.completions import Choice as CompletionChoice
from ..types.completions import CreateCompletionResponse
from ..types.stream import (
    ChatChoiceStream,
    ChatCompletionMessageToolCallChunk,
    ChatCompletionStreamResponseDelta,
    CreateChatCompletionStreamResponse,
    FunctionCallStream,
)
from ._spec import (
    CHOICE_KEYS,
    CHUNK_KEYS,
    COMPLETION_CHOICE_KEYS,
    COMPLETION_CHUNK_KEYS,
    COMPLETION_DETAILS_KEYS,
    COMPLETION_FINISH_REASONS,
    COMPLETION_LOGPROBS_KEYS,
    DELTA_KEYS,
    FINISH_REASONS,
    FUNCTION_KEYS,
    LOGPROBS_KEYS,
    PROMPT_DETAILS_KEYS,
    SERVICE_TIERS,
    TOKEN_LOGPROB_KEYS,
    TOOL_CALL_KEYS,
    TOP_LOGPROB_KEYS,
    USAGE_KEYS,
)

__all__ = ["Probe", "probes"]

TOP_EXTRAS = ("obfuscation",)
"""Extension keys a tier-1 probe declares at the top level (counted per read)."""
CHOICE_EXTRAS = ("stop_reason",)
"""Extension keys a tier-2 probe declares in each choice."""
DELTA_EXTRAS = ("reasoning_content", "reasoning")
"""Extension keys a tier-2 strict probe declares in each delta."""


@dataclass(frozen=True)
class Probe:
    """One probe: its decode function and the extension fields to read back.

    ``top`` are read on the chunk (``error`` first: a probed chunk's error
    member reports nothing, or the chunk goes to the walk, so it is an
    extension key when present), ``choice`` and ``delta`` on each choice
    and its delta (``delta`` is empty for legacy completions). ``calls`` tells
    whether the probe's deltas may hold tool calls (whose strict rules span
    chunks); a probe without them rejects any chunk that has them.
    """

    decode: Callable[[Any], Any]
    top: tuple[str, ...]
    choice: tuple[str, ...]
    delta: tuple[str, ...]
    calls: bool = False


# -- probes of the lenient types ---------------------------------------------------------------

_SPEC_KEYS: dict[type, frozenset[str]] = {
    CreateChatCompletionStreamResponse: CHUNK_KEYS | {"error"},
    ChatChoiceStream: CHOICE_KEYS,
    ChatCompletionStreamResponseDelta: DELTA_KEYS,
    ChatCompletionMessageToolCallChunk: TOOL_CALL_KEYS,
    FunctionCallStream: FUNCTION_KEYS,
    CompletionUsage: USAGE_KEYS,
    PromptTokensDetails: PROMPT_DETAILS_KEYS,
    CompletionTokensDetails: COMPLETION_DETAILS_KEYS,
    ChatChoiceLogprobs: LOGPROBS_KEYS,
    ChatCompletionTokenLogprob: TOKEN_LOGPROB_KEYS,
    TopLogprobs: TOP_LOGPROB_KEYS,
    CreateCompletionResponse: COMPLETION_CHUNK_KEYS | {"error"},
    CompletionChoice: COMPLETION_CHOICE_KEYS,
}
"""The keys the walk knows at each level, by the lenient type of that level."""

_CHOICES = (ChatChoiceStream, CompletionChoice)
_DELTAS = (ChatCompletionStreamResponseDelta,)
_TOPS = (CreateChatCompletionStreamResponse, CreateCompletionResponse)


class _Builder:
    """Builds the probe of a lenient type: same field types, unknown keys rejected."""

    def __init__(self, tier: int) -> None:
        self.tier = tier
        self.built: dict[type, type] = {}

    def struct(self, cls: type) -> type:
        if cls in self.built:
            return self.built[cls]
        known = _SPEC_KEYS.get(cls)
        if known is None:  # a level the walk does not examine: the lenient type itself
            return cls
        fields: list[Any] = []
        extras: tuple[str, ...] = ()
        if cls in _TOPS:
            extras = ("error", *TOP_EXTRAS)
        elif self.tier == 2 and cls in _CHOICES:
            extras = CHOICE_EXTRAS
        for field in msgspec.structs.fields(cls):
            keep = field.encode_name in known or (
                self.tier == 2 and (cls in _CHOICES or cls in _DELTAS)
            )
            if not keep:
                continue
            if field.default_factory is not msgspec.NODEFAULT:
                spec: Any = msgspec.field(
                    name=field.encode_name, default_factory=field.default_factory
                )
            elif isinstance(field.default, msgspec.Struct):
                # A shared default instance (an absent delta): the probe's own, built on demand.
                spec = msgspec.field(
                    name=field.encode_name, default_factory=self.struct(type(field.default))
                )
            else:
                spec = msgspec.field(name=field.encode_name, default=field.default)
            fields.append((field.name, self.rewrite(field.type), spec))
        names = {field[0] for field in fields}
        fields += [(name, Any, UNSET) for name in extras if name not in names]
        namespace = {}
        post_init = getattr(cls, "__post_init__", None)
        if post_init is not None:
            namespace["__post_init__"] = post_init
        probe = msgspec.defstruct(
            f"{cls.__name__}Probe{self.tier}",
            fields,
            kw_only=True,
            forbid_unknown_fields=True,
            gc=False,
            namespace=namespace,
            module=__name__,
        )
        self.built[cls] = probe
        return probe

    def rewrite(self, tp: Any) -> Any:
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            return self.struct(tp)
        origin = get_origin(tp)
        args = get_args(tp)
        if origin is Annotated:
            result = self.rewrite(args[0])
            for meta in tp.__metadata__:
                result = Annotated[result, meta]
            return result
        if origin is Union or origin is types.UnionType:
            return reduce(or_, [self.rewrite(arg) for arg in args])
        if origin is list:
            return types.GenericAlias(list, (self.rewrite(args[0]),))
        if origin is dict:
            return types.GenericAlias(dict, (args[0], self.rewrite(args[1])))
        return tp


def _lenient_probe(cls: type, tier: int) -> Probe:
    builder = _Builder(tier)
    probe = builder.struct(cls)
    choice_extras: tuple[str, ...] = ()
    delta_extras: tuple[str, ...] = ()
    if tier == 2:
        for lenient, built in builder.built.items():
            names = tuple(f.encode_name for f in msgspec.structs.fields(built))
            extra = tuple(name for name in names if name not in _SPEC_KEYS[lenient])
            if lenient in _CHOICES:
                choice_extras = extra
            elif lenient in _DELTAS:
                delta_extras = extra
    top = ("error", *TOP_EXTRAS)
    return Probe(msgspec.json.Decoder(probe).decode, top, choice_extras, delta_extras)


# -- strict probes: the OpenAI specification ---------------------------------------------------

NonEmpty = Annotated[str, Meta(min_length=1)]
Timestamp = Annotated[int, Meta(gt=0)]


class _Strict(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, gc=False):
    pass


class _Function(_Strict):
    name: str | UnsetType = UNSET
    arguments: str | UnsetType = UNSET


class _ToolCall(_Strict):
    index: int | UnsetType = UNSET
    id: str | UnsetType = UNSET
    type: Literal["function"] | UnsetType = UNSET
    function: _Function | UnsetType = UNSET


class _Delta(_Strict):
    role: Literal["assistant"] | UnsetType = UNSET
    content: str | UnsetType | None = UNSET
    refusal: str | UnsetType | None = UNSET
    function_call: _Function | UnsetType = UNSET


class _Delta2(_Delta):
    tool_calls: list[_ToolCall] | UnsetType = UNSET
    reasoning_content: Any = UNSET
    reasoning: Any = UNSET


class _TopLogprob(_Strict):
    token: str
    logprob: float
    bytes: list[int] | None


class _TokenLogprob(_Strict):
    token: str
    logprob: float
    bytes: list[int] | None
    top_logprobs: list[_TopLogprob]


class _Logprobs(_Strict):
    content: list[_TokenLogprob] | None
    refusal: list[_TokenLogprob] | None


Reason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]
assert get_args(Reason) == FINISH_REASONS
CompletionReason = Literal["stop", "length", "content_filter"]
assert get_args(CompletionReason) == COMPLETION_FINISH_REASONS
Tier = Literal["auto", "default", "flex", "scale", "priority"]
assert get_args(Tier) == SERVICE_TIERS


class _Choice(_Strict):
    index: int
    delta: _Delta
    finish_reason: Reason | None
    logprobs: _Logprobs | UnsetType | None = UNSET


class _Choice2(_Strict):
    index: int
    delta: _Delta2
    finish_reason: Reason | None
    logprobs: _Logprobs | UnsetType | None = UNSET
    stop_reason: Any = UNSET


class _PromptDetails(_Strict):
    audio_tokens: int | UnsetType = UNSET
    cached_tokens: int | UnsetType = UNSET


class _CompletionDetails(_Strict):
    accepted_prediction_tokens: int | UnsetType = UNSET
    audio_tokens: int | UnsetType = UNSET
    reasoning_tokens: int | UnsetType = UNSET
    rejected_prediction_tokens: int | UnsetType = UNSET


class _Usage(_Strict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: _PromptDetails | UnsetType = UNSET
    completion_tokens_details: _CompletionDetails | UnsetType = UNSET


class _Chunk(_Strict):
    id: NonEmpty
    object: Literal["chat.completion.chunk"]
    created: Timestamp
    model: NonEmpty
    choices: list[_Choice]
    service_tier: Tier | UnsetType | None = UNSET
    system_fingerprint: str | UnsetType | None = UNSET
    usage: _Usage | UnsetType | None = UNSET
    error: Any = UNSET
    obfuscation: Any = UNSET


class _Chunk2(_Chunk):
    choices: list[_Choice2]  # type: ignore[assignment]


class _CompletionLogprobs(_Strict):
    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None] | None
    text_offset: list[int]


class _CompletionChoice(_Strict):
    text: str
    index: int
    logprobs: _CompletionLogprobs | None
    finish_reason: CompletionReason | None


class _CompletionChoice2(_CompletionChoice):
    stop_reason: Any = UNSET


class _CompletionChunk(_Strict):
    id: NonEmpty
    object: Literal["text_completion"]
    created: Timestamp
    model: NonEmpty
    choices: list[_CompletionChoice]
    system_fingerprint: str | UnsetType | None = UNSET
    usage: _Usage | UnsetType | None = UNSET
    error: Any = UNSET
    obfuscation: Any = UNSET


class _CompletionChunk2(_CompletionChunk):
    choices: list[_CompletionChoice2]  # type: ignore[assignment]


assert set(_CompletionLogprobs.__struct_fields__) == COMPLETION_LOGPROBS_KEYS


def _strict_probe(
    cls: type, choice: tuple[str, ...], delta: tuple[str, ...], calls: bool = False
) -> Probe:
    return Probe(msgspec.json.Decoder(cls).decode, ("error", *TOP_EXTRAS), choice, delta, calls)


def probes(kind: str, strict: bool) -> tuple[Probe, Probe]:
    """The two probe tiers of a stream kind (``"chat"``, ``"completions"``) and mode."""
    key = (kind, strict)
    if key not in _CACHE:
        if strict and kind == "chat":
            pair = (
                _strict_probe(_Chunk, (), ()),
                _strict_probe(_Chunk2, CHOICE_EXTRAS, DELTA_EXTRAS, calls=True),
            )
        elif strict:
            pair = (
                _strict_probe(_CompletionChunk, (), ()),
                _strict_probe(_CompletionChunk2, CHOICE_EXTRAS, ()),
            )
        else:
            lenient: type = CreateChatCompletionStreamResponse
            if kind != "chat":
                lenient = CreateCompletionResponse
            pair = (_lenient_probe(lenient, 1), _lenient_probe(lenient, 2))
        _CACHE[key] = pair
    return _CACHE[key]


_CACHE: dict[tuple[str, bool], tuple[Probe, Probe]] = {}
