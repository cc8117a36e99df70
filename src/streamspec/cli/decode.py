"""``streamspec decode [PATH | - | URL]``: print a stream's text as it arrives, then a summary."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from ..errors import Error
from ..metrics import StreamMeter, StreamMetrics
from ..salvage import SalvageLog
from ..types.stream import CreateChatCompletionStreamResponse, content_text
from ._common import Failure, Output, Progress, fail, file_reads, is_url, one_line, read_all

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Register ``decode`` on the command parser's subparsers."""
    decode = commands.add_parser(
        "decode",
        help="print the text of a stream as it arrives",
        description=(
            "Decode a chat completion stream from a file, standard input (-) or an"
            " OpenAI-compatible server (a base URL such as http://localhost:8000/v1)."
            " With no argument, decode a bundled sample. The text of choice 0 goes to"
            " stdout as it arrives; a summary goes to stderr."
        ),
    )
    decode.add_argument("source", nargs="?", metavar="PATH | - | URL")
    output = decode.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print each chunk as a JSON line")
    output.add_argument(
        "--final", action="store_true", help="print the accumulated response as JSON"
    )
    decode.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    http = decode.add_argument_group("reading from a URL")
    http.add_argument("--model", help="the model to ask for")
    http.add_argument("--prompt", metavar="TEXT", help="send TEXT as a user message")
    http.add_argument(
        "--request",
        metavar="FILE.json",
        help="a CreateChatCompletionRequest body to send (validated; stream is set to true)",
    )
    http.add_argument("--api-key", metavar="KEY", help="bearer token (default: $OPENAI_API_KEY)")
    http.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="give up after SECONDS without a byte from the server (default 300)",
    )
    http.add_argument(
        "--no-usage",
        action="store_true",
        help="do not ask for usage (stream_options.include_usage)",
    )
    decode.set_defaults(func=run)


def _endpoint(base: str) -> str:
    """``http://host/v1`` -> ``http://host/v1/chat/completions`` (a full endpoint is kept)."""
    base = base.rstrip("/")
    return base if base.endswith("/chat/completions") else base + "/chat/completions"


def _request_body(args: argparse.Namespace) -> dict[str, Any]:
    """The JSON body to POST: ``--request`` (validated), ``--model``, ``--prompt``, streaming on."""
    from ..types.request import CreateChatCompletionRequest

    body: dict[str, Any] = {}
    if args.request is not None:
        raw = read_all(args.request)
        try:
            loaded = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            fail(f"invalid request {args.request}: {exc}", 2)
        if not isinstance(loaded, dict):
            fail(f"invalid request {args.request}: expected a JSON object", 2)
        body = loaded
    if args.model is not None:
        body["model"] = args.model
    if args.prompt is not None:
        messages = body.get("messages")
        body["messages"] = [
            *(messages if isinstance(messages, list) else []),
            {"role": "user", "content": args.prompt},
        ]
    if "model" not in body:
        fail("decoding from a URL needs --model (or a model in --request)", 2)
    if "messages" not in body:
        fail("decoding from a URL needs --prompt TEXT or --request FILE.json", 2)
    body["stream"] = True
    if not args.no_usage and "stream_options" not in body:
        body["stream_options"] = {"include_usage": True}
    try:
        msgspec.json.decode(msgspec.json.encode(body), type=CreateChatCompletionRequest)
    except msgspec.ValidationError as exc:
        fail(f"invalid request{' ' + args.request if args.request else ''}: {exc}", 2)
    return body


def _http_error_message(body: bytes) -> str:
    """The message of an HTTP error body: OpenAI's ``{"error": {...}}`` and common variants."""
    from ..decoder import error_object

    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return one_line(body.decode("utf-8", "replace")) or "(empty body)"
    if isinstance(value, dict):
        if value.get("error") not in (None, ""):
            return error_object(value["error"], value.get("error_type")).message
        for key in ("message", "detail"):
            if isinstance(value.get(key), str):
                return str(value[key])
    return one_line(body.decode("utf-8", "replace"))


