"""``streamspec decode [PATH | - | URL]``: print a stream's text as it arrives, then a summary."""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import msgspec

from ..accumulate_completions import CompletionAccumulator, StreamKind, stream_kind
from ..decoder import ChunkDecoder
from ..errors import Error
from ..iterate import iterate
from ..metrics import StreamMeter, StreamMetrics
from ..salvage import SalvageLog
from ..sse import SSEParser
from ..types.common import CompletionUsage
from ..types.completions import CreateCompletionResponse
from ..types.stream import CreateChatCompletionStreamResponse, content_text
from ._common import Failure, Output, Progress, fail, file_reads, is_url, one_line
from ._server import add_server_options, endpoint, headers, load_request, timeout

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Register ``decode`` on the command parser's subparsers."""
    decode = commands.add_parser(
        "decode",
        help="print the text of a stream as it arrives",
        description=(
            "Decode a chat completion (or legacy completions) stream from a file,"
            " standard input (-) or an OpenAI-compatible server (a base URL such as"
            " http://localhost:8000/v1). With no argument, decode a bundled sample. The"
            " text of choice 0 goes to stdout as it arrives; a summary goes to stderr"
            " (with timing figures for a live server only)."
        ),
    )
    decode.add_argument("source", nargs="?", metavar="PATH | - | URL")
    output = decode.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print each chunk as a JSON line")
    output.add_argument(
        "--final", action="store_true", help="print the accumulated response as JSON"
    )
    decode.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    decode.add_argument(
        "--kind",
        choices=["auto", "chat", "completions"],
        default="auto",
        help=(
            "chat completion chunks or legacy text_completion chunks (default auto: a file's"
            " first chunk tells; a URL is chat unless it names /completions)"
        ),
    )
    http = decode.add_argument_group("reading from a URL")
    http.add_argument(
        "--prompt",
        metavar="TEXT",
        help="send TEXT as a user message (legacy completions: as the prompt)",
    )
    add_server_options(
        http,
        "a CreateChatCompletionRequest (or, with --kind completions, CreateCompletionRequest)"
        " body to send (validated; stream is set to true)",
    )
    http.add_argument(
        "--no-usage",
        action="store_true",
        help="do not ask for usage (stream_options.include_usage)",
    )
    decode.set_defaults(func=run)


def _url_kind(url: str, flag: str) -> StreamKind:
    """The kind of stream a URL asks for: ``--kind``, else what its path names (chat by default)."""
    if flag != "auto":
        return "chat" if flag == "chat" else "completions"
    path = urlsplit(url).path.rstrip("/")
    if path.endswith("/completions") and not path.endswith("/chat/completions"):
        return "completions"
    return "chat"


