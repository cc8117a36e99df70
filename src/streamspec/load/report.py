"""Reports of a load test: the summary table, the JSON result and a CSV of the requests.

The table follows the layout of vLLM's ``bench serve`` output::

    ============ Serving Benchmark Result ============
    Successful requests:                     200
    Failed requests:                         0
    Benchmark duration (s):                  12.91
    ...
    ---------------Time to First Token----------------
    Mean TTFT (ms):                          51.32
    Median TTFT (ms):                        51.10
    P99 TTFT (ms):                           53.87
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from .records import RequestRecord
from .summary import METRICS

__all__ = ["detailed_fields", "format_summary", "result_json", "write_csv", "write_result"]

_TITLES = {
    "ttft": ("Time to First Token", "TTFT"),
    "tpot": ("Time per Output Token (excl. 1st token)", "TPOT"),
    "itl": ("Inter-token Latency", "ITL"),
    "e2el": ("End-to-end Latency", "E2EL"),
}
_WIDTH = 50


def _line(label: str, value: Any) -> str:
    if value is None:
        shown = "-"
    elif isinstance(value, float):
        shown = f"{value:.2f}"
    else:
        shown = str(value)
    return f"{label:<40} {shown}"


def format_summary(summary: Mapping[str, Any]) -> str:
    """The summary as a text table (vLLM's layout), ending with a newline."""
    lines = ["{s:{c}^{n}}".format(s=" Serving Benchmark Result ", n=_WIDTH, c="=")]
    lines.append(_line("Successful requests:", summary["completed"]))
    lines.append(_line("Failed requests:", summary["failed"]))
    for kind, count in summary["failures"].items():
        lines.append(_line(f"  {kind}:", count))
    lines.append(_line("Benchmark duration (s):", summary["duration"]))
    lines.append(_line("Total input tokens:", summary["total_input_tokens"]))
    lines.append(_line("Total generated tokens:", summary["total_output_tokens"]))
    lines.append(_line("Request throughput (req/s):", summary["request_throughput"]))
    if summary.get("request_goodput") is not None:
        lines.append(_line("Request goodput (req/s):", summary["request_goodput"]))
    lines.append(_line("Output token throughput (tok/s):", summary["output_throughput"]))
    lines.append(_line("Peak output token throughput (tok/s):",
                       summary["max_output_tokens_per_s"]))  # fmt: skip
    lines.append(_line("Peak concurrent requests:", summary["max_concurrent_requests"]))
    lines.append(_line("Total token throughput (tok/s):", summary["total_token_throughput"]))
    for name in METRICS:
        title, short = _TITLES[name]
        lines.append("{s:{c}^{n}}".format(s=title, n=_WIDTH, c="-"))
        lines.append(_line(f"Mean {short} (ms):", summary[f"mean_{name}_ms"]))
        lines.append(_line(f"Median {short} (ms):", summary[f"median_{name}_ms"]))
        lines.append(_line(f"Std {short} (ms):", summary[f"std_{name}_ms"]))
        for value in summary["percentiles"]:
            label = str(int(value)) if value == int(value) else str(value)
            lines.append(_line(f"P{label} {short} (ms):", summary[f"p{label}_{name}_ms"]))
        lines.append(_line(f"Max {short} (ms):", summary[f"max_{name}_ms"]))
    lines.append("=" * _WIDTH)
    return "\n".join(lines) + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else str(value)
    return value


def result_json(summary: Mapping[str, Any], **metadata: Any) -> dict[str, Any]:
    """The JSON result: ``date`` and ``metadata`` (``model_id``, ``request_rate``...), then the
    summary's fields under vLLM's names. Infinite numbers become ``"inf"`` as in vLLM."""
    out: dict[str, Any] = {"date": time.strftime("%Y%m%d-%H%M%S")}
    out.update({key: _finite(value) for key, value in metadata.items()})
    out.update({key: _finite(value) for key, value in summary.items()})
    return out


def detailed_fields(records: Iterable[RequestRecord]) -> dict[str, list[Any]]:
    """vLLM's per-request lists (``--save-detailed``), in record order: ``input_lens``,
    ``output_lens``, ``ttfts`` and ``itls`` (seconds, as vLLM writes them; 0 and ``[]``
    for a request without a token) and ``errors`` (``""`` for a complete request)."""
    every = list(records)
    return {
        "input_lens": [record.input_tokens or 0 for record in every],
        "output_lens": [record.output_tokens for record in every],
        "ttfts": [(record.ttft_ms or 0.0) / 1000.0 for record in every],
        "itls": [[gap / 1000.0 for gap in record.itl_ms] for record in every],
        "errors": [record.error or "" if record.status != "complete" else "" for record in every],
    }


def write_result(result: Mapping[str, Any], path: str | Path) -> None:
    """Write a JSON result to ``path`` (indented, UTF-8)."""
    Path(path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


_COLUMNS = (
    "start", "status", "error_kind", "ttft_ms", "tpot_ms", "e2el_ms", "mean_itl_ms",
    "output_tokens", "output_tokens_basis", "input_tokens", "chunks", "token_chunks",
    "queue_ms", "error",
)  # fmt: skip


def write_csv(records: Iterable[RequestRecord], target: str | Path | IO[str]) -> int:
    """One CSV row per request (columns: ``_COLUMNS``); return the rows written."""
    if isinstance(target, str | Path):
        with open(target, "w", newline="", encoding="utf-8") as file:
            return write_csv(records, file)
    writer = csv.writer(target)
    writer.writerow(_COLUMNS)
    count = 0
    for record in records:
        gaps = record.itl_ms
        writer.writerow(
            [
                f"{record.start:.6f}",
                record.status,
                record.error_kind or "",
                _cell(record.ttft_ms),
                _cell(record.tpot_ms),
                _cell(record.e2el_ms),
                _cell(math.fsum(gaps) / len(gaps) if gaps else None),
                record.output_tokens,
                record.output_tokens_basis,
                "" if record.input_tokens is None else record.input_tokens,
                record.chunks,
                record.token_chunks,
                _cell(record.queue_ms),
                record.error or "",
            ]
        )
        count += 1
    return count


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"
