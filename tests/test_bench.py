"""``streamspec bench``: the read-shape table, progress while measuring, and its JSON report."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from streamspec import bench, decoder
from streamspec._fastpath import IMPLEMENTATION
from streamspec._peers import (
    READ_SHAPES,
    python_decoder,
    shape_reads,
    split_payloads,
    streamspec_decoder,
)
from streamspec.samples import synthetic_stream


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """One round each: these tests check what is measured, not how fast."""
    monkeypatch.setattr(bench, "MIN_TIME_NS", 0)
    monkeypatch.setattr(bench, "SHAPE_TIME_NS", 0)


@pytest.mark.parametrize("shape", list(READ_SHAPES))
def test_every_shape_holds_the_whole_stream(shape: str) -> None:
    stream = synthetic_stream(30)
    reads = shape_reads(stream, shape)
    assert b"".join(reads) == stream
    events = stream.count(b"\n\n")
    expected = {"event": events, "two-events": (events + 1) // 2, "split": 2 * events, "whole": 1}
    if shape in expected:
        assert len(reads) == expected[shape]
    chunks = streamspec_decoder()(reads)
    assert len(chunks) == events - 1  # [DONE] is no chunk
    assert python_decoder()(reads) == chunks


def test_measure_shapes_rows_and_progress() -> None:
    told: list[str] = []
    results, notes = bench.measure_shapes(20, 1, progress=told.append)
    impls = ["c", "python"] if IMPLEMENTATION == "c" else ["python"]
    assert [(r.shape, r.impl) for r in results] == [(s, i) for s in READ_SHAPES for i in impls]
    assert all(r.best_ns > 0 and r.ceiling_ns > 0 and r.rounds >= 1 for r in results)
    assert all(r.events == len(split_payloads(synthetic_stream(20))) for r in results)
    assert len(told) == len(results)
    assert "one event per read" in told[0]
    if IMPLEMENTATION == "c":
        assert all(note.startswith("pure-Python rows:") for note in notes)
        assert len(notes) == (0 if hasattr(decoder, "PyChunkDecoder") else 1)
    else:
        assert notes == ["the compiled accelerator is not loaded: no C rows"]


def _args(**given: Any) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    argv = [
        f"--{k.replace('_', '-')}" if v is True else f"--{k.replace('_', '-')}={v}"
        for k, v in given.items()
    ]
    return parser.parse_args(argv)


def test_run_prints_both_tables_and_progress(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.run(_args(tokens=20, rounds=1)) == 0
    out, err = capsys.readouterr()
    assert "vs ceiling" in out
    assert "Read shapes" in out
    for label in READ_SHAPES.values():
        assert label in out
    # Not a terminal: one progress line per step, on stderr only.
    steps = [line for line in err.splitlines() if line.startswith("streamspec bench: timing")]
    assert any("msgspec ceiling" in line for line in steps)
    assert any("every event split across two reads" in line for line in steps)


def test_run_json_quiet_without_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.run(_args(tokens=20, rounds=1, json=True, quiet=True, no_shapes=True)) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["shapes"] == []
    assert {r["name"] for r in report["results"]} >= {"ceiling", "streamspec"}
    assert "timing" not in err