def _check_url(url: str) -> None:
    """Fail with one precise line for a URL no client could use."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        fail(f"invalid URL {url!r}: it contains spaces or control characters", 2)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number in range
    except ValueError as exc:
        fail(f"invalid URL {url!r}: {exc}", 2)
    if not parts.hostname:
        fail(f"invalid URL {url!r}: no host name", 2)


def _request_body(args: argparse.Namespace, kind: StreamKind) -> dict[str, Any]:
    """The JSON body to POST: ``--request`` (validated), ``--model``, ``--prompt``, streaming on.

    For chat the prompt is appended as a user message; for legacy completions
    it is the ``prompt``.
    """
    from ..types.completions import CreateCompletionRequest
    from ..types.request import CreateChatCompletionRequest

    body: dict[str, Any] = {} if args.request is None else load_request(args.request)
    if args.model is not None:
        body["model"] = args.model
    if args.prompt is not None:
        if kind == "chat":
            messages = body.get("messages")
            body["messages"] = [
                *(messages if isinstance(messages, list) else []),
                {"role": "user", "content": args.prompt},
            ]
        else:
            body["prompt"] = args.prompt
    if "model" not in body:
        fail("decoding from a URL needs --model (or a model in --request)", 2)
    needed = "messages" if kind == "chat" else "prompt"
    if needed not in body:
        fail(f"decoding from a URL needs --prompt TEXT or --request FILE.json (with {needed})", 2)
    body["stream"] = True
    if not args.no_usage and "stream_options" not in body:
        body["stream_options"] = {"include_usage": True}
    schema: Any = CreateChatCompletionRequest if kind == "chat" else CreateCompletionRequest
    try:
        msgspec.json.decode(msgspec.json.encode(body), type=schema)
    except msgspec.ValidationError as exc:
        fail(f"invalid request{' ' + args.request if args.request else ''}: {exc}", 2)
    return body


class _HttpSource:
    """POST a streaming request through :func:`streamspec.http.connect_stream`; yield the body."""

    def __init__(self, args: argparse.Namespace, kind: StreamKind, progress: Progress) -> None:
        try:
            import httpx
        except ImportError:
            fail("decoding from a URL needs httpx: pip install 'streamspec[http]'", 2)
        self.httpx = httpx
        self.url = endpoint(args.source, kind)
        self.body = _request_body(args, kind)
        self.headers = headers(args, Accept="text/event-stream")
        self.timeout = timeout(httpx, args)
        self.progress = progress

    def reads(self, meter: Callable[[], None]) -> Iterator[bytes]:
        """Yield the response bytes; ``meter()`` is called just before the request is sent.

        HTTP errors, error bodies and broken connections raise the
        :mod:`streamspec.http` errors, which the caller prints as one line.
        """
        from ..http import connect_stream

        self.progress.show(f"POST {self.url}")
        with self.httpx.Client(timeout=self.timeout) as client:
            meter()
            with connect_stream(
                client, "POST", self.url, json=self.body, headers=self.headers
            ) as stream:
                self.progress.show(f"HTTP {stream.status_code}, waiting for the first chunk")
                yield from stream.iter_bytes()


def _text_of(chunk: CreateChatCompletionStreamResponse) -> str:
    """The content that ``chunk`` adds to choice 0 (thinking blocks are reasoning, not text)."""
    return "".join([content_text(c.delta) for c in chunk.choices if c.index == 0])


def _salvage_lines(log: SalvageLog, shown: int = 3) -> list[str]:
    """Lines for stderr when some chunk was salvaged: how much, and the first notes."""
    if not log.events:
        return []
    lines = [
        f"-- salvaged {log.events} chunk{'s' * (log.events != 1)}:"
        f" {log.values} value{'s' * (log.values != 1)} did not fit the schema"
    ]
    lines += [f"--   {one_line(str(note))}" for note in log.notes[:shown]]
    if log.values > shown:
        lines.append(f"--   ... and {log.values - shown} more")
    return lines


def _legacy_text_of(chunk: CreateCompletionResponse) -> str:
    """The text that a legacy ``text_completion`` chunk adds to choice 0."""
    return "".join(choice.text for choice in chunk.choices if choice.index == 0)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


class _Said(msgspec.Struct, kw_only=True):
    """What a stream said, for the first summary line (a usage count left out is None)."""

    finish_reason: str | None
    chunks: int
    text_chars: int
    reasoning_chars: int = 0
    usage: tuple[int | None, int | None, int | None] | None
    text_name: str = "content"


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _said_chat(metrics: StreamMetrics) -> _Said:
    counts = (metrics.prompt_tokens, metrics.completion_tokens, metrics.total_tokens)
    return _Said(
        finish_reason=metrics.finish_reason,
        chunks=metrics.chunks,
        text_chars=metrics.content_chars,
        reasoning_chars=metrics.reasoning_chars,
        usage=None if counts == (None, None, None) else counts,
    )


def _said_legacy(accumulator: CompletionAccumulator) -> _Said:
    response = accumulator.result()
    finish = next((c.finish_reason for c in response.choices if c.index == 0), None)
    usage = response.usage
    counts = None
    if isinstance(usage, CompletionUsage):
        counts = (
            _count(usage.prompt_tokens),
            _count(usage.completion_tokens),
            _count(usage.total_tokens),
        )
    return _Said(
        finish_reason=finish if isinstance(finish, str) else None,
        chunks=accumulator.chunks,
        text_chars=sum(len(choice.text) for choice in response.choices),
        usage=counts,
        text_name="text",
    )


def _said_line(said: _Said) -> str:
    """What the stream said: finish reason, chunks, characters, usage."""
    parts = [f"finish_reason {said.finish_reason or '-'}", f"{said.chunks} chunks"]
    parts.append(f"{said.text_chars} {said.text_name} chars")
    if said.reasoning_chars:
        parts.append(f"{said.reasoning_chars} reasoning chars")
    if said.usage is not None:  # a count the server left out shows as "?"
        prompt, completion, total = ("?" if n is None else n for n in said.usage)
        parts.append(f"usage {prompt} prompt + {completion} completion = {total}")
    else:
        parts.append("no usage")
    return "-- " + " | ".join(parts)


def _timing_line(metrics: StreamMetrics) -> str:
    """How fast the stream came (meaningful for a live server only)."""
    parts = [f"first chunk {_ms(metrics.time_to_first_chunk_ms)}"]
    parts.append(f"first token {_ms(metrics.time_to_first_token_ms)}")
    gaps = metrics.inter_chunk_ms
    if gaps is not None:
        parts.append(
            f"inter-chunk p50 {gaps.p50:.1f} / p90 {gaps.p90:.1f} / p99 {gaps.p99:.1f}"
            f" / max {gaps.max:.1f} ms"
        )
    if metrics.tokens_per_second is not None:
        parts.append(
            f"{metrics.tokens_per_second:.1f} tokens/s (from {metrics.tokens_per_second_basis})"
        )
    return "-- " + " | ".join(parts)


_PROBE_LIMIT = 1 << 20


def _detect_kind(reads: Iterator[bytes]) -> tuple[StreamKind, Iterator[bytes]]:
    """Read until an event tells the stream's kind; return it and the reads, replayed in full.

    The first chunk that says (``"object"``, or choices with ``delta`` or
    ``text``) decides; a stream that never says within its first MiB is chat.
    """
    parser = SSEParser(max_event_size=_PROBE_LIMIT)
    seen: list[bytes] = []
    size = 0
    kind: StreamKind | None = None
    for data in reads:
        seen.append(data)
        size += len(data)
        try:
            events = parser.feed(data)
        except Error:
            break  # the decoder will report it
        for event in events:
            kind = stream_kind(event.data) if event.event in (None, "", "message") else None
            if kind is not None or event.data.strip() == "[DONE]":
                break
        else:
            if size <= _PROBE_LIMIT:
                continue
        break
    return kind or "chat", itertools.chain(seen, reads)


def _legacy_meter() -> StreamMeter | None:
    """A meter for legacy chunks, where :class:`StreamMeter` can decode them."""
    try:
        return StreamMeter(kind="completions")  # type: ignore[call-arg,unused-ignore]
    except TypeError:
        return None


def run(args: argparse.Namespace) -> int:
    out = Output(sys.stdout)
    progress = Progress(sys.stderr.isatty())
    source = args.source
    live = source is not None and is_url(source)
    reads: Iterator[bytes]
    kind: StreamKind
    clock_start: Callable[[], None] | None = None
    if live:
        _check_url(source)
        kind = _url_kind(source, args.kind)
        http = _HttpSource(args, kind, progress)

        def sending() -> None:  # the clock starts when the request is sent
            if clock_start is not None:
                clock_start()

        reads = http.reads(sending)
    else:
        if source is None:
            from ..samples import sample_stream

            reads = iter([sample_stream("openai_text")])
        else:
            reads = file_reads(source)
        if args.kind == "auto":
            kind, reads = _detect_kind(reads)
        else:
            kind = args.kind
    legacy = kind == "completions"
    meter: StreamMeter | None = _legacy_meter() if legacy else StreamMeter()
    feeder: Any = meter if meter is not None else ChunkDecoder(CreateCompletionResponse)
    if meter is not None:
        clock_start = lambda: setattr(meter, "start_ns", meter.clock())  # noqa: E731
        if not live:
            clock_start()
    accumulator: Any = None
    if legacy:
        accumulator = CompletionAccumulator()  # also gives the legacy summary
    elif args.final:
        from ..accumulate import ChunkAccumulator

        accumulator = ChunkAccumulator()
    text_of: Callable[[Any], str] = _legacy_text_of if legacy else _text_of
    encode = msgspec.json.Encoder().encode
    failure: Failure | None = None
    try:
        try:
            for chunk in iterate(feeder, _first_read_clears(reads, progress)):
                if accumulator is not None:
                    accumulator.add(chunk)
                if args.json:
                    out.write_bytes(encode(chunk) + b"\n")
                    out.flush()
                elif not args.final:
                    text = text_of(chunk)
                    if text:
                        out.write(text)
                        out.flush()
        except Error as exc:
            failure = Failure(one_line(str(exc)))
        except Failure as exc:
            if meter is not None:
                meter.fail(exc.message)
            failure = exc
    finally:
        progress.clear()
    metrics = meter.result() if meter is not None else None
    if args.final and accumulator is not None and accumulator.chunks:
        out.write_bytes(encode(accumulator.result()) + b"\n")
    elif out.open_line:
        out.write("\n")
    out.flush()
    said = _said_legacy(accumulator) if legacy else _said_chat(metrics)  # type: ignore[arg-type]
    done = feeder.done
    if failure is None and not done:
        reason = metrics.error if metrics is not None else None
        failure = Failure(f"truncated stream: {reason or 'no [DONE]'}")
    if not args.quiet and (said.chunks or failure is None):
        print(_said_line(said), file=sys.stderr)
        if live and metrics is not None:
            print(_timing_line(metrics), file=sys.stderr)
        decoder = meter.decoder if meter is not None else feeder
        for line in _salvage_lines(decoder.salvaged):
            print(line, file=sys.stderr)
    if failure is not None:
        raise failure
    return 0


def _first_read_clears(reads: Iterator[bytes], progress: Progress) -> Iterator[bytes]:
    """Pass reads through; erase the progress line once bytes arrive."""
    for data in reads:
        if data:
            progress.clear()
        yield data
