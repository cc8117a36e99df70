"""The summary of a load test, computed from its per-request records, under vLLM's names.

:func:`summarize_records` returns a dict whose keys and meanings are those of
the JSON result of vLLM's ``vllm bench serve`` where vLLM has them:

* ``duration`` (s): from the first request's ``start`` to the last end;
* ``completed`` / ``failed``: requests that completed / that did not
  (``failures`` counts them by ``error_kind``);
* ``total_input_tokens`` / ``total_output_tokens``: over completed requests
  (input tokens from the servers' usage; 0 where a server sent none);
* ``request_throughput`` (req/s), ``output_throughput`` and
  ``total_token_throughput`` (tok/s): completed requests and their tokens over
  ``duration``; ``request_goodput``: completed requests that met every SLO,
  over ``duration`` (``None`` without SLOs);
* ``max_output_tokens_per_s``: the most output tokens that arrived within one
  whole second of the run; ``max_concurrent_requests``: the most requests in
  flight at once (from being sent, after any wait for a slot, to their end);
* for each of ``ttft``, ``tpot``, ``itl`` and ``e2el``: ``mean_<m>_ms``,
  ``median_<m>_ms``, ``std_<m>_ms`` (population), ``min_<m>_ms``,
  ``max_<m>_ms`` and ``p<P>_<m>_ms`` for each requested percentile (linear
  interpolation, numpy's default). As in vLLM they describe completed requests;
  TPOT those with at least two output tokens; ITL pools every gap of every
  completed request. ``None`` when there is nothing to describe.

The result depends only on the set of records, not their order (sums are
exactly rounded with :func:`math.fsum`, percentiles come from sorted values),
so merging the records of several machines gives exactly the summary of one
run that made them all.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..metrics import percentile
from .records import RequestRecord

__all__ = ["DEFAULT_PERCENTILES", "METRICS", "parse_percentiles", "parse_slos", "summarize_records"]

METRICS = ("ttft", "tpot", "itl", "e2el")
"""The latency metrics of a summary, in vLLM's order."""

DEFAULT_PERCENTILES: tuple[float, ...] = (50, 90, 95, 99)


def parse_slos(text: str | None) -> dict[str, float]:
    """``"ttft:200,tpot:50"`` (or space-separated, vLLM's way) -> ``{"ttft": 200.0, ...}``.

    Keys are ``ttft``, ``tpot`` and ``e2el``; values are milliseconds. Raises
    ``ValueError`` with the offending item.
    """
    slos: dict[str, float] = {}
    if not text:
        return slos
    for item in text.replace(",", " ").split():
        key, sep, value = item.partition(":")
        key = key.strip().lower()
        if not sep or key not in ("ttft", "tpot", "e2el"):
            raise ValueError(f"bad SLO {item!r}: expected ttft:MS, tpot:MS or e2el:MS")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"bad SLO {item!r}: {value!r} is not a number of ms") from None
        if not number >= 0:
            raise ValueError(f"bad SLO {item!r}: must be >= 0")
        slos[key] = number
    return slos


def parse_percentiles(text: str) -> tuple[float, ...]:
    """``"50,90,99"`` -> ``(50.0, 90.0, 99.0)``; each between 0 and 100."""
    values = []
    for item in text.replace(" ", ",").split(","):
        if not item:
            continue
        value = float(item)
        if not 0 <= value <= 100:
            raise ValueError(f"percentile {item} is not between 0 and 100")
        values.append(value)
    return tuple(values)


def _label(value: float) -> str:
    """``99`` -> ``"99"``, ``99.9`` -> ``"99.9"`` (vLLM's ``p99_ttft_ms``, ``p99.9_ttft_ms``)."""
    return str(int(value)) if value == int(value) else str(value)


