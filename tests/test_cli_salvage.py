"""``streamspec decode`` on lenient chunks: Magistral reasoning, salvaged values, partial usage."""

from __future__ import annotations

import os
import subprocess
import sys

from splitting import MANIFEST, STREAMS

ENV = {**os.environ, "PYTHONIOENCODING": "utf-8"}
ENV.pop("OPENAI_API_KEY", None)


def decode(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamspec", "decode", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        env=ENV,
        timeout=60,
        check=False,
        text=True,
        encoding="utf-8",
    )


def summary_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("--")]


def test_magistral_thinking_is_reasoning_not_text() -> None:
    entry = MANIFEST["mistral_magistral_thinking.sse"]
    result = decode(str(STREAMS / "mistral_magistral_thinking.sse"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == entry["text"] + "\n"
    first = summary_lines(result)[0]
    assert f"{len(entry['text'])} content chars" in first
    assert f"{len(entry['reasoning'])} reasoning chars" in first
    assert "salvaged" not in result.stderr


EVENTS = [
    '{"choices":[{"index":0,"delta":{"content":"Hi","role":7}}]}',
    '{"choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop","logprobs":1}]}',
    '{"choices":[],"usage":{"prompt_tokens":3.0,"completion_tokens":2}}',
    '{"choices":[{"index":"0","delta":{"content":"lost"}}]}',
    "[DONE]",
]
STREAM = "".join(f"data: {e}\n\n" for e in EVENTS)


def offset(event: int) -> int:
    return STREAM.encode().index(f"data: {EVENTS[event]}".encode())


def test_salvaged_values_are_summarised() -> None:
    result = decode("-", stdin=STREAM.encode())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hi!\n"
    lines = summary_lines(result)
    assert "usage 3 prompt + 2 completion = ?" in lines[0]
    assert lines[-5:] == [
        "-- salvaged 4 chunks: 4 values did not fit the schema",
        f"--   event 0 (byte {offset(0)}): $.choices[0].delta.role:"
        " Expected `str | null`, got `int`",
        f"--   event 1 (byte {offset(1)}): $.choices[0].logprobs:"
        " Expected `object | null`, got `int`",
        f"--   event 2 (byte {offset(2)}): $.usage.prompt_tokens converted: 3.0 read as 3",
        "--   ... and 1 more",
    ]


def test_quiet_prints_no_salvage_lines() -> None:
    result = decode("-q", "-", stdin=STREAM.encode())
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
