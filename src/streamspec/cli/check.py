"""``streamspec check PATH | - | URL [--strict] [--kind chat|completions]``: what is off.

The stream is read in blocks and checked as it is read, in memory bounded by
the largest event, however long it is. A URL is an OpenAI-compatible base URL
(``http://localhost:8000/v1``): the command sends a streaming request there
(``/chat/completions``, or ``/completions`` with ``--kind completions``) and
checks the response; an HTTP error status, an error body or a connection that
breaks is a problem of the report, which also gives the status.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

import msgspec

from ._common import Output, fail, file_reads, is_url
from ._server import add_server_options, endpoint, headers, load_request, timeout

if TYPE_CHECKING:
    from ..check import CheckReport, StreamChecker

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Register ``check`` on the command parser's subparsers."""
    check = commands.add_parser(
        "check",
        help="list malformed (or, with --strict, off-spec) events of a stream",
        description=(
            "Check a stream file (- for standard input), or the stream an OpenAI-compatible"
            " server at URL answers (needs streamspec[http]). Lists problems with their event"
            " number, byte offset and JSON path, and the extension fields as notes. Exit"
            " status 1 when there is any problem."
        ),
    )
    check.add_argument("path", metavar="PATH | - | URL")
    check.add_argument(
        "--strict",
        action="store_true",
        help="also report values and framing outside the OpenAI chat.completion.chunk spec",
    )
    check.add_argument(
        "--kind",
        choices=("chat", "completions"),
        default=None,
        help=(
            "the stream's kind: chat (chat.completion.chunk) or completions (legacy"
            " text_completion); detected from the first chunk when omitted"
        ),
    )
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument(
        "--max-event-size",
        type=int,
        default=None,
        metavar="BYTES",
        help="the largest event accepted (default 8 MiB, as the decoder's)",
    )
    check.add_argument(
        "--max-problems",
        type=int,
        default=1000,
        metavar="N",
        help="list at most N problems, count the others (default 1000)",
    )
    http = check.add_argument_group("checking a URL")
    http.add_argument(
        "--prompt", metavar="TEXT", default="Say hello.", help="the prompt (default: Say hello.)"
    )
    add_server_options(http, "the JSON body to send instead (stream is set to true)")
    check.set_defaults(func=run)


def _body(args: argparse.Namespace, endpoint: str) -> dict[str, Any]:
    body: dict[str, Any] = {} if args.request is None else load_request(args.request)
    if args.model is not None:
        body["model"] = args.model
    if "model" not in body:
        fail("checking a URL needs --model (or a model in --request)", 2)
    if endpoint.endswith("/chat/completions"):
        body.setdefault("messages", [{"role": "user", "content": args.prompt}])
    else:
        body.setdefault("prompt", args.prompt)
    body["stream"] = True
    body.setdefault("stream_options", {"include_usage": True})
    return body


def _check_url(args: argparse.Namespace, checker: StreamChecker) -> CheckReport:
    """POST a streaming request; check what comes back, the HTTP exchange included."""
    try:
        import httpx
    except ImportError:
        fail("checking a URL needs httpx: pip install 'streamspec[http]'", 2)
    from ..check._walk import describe
    from ..errors import StreamError
    from ..http import HTTPStatusError, NotAStreamError, TransportError, connect_stream

    url = endpoint(args.path, args.kind)
    body = _body(args, url)
    try:
        with (
            httpx.Client(timeout=timeout(httpx, args)) as client,
            connect_stream(
                client,
                "POST",
                url,
                json=body,
                headers=headers(args),
                max_event_size=checker.max_event_size,
            ) as stream,
        ):
            checker.status = stream.status_code
            for data in stream.iter_bytes():
                checker.feed(data)
    except HTTPStatusError as exc:
        checker.status = exc.status_code
        reason = f" {exc.reason}" if exc.reason else ""
        message = f"HTTP {exc.status_code}{reason}: server error: {describe(exc.error)}"
        checker.stop("server_error", message, "$.error")
    except NotAStreamError as exc:  # the checker says what the body is instead
        checker.status = exc.status_code
        checker.feed(exc.body)
    except TransportError as exc:
        if exc.kind != "broken" and checker.size == 0:
            fail(str(exc), 1)
        checker.stop("truncated", f"the stream ended early: {exc}")
    except StreamError as exc:  # a 200 whose body is a JSON error
        checker.status = checker.status or 200
        message = "server error (a JSON error body, not an event stream): " + describe(exc.error)
        checker.stop("server_error", message, "$.error")
    return checker.close()


def run(args: argparse.Namespace) -> int:
    from ..check import StreamChecker, check_stream
    from ..sse import DEFAULT_MAX_EVENT_SIZE

    for option, value in (
        ("--max-event-size", args.max_event_size),
        ("--max-problems", args.max_problems),
    ):
        if value is not None and value < 1:
            fail(f"{option} must be >= 1", 2)
    options: dict[str, Any] = {
        "strict": args.strict,
        "kind": args.kind,
        "max_event_size": args.max_event_size or DEFAULT_MAX_EVENT_SIZE,
        "max_problems": args.max_problems,
    }
    if is_url(args.path):
        report = _check_url(args, StreamChecker(**options))
    else:
        report = check_stream(file_reads(args.path), **options)
    out = Output(sys.stdout)
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
        if note.kind == "salvaged":
            lines.append(
                f"salvaged: the decoder leaves out {note.path} in {note.events}"
                f" event{'s' if note.events != 1 else ''}, first in event {note.first_event}"
                f" ({note.reason})"
            )
            continue
        lines.append(
            f"note: {note.path} (not in the spec) in {note.events}"
            f" event{'s' if note.events != 1 else ''}, first in event {note.first_event}"
        )
    if report.problems_omitted:
        lines.append(f"... and {report.problems_omitted} more problems, not listed")
    if report.notes_omitted:
        lines.append(f"... and {report.notes_omitted} more extension keys, not listed")
    mode = "strict" if args.strict else "decoding"
    count = len(report.problems)
    verdict = "ok" if report.ok else f"{count} problem{'s' if count != 1 else ''}"
    status = "" if report.status is None else f"HTTP {report.status}, "
    lines.append(
        f"{verdict} ({mode} check): {status}{report.events} events,"
        f" {report.chunks} {report.kind} chunks,"
        f" {'[DONE]' if report.done else 'no [DONE]'}, {report.size} bytes"
    )
    out.write("\n".join(lines) + "\n")
    out.flush()
    return 0 if report.ok else 1
