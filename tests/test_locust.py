"""ChatCompletionUser under a real Locust run against the paced mock server.

Locust monkey-patches the standard library with gevent when imported, so it
only ever runs in a subprocess here (``python -m locust``); this module never
imports it. Nothing depends on timing: the locustfile stops the run after a
fixed number of requests, and the assertions read what the run wrote once it
ended (the per-request records, and Locust's own statistics objects dumped
as JSON when Locust quits).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streamspec.load import read_records, summarize_records
from streamspec.testing import MockServer

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("locust") is None, reason="needs the locust extra"
)

REQUESTS = 6
TOKENS = 12
TTFT = 0.004
ITL = 0.001

LOCUSTFILE = """
import json
import os

import gevent
from locust import constant, events
from locust.exception import StopUser

from streamspec.contrib.locust import ChatCompletionUser, stream_stats

LIMIT = int(os.environ["TEST_REQUESTS"])
SENT = [0]


class Chat(ChatCompletionUser):
    model = "mock-model"
    prompt = "Say thanks in three languages."
    wait_time = constant(0)

    def chat_completion(self):
        if SENT[0] >= LIMIT:
            raise StopUser()
        SENT[0] += 1
        self.stream_chat_completion()
        if SENT[0] == LIMIT:
            gevent.spawn(self.environment.runner.quit)


Chat.tasks = [Chat.chat_completion]


@events.quitting.add_listener
def dump(environment, **kwargs):
    def rows(stats):
        return {
            f"{entry.method} {entry.name}": [entry.num_requests, entry.num_failures]
            for entry in stats.entries.values()
        }

    report = {
        "locust": rows(environment.stats),
        "total": [environment.stats.total.num_requests, environment.stats.total.num_failures],
        "stream": rows(stream_stats(environment)),
    }
    with open(os.environ["TEST_STATS"], "w") as file:
        json.dump(report, file)
"""


def run_locust(tmp_path: Path, host: str, *, users: int) -> tuple[int, dict[str, Any], str]:
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    env = {
        **__import__("os").environ,
        "TEST_REQUESTS": str(REQUESTS),
        "TEST_STATS": str(tmp_path / "stats.json"),
        "STREAMSPEC_RECORDS": str(tmp_path / "records-{pid}.jsonl"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
         "-u", str(users), "-r", str(users), "-t", "120s", "--host", host,
         "--loglevel", "WARNING"],
        capture_output=True, cwd=tmp_path, timeout=180, check=False, env=env,
    )  # fmt: skip
    stats = json.loads((tmp_path / "stats.json").read_text())
    return result.returncode, stats, result.stdout.decode() + result.stderr.decode()


def test_locust_reports_the_stream_metrics(tmp_path: Path) -> None:
    server = MockServer(ttft=TTFT, itl=ITL, tokens=TOKENS)
    with server.run_in_thread():
        code, stats, output = run_locust(tmp_path, server.base_url, users=2)
    assert code == 0, output[-3000:]
    [path] = tmp_path.glob("records-*.jsonl")
    records = list(read_records(path))
    assert len(records) == REQUESTS
    assert len(server.streams) == REQUESTS
    for record in records:
        assert record.status == "complete"
        assert record.output_tokens == TOKENS
        assert record.output_tokens_basis == "usage"
        assert record.token_chunks == TOKENS
        assert len(record.itl_ms) == TOKENS - 1
        assert record.ttft_ms is not None
        assert record.e2el_ms is not None
        # The mock writes the first token TTFT after reading the request, then one every ITL.
        assert record.ttft_ms >= TTFT * 1000
        assert record.ttft_ms + sum(record.itl_ms) <= record.e2el_ms
        assert record.tpot_ms is not None
    # Locust's own statistics hold the requests only: the Aggregated row is theirs.
    assert stats["locust"] == {"POST chat.completions": [REQUESTS, 0]}
    assert stats["total"] == [REQUESTS, 0]
    # TTFT, TPOT (one per request) and ITL (one per gap) live in their own statistics.
    assert stats["stream"] == {
        "TTFT chat.completions": [REQUESTS, 0],
        "TPOT chat.completions": [REQUESTS, 0],
        "ITL chat.completions": [REQUESTS * (TOKENS - 1), 0],
    }
    assert "TTFT" in output
    assert "ITL" in output
    summary = summarize_records(records)
    assert summary["completed"] == REQUESTS
    assert summary["total_output_tokens"] == REQUESTS * TOKENS


def test_http_errors_are_failures(tmp_path: Path) -> None:
    server = MockServer(ttft=TTFT, itl=ITL, tokens=TOKENS, model="other-model")
    with server.run_in_thread():
        code, stats, output = run_locust(tmp_path, server.base_url, users=1)
    assert code == 1, output[-3000:]  # locust's exit status when requests failed
    assert stats["locust"] == {"POST chat.completions": [REQUESTS, REQUESTS]}
    assert stats["stream"] == {}
    [path] = tmp_path.glob("records-*.jsonl")
    records = list(read_records(path))
    assert [record.error_kind for record in records] == ["http_404"] * REQUESTS
    assert all(record.error and "does not exist" in record.error for record in records)
    assert summarize_records(records)["failures"] == {"http_404": REQUESTS}
