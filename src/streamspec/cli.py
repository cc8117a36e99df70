"""The ``streamspec`` command: decode, check and benchmark chat completion streams.

::

    streamspec decode [PATH | - | URL]   print the text of choice 0 as it arrives
    streamspec check PATH [--strict]     list what is malformed (or off-spec) in a stream
    streamspec bench                     time decoding against other libraries

``decode`` reads a file, standard input (``-``), or an OpenAI-compatible
server (a base URL such as ``http://localhost:8000/v1``, with ``--model`` and
``--prompt`` or ``--request``); with no argument it decodes a bundled sample.
Text goes to standard output as each chunk arrives (flushed); a summary
(finish reason, usage, timing from :class:`streamspec.metrics.StreamMeter`)
goes to standard error::

    $ streamspec decode http://localhost:8000/v1 --model qwen3 --prompt "Say thanks"
    Voici trois façons de dire « merci » : ...
    -- finish_reason stop | 53 chunks | 170 content chars | usage 31 prompt + 49 completion = 80
    -- first chunk 114.6 ms | first token 167.3 ms | inter-chunk p50 20.7 / p90 23.0 / p99 87.7
       / max 101.1 ms | 48.1 tokens/s (from usage)

``--json`` prints each chunk as one JSON line instead, ``--final`` the
accumulated ``chat.completion`` response. While a server is slow to answer,
a status line on stderr (a terminal only) shows what is awaited and for how long.

Failures print one line on standard error, ``streamspec: <what happened>``,
and set the exit status: 1 for a stream that failed (server error, malformed
event, truncated stream, HTTP error, unreachable server), 2 for bad usage (a
missing file, an invalid request file), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, NoReturn

import msgspec

from .errors import Error
from .metrics import StreamMeter, StreamMetrics
from .types.stream import CreateChatCompletionStreamResponse

__all__ = ["main"]

_READ_SIZE = 1 << 16
_PROG = "streamspec"


class _Failure(Exception):
    """A failure reported as one line on stderr with exit status ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _fail(message: str, code: int = 1) -> NoReturn:
    raise _Failure(message, code)


# -- output -------------------------------------------------------------------------------------


class _Output:
    """Standard output as UTF-8 bytes, whatever the locale says.

    ``open_line`` is True when the last thing written did not end a line.
    """

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.binary: IO[bytes] | None = getattr(stream, "buffer", None)
        self.open_line = False

    def write(self, text: str) -> None:
        if text:
            self.write_bytes(text.encode("utf-8", "surrogatepass"))

    def write_bytes(self, data: bytes) -> None:
        if not data:
            return
        if self.binary is not None:
            self.binary.write(data)
        else:
            self.stream.write(data.decode("utf-8", "replace"))
        self.open_line = not data.endswith(b"\n")

    def flush(self) -> None:
        if self.binary is not None:
            self.binary.flush()
        self.stream.flush()


class _Progress:
    """A status line on stderr while a person waits (only when stderr is a terminal).

    ``show(text)`` sets the line; a background thread redraws it with the
    seconds elapsed; ``clear()`` erases it before anything else is printed.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.text = ""
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        if self.thread is None:
            self.started = time.monotonic()
        with self.lock:
            self.text = text
            self._draw()
        if self.thread is None:
            self.thread = threading.Thread(
                target=self._run, name="streamspec-progress", daemon=True
            )
            self.thread.start()

    def _draw(self) -> None:
        elapsed = time.monotonic() - self.started
        sys.stderr.write(f"\r\x1b[K{self.text}... {elapsed:.1f}s")
        sys.stderr.flush()

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            with self.lock:
                if self.text:
                    self._draw()

    def clear(self) -> None:
        if not self.enabled:
            return
        with self.lock:
            if self.text:
                sys.stderr.write("\r\x1b[K")
                sys.stderr.flush()
                self.text = ""
        self.stop.set()


# -- sources ------------------------------------------------------------------------------------


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _open_file(path: str) -> IO[bytes]:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        _fail(f"no such file: {path}", 2)
    except IsADirectoryError:
        _fail(f"is a directory: {path}", 2)
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}", 2)


def _file_reads(path: str) -> Iterator[bytes]:
    """The bytes of a file (``-``: standard input) as they can be read, up to 64 KiB at a time."""
    if path == "-":
        stdin = sys.stdin.buffer
        read = getattr(stdin, "read1", stdin.read)
        while data := read(_READ_SIZE):
            yield data
        return
    with _open_file(path) as file:
        while data := file.read(_READ_SIZE):
            yield data


def _read_all(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with _open_file(path) as file:
        return file.read()


def _endpoint(base: str) -> str:
    """``http://host/v1`` -> ``http://host/v1/chat/completions`` (a full endpoint is kept)."""
    base = base.rstrip("/")
    return base if base.endswith("/chat/completions") else base + "/chat/completions"


