"""``streamspec report FILE...``: the summary of per-request records, merged exactly.

Reads the JSON-lines records that ``streamspec load --save-records`` (or the
Locust user) wrote, on one machine or many, and recomputes the summary from
their union: the same numbers one run holding all the records would give.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._common import Failure

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Register ``report``."""
    parser = commands.add_parser(
        "report",
        help="summarize (and merge) load-test records",
        description="Recompute a load test's summary from per-request records (JSON lines).",
    )
    parser.add_argument("records", nargs="+", metavar="FILE", help="JSON-lines record files")
    parser.add_argument("--goodput", metavar="SLOS", help="SLOs in ms, e.g. ttft:200,tpot:50")
    parser.add_argument("--percentiles", default="50,90,95,99", help="percentiles to report")
    parser.add_argument("--save-result", metavar="PATH", help="write the JSON result here")
    parser.add_argument("--save-records", metavar="PATH", help="write the merged records here")
    parser.add_argument("--csv", metavar="PATH", help="write one CSV row per request here")
    parser.add_argument("--plot", metavar="DIR", help="write PNG plots here (extra plot)")
    parser.add_argument("--json", action="store_true", help="print the JSON result instead")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from ..load import (
        MissingExtraError,
        RequestRecord,
        format_summary,
        parse_percentiles,
        parse_slos,
        plot_records,
        read_records,
        result_json,
        summarize_records,
        write_csv,
        write_records,
        write_result,
    )

    try:
        slos = parse_slos(args.goodput)
        percentiles = parse_percentiles(args.percentiles)
    except ValueError as exc:
        raise Failure(str(exc), 2) from None
    records: list[RequestRecord] = []
    for path in args.records:
        try:
            records.extend(read_records(path))
        except FileNotFoundError:
            raise Failure(f"no such file: {path}", 2) from None
        except OSError as exc:
            raise Failure(f"cannot read {path}: {exc.strerror or exc}", 2) from None
        except ValueError as exc:
            raise Failure(str(exc)) from None
    summary = summarize_records(records, percentiles=percentiles, slos=slos)
    result = result_json(summary, sources=list(args.records), num_prompts=len(records))
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        sys.stdout.write(format_summary(summary))
    if args.save_result:
        write_result(result, args.save_result)
    if args.save_records:
        write_records(records, args.save_records)
    if args.csv:
        write_csv(records, args.csv)
    if args.plot:
        try:
            plot_records(records, args.plot)
        except MissingExtraError as exc:
            raise Failure(str(exc), 2) from None
    return 0
