"""``streamspec check PATH [--strict]``: list what is malformed (or off-spec) in a stream."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import msgspec

from ._common import Output, read_all

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
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..check import check_stream

    data = read_all(args.path)
    report = check_stream(data, strict=args.strict)
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
