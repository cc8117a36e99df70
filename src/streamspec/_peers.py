"""What the benchmarks compare: streamspec, the msgspec ceiling and its peers, on the same bytes.

Every implementation here is a *stream function*: it takes the reads of one
SSE stream (an iterable of ``bytes``, as a socket delivers them) and returns
the list of decoded chunks, stopping at ``data: [DONE]``. The only exception
is :func:`ceiling`, which takes the JSON payloads already cut out of the
stream: the cost of decoding them with msgspec and nothing else, the floor no
stream decoder can go below.

The peers mirror how each library's users get chunks, minus the HTTP
transport (which costs the same for everyone):

* ``openai-construct``: the openai SDK's default path,
  ``openai.Stream.__stream__``: the client's SSE decoder over the reads, then
  ``json.loads`` and the client's ``_process_response_data``, which (without
  ``_strict_response_validation``) builds the chunk with
  ``construct_type``, that is ``ChatCompletionChunk.construct(**data)``.
* ``openai-validated``: the same SSE decoder, then pydantic validation with
  ``ChatCompletionChunk.model_validate_json(sse.data)``.
* ``openai-strict``: the SDK client created with
  ``_strict_response_validation=True``: ``json.loads``, then
  ``validate_type`` (``model_validate`` of the dict).
* ``httpx-sse``: what ``EventSource.iter_sse()`` does with a response: an
  incremental UTF-8 decoder, httpx-sse's ``SSELineDecoder`` and
  ``SSEDecoder``, then ``json.loads(sse.data)``.
* ``orjson``: straightforward framing (split the buffer on ``b"\\n\\n"``, strip
  ``b"data: "``) and ``orjson.loads``: plain dicts, no types.
* ``pydantic``: the same framing and ``model_validate_json`` of a pydantic
  model equivalent to the SDK's ``ChatCompletionChunk``.

Peers import their library when built (:meth:`Peer.build` raises
:class:`ImportError` when it is missing), so this module only needs msgspec.
"""

import codecs
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

import msgspec

from .decoder import ChunkDecoder
from .types.stream import CreateChatCompletionStreamResponse

__all__ = [
    "PEERS",
    "READ_SHAPES",
    "Peer",
    "StreamFn",
    "ceiling",
    "cut_reads",
    "python_decoder",
    "python_decoder_class",
    "shape_reads",
    "split_events",
    "split_payloads",
    "streamspec_decoder",
]

StreamFn = Callable[[Iterable[bytes]], list[Any]]
"""Decodes the reads of one stream into the list of its chunks."""

_DONE = b"[DONE]"


# -- the workload ----------------------------------------------------------------------------


def split_events(stream: bytes) -> list[bytes]:
    """The events of a ``\\n``-framed stream, each with its terminating blank line."""
    return [event + b"\n\n" for event in stream.split(b"\n\n") if event]


def cut_reads(stream: bytes, read_size: int) -> list[bytes]:
    """Cut ``stream`` into reads of ``read_size`` bytes, or one event per read if it is 0."""
    if read_size < 0:
        raise ValueError("read_size must be >= 0")
    if read_size == 0:
        return split_events(stream)
    return [stream[start : start + read_size] for start in range(0, len(stream), read_size)]


READ_SHAPES: dict[str, str] = {
    "event": "one event per read",
    "two-events": "two events per read",
    "split": "every event split across two reads",
    "4k": "4 KiB reads",
    "64k": "64 KiB reads",
    "whole": "the whole stream in one read",
}
"""How a stream can arrive: shape name -> what a table shows."""


def shape_reads(stream: bytes, shape: str) -> list[bytes]:
    """``stream`` cut into the reads of one of :data:`READ_SHAPES`."""
    if shape == "event":
        return split_events(stream)
    if shape == "two-events":
        events = split_events(stream)
        return [b"".join(events[i : i + 2]) for i in range(0, len(events), 2)]
    if shape == "split":
        reads = []
        for event in split_events(stream):
            half = len(event) // 2
            reads += [event[:half], event[half:]]
        return reads
    if shape == "whole":
        return [stream]
    sizes = {"4k": 4096, "64k": 65536}
    if shape not in sizes:
        raise ValueError(f"unknown read shape {shape!r}; choose one of {', '.join(READ_SHAPES)}")
    return cut_reads(stream, sizes[shape])


def split_payloads(stream: bytes) -> list[bytes]:
    """The JSON payloads of a data-only stream (``[DONE]`` excluded), cut out in advance."""
    payloads = []
    for event in stream.split(b"\n\n"):
        if not event.startswith(b"data:"):
            continue
        payload = event[5:].strip()
        if payload != _DONE:
            payloads.append(payload)
    return payloads


# -- streamspec and the ceiling --------------------------------------------------------------


