"""PNG plots of a load test (needs the ``plot`` extra: matplotlib, imported only here).

:func:`plot_records` writes four figures into a directory:

* ``ttft.png``, ``itl.png``, ``e2el.png``: histograms of TTFT, of every
  inter-token gap and of E2EL over completed requests, with the median and
  p99 marked;
* ``throughput.png``: output tokens per second over the run (one-second bins)
  and the requests in flight;
* ``overview.png``: the four side by side.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .._extras import require
from ..metrics import percentile
from .records import RequestRecord

__all__ = ["plot_records"]


def _pyplot() -> Any:
    matplotlib = require("matplotlib", "plot", "streamspec load plots")
    matplotlib.use("Agg")  # files only, never a window
    return require("matplotlib.pyplot", "plot", "streamspec load plots")


def _histogram(plt: Any, values: Sequence[float], title: str, unit: str, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    _draw_histogram(axes, values, title, unit)
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)


def _draw_histogram(axes: Any, values: Sequence[float], title: str, unit: str) -> None:
    if values:
        ordered = sorted(values)
        axes.hist(ordered, bins=min(80, max(10, len(ordered) // 20)), color="#3b75af")
        for q, style in ((50, "-"), (99, "--")):
            mark = percentile(ordered, q)
            axes.axvline(mark, color="#d62728", linestyle=style, label=f"p{q} {mark:.1f} {unit}")
        axes.legend()
    else:
        axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes)
    axes.set_title(title)
    axes.set_xlabel(unit)
    axes.set_ylabel("count")


def _throughput(plt: Any, records: Sequence[RequestRecord], path: Path) -> None:
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    _draw_throughput(axes, records)
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)


def _draw_throughput(axes: Any, records: Sequence[RequestRecord]) -> None:
    origin = min((record.start for record in records), default=0.0)
    end = max((record.end for record in records), default=0.0)
    seconds = max(1, int(end - origin) + 1)
    tokens = [0.0] * seconds
    flight = [0] * seconds
    for record in records:
        times = record.token_times()
        weight = record.output_tokens / len(times) if times and record.output_tokens else 1.0
        for moment in times:
            tokens[min(seconds - 1, int(moment - origin))] += weight
        sent = record.start + record.queue_ms / 1000.0
        first, last = int(sent - origin), int(record.end - origin)
        for second in range(first, min(last, seconds - 1) + 1):
            flight[second] += 1
    axes.step(range(seconds), tokens, where="post", color="#3b75af", label="output tokens/s")
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("output tokens / s")
    other = axes.twinx()
    other.step(
        range(seconds), flight, where="post", color="#ff7f0e", label="requests active in the second"
    )
    other.set_ylabel("requests active")
    axes.set_title("Output tokens per second")
    handles = axes.get_legend_handles_labels()[0] + other.get_legend_handles_labels()[0]
    axes.legend(handles, [h.get_label() for h in handles], loc="lower right")


def plot_records(records: Iterable[RequestRecord], directory: str | Path) -> list[Path]:
    """Write the PNG figures of ``records`` into ``directory`` (created); return their paths."""
    plt = _pyplot()
    every = list(records)
    done = [record for record in every if record.status == "complete"]
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    names = ("ttft.png", "itl.png", "e2el.png", "throughput.png", "overview.png")
    paths = [target / name for name in names]
    ttft = [r.ttft_ms for r in done if r.ttft_ms is not None]
    e2el = [r.e2el_ms for r in done if r.e2el_ms is not None]
    itl = [gap for r in done for gap in r.itl_ms]
    _histogram(plt, ttft, "Time to first token", "ms", paths[0])
    _histogram(plt, itl, "Inter-token latency", "ms", paths[1])
    _histogram(plt, e2el, "End-to-end latency", "ms", paths[2])
    _throughput(plt, every, paths[3])
    figure, grid = plt.subplots(2, 2, figsize=(12, 7.5), dpi=100)
    _draw_histogram(grid[0][0], ttft, "Time to first token", "ms")
    _draw_histogram(grid[0][1], itl, "Inter-token latency", "ms")
    _draw_histogram(grid[1][0], e2el, "End-to-end latency", "ms")
    _draw_throughput(grid[1][1], every)
    figure.tight_layout()
    figure.savefig(paths[4], format="png")
    plt.close(figure)
    return paths
