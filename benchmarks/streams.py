"""Shared helpers of the benchmark suite: the streams, how they are read, the Struct types.

Every benchmark of a stream uses one :class:`Workload`, built once per session
from the same bytes: the reads a decoder is fed (64 KiB each, or one event per
read) and the JSON payloads pre-split for the ceiling. The framing helpers and
the implementations themselves live in :mod:`streamspec._peers`, shared with
``streamspec bench``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from streamspec import CompletionUsage, ErrorObject
from streamspec._peers import cut_reads, split_events, split_payloads
from streamspec.samples import synthetic_stream

__all__ = [
    "FIXTURES",
    "READ_64K",
    "READ_EVENT",
    "LeanChunk",
    "SlimChunk",
    "Workload",
    "cut_reads",
    "load_stream",
    "split_events",
    "split_payloads",
    "workload",
]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "streams"
READ_64K = 65536
READ_EVENT = 0  # one event per read

HOT_PATH = "text-2000"
"""The realistic stream of the hot-path and peer groups: ``synthetic_stream(2000)``."""


def load_stream(name: str) -> bytes:
    """The bytes of a stream named ``<kind>-<tokens>`` (synthetic) or ``fixture:<file stem>``.

    ``text-2000`` is ``synthetic_stream(2000)``; ``tools-2000`` is
    ``synthetic_stream(2000, kind="tools")``; ``fixture:openai_text`` is
    ``fixtures/streams/openai_text.sse``.
    """
    if name.startswith("fixture:"):
        return (FIXTURES / f"{name.removeprefix('fixture:')}.sse").read_bytes()
    kind, _, tokens = name.rpartition("-")
    if kind not in ("text", "tools", "logprobs", "n4"):
        raise ValueError(f"unknown stream {name!r}")
    return synthetic_stream(int(tokens), kind)  # type: ignore[arg-type]


@dataclass(eq=False)
class Workload:
    """One stream, cut every way the benchmarks need it."""

    name: str
    data: bytes
    payloads: list[bytes]
    """The JSON payloads, pre-split (``[DONE]`` excluded): the ceiling's input."""
    _reads: dict[int, list[bytes]] = field(default_factory=dict, repr=False)

    @property
    def events(self) -> int:
        """Chunks the stream decodes to: the denominator of ns/event."""
        return len(self.payloads)

    def reads(self, read_size: int) -> list[bytes]:
        """The stream cut into reads of ``read_size`` bytes, or one event per read if 0."""
        if read_size not in self._reads:
            self._reads[read_size] = cut_reads(self.data, read_size)
        return self._reads[read_size]

    def info(self, seconds: float | None = None) -> dict[str, Any]:
        """``extra_info`` of a benchmark that took ``seconds`` for the whole stream."""
        info: dict[str, Any] = {"stream": self.name, "events": self.events, "bytes": len(self.data)}
        if seconds:
            info["ns_per_event"] = round(seconds * 1e9 / self.events, 1)
            info["mb_per_s"] = round(len(self.data) / seconds / 1e6, 1)
        return info


@functools.cache
def workload(name: str = HOT_PATH) -> Workload:
    """The :class:`Workload` of a stream (see :func:`load_stream`), built once per process."""
    data = load_stream(name)
    return Workload(name, data, split_payloads(data))


def reads_label(read_size: int) -> str:
    return "event" if read_size == READ_EVENT else f"{read_size // 1024}k"


# -- a slim projection: what a gateway or a chat UI reads -------------------------------------


class SlimDelta(msgspec.Struct, gc=False):
    content: str | None = None


class SlimChoice(msgspec.Struct, gc=False):
    index: int = 0
    delta: SlimDelta | None = None
    finish_reason: str | None = None


class SlimChunk(msgspec.Struct, gc=False):
    """``id``, ``choices[].index``, ``choices[].delta.content``, ``finish_reason``, ``usage``.

    It declares ``error`` as streamspec recommends for projections: the decoder
    then notices error payloads by reading that field, where a projection
    without it costs a byte search for '"error"' over every read.
    """

    id: str = ""
    choices: list[SlimChoice] = msgspec.field(default_factory=list)
    usage: CompletionUsage | None = None
    error: ErrorObject | str | None = None


# -- a lean chunk: only the fields OpenAI commonly sends, plain Optional types -----------------
#
# The same Struct options as streamspec's types (gc=False), so that the full/lean
# ratio measures only what the full schema adds: more fields, UNSET defaults,
# unions (``content`` as text or blocks, ``error``), lenient fallbacks.


class LeanFunction(msgspec.Struct, gc=False):
    name: str | None = None
    arguments: str | None = None


class LeanToolCall(msgspec.Struct, gc=False):
    index: int = 0
    id: str | None = None
    type: str | None = None
    function: LeanFunction | None = None


class LeanDelta(msgspec.Struct, gc=False):
    role: str | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[LeanToolCall] | None = None


class LeanTopLogprob(msgspec.Struct, gc=False):
    token: str
    logprob: float
    bytes: list[int] | None = None


class LeanTokenLogprob(msgspec.Struct, gc=False):
    token: str
    logprob: float
    bytes: list[int] | None = None
    top_logprobs: list[LeanTopLogprob] | None = None


class LeanLogprobs(msgspec.Struct, gc=False):
    content: list[LeanTokenLogprob] | None = None
    refusal: list[LeanTokenLogprob] | None = None


class LeanChoice(msgspec.Struct, gc=False):
    index: int
    delta: LeanDelta | None = None
    logprobs: LeanLogprobs | None = None
    finish_reason: str | None = None


class LeanPromptDetails(msgspec.Struct, gc=False):
    cached_tokens: int | None = None
    audio_tokens: int | None = None


class LeanCompletionDetails(msgspec.Struct, gc=False):
    reasoning_tokens: int | None = None
    audio_tokens: int | None = None
    accepted_prediction_tokens: int | None = None
    rejected_prediction_tokens: int | None = None


class LeanUsage(msgspec.Struct, gc=False):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: LeanPromptDetails | None = None
    completion_tokens_details: LeanCompletionDetails | None = None


class LeanChunk(msgspec.Struct, gc=False):
    id: str
    object: str
    created: int
    model: str
    choices: list[LeanChoice]
    service_tier: str | None = None
    system_fingerprint: str | None = None
    usage: LeanUsage | None = None