def streamspec_decoder(type: Any = CreateChatCompletionStreamResponse) -> StreamFn:
    """A fresh :class:`ChunkDecoder` of ``type`` per stream, chunks collected in a list."""

    def decode(reads: Iterable[bytes]) -> list[Any]:
        decoder: ChunkDecoder[Any] = ChunkDecoder(type)
        chunks: list[Any] = []
        for data in reads:
            chunks += decoder.feed(data)
        chunks += decoder.close()
        return chunks

    return decode


def python_decoder_class() -> type[ChunkDecoder[Any]]:
    """:class:`ChunkDecoder` on the pure-Python hot path, in this process, built or not.

    The decoder's own pure-Python class when it has one (``PyChunkDecoder``);
    otherwise the pure-Python core (:class:`streamspec._fastpath.PyDecoderCore`)
    in front of the decoder, whose framing then stays whatever was loaded.
    """
    from . import _fastpath, decoder

    own = getattr(decoder, "PyChunkDecoder", None)
    if own is not None:
        return cast("type[ChunkDecoder[Any]]", own)
    if _fastpath.IMPLEMENTATION == "python":  # the decoder is pure Python already
        return ChunkDecoder

    class PurePythonChunkDecoder(_fastpath.PyDecoderCore, ChunkDecoder[Any]):  # type: ignore[misc]
        _feed = ChunkDecoder._feed  # the core's placeholder would hide the decoder's

    return cast("type[ChunkDecoder[Any]]", PurePythonChunkDecoder)


def python_decoder(type: Any = CreateChatCompletionStreamResponse) -> StreamFn:
    """:func:`streamspec_decoder` with :func:`python_decoder_class`."""
    cls = python_decoder_class()

    def decode(reads: Iterable[bytes]) -> list[Any]:
        decoder = cls(type)
        chunks: list[Any] = []
        for data in reads:
            chunks += decoder.feed(data)
        chunks += decoder.close()
        return chunks

    return decode


def ceiling(
    type: Any = CreateChatCompletionStreamResponse,
) -> Callable[[Sequence[bytes]], list[Any]]:
    """Pre-split payloads decoded by one reused :class:`msgspec.json.Decoder` into a list."""
    decode = msgspec.json.Decoder(type).decode

    def decode_all(payloads: Sequence[bytes]) -> list[Any]:
        return list(map(decode, payloads))

    return decode_all


# -- peers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """Another way to turn the same bytes into chunks."""

    name: str
    """Short identifier: ``"openai-validated"``."""
    label: str
    """What a table shows."""
    requires: str
    """The distribution to install for it (``pip install <requires>``)."""
    build: Callable[[], StreamFn]
    """Imports the library and returns the stream function; raises :class:`ImportError`."""

    def version(self) -> str | None:
        """The installed version of :attr:`requires`, or None."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version(self.requires)
        except PackageNotFoundError:
            return None


def _openai_sdk(mode: Literal["construct", "strict"]) -> StreamFn:
    """``openai.Stream.__stream__`` over the reads, with the client's own processing."""
    import openai
    from openai._utils import is_mapping
    from openai.types.chat import ChatCompletionChunk

    # No request is made: the client only supplies its SSE decoder and the
    # response processing a real stream uses.
    client = openai.OpenAI(
        api_key="unused",
        base_url="http://127.0.0.1:9/v1",
        _strict_response_validation=mode == "strict",
    )
    process_data = client._process_response_data
    response = cast(Any, None)  # only read when reporting a validation error

    def decode(reads: Iterable[bytes]) -> list[Any]:
        chunks: list[Any] = []
        for sse in client._make_sse_decoder().iter_bytes(iter(reads)):
            if sse.data.startswith("[DONE]"):
                break
            if sse.event and sse.event.startswith("thread."):
                raise ValueError(f"unexpected event {sse.event!r}")
            data = sse.json()
            if is_mapping(data) and data.get("error"):
                raise ValueError(f"error event: {data['error']!r}")
            chunks.append(process_data(data=data, cast_to=ChatCompletionChunk, response=response))
        return chunks

    return decode


def _openai_construct() -> StreamFn:
    return _openai_sdk("construct")


def _openai_strict() -> StreamFn:
    return _openai_sdk("strict")


def _openai_validated() -> StreamFn:
    """The SDK's SSE decoder, then ``ChatCompletionChunk.model_validate_json``."""
    import openai
    from openai.types.chat import ChatCompletionChunk

    client = openai.OpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1")
    validate = ChatCompletionChunk.model_validate_json

    def decode(reads: Iterable[bytes]) -> list[Any]:
        chunks: list[Any] = []
        for sse in client._make_sse_decoder().iter_bytes(iter(reads)):
            if sse.data.startswith("[DONE]"):
                break
            chunks.append(validate(sse.data))
        return chunks

    return decode


class _LineDecoder(Protocol):
    def decode(self, text: str) -> list[str]: ...
    def flush(self) -> list[str]: ...