def _request_body(args: argparse.Namespace) -> dict[str, Any]:
    """The JSON body to POST: ``--request`` (validated), ``--model``, ``--prompt``, streaming on."""
    from .types.request import CreateChatCompletionRequest

    body: dict[str, Any] = {}
    if args.request is not None:
        raw = _read_all(args.request)
        try:
            loaded = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            _fail(f"invalid request {args.request}: {exc}", 2)
        if not isinstance(loaded, dict):
            _fail(f"invalid request {args.request}: expected a JSON object", 2)
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
        _fail("decoding from a URL needs --model (or a model in --request)", 2)
    if "messages" not in body:
        _fail("decoding from a URL needs --prompt TEXT or --request FILE.json", 2)
    body["stream"] = True
    if not args.no_usage and "stream_options" not in body:
        body["stream_options"] = {"include_usage": True}
    try:
        msgspec.json.decode(msgspec.json.encode(body), type=CreateChatCompletionRequest)
    except msgspec.ValidationError as exc:
        _fail(f"invalid request{' ' + args.request if args.request else ''}: {exc}", 2)
    return body


def _http_error_message(body: bytes) -> str:
    """The message of an HTTP error body: OpenAI's ``{"error": {...}}`` and common variants."""
    from .decoder import error_object

    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return _one_line(body.decode("utf-8", "replace")) or "(empty body)"
    if isinstance(value, dict):
        if value.get("error") not in (None, ""):
            return error_object(value["error"], value.get("error_type")).message
        for key in ("message", "detail"):
            if isinstance(value.get(key), str):
                return str(value[key])
    return _one_line(body.decode("utf-8", "replace"))


class _HttpSource:
    """POST a streaming chat completion request; iterate the response body as it arrives."""

    def __init__(self, args: argparse.Namespace, progress: _Progress) -> None:
        try:
            import httpx
        except ImportError:
            _fail("decoding from a URL needs httpx: pip install 'streamspec[http]'", 2)
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
                        _fail(f"HTTP {resp.status_code} {resp.reason_phrase}: {message}")
                    kind = resp.headers.get("content-type", "")
                    if kind.startswith("application/json"):
                        resp.read()
                        _fail(
                            f"expected an event stream, got {kind} from {self.url}:"
                            f" {_one_line(resp.text, 200)}"
                        )
                    self.progress.show(f"HTTP {resp.status_code}, waiting for the first chunk")
                    yield from resp.iter_bytes()
        except httpx.ConnectError as exc:
            _fail(f"cannot connect to {self.url}: {_one_line(str(exc)) or 'connection failed'}")
        except httpx.TimeoutException as exc:
            _fail(f"timed out talking to {self.url} ({type(exc).__name__})")
        except httpx.RemoteProtocolError as exc:
            _fail(f"the connection to {self.url} broke: {_one_line(str(exc)) or 'no details'}")
        except httpx.HTTPError as exc:
            _fail(f"{type(exc).__name__} from {self.url}: {_one_line(str(exc)) or 'no details'}")


# -- decode -------------------------------------------------------------------------------------


def _text_of(chunk: CreateChatCompletionStreamResponse) -> str:
    """The content that ``chunk`` adds to choice 0 (text blocks of a block list included)."""
    parts: list[str] = []
    for choice in chunk.choices:
        if choice.index != 0:
            continue
        content = choice.delta.content
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [b.text for b in content if b.type == "text" and isinstance(b.text, str)]
    return "".join(parts)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _summary(metrics: StreamMetrics) -> list[str]:
    """Two lines for stderr: what the stream said, and how fast it came."""
    first = [f"finish_reason {metrics.finish_reason or '-'}", f"{metrics.chunks} chunks"]
    first.append(f"{metrics.content_chars} content chars")
    if metrics.reasoning_chars:
        first.append(f"{metrics.reasoning_chars} reasoning chars")
    if metrics.total_tokens is not None:
        first.append(
            f"usage {metrics.prompt_tokens} prompt + {metrics.completion_tokens} completion"
            f" = {metrics.total_tokens}"
        )
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