class _HttpSource:
    """POST a streaming chat completion request; iterate the response body as it arrives."""

    def __init__(self, args: argparse.Namespace, progress: Progress) -> None:
        try:
            import httpx
        except ImportError:
            fail("decoding from a URL needs httpx: pip install 'streamspec[http]'", 2)
        self.httpx = httpx
        self.url = _endpoint(args.source)
        self.body = _request_body(args)
        key = args.api_key or os.environ.get("OPENAI_API_KEY")
        self.headers = {"Accept": "text/event-stream"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        self.timeout = httpx.Timeout(args.timeout, connect=min(args.timeout, 30.0))
        self.progress = progress

    def reads(self, meter: Callable[[], None]) -> Iterator[bytes]:
        """Yield the response bytes; ``meter()`` is called just before the request is sent."""
        httpx = self.httpx
        self.progress.show(f"POST {self.url}")
        try:
            with httpx.Client(timeout=self.timeout) as client:
                meter()
                with client.stream("POST", self.url, json=self.body, headers=self.headers) as resp:
                    if resp.status_code >= 400:
                        resp.read()
                        message = _http_error_message(resp.content)
                        fail(f"HTTP {resp.status_code} {resp.reason_phrase}: {message}")
                    kind = resp.headers.get("content-type", "")
                    if kind.startswith("application/json"):
                        resp.read()
                        fail(
                            f"expected an event stream, got {kind} from {self.url}:"
                            f" {one_line(resp.text, 200)}"
                        )
                    self.progress.show(f"HTTP {resp.status_code}, waiting for the first chunk")
                    yield from resp.iter_bytes()
        except httpx.ConnectError as exc:
            fail(f"cannot connect to {self.url}: {one_line(str(exc)) or 'connection failed'}")
        except httpx.TimeoutException as exc:
            fail(f"timed out talking to {self.url} ({type(exc).__name__})")
        except httpx.RemoteProtocolError as exc:
            fail(f"the connection to {self.url} broke: {one_line(str(exc)) or 'no details'}")
        except httpx.HTTPError as exc:
            fail(f"{type(exc).__name__} from {self.url}: {one_line(str(exc)) or 'no details'}")


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


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _summary(metrics: StreamMetrics) -> list[str]:
    """Two lines for stderr: what the stream said, and how fast it came."""
    first = [f"finish_reason {metrics.finish_reason or '-'}", f"{metrics.chunks} chunks"]
    first.append(f"{metrics.content_chars} content chars")
    if metrics.reasoning_chars:
        first.append(f"{metrics.reasoning_chars} reasoning chars")
    counts = (metrics.prompt_tokens, metrics.completion_tokens, metrics.total_tokens)
    if counts != (None, None, None):  # a count the server left out shows as "?"
        prompt, completion, total = ("?" if n is None else n for n in counts)
        first.append(f"usage {prompt} prompt + {completion} completion = {total}")
    else:
        first.append("no usage")
    second = [f"first chunk {_ms(metrics.time_to_first_chunk_ms)}"]
    second.append(f"first token {_ms(metrics.time_to_first_token_ms)}")
    gaps = metrics.inter_chunk_ms
    if gaps is not None:
        second.append(
            f"inter-chunk p50 {gaps.p50:.1f} / p90 {gaps.p90:.1f} / p99 {gaps.p99:.1f}"
            f" / max {gaps.max:.1f} ms"
        )
    if metrics.tokens_per_second is not None:
        second.append(
            f"{metrics.tokens_per_second:.1f} tokens/s (from {metrics.tokens_per_second_basis})"
        )
    return ["-- " + " | ".join(first), "-- " + " | ".join(second)]


def run(args: argparse.Namespace) -> int:
    out = Output(sys.stdout)
    progress = Progress(sys.stderr.isatty())
    meter = StreamMeter()
    accumulator = None
    if args.final:
        from ..accumulate import ChunkAccumulator

        accumulator = ChunkAccumulator()
    source = args.source
    reads: Iterator[bytes]
    if source is not None and is_url(source):
        http = _HttpSource(args, progress)

        def sending() -> None:  # the clock starts when the request is sent
            meter.start_ns = meter.clock()

        reads = http.reads(sending)
    else:
        if source is None:
            from ..samples import sample_stream

            reads = iter([sample_stream("openai_text")])
        else:
            reads = file_reads(source)
        meter.start_ns = meter.clock()
    encode = msgspec.json.Encoder().encode
    failure: Failure | None = None
    try:
        try:
            for chunk in meter.iter(_first_read_clears(reads, progress)):
                if accumulator is not None:
                    accumulator.add(chunk)
                elif args.json:
                    out.write_bytes(encode(chunk) + b"\n")
                    out.flush()
                else:
                    text = _text_of(chunk)
                    if text:
                        out.write(text)
                        out.flush()
        except Error as exc:
            failure = Failure(one_line(str(exc)))
        except Failure as exc:
            meter.fail(exc.message)
            failure = exc
    finally:
        progress.clear()
    metrics = meter.result()
    if accumulator is not None and accumulator.chunks:
        out.write_bytes(encode(accumulator.result()) + b"\n")
    elif out.open_line:
        out.write("\n")
    out.flush()
    if failure is None and metrics.status != "complete":
        failure = Failure(f"truncated stream: {metrics.error or 'no [DONE]'}")
    if not args.quiet and (metrics.chunks or failure is None):
        for line in _summary(metrics) + _salvage_lines(meter.decoder.salvaged):
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