def _httpx_sse() -> StreamFn:
    """``EventSource.iter_sse()`` minus the transport, then ``json.loads``."""
    import httpx_sse._decoders as decoders

    line_decoder: Callable[[], _LineDecoder]
    try:
        line_decoder = decoders.SSELineDecoder
    except AttributeError:  # httpx-sse < 0.4.1 read lines with httpx's own decoder
        from httpx._decoders import LineDecoder

        line_decoder = LineDecoder
    sse_decoder = decoders.SSEDecoder
    loads = json.loads
    text_decoder = codecs.getincrementaldecoder("utf-8")

    def lines_of(reads: Iterable[bytes]) -> Iterator[str]:
        text = text_decoder(errors="replace")
        lines = line_decoder()
        for data in reads:
            yield from lines.decode(text.decode(data))
        yield from lines.decode(text.decode(b"", True))
        yield from lines.flush()

    def decode(reads: Iterable[bytes]) -> list[Any]:
        chunks: list[Any] = []
        sse_lines = sse_decoder()
        for line in lines_of(reads):
            sse = sse_lines.decode(line.rstrip("\n"))
            if sse is not None:
                if sse.data == "[DONE]":
                    break
                chunks.append(loads(sse.data))
        return chunks

    return decode


def _framed(load: Callable[[bytes], Any]) -> StreamFn:
    """Straightforward framing: split on blank lines, strip ``data: ``, ``load`` the payload."""

    def decode(reads: Iterable[bytes]) -> list[Any]:
        chunks: list[Any] = []
        buffer = b""
        for data in reads:
            events = (buffer + data).split(b"\n\n")
            buffer = events.pop()
            for event in events:
                payload = event[6:] if event.startswith(b"data: ") else event[5:]
                if payload == _DONE:
                    return chunks
                chunks.append(load(payload))
        return chunks

    return decode


def _orjson() -> StreamFn:
    import orjson

    return _framed(orjson.loads)


def _pydantic() -> StreamFn:
    return _framed(pydantic_chunk_model().model_validate_json)


def pydantic_chunk_model() -> Any:
    """A pydantic model equivalent to the openai SDK's ``ChatCompletionChunk``."""
    from pydantic import BaseModel, ConfigDict

    class Model(BaseModel):
        model_config = ConfigDict(extra="allow")  # as the SDK's models

    class FunctionDelta(Model):
        name: str | None = None
        arguments: str | None = None

    class ToolCallDelta(Model):
        index: int
        id: str | None = None
        type: Literal["function"] | None = None
        function: FunctionDelta | None = None

    class AudioDelta(Model):
        id: str | None = None
        data: str | None = None
        expires_at: int | None = None
        transcript: str | None = None

    class Delta(Model):
        role: Literal["developer", "system", "user", "assistant", "tool"] | None = None
        content: str | None = None
        refusal: str | None = None
        tool_calls: list[ToolCallDelta] | None = None
        function_call: FunctionDelta | None = None
        audio: AudioDelta | None = None

    class TopLogprob(Model):
        token: str
        logprob: float
        bytes: list[int] | None = None

    class TokenLogprob(Model):
        token: str
        logprob: float
        bytes: list[int] | None = None
        top_logprobs: list[TopLogprob]

    class ChoiceLogprobs(Model):
        content: list[TokenLogprob] | None = None
        refusal: list[TokenLogprob] | None = None

    class Choice(Model):
        index: int
        delta: Delta
        finish_reason: (
            Literal["stop", "length", "tool_calls", "content_filter", "function_call"] | None
        ) = None
        logprobs: ChoiceLogprobs | None = None

    class PromptTokensDetails(Model):
        audio_tokens: int | None = None
        cached_tokens: int | None = None

    class CompletionTokensDetails(Model):
        accepted_prediction_tokens: int | None = None
        audio_tokens: int | None = None
        reasoning_tokens: int | None = None
        rejected_prediction_tokens: int | None = None

    class Usage(Model):
        prompt_tokens: int
        completion_tokens: int
        total_tokens: int
        prompt_tokens_details: PromptTokensDetails | None = None
        completion_tokens_details: CompletionTokensDetails | None = None

    class ChatCompletionChunk(Model):
        id: str
        object: Literal["chat.completion.chunk"]
        created: int
        model: str
        choices: list[Choice]
        service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None
        system_fingerprint: str | None = None
        usage: Usage | None = None

    return ChatCompletionChunk


PEERS: tuple[Peer, ...] = (
    Peer(
        "openai-construct",
        "openai SDK, default (construct)",
        "openai",
        _openai_construct,
    ),
    Peer(
        "openai-validated",
        "openai SDK + model_validate_json",
        "openai",
        _openai_validated,
    ),
    Peer(
        "openai-strict",
        "openai SDK, strict validation",
        "openai",
        _openai_strict,
    ),
    Peer("httpx-sse", "httpx-sse + json.loads", "httpx-sse", _httpx_sse),
    Peer("orjson", "split + orjson.loads (dicts)", "orjson", _orjson),
    Peer("pydantic", "split + pydantic model_validate_json", "pydantic", _pydantic),
)
"""The peers, slowest path first."""
