"""Every code block of README.md runs as written.

Python blocks run one after the other, each in a fresh namespace, with
``OPENAI_BASE_URL`` pointing at an OpenAI-compatible server on loopback (the
blocks read it, as the ``openai`` SDK does). Console blocks: every
``streamspec`` command runs (``http://localhost:8000/v1`` becomes the loopback
server's URL; ``capture.sse`` and ``legacy.sse`` are real-server-shaped
streams in the working folder; a ``-`` reads the one its kind needs) and must
exit 0. ``text`` blocks are sample output. Only the commands listed in
``NOT_RUN`` are left out (installs, servers that run until stopped, a load
run, speed measurements), each with its reason.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mock_upstream import ServerThread
from splitting import MANIFEST, STREAMS, fixture

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
BLOCKS = [(kind, code, README.read_text("utf-8")[: m.start()].count("\n") + 1)
          for m in BLOCK.finditer(README.read_text("utf-8"))
          for kind, code in [m.groups()]]  # fmt: skip
PYTHON = [(code, line) for kind, code, line in BLOCKS if kind == "python"]
CONSOLE = [(code, line) for kind, code, line in BLOCKS if kind == "console"]
README_URL = "http://localhost:8000/v1"
NOT_RUN = {  # command prefix -> why it is not run here
    "pip ": "installs packages",
    "python -m pytest": "runs this suite",
    "UPSTREAM_KEY=": "starts a gateway that serves until stopped",
    "streamspec serve": "starts a gateway that serves until stopped",
    "streamspec load": "a 60-second load run against a server",
    "streamspec bench": "measures speed for many seconds (tests/test_bench.py runs the command)",
}
LEGACY = STREAMS / "completions" / "vllm_completions.sse"


def _app() -> Starlette:
    async def chat(request: Request) -> Response:
        body = await request.json()
        if not body.get("stream"):
            return JSONResponse({"error": {"message": "stream only"}}, status_code=400)
        return Response(fixture("openai_text.sse"), media_type="text/event-stream")

    async def completions(request: Request) -> Response:
        return Response(LEGACY.read_bytes(), media_type="text/event-stream")

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/completions", completions, methods=["POST"]),
        ]
    )


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with ServerThread(_app(), name="readme-server") as server:
        yield server.url + "/v1"


def test_the_readme_has_blocks_of_both_kinds() -> None:
    assert len(PYTHON) >= 2
    assert len(CONSOLE) >= 2
    assert {kind for kind, _, _ in BLOCKS} <= {"python", "console", "text"}  # text: output


@pytest.mark.parametrize(("code", "line"), PYTHON, ids=[f"line{line}" for _, line in PYTHON])
def test_python_block_runs(
    code: str, line: int, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", base_url)
    compiled = compile(code, f"README.md (block at line {line})", "exec", dont_inherit=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compiled, {"__name__": "__readme__"})
    if "socket_reads" in code:  # the API sketch prints the sample's text, then the server's
        assert out.getvalue().count(MANIFEST["openai_text.sse"]["text"]) == 2


def _commands() -> list[tuple[str, int]]:
    commands = []
    for code, line in CONSOLE:
        joined = code.replace("\\\n", " ")  # continuation lines
        for offset, text in enumerate(joined.splitlines(), 1):
            for part in text.split("&&"):
                command = part.strip()
                if command and not command.startswith("#"):
                    commands.append((command, line + offset))
    return commands


def _run_here(command: str) -> bool:
    return command.startswith("streamspec ") and not command.startswith(tuple(NOT_RUN))


COMMANDS = _commands()


def test_every_console_command_is_run_or_an_install() -> None:
    for command, line in COMMANDS:
        assert _run_here(command) or command.startswith(tuple(NOT_RUN)), (line, command)
    assert sum(_run_here(command) for command, _ in COMMANDS) >= 5


@pytest.mark.parametrize(
    ("command", "line"),
    [(c, n) for c, n in COMMANDS if _run_here(c)],
    ids=[f"line{n}" for c, n in COMMANDS if _run_here(c)],
)
def test_console_command_runs(command: str, line: int, base_url: str, tmp_path: Path) -> None:
    (tmp_path / "capture.sse").write_bytes(fixture("openai_text.sse"))
    (tmp_path / "legacy.sse").write_bytes(LEGACY.read_bytes())
    args = shlex.split(command.replace(README_URL, base_url), comments=True)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("OPENAI_API_KEY", None)
    stdin = b""
    if "-" in args:  # standard input: the stream the command's kind reads
        stdin = (tmp_path / ("legacy.sse" if "completions" in args else "capture.sse")).read_bytes()
    result = subprocess.run(
        [sys.executable, "-m", "streamspec", *args[1:]],
        input=stdin,
        cwd=tmp_path,
        capture_output=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (command, result.stderr.decode())
    assert b"Traceback" not in result.stderr
    if "--final" in args:
        assert json.loads(result.stdout)["object"] == "chat.completion"


def test_commands_left_out_are_only_the_listed_ones() -> None:
    left_out = [c for c, _ in COMMANDS if not _run_here(c)]
    assert left_out
    assert all(c.startswith(tuple(NOT_RUN)) for c in left_out), left_out
