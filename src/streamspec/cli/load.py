"""``streamspec load URL --model M``: load-test an OpenAI-compatible server.

No extra is needed; ``streamspec[load]`` adds uvloop (used when installed) and
aiohttp (``--client aiohttp``), ``streamspec[plot]`` matplotlib (``--plot``).

Prints the summary table (vLLM ``bench serve``'s layout) on stdout at the
end, then on stderr one line per kind of failure (its count and the first
such request's error); while it runs, a progress line on stderr (a terminal
only). ``https://`` servers are verified against the system's CAs;
``--ca-file`` trusts a private CA, ``--insecure`` skips verification. See
:mod:`streamspec.load.generator` for the scheduling and
:mod:`streamspec.load.summary` for every figure.
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
from typing import Any

from ._common import Failure, Progress

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Register ``load``."""
    parser = commands.add_parser(
        "load",
        help="load-test a server: TTFT, TPOT, ITL, E2EL, throughput",
        description=(
            "Send streamed requests to an OpenAI-compatible server and report TTFT, TPOT, "
            "ITL, E2EL, throughput and goodput with vLLM bench serve's definitions."
        ),
    )
    parser.add_argument("url", help="base URL (http://host:8000/v1) or the endpoint URL")
    parser.add_argument("--model", required=True, help="the model to request")
    parser.add_argument("--endpoint", default="chat",
                        help="chat (default), completions (legacy), or a path such as "
                             "/v1/completions appended to the server's address")  # fmt: skip
    parser.add_argument("-c", "--concurrency", "--max-concurrency", type=int,
                        help="requests in flight (at most)")  # fmt: skip
    parser.add_argument(
        "--request-rate",
        type=float,
        default=math.inf,
        help="requests per second (default: as fast as --concurrency allows)",
    )
    parser.add_argument(
        "--arrival",
        choices=["poisson", "constant"],
        default="poisson",
        help="how arrivals are spaced at a request rate (default poisson)",
    )
    parser.add_argument("-n", "--num-requests", "--num-prompts", type=int,
                        help="requests to send (default 100)")  # fmt: skip
    parser.add_argument("--duration", type=float, help="send for this many seconds instead")
    parser.add_argument("--warmup", type=int, default=0, help="requests sent first, not counted")
    parser.add_argument(
        "--prompts",
        metavar="FILE",
        help="JSON lines of chat requests to cycle through (default: synthetic)",
    )
    parser.add_argument("--input-words", type=int, default=32, help="words of synthetic prompts")
    parser.add_argument("--max-tokens", type=int, help="max_tokens of every request")
    parser.add_argument("--api-key", help="bearer token (default: $OPENAI_API_KEY)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds to wait for a read before a request fails",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--goodput", metavar="SLOS", help="SLOs in ms, e.g. ttft:200,tpot:50")
    parser.add_argument("--percentiles", "--metric-percentiles", default="50,90,95,99",
                        help="percentiles to report (default 50,90,95,99)")  # fmt: skip
    parser.add_argument("--save-result", metavar="PATH", help="write the JSON result here")
    parser.add_argument(
        "--save-detailed",
        action="store_true",
        help="add vLLM's per-request lists (ttfts, itls, ...) to the JSON result",
    )
    parser.add_argument(
        "--save-records", metavar="PATH", help="write the per-request records here (JSON lines)"
    )
    parser.add_argument("--csv", metavar="PATH", help="write one CSV row per request here")
    parser.add_argument("--plot", metavar="DIR", help="write PNG plots here (extra plot)")
    parser.add_argument(
        "--ramp-up",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="with --concurrency: start the slots evenly over this time",
    )
    parser.add_argument(
        "--client",
        choices=["streamspec", "aiohttp"],
        default="streamspec",
        help="HTTP client: streamspec's own asyncio protocol (default) or aiohttp",
    )
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument(
        "--ca-file",
        metavar="PEM",
        help="https: trust the CA certificates in this PEM file instead of the system's "
        "(a private CA)",
    )
    tls.add_argument(
        "-k",
        "--insecure",
        action="store_true",
        help="https: verify neither the certificate nor the host name (self-signed test servers)",
    )
    parser.add_argument("--no-uvloop", action="store_true", help="use asyncio's own loop")
    parser.add_argument(
        "--allow-failures",
        action="store_true",
        help="exit 0 even when requests failed (by default any failed request makes it 1)",
    )
    parser.set_defaults(func=run)


def _progress_line(progress: Any, total: int | None) -> str:
    state = "warming up" if progress.warming_up else "load"
    of = f"/{total}" if total is not None else ""
    return (
        f"{state}: {progress.finished}{of} done, {progress.in_flight} in flight, "
        f"{progress.failed} failed, {progress.output_tokens} tokens"
    )


def _failure_lines(records: Any) -> list[str]:
    """One line per kind of failure: how many, and the first one's message (the table only
    counts them)."""
    first: dict[str, str] = {}
    counts: dict[str, int] = {}
    for record in records:
        if record.status == "complete":
            continue
        kind = record.error_kind or record.status
        counts[kind] = counts.get(kind, 0) + 1
        first.setdefault(kind, record.error or "")
    return [f"{kind} ({counts[kind]}): {message}" for kind, message in first.items()]


def _endpoint(url: str, endpoint: str) -> tuple[Any, str]:
    """The stream kind and URL for ``--endpoint``: a kind, or a path (vLLM's style)."""
    if endpoint in ("chat", "completions"):
        return endpoint, url
    if not endpoint.startswith("/"):
        raise Failure(f"--endpoint: expected chat, completions or a path, not {endpoint!r}", 2)
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    full = urlunsplit((parts.scheme, parts.netloc, endpoint, "", ""))
    kind = "chat" if endpoint.rstrip("/").endswith("chat/completions") else "completions"
    return kind, full


def run(args: argparse.Namespace) -> int:
    import os

    from ..load import (
        LoadConfig,
        LoadProgress,
        MissingExtraError,
        detailed_fields,
        format_summary,
        parse_percentiles,
        parse_slos,
        result_json,
        run_load,
        summarize_records,
        write_csv,
        write_records,
        write_result,
    )
    from ..load import run as run_loop
    from ..load.generator import load_prompts

    try:
        slos = parse_slos(args.goodput)
        percentiles = parse_percentiles(args.percentiles)
    except ValueError as exc:
        raise Failure(str(exc), 2) from None
    kind, url = _endpoint(args.url, args.endpoint)
    args.url = url
    if args.concurrency is None and math.isinf(args.request_rate):
        raise Failure("give --concurrency, --request-rate, or both", 2)
    prompts = None
    if args.prompts:
        try:
            prompts = load_prompts(args.prompts)
        except OSError as exc:
            raise Failure(f"cannot read {args.prompts}: {exc.strerror or exc}", 2) from None
        except ValueError as exc:
            raise Failure(str(exc), 2) from None
    config = LoadConfig(
        url=args.url,
        model=args.model,
        endpoint=kind,
        concurrency=args.concurrency,
        request_rate=args.request_rate,
        arrival=args.arrival,
        num_requests=args.num_requests,
        duration=args.duration,
        warmup=args.warmup,
        prompts=prompts,
        input_words=args.input_words,
        max_tokens=args.max_tokens,
        api_key=args.api_key or os.environ.get("OPENAI_API_KEY"),
        timeout=args.timeout,
        seed=args.seed,
        ramp_up=args.ramp_up,
        client=args.client,
        ca_file=args.ca_file,
        insecure=args.insecure,
    )
    if args.plot:  # fail before the run, not after it
        try:
            from .._extras import require

            require("matplotlib", "plot", "--plot")
        except MissingExtraError as exc:
            raise Failure(str(exc), 2) from None
    progress = LoadProgress()
    display = Progress(sys.stderr.isatty())
    stop = threading.Event()
    total = config.requests_to_send()

    def refresh() -> None:
        while not stop.wait(0.25):
            display.show(_progress_line(progress, total))

    ticker = threading.Thread(target=refresh, name="streamspec-load-progress", daemon=True)
    if display.enabled:
        ticker.start()
    try:
        outcome = run_loop(lambda: run_load(config, progress), use_uvloop=not args.no_uvloop)
    except MissingExtraError as exc:
        raise Failure(str(exc), 2) from None
    except ValueError as exc:
        raise Failure(str(exc), 2) from None
    finally:
        stop.set()
        display.clear()
    summary = summarize_records(outcome.records, percentiles=percentiles, slos=slos)
    sys.stdout.write(format_summary(summary))
    sys.stdout.flush()
    failures = _failure_lines(outcome.records)
    if failures:
        sys.stderr.write("".join(f"failed: {line}\n" for line in failures))
    metadata = {
        "backend": "openai-chat" if config.endpoint == "chat" else "openai",
        "endpoint": args.url,
        "model_id": config.model,
        "num_prompts": len(outcome.records),
        "request_rate": config.request_rate,
        "arrival": config.arrival if not math.isinf(config.request_rate) else None,
        "max_concurrency": config.concurrency,
        "client": outcome.client,
    }
    if args.save_result:
        result = result_json(summary, **metadata)
        if args.save_detailed:
            result.update(detailed_fields(outcome.records))
        write_result(result, args.save_result)
    if args.save_records:
        write_records(outcome.records, args.save_records)
    if args.csv:
        write_csv(outcome.records, args.csv)
    if args.plot:
        from ..load import plot_records

        plot_records(outcome.records, args.plot)
    # Every output is written first: a failed run is still measured and kept.
    return 1 if failures and not args.allow_failures else 0
