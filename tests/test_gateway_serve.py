"""``streamspec serve``: flags and environment to a running gateway; the missing-extra message."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from hostile_upstream import TOKENS, HostileUpstream
from mock_upstream import ServerThread
from streamspec.cli import _parser, main
from streamspec.cli.serve import build_app


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_serve_flags_build_a_working_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = tmp_path / "models.json"
    mapping.write_text(json.dumps({"house": "openai"}))
    monkeypatch.setenv("UPSTREAM_KEY", "sk-from-env")
    upstream = HostileUpstream()
    with ServerThread(upstream, name="hostile") as server:
        args = _parser(False).parse_args(
            ["serve", server.url + "/v1", "--api-key-env", "UPSTREAM_KEY",
             "--model-map", str(mapping), "--max-body", "1000"]
        )  # fmt: skip
        app = build_app(args)
        lines = _Lines()
        access = logging.getLogger("streamspec.gateway.access")
        access.addHandler(lines)
        access.setLevel(logging.INFO)
        try:
            with ServerThread(app, lifespan="on", name="gateway") as gateway:
                assert httpx.get(gateway.url + "/healthz").json() == {"status": "ok"}
                sdk = openai.OpenAI(base_url=gateway.url + "/v1", api_key="client", max_retries=0)
                messages: Any = [{"role": "user", "content": "Bonjour"}]
                chunks = list(
                    sdk.chat.completions.create(model="house", messages=messages, stream=True)
                )
                assert "".join(c.choices[0].delta.content or "" for c in chunks) == "".join(TOKENS)
                with pytest.raises(openai.APIStatusError) as caught:
                    sdk.chat.completions.create(model="house", messages=[
                        {"role": "user", "content": "x" * 2000}])  # fmt: skip
                assert caught.value.status_code == 413
        finally:
            access.removeHandler(lines)
    assert upstream.requests[0]["model"] == "openai"
    assert upstream.headers[0]["authorization"] == "Bearer sk-from-env"
    # The stream's record may come after the next request's: find each line by its status.
    assert len(lines.lines) == 2
    line = next(line for line in lines.lines if "status=complete" in line)
    for part in ("model=house", "upstream_model=openai", "total_tokens=14", "ttft_ms=",
                 "duration_ms=", "http=200"):  # fmt: skip
        assert part in line
    refused = next(line for line in lines.lines if "status=error" in line)
    assert "http=413" in refused
    assert "error_kind=body_too_large" in refused


def test_serve_environment_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMSPEC_GATEWAY_PORT", "9123")
    monkeypatch.setenv("STREAMSPEC_GATEWAY_UPSTREAM", "http://127.0.0.1:9/v1")
    args = _parser(False).parse_args(["serve"])
    assert (args.port, args.upstream) == (9123, "http://127.0.0.1:9/v1")


def test_serve_missing_key_variable(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "http://127.0.0.1:9/v1", "--api-key-env", "STREAMSPEC_NO_SUCH_VAR"])
    assert code == 2
    assert "STREAMSPEC_NO_SUCH_VAR" in capsys.readouterr().err


def test_missing_extra_names_it() -> None:
    code = (
        "import sys; sys.modules['anyio'] = None\n"
        "try:\n    import streamspec.gateway\n"
        "except ImportError as exc:\n    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("MissingExtraError")
    assert "install 'streamspec[gateway]'" in out.stdout
