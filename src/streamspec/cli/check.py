"""``streamspec check PATH [--strict] [--kind chat|completions]``: what is malformed (or off-spec).

The stream is read in blocks and checked as it is read, in memory bounded by
the largest event, however long it is.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import msgspec

from ._common import Output, file_reads

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Register ``check`` on the command parser's subparsers."""
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
    check.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..check import check_stream

    report = check_stream(file_reads(args.path), strict=args.strict, kind=args.kind)
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
    lines.append(
        f"{verdict} ({mode} check): {report.events} events, {report.chunks} {report.kind} chunks,"
        f" {'[DONE]' if report.done else 'no [DONE]'}, {report.size} bytes"
    )
    out.write("\n".join(lines) + "\n")
    out.flush()
    return 0 if report.ok else 1