def _decode(args: argparse.Namespace) -> int:
    out = _Output(sys.stdout)
    progress = _Progress(sys.stderr.isatty())
    meter = StreamMeter()
    accumulator = None
    if args.final:
        from .accumulate import ChunkAccumulator

        accumulator = ChunkAccumulator()
    source = args.source
    reads: Iterator[bytes]
    if source is not None and _is_url(source):
        http = _HttpSource(args, progress)

        def sending() -> None:  # the clock starts when the request is sent
            meter.start_ns = meter.clock()

        reads = http.reads(sending)
    else:
        if source is None:
            from .samples import sample_stream

            reads = iter([sample_stream("openai_text")])
        else:
            reads = _file_reads(source)
        meter.start_ns = meter.clock()
    encode = msgspec.json.Encoder().encode
    failure: _Failure | None = None
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
            failure = _Failure(_one_line(str(exc)))
        except _Failure as exc:
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
        failure = _Failure(f"truncated stream: {metrics.error or 'no [DONE]'}")
    if not args.quiet and (metrics.chunks or failure is None):
        for line in _summary(metrics):
            print(line, file=sys.stderr)
    if failure is not None:
        raise failure
    return 0


def _first_read_clears(reads: Iterator[bytes], progress: _Progress) -> Iterator[bytes]:
    """Pass reads through; erase the progress line once bytes arrive."""
    for data in reads:
        if data:
            progress.clear()
        yield data


# -- check --------------------------------------------------------------------------------------


def _check(args: argparse.Namespace) -> int:
    from .check import check_stream

    data = _read_all(args.path)
    report = check_stream(data, strict=args.strict)
    out = _Output(sys.stdout)
    if args.json:
        out.write_bytes(msgspec.json.encode(report) + b"\n")
        out.flush()
        return 0 if report.ok else 1
    lines: list[str] = []
    for problem in report.problems:
        where = problem.path or "(framing)"
        lines.append(
            f"event {problem.event} at byte {problem.offset}: {where}: {problem.message}"
            f" [{problem.kind}]"
        )
    for note in report.notes:
        lines.append(
            f"note: {note.path} (not in the spec) in {note.events}"
            f" event{'s' if note.events != 1 else ''}, first in event {note.first_event}"
        )
    mode = "strict" if args.strict else "decoding"
    count = len(report.problems)
    verdict = "ok" if report.ok else f"{count} problem{'s' if count != 1 else ''}"
    lines.append(
        f"{verdict} ({mode} check): {report.events} events, {report.chunks} chunks,"
        f" {'[DONE]' if report.done else 'no [DONE]'}, {report.size} bytes"
    )
    out.write("\n".join(lines) + "\n")
    out.flush()
    return 0 if report.ok else 1


# -- bench --------------------------------------------------------------------------------------


def _bench(args: argparse.Namespace) -> int:
    from . import bench

    return bench.run(args)


# -- the parser ---------------------------------------------------------------------------------


def _parser(with_bench: bool) -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Decode, check and benchmark OpenAI-style chat completion streams.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

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
    decode.set_defaults(func=_decode)

    check = commands.add_parser(
        "check",
        help="list malformed (or, with --strict, off-spec) events of a stream",
        description=(
            "Check a stream file (or - for standard input). Lists problems with their event"
            " number, byte offset and JSON path, and the extension fields as notes. Exit"
            " status 1 when there is any problem."
        ),
    )
    check.add_argument("path", metavar="PATH")
    check.add_argument(
        "--strict",
        action="store_true",
        help="also report values and framing outside the OpenAI chat.completion.chunk spec",
    )
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(func=_check)

    bench = commands.add_parser(
        "bench",
        help="time decoding against other libraries",
        description="Time streamspec decoding a synthetic stream, next to its peers.",
    )
    if with_bench:
        from . import bench as bench_module

        bench_module.add_arguments(bench)
    bench.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``streamspec`` command line; return the exit status."""
    args_list = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = _parser(with_bench=args_list[:1] == ["bench"])
        try:
            args = parser.parse_args(args_list)
        except SystemExit as exc:  # --help, --version, or a usage error already printed
            return exc.code if isinstance(exc.code, int) else 2
        code: int = args.func(args)
        return code
    except _Failure as exc:
        _error(exc.message)
        return exc.code
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (`streamspec decode | head`): stop quietly.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except Exception as exc:
        if os.environ.get("STREAMSPEC_DEBUG"):
            raise
        _error(f"internal error: {type(exc).__name__}: {exc} (set STREAMSPEC_DEBUG=1 for details)")
        return 1


def _error(message: str) -> None:
    try:
        sys.stderr.write(f"{_PROG}: {_one_line(message)}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
