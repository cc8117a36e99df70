"""Load tests that measure the server, not themselves: records, summaries, a generator, plots.

* :mod:`~streamspec.load.records`: :class:`RequestRecord`, one JSON line per
  request, mergeable across machines;
* :mod:`~streamspec.load.summary`: :func:`summarize_records`, the run's
  figures under vLLM ``bench serve``'s names;
* :mod:`~streamspec.load.generator`: :func:`run_load`, the asyncio load
  generator behind ``streamspec load`` (no extra needed; extra ``load`` adds
  uvloop and the optional aiohttp client);
* :mod:`~streamspec.load.report`: the summary table, JSON result and CSV;
* :mod:`~streamspec.load.plots`: PNG figures (extra ``plot``).

The generator, the aiohttp client and the plots import their extras only when used.
"""

from __future__ import annotations

from .._extras import MissingExtraError
from ._client import tls_context
from .generator import LoadConfig, LoadProgress, LoadRun, run, run_load
from .plots import plot_records
from .records import RequestRecord, read_records, record_from_meter, write_records
from .report import detailed_fields, format_summary, result_json, write_csv, write_result
from .summary import DEFAULT_PERCENTILES, METRICS, parse_percentiles, parse_slos, summarize_records

__all__ = [
    "DEFAULT_PERCENTILES",
    "METRICS",
    "LoadConfig",
    "LoadProgress",
    "LoadRun",
    "MissingExtraError",
    "RequestRecord",
    "detailed_fields",
    "format_summary",
    "parse_percentiles",
    "parse_slos",
    "plot_records",
    "read_records",
    "record_from_meter",
    "result_json",
    "run",
    "run_load",
    "summarize_records",
    "tls_context",
    "write_csv",
    "write_records",
    "write_result",
]
