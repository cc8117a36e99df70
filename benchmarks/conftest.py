"""Benchmark session hooks: same-run ratios added to the ``--benchmark-json`` report.

When pytest-benchmark writes its JSON report, every decoder benchmark gets
``ratio_to_ceiling`` (its time over the ceiling of the same group, stream and
chunk type, measured in this run), the lean benchmark ``full_over_lean``, each
peer ``streamspec_speedup`` (its time over streamspec's in the same group), and
the gc-off keep-alive run ``gc_overhead``. Ratios use the minimum times (and
``*_median`` the medians). Benchmarks without these ``extra_info`` keys (other
suites in this directory) are left untouched.

It also creates the directory of ``--benchmark-json`` when it is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pytest_configure(config: Any) -> None:
    """Create the directory of ``--benchmark-json`` (``bench-results/``) if it is missing."""
    target = config.getoption("benchmark_json", None)
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)


def _key(bench: dict[str, Any], *names: str) -> tuple[Any, ...]:
    info = bench.get("extra_info", {})
    return (bench.get("group"), *(info.get(name) for name in names))


def _set_ratio(bench: dict[str, Any], name: str, over: dict[str, Any] | None, rev: bool) -> None:
    if over is None:
        return
    info = bench["extra_info"]
    for stat, suffix in (("min", ""), ("median", "_median")):
        mine, theirs = bench["stats"][stat], over["stats"][stat]
        if rev:
            mine, theirs = theirs, mine
        if theirs:
            info[f"{name}{suffix}"] = round(mine / theirs, 3)


def add_ratios(benchmarks: list[dict[str, Any]]) -> None:
    """Add the same-run ratios to the ``extra_info`` of JSON benchmark entries, in place."""
    by_role: dict[str, list[dict[str, Any]]] = {}
    for bench in benchmarks:
        role = bench.get("extra_info", {}).get("role")
        if role is not None:
            by_role.setdefault(role, []).append(bench)
    # A ceiling of the same group first; groups without one (peers) use any of the run.
    ceilings: dict[tuple[Any, ...], dict[str, Any]] = {}
    for bench in by_role.get("ceiling", []):
        ceilings[_key(bench, "stream", "type")] = bench
        ceilings.setdefault(_key(bench, "stream", "type")[1:], bench)

    def ceiling_of(bench: dict[str, Any]) -> dict[str, Any] | None:
        key = _key(bench, "stream", "type")
        return ceilings.get(key, ceilings.get(key[1:]))

    streamspec = {
        _key(bench, "stream"): bench
        for bench in by_role.get("decoder", [])
        if bench["extra_info"].get("impl") == "streamspec"
    }
    for bench in by_role.get("decoder", []) + by_role.get("peer", []):
        _set_ratio(bench, "ratio_to_ceiling", ceiling_of(bench), False)
    for bench in by_role.get("peer", []):
        _set_ratio(bench, "streamspec_speedup", streamspec.get(_key(bench, "stream")), False)
    for bench in by_role.get("lean", []):
        # What the full chunk type costs over the lean one, on the same payloads.
        full = ceilings.get((bench.get("group"), bench["extra_info"].get("stream"), "full"))
        _set_ratio(bench, "full_over_lean", full, True)
    keep_alive = {
        bench["extra_info"].get("gc"): bench
        for bench in by_role.get("memory", [])
        if bench["extra_info"].get("measure") == "keep-alive"
    }
    if "on" in keep_alive and "off" in keep_alive:
        _set_ratio(keep_alive["on"], "gc_overhead", keep_alive["off"], False)


def pytest_benchmark_update_json(
    config: Any, benchmarks: list[Any], output_json: dict[str, Any]
) -> None:
    add_ratios(output_json.get("benchmarks", []))
