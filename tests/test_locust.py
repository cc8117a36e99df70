"""ChatCompletionUser under a real Locust run against MockUpstream.

Locust monkey-patches the standard library with gevent when imported, so it
only ever runs in a subprocess here (``python -m locust``); this module never
imports it.
"""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from mock_upstream import MockUpstream, load_fixture
from splitting import MANIFEST

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("locust") is None, reason="needs the locust extra"
)

TOKEN_DELAY = 0.02  # seconds between events written by the mock
FIXTURE = "openai_text"

LOCUSTFILE = """
from locust import constant

from streamspec.contrib.locust import ChatCompletionUser


class Chat(ChatCompletionUser):
    model = "mock-model"
    prompt = "Say thanks in three languages."
    wait_time = constant(0)
"""


def locust(
    tmp_path: Path, host: str, *, users: int, seconds: int
) -> subprocess.CompletedProcess[bytes]:
    """Run Locust headless on LOCUSTFILE in a subprocess; CSV files go to ``tmp_path/run_*``."""
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(locustfile),
            "--headless",
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            f"{seconds}s",
            "--host",
            host,
            "--csv",
            str(tmp_path / "run"),
            "--only-summary",
            "--loglevel",
            "WARNING",
        ],
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


def run_locust(tmp_path: Path, host: str) -> dict[tuple[str, str], dict[str, str]]:
    result = locust(tmp_path, host, users=2, seconds=4)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    with open(tmp_path / "run_stats.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    return {(row["Type"], row["Name"]): row for row in rows}


def test_locust_reports_ttft_itl_tps(tmp_path: Path) -> None:
    with MockUpstream({"mock-model": load_fixture(FIXTURE)}, token_delay=TOKEN_DELAY) as upstream:
        stats = run_locust(tmp_path, upstream.base_url)
        bodies = list(upstream.requests)

    assert bodies
    assert all(body["stream"] is True and body["model"] == "mock-model" for body in bodies)

    request = stats[("POST", "chat.completions")]
    ttft = stats[("TTFT", "chat.completions")]
    itl = stats[("ITL", "chat.completions")]
    tps = stats[("TPS", "chat.completions")]
    for row in (request, ttft, itl, tps):
        assert int(row["Request Count"]) > 0
        assert int(row["Failure Count"]) == 0
    assert int(stats[("", "Aggregated")]["Failure Count"]) == 0

    completed = int(request["Request Count"])
    assert int(ttft["Request Count"]) == completed
    assert int(itl["Request Count"]) == completed
    assert int(tps["Request Count"]) == completed

    delay_ms = TOKEN_DELAY * 1000
    # The first token is written one token delay after the role chunk, so no earlier.
    assert float(ttft["Min Response Time"]) >= delay_ms
    assert float(itl["Average Response Time"]) > 0
    # The whole request spans every event the mock paced.
    events = MANIFEST[f"{FIXTURE}.sse"]["n_chunks"]
    assert float(request["Min Response Time"]) >= (events - 1) * delay_ms
    assert float(request["Average Content Size"]) == len(load_fixture(FIXTURE))
    # About 1 / TOKEN_DELAY tokens per second; far from 0 and far from unpaced speed.
    assert 0 < float(tps["Average Response Time"]) < 10 / TOKEN_DELAY


def test_http_errors_are_failures(tmp_path: Path) -> None:
    with MockUpstream({"other-model": load_fixture(FIXTURE)}) as upstream:
        result = locust(tmp_path, upstream.base_url, users=1, seconds=2)
    assert result.returncode == 1  # locust's exit status when requests failed
    with open(tmp_path / "run_failures.csv", newline="") as file:
        failures = list(csv.DictReader(file))
    [failure] = failures
    assert failure["Method"] == "POST"
    assert "HTTP 404" in failure["Error"]
    assert "does not exist" in failure["Error"]