def _describe(
    out: dict[str, Any], name: str, values: Sequence[float], percentiles: Iterable[float]
) -> None:
    ordered = sorted(values)
    count = len(ordered)
    if count:
        mean = math.fsum(ordered) / count
        std = math.sqrt(math.fsum((value - mean) ** 2 for value in ordered) / count)
    out[f"mean_{name}_ms"] = mean if count else None
    out[f"median_{name}_ms"] = percentile(ordered, 50) if count else None
    out[f"std_{name}_ms"] = std if count else None
    out[f"min_{name}_ms"] = ordered[0] if count else None
    out[f"max_{name}_ms"] = ordered[-1] if count else None
    for value in percentiles:
        out[f"p{_label(value)}_{name}_ms"] = percentile(ordered, value) if count else None


def _peak_tokens_per_second(records: Sequence[RequestRecord], origin: float) -> float:
    """The most output tokens that arrived within one whole second since ``origin``."""
    buckets: Counter[int] = Counter()
    for record in records:
        times = record.token_times()
        if not times:
            continue
        # Usage may count more tokens than chunks: spread them evenly over the chunks.
        weight = record.output_tokens / len(times) if record.output_tokens else 1.0
        for moment in times:
            buckets[int(moment - origin)] += weight  # type: ignore[assignment]
    return float(max(buckets.values(), default=0))


def _peak_concurrency(records: Sequence[RequestRecord]) -> int:
    """The most requests in flight at once (sent, not only due: queueing is not flight)."""
    edges = sorted(
        [(record.start + record.queue_ms / 1000.0, 1) for record in records]
        + [(record.end, -1) for record in records],
        key=lambda edge: (edge[0], edge[1]),
    )
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def summarize_records(
    records: Iterable[RequestRecord],
    *,
    percentiles: Iterable[float] = DEFAULT_PERCENTILES,
    slos: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The summary of ``records`` (see :mod:`streamspec.load.summary` for each field)."""
    every = list(records)
    wanted = tuple(percentiles)
    done = [record for record in every if record.status == "complete"]
    failures = Counter(record.error_kind or record.status for record in every
                       if record.status != "complete")  # fmt: skip
    if every:
        origin = min(record.start for record in every)
        duration = max(record.end for record in every) - origin
    else:
        origin = duration = 0.0
    input_tokens = sum(record.input_tokens or 0 for record in done)
    output_tokens = sum(record.output_tokens for record in done)
    per_second = 1.0 / duration if duration > 0 else 0.0
    ttfts = [record.ttft_ms for record in done if record.ttft_ms is not None]
    e2els = [record.e2el_ms for record in done if record.e2el_ms is not None]
    tpots = [tpot for record in done if (tpot := record.tpot_ms) is not None]
    itls = [gap for record in done for gap in record.itl_ms]
    goodput = None
    if slos:
        good = 0
        for record in done:
            values = {"ttft": record.ttft_ms, "tpot": record.tpot_ms or 0.0, "e2el": record.e2el_ms}
            if all(
                (value := values[key]) is not None and value <= limit for key, limit in slos.items()
            ):
                good += 1
        goodput = good * per_second
    out: dict[str, Any] = {
        "duration": duration,
        "completed": len(done),
        "failed": len(every) - len(done),
        "failures": dict(sorted(failures.items())),
        "total_input_tokens": input_tokens,
        "total_output_tokens": output_tokens,
        "request_throughput": len(done) * per_second,
        "request_goodput": goodput,
        "output_throughput": output_tokens * per_second,
        "total_token_throughput": (input_tokens + output_tokens) * per_second,
        "max_output_tokens_per_s": _peak_tokens_per_second(done, origin),
        "max_concurrent_requests": _peak_concurrency(every),
        "output_tokens_basis": dict(sorted(Counter(r.output_tokens_basis for r in done).items())),
        "slos": dict(slos) if slos else None,
        "percentiles": list(wanted),
    }
    for name, series in zip(METRICS, (ttfts, tpots, itls, e2els), strict=True):
        _describe(out, name, series, wanted)
    return out
