"""The load generator, records, summaries, reports and plots, against the paced mock server.

Every server is real (:class:`streamspec.testing.MockServer` on loopback, port
0). Assertions use only what cannot depend on machine load: counts, statuses,
the mock's ground truth, lower bounds the pacing guarantees, and figures
recomputed by hand from the records.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from streamspec._extras import require
from streamspec.cli import main
from streamspec.load import (
    LoadConfig,
    MissingExtraError,
    RequestRecord,
    parse_slos,
    read_records,
    run,
    run_load,
    summarize_records,
    write_records,
)
from streamspec.load.generator import endpoint_url, request_bodies
from streamspec.testing import MockServer

TTFT = 0.02
ITL = 0.002
TOKENS = 8


def load(server: MockServer, **options: Any) -> list[RequestRecord]:
    config = LoadConfig(url=server.base_url, model="mock-model", **options)
    return run(lambda: run_load(config)).records


def test_fixed_concurrency_against_the_mock() -> None:
    server = MockServer(ttft=TTFT, itl=ITL, tokens=TOKENS)
    with server.run_in_thread():
        records = load(server, concurrency=4, num_requests=12)
    assert len(records) == len(server.streams) == 12
    assert all(stream.status == "complete" for stream in server.streams)
    assert all(len(stream.token_sent_ns) == TOKENS for stream in server.streams)
    for record in records:
        assert record.status == "complete", record.error
        assert (record.output_tokens, record.output_tokens_basis) == (TOKENS, "usage")
        assert record.token_chunks == TOKENS
        assert len(record.itl_ms) == TOKENS - 1
        assert record.input_tokens is not None
        assert record.input_tokens > 0
        assert record.ttft_ms is not None
        assert record.e2el_ms is not None
        # The mock sends token k no earlier than TTFT + k * ITL after reading the request.
        assert record.ttft_ms >= TTFT * 1000
        assert record.e2el_ms >= (TTFT + (TOKENS - 1) * ITL) * 1000
        assert record.ttft_ms + math.fsum(record.itl_ms) <= record.e2el_ms + 1e-9
    summary = summarize_records(records)
    assert summary["completed"] == 12
    assert summary["failed"] == 0
    assert summary["total_output_tokens"] == 12 * TOKENS
    assert summary["max_concurrent_requests"] <= 4
    assert summary["median_ttft_ms"] >= TTFT * 1000


def test_request_rate_times_from_the_schedule() -> None:
    server = MockServer(ttft=TTFT, itl=ITL, tokens=TOKENS)
    with server.run_in_thread():
        records = load(
            server, request_rate=500.0, arrival="constant", concurrency=1, num_requests=6
        )
    assert [record.status for record in records] == ["complete"] * 6
    starts = sorted(record.start for record in records)
    # Each request's clock starts at its scheduled arrival: 2 ms apart, whatever the queue.
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert gaps == pytest.approx([0.002] * 5, abs=1e-6)
    # One slot and 20+ ms per request: later requests waited for the slot, and that counts.
    last = max(records, key=lambda record: record.start)
    assert last.queue_ms > 0
    assert last.ttft_ms is not None
    assert last.ttft_ms >= last.queue_ms + TTFT * 1000


def test_failures_by_kind() -> None:
    server = MockServer(ttft=0.001, itl=0.001, tokens=6, error_every=3, truncate_every=2)
    with server.run_in_thread():
        records = load(server, concurrency=3, num_requests=9)
    kinds = sorted(record.error_kind or record.status for record in records)
    # Requests 3, 6 and 9 get HTTP 500; of the six streams, every second one is cut.
    assert kinds == ["complete"] * 3 + ["http_500"] * 3 + ["truncated"] * 3
    summary = summarize_records(records)
    assert (summary["completed"], summary["failed"]) == (3, 6)
    assert summary["failures"] == {"http_500": 3, "truncated": 3}
    errors = [r for r in records if r.error_kind == "http_500"]
    assert all(r.error is not None and "mock failure" in r.error for r in errors)


def test_legacy_completions() -> None:
    server = MockServer(ttft=0.001, itl=0.001, tokens=5)
    with server.run_in_thread():
        records = load(server, endpoint="completions", concurrency=2, num_requests=4)
    assert {stream.path for stream in server.streams} == {"/v1/completions"}
    assert all(record.status == "complete" for record in records)
    assert all(record.token_chunks == 5 and record.output_tokens == 5 for record in records)


def test_warmup_is_not_recorded() -> None:
    server = MockServer(ttft=0.001, itl=0.001, tokens=3)
    with server.run_in_thread():
        records = load(server, concurrency=2, num_requests=3, warmup=2)
    assert len(records) == 3
    assert len(server.streams) == 5


def test_unreachable_server_is_a_connection_failure() -> None:
    server = MockServer()
    with server.run_in_thread():
        url = server.base_url  # the port is free again once the server stopped
    records = run(lambda: run_load(LoadConfig(url=url, model="m", concurrency=1, num_requests=2)))
    assert [record.error_kind for record in records.records] == ["connection"] * 2


def test_endpoints_and_bodies() -> None:
    assert endpoint_url("http://h/v1", "chat") == "http://h/v1/chat/completions"
    assert endpoint_url("http://h/v1/", "completions") == "http://h/v1/completions"
    assert endpoint_url("http://h/x/chat/completions", "chat") == "http://h/x/chat/completions"
    assert endpoint_url("http://h:8000", "chat") == "http://h:8000/v1/chat/completions"
    assert endpoint_url("http://h:8000/", "completions") == "http://h:8000/v1/completions"
    config = LoadConfig(url="u", model="m", concurrency=1, max_tokens=7,
                        prompts=[{"messages": [{"role": "user", "content": "hi"}]}])  # fmt: skip
    [body] = [json.loads(b) for b in request_bodies(config)]
    assert body["model"] == "m"
    assert body["stream"] is True
    assert body["max_tokens"] == 7
    assert body["stream_options"] == {"include_usage": True}
    legacy = LoadConfig(url="u", model="m", endpoint="completions", prompts=config.prompts)
    [body] = [json.loads(b) for b in request_bodies(legacy)]
    assert body["prompt"] == "hi"
    assert "messages" not in body


# -- summaries from hand-made records ----------------------------------------------------------


def record(start: float, ttft: float, itl: list[float], tokens: int, **extra: Any) -> RequestRecord:
    e2el = ttft + sum(itl)
    return RequestRecord(start=start, status="complete", ttft_ms=ttft, e2el_ms=e2el,
                         itl_ms=itl, output_tokens=tokens, input_tokens=10,
                         token_chunks=len(itl) + 1, **extra)  # fmt: skip


def test_summary_by_hand() -> None:
    records = [
        record(100.0, 50.0, [20.0, 30.0], 3),  # e2el 100, tpot 25
        record(100.5, 150.0, [10.0, 10.0, 10.0], 4),  # e2el 180, tpot 10
        RequestRecord(start=100.05, status="error", error_kind="http_500", e2el_ms=5.0),
    ]
    summary = summarize_records(records, percentiles=[50, 99], slos=parse_slos("ttft:100,tpot:30"))
    # From 100.0 to the last end, 100.5 + 0.18 s.
    assert summary["duration"] == pytest.approx(0.68)
    assert (summary["completed"], summary["failed"]) == (2, 1)
    assert summary["failures"] == {"http_500": 1}
    assert summary["total_output_tokens"] == 7
    assert summary["total_input_tokens"] == 20
    assert summary["request_throughput"] == pytest.approx(2 / 0.68)
    assert summary["output_throughput"] == pytest.approx(7 / 0.68)
    assert summary["total_token_throughput"] == pytest.approx(27 / 0.68)
    assert summary["request_goodput"] == pytest.approx(1 / 0.68)  # the second misses ttft:100
    assert summary["mean_ttft_ms"] == pytest.approx(100.0)
    assert summary["median_ttft_ms"] == pytest.approx(100.0)
    assert summary["std_ttft_ms"] == pytest.approx(50.0)
    assert summary["p99_ttft_ms"] == pytest.approx(50 + 0.99 * 100)
    assert summary["mean_tpot_ms"] == pytest.approx(17.5)
    assert summary["mean_itl_ms"] == pytest.approx(16.0)  # 20, 30, 10, 10, 10
    assert summary["median_itl_ms"] == pytest.approx(10.0)
    assert (summary["min_itl_ms"], summary["max_itl_ms"]) == (10.0, 30.0)
    assert summary["mean_e2el_ms"] == pytest.approx(140.0)
    assert summary["max_concurrent_requests"] == 2  # the failure overlaps the first
    assert set(summary) >= {
        "duration", "completed", "failed", "request_throughput", "output_throughput",
        "total_token_throughput", "request_goodput", "total_input_tokens",
        "total_output_tokens", "mean_ttft_ms", "median_ttft_ms", "std_ttft_ms", "p99_ttft_ms",
        "mean_tpot_ms", "p50_tpot_ms", "mean_itl_ms", "p99_itl_ms", "mean_e2el_ms",
        "p99_e2el_ms", "max_output_tokens_per_s", "max_concurrent_requests",
    }  # fmt: skip


def test_empty_summary() -> None:
    summary = summarize_records([])
    assert (summary["completed"], summary["failed"], summary["duration"]) == (0, 0, 0.0)
    assert summary["mean_ttft_ms"] is None


@pytest.mark.parametrize("text", ["ttft", "ttft:x", "speed:3", "tpot:-1"])
def test_bad_slos(text: str) -> None:
    with pytest.raises(ValueError, match="bad SLO"):
        parse_slos(text)


def random_records(seed: int, count: int) -> list[RequestRecord]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        itl = [rng.uniform(5, 40) for _ in range(rng.randint(0, 30))]
        out.append(record(rng.uniform(0, 100) + 1.7e9, rng.uniform(20, 300), itl, len(itl) + 1))
    return out


def test_merging_is_exact_and_order_free(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = random_records(1, 300)
    whole = summarize_records(records, slos={"ttft": 150})
    shuffled = records[:]
    random.Random(2).shuffle(shuffled)
    assert summarize_records(shuffled, slos={"ttft": 150}) == whole
    write_records(shuffled[:120], tmp_path / "a.jsonl")
    write_records(shuffled[120:], tmp_path / "b.jsonl")
    assert list(read_records(tmp_path / "a.jsonl")) == shuffled[:120]
    code = main(["report", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"),
                 "--goodput", "ttft:150", "--json"])  # fmt: skip
    assert code == 0
    merged = json.loads(capsys.readouterr().out)
    for key, value in whole.items():
        assert merged[key] == value, key


def test_report_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "missing.jsonl")]) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"start": "x"}\n')
    assert main(["report", str(bad)]) == 1
    assert "bad.jsonl:1" in capsys.readouterr().err


# -- the command line, JSON result, CSV and plots ----------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n"


def test_cli_load_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    server = MockServer(ttft=0.005, itl=0.001, tokens=6)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"messages": [{"role": "user", "content": "hello"}]}\n')
    result, records, table = tmp_path / "r.json", tmp_path / "r.jsonl", tmp_path / "r.csv"
    with server.run_in_thread():
        code = main(["load", server.base_url, "--model", "mock-model", "--max-concurrency", "2",
                     "--num-prompts", "5",
                     "--prompts", str(prompts), "--goodput", "ttft:10000",
                     "--save-result", str(result), "--save-detailed",
                     "--save-records", str(records),
                     "--csv", str(table), "--plot", str(tmp_path / "plots")])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "Serving Benchmark Result" in out
    assert "Median ITL (ms):" in out
    data = json.loads(result.read_text())
    assert data["completed"] == 5
    assert data["failed"] == 0
    assert data["model_id"] == "mock-model"
    assert data["max_concurrency"] == 2
    assert data["request_rate"] == "inf"
    assert data["request_goodput"] == pytest.approx(data["request_throughput"])
    assert data["total_output_tokens"] == 30
    assert data["output_lens"] == [6] * 5
    assert len(data["itls"]) == 5
    assert all(len(gaps) == 5 for gaps in data["itls"])
    assert all(0 < ttft < 10 for ttft in data["ttfts"])  # seconds, as vLLM writes them
    assert data["errors"] == [""] * 5
    loaded = list(read_records(records))
    assert summarize_records(loaded, slos={"ttft": 10000})["median_itl_ms"] == data["median_itl_ms"]
    assert len(table.read_text().splitlines()) == 6
    for name in ("ttft.png", "itl.png", "e2el.png", "throughput.png", "overview.png"):
        png = (tmp_path / "plots" / name).read_bytes()
        assert png.startswith(PNG), name
        assert len(png) > 5000, name
    assert {s.model for s in server.streams} == {"mock-model"}


def test_cli_endpoint_as_a_path(capsys: pytest.CaptureFixture[str]) -> None:
    server = MockServer(ttft=0.001, itl=0.001, tokens=3)
    with server.run_in_thread():
        root = server.base_url.removesuffix("/v1")
        code = main(["load", root, "--model", "m", "-c", "1", "-n", "2",
                     "--endpoint", "/v1/completions"])  # fmt: skip
    assert code == 0
    assert [stream.path for stream in server.streams] == ["/v1/completions"] * 2
    assert "Successful requests:                     2" in capsys.readouterr().out


def test_cli_exit_status_says_whether_requests_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = MockServer(ttft=0.001, itl=0.001, tokens=3, error_every=2)
    result = tmp_path / "r.json"
    with server.run_in_thread():
        command = ["load", server.base_url, "--model", "m", "-c", "1", "-n", "4",
                   "--save-result", str(result)]  # fmt: skip
        assert main(command) == 1
        failed = capsys.readouterr()
        assert json.loads(result.read_text())["failed"] == 2  # the outputs are written first
        assert main([*command, "--allow-failures"]) == 0
        allowed = capsys.readouterr()
    assert failed.err.startswith("failed: http_500 (2): HTTP 500: mock failure")
    assert allowed.err == failed.err
    healthy = MockServer(ttft=0.001, itl=0.001, tokens=3)
    with healthy.run_in_thread():
        assert main(["load", healthy.base_url, "--model", "m", "-c", "1", "-n", "2"]) == 0
    assert capsys.readouterr().err == ""


def test_cli_load_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load", "http://127.0.0.1:9/v1", "--model", "m"]) == 2
    assert "--concurrency" in capsys.readouterr().err
    assert main(["load", "http://127.0.0.1:9/v1", "--model", "m", "-c", "1",
                 "--goodput", "nope"]) == 2  # fmt: skip


def test_missing_extra_names_it() -> None:
    with pytest.raises(MissingExtraError, match=r"pip install 'streamspec\[plot\]'"):
        require("streamspec_no_such_module", "plot", "plots")


# -- the mock's ground truth --------------------------------------------------------------------


def test_mock_records_what_it_sent() -> None:
    import urllib.request

    import streamspec

    server = MockServer(ttft=0.003, itl=0.002, tokens=4)
    with server.run_in_thread():
        body = json.dumps({"model": "x", "stream": True, "messages": []}).encode()
        request = urllib.request.Request(server.base_url + "/chat/completions", data=body)
        with urllib.request.urlopen(request) as response:
            data = response.read()
        with urllib.request.urlopen(server.base_url.removesuffix("/v1") + "/mock/streams") as r:
            listed = json.loads(r.read())
    chunks = list(streamspec.iter_chunks([data]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) != ""
    [stream] = server.streams
    assert listed[0]["token_sent_ns"] == stream.token_sent_ns
    assert len(stream.token_sent_ns) == 4
    assert stream.token_sent_ns[0] - stream.received_ns >= 3_000_000
    steps = [b - a for a, b in zip(stream.token_sent_ns, stream.token_sent_ns[1:], strict=False)]
    assert all(step > 0 for step in steps)
    assert data.endswith(b"data: [DONE]\n\n")


def test_the_aiohttp_client_reports_the_same() -> None:
    pytest.importorskip("aiohttp")
    server = MockServer(ttft=0.001, itl=0.001, tokens=5, error_every=3, truncate_every=2)
    with server.run_in_thread():
        records = load(server, concurrency=1, num_requests=6, client="aiohttp")
    kinds = [record.error_kind or record.status for record in records]
    # Requests 3 and 6 fail; of the four streams, the second and the fourth are cut.
    assert kinds == ["complete", "truncated", "http_500", "complete", "truncated", "http_500"]
    done = [record for record in records if record.status == "complete"]
    assert all(record.token_chunks == 5 and record.output_tokens == 5 for record in done)
