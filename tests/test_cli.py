"""The ``streamspec`` command, run as ``python -m streamspec`` in a subprocess.

Text printed by ``decode`` is compared with the MANIFEST text of each fixture;
failures must be one line on stderr with the documented exit status.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from mock_upstream import MockUpstream, load_fixture
from splitting import FIXTURE_NAMES, MANIFEST, STREAMS, fixture
from streamspec import CreateChatCompletionResponse, CreateCompletionResponse

OK_FIXTURES = [name for name in FIXTURE_NAMES if MANIFEST[name]["expect"] == "ok"]
ENV = {**os.environ, "PYTHONIOENCODING": "ascii", "LC_ALL": "C"}  # output must not depend on it
ENV.pop("OPENAI_API_KEY", None)
ENV.pop("STREAMSPEC_DEBUG", None)


def run(
    *args: str, stdin: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "streamspec", *args],
        input=stdin,
        capture_output=True,
        env=ENV,
        timeout=timeout,
        check=False,
    )


def printed(text: str) -> bytes:
    """What ``decode`` prints for ``text``: the text, ending with one newline if any text."""
    if text and not text.endswith("\n"):
        text += "\n"
    return text.encode()


def one_error_line(result: subprocess.CompletedProcess[bytes]) -> str:
    err = result.stderr.decode()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("streamspec: ")]
    assert len(lines) == 1, err
    return lines[0]


def summary(result: subprocess.CompletedProcess[bytes]) -> str:
    return "\n".join(line for line in result.stderr.decode().splitlines() if line.startswith("--"))


# -- decode files and stdin ---------------------------------------------------------------------


@pytest.mark.parametrize("name", OK_FIXTURES)
def test_decode_file_prints_the_text(name: str) -> None:
    result = run("decode", str(STREAMS / name))
    assert result.returncode == 0, result.stderr
    assert result.stdout == printed(MANIFEST[name]["text"])
    assert f"{MANIFEST[name]['n_chunks']} chunks" in summary(result)
    assert f"finish_reason {MANIFEST[name]['finish_reason']}" in summary(result)


@pytest.mark.parametrize("name", ["openai_text.sse", "xinference_text.sse", "framing_utf8_bom.sse"])
def test_decode_stdin(name: str) -> None:
    result = run("decode", "-", stdin=fixture(name))
    assert result.returncode == 0, result.stderr
    assert result.stdout == printed(MANIFEST[name]["text"])


def test_decode_without_argument_reads_the_bundled_sample() -> None:
    result = run("decode")
    assert result.returncode == 0, result.stderr
    assert result.stdout == printed(MANIFEST["openai_text.sse"]["text"])
    usage = MANIFEST["openai_text.sse"]["usage"]
    assert f"usage {usage['prompt_tokens']} prompt + {usage['completion_tokens']}" in summary(
        result
    )


def test_decode_json_lines() -> None:
    result = run("decode", "--json", "-q", str(STREAMS / "openai_n2.sse"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert len(lines) == MANIFEST["openai_n2.sse"]["n_chunks"]
    assert all(json.loads(line)["object"] == "chat.completion.chunk" for line in lines)
    assert result.stderr == b""


def test_decode_final_prints_the_accumulated_response() -> None:
    result = run("decode", "--final", str(STREAMS / "openai_tool_calls.sse"))
    assert result.returncode == 0, result.stderr
    response = msgspec.json.decode(result.stdout, type=CreateChatCompletionResponse)
    message = response.choices[0].message
    assert response.choices[0].finish_reason == "tool_calls"
    assert isinstance(message.tool_calls, list)
    names = [call["name"] for call in MANIFEST["openai_tool_calls.sse"]["tool_calls"]]
    assert [call.function.name for call in message.tool_calls] == names


def test_server_error_is_one_line_after_the_text() -> None:
    name = "openai_error_midstream.sse"
    result = run("decode", str(STREAMS / name))
    assert result.returncode == 1
    assert result.stdout == printed(MANIFEST[name]["text"])
    assert MANIFEST[name]["error_message"] in one_error_line(result)


def test_truncated_stream_fails() -> None:
    result = run("decode", str(STREAMS / "framing_truncated_mid_event.sse"))
    assert result.returncode == 1
    assert "truncated stream" in one_error_line(result)


def test_bad_json_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "bad.sse"
    path.write_bytes(b'data: {"id": "x", "choices": [}\n\ndata: [DONE]\n\n')
    result = run("decode", str(path))
    assert result.returncode == 1
    assert "malformed event" in one_error_line(result)


def test_missing_file_exits_2_with_one_line() -> None:
    result = run("decode", "no/such/stream.sse")
    assert result.returncode == 2
    assert one_error_line(result) == "streamspec: no such file: no/such/stream.sse"
    assert result.stdout == b""
    assert len(result.stderr.decode().splitlines()) == 1


def test_usage_error_exits_2() -> None:
    result = run("decode", "--json", "--final")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr.decode()


# -- check --------------------------------------------------------------------------------------


def test_check_strict_compliant_stream_exits_0() -> None:
    result = run("check", "--strict", str(STREAMS / "openai_text.sse"))
    assert result.returncode == 0, result.stdout
    out = result.stdout.decode()
    assert "note: $.obfuscation" in out
    assert out.splitlines()[-1].startswith("ok (strict check)")


def test_check_strict_off_spec_stream_exits_1() -> None:
    path = str(STREAMS / "sglang_text.sse")
    result = run("check", "--strict", path)
    assert result.returncode == 1
    out = result.stdout.decode()
    assert '$.choices[0].finish_reason: `finish_reason` is ""' in out
    assert "event 0 at byte 0:" in out
    assert run("check", path).returncode == 0  # decodable: fine without --strict


def test_check_json_and_stdin() -> None:
    result = run("check", "--json", "-", stdin=fixture("vllm_error.sse"))
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert [p["kind"] for p in report["problems"]] == ["server_error"]


def test_check_missing_file() -> None:
    result = run("check", "missing.sse")
    assert result.returncode == 2
    assert one_error_line(result) == "streamspec: no such file: missing.sse"


# -- decode from a URL --------------------------------------------------------------------------


def test_decode_from_url() -> None:
    name = "openai_text.sse"
    with MockUpstream({"gpt-test": load_fixture(name)}, token_delay=0.001) as upstream:
        result = run("decode", upstream.base_url, "--model", "gpt-test", "--prompt", "Say thanks")
        requests = list(upstream.requests)
    assert result.returncode == 0, result.stderr
    assert result.stdout == printed(MANIFEST[name]["text"])
    assert "first token" in summary(result)
    [body] = requests
    assert body["model"] == "gpt-test"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "user", "content": "Say thanks"}]


def test_decode_from_url_with_request_file(tmp_path: Path) -> None:
    request: dict[str, Any] = {
        "model": "gpt-test",
        "messages": [{"role": "system", "content": "Be brief."}],
        "temperature": 0.2,
        "top_k": 5,  # a server-specific parameter: sent as is
    }
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    with MockUpstream({"gpt-test": load_fixture("mistral_text")}) as upstream:
        result = run("decode", upstream.base_url, "--request", str(path), "--prompt", "Hi")
        [body] = list(upstream.requests)
    assert result.returncode == 0, result.stderr
    assert result.stdout == printed(MANIFEST["mistral_text.sse"]["text"])
    assert body["top_k"] == 5
    assert body["temperature"] == 0.2
    assert body["messages"][-1] == {"role": "user", "content": "Hi"}


def test_invalid_request_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "request.json"
    path.write_text(json.dumps({"model": "m", "messages": [{"role": "robot", "content": "x"}]}))
    result = run("decode", "http://127.0.0.1:9/v1", "--request", str(path))
    assert result.returncode == 2
    line = one_error_line(result)
    assert line.startswith(f"streamspec: invalid request {path}:")
    assert "$.messages[0]" in line


def test_http_404_shows_the_server_message() -> None:
    with MockUpstream({"gpt-test": load_fixture("openai_text")}) as upstream:
        result = run("decode", upstream.base_url, "--model", "nope", "--prompt", "hi")
    assert result.returncode == 1
    line = one_error_line(result)
    assert line.startswith("streamspec: HTTP 404 Not Found: ")
    assert "The model `nope` does not exist" in line
    assert result.stdout == b""


def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    result = run("decode", f"http://127.0.0.1:{port}/v1", "--model", "m", "--prompt", "hi")
    assert result.returncode == 1
    line = one_error_line(result)
    assert line.startswith(f"streamspec: cannot connect to http://127.0.0.1:{port}/v1/chat/")


def test_connection_dropped_mid_stream() -> None:
    with MockUpstream({"m": load_fixture("openai_text")}, split="die") as upstream:
        result = run("decode", upstream.base_url, "--model", "m", "--prompt", "hi")
    assert result.returncode == 1
    assert result.stdout.startswith(b"Voici")  # the text that arrived was printed
    assert "broke" in one_error_line(result)


def test_url_needs_a_model() -> None:
    result = run("decode", "http://127.0.0.1:9/v1", "--prompt", "hi")
    assert result.returncode == 2
    assert "--model" in one_error_line(result)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery differs on Windows")
def test_interrupt_exits_130() -> None:
    with MockUpstream({"m": load_fixture("openai_text")}, split="stall") as upstream:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamspec",
                "decode",
                upstream.base_url,
                "--model",
                "m",
                "--prompt",
                "hi",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ENV,
        )
        try:
            assert process.stdout is not None
            assert process.stdout.read(5) == b"Voici"  # streaming, then the server stalls
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 130
    text = err.decode()
    assert "Traceback" not in text
    assert text.splitlines()[-1] == "streamspec: interrupted"


# -- bench --------------------------------------------------------------------------------------


def test_bench_is_delegated() -> None:
    result = run("bench", "--tokens", "20", "--rounds", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["stream"]["tokens"] == 20


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.decode().startswith("streamspec ")


# -- legacy completions streams -----------------------------------------------------------------

LEGACY = STREAMS / "completions"
LEGACY_MANIFEST: dict[str, dict[str, Any]] = json.loads(
    (LEGACY / "MANIFEST.json").read_text("utf-8")
)


@pytest.mark.parametrize("name", sorted(LEGACY_MANIFEST))
def test_decode_legacy_file_detects_the_kind(name: str) -> None:
    entry = LEGACY_MANIFEST[name]
    result = run("decode", str(LEGACY / name))
    assert result.returncode == 0, result.stderr
    assert result.stdout == printed(entry["text_by_index"][0])
    said = summary(result)
    assert f"finish_reason {entry['finish_reason_by_index'][0]}" in said
    assert f"{entry['n_chunks']} chunks" in said
    chars = sum(len(text) for text in entry["text_by_index"])
    assert f"{chars} text chars" in said
    usage = entry["usage"]
    assert (
        f"usage {usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion"
        f" = {usage['total_tokens']}"
    ) in said


def test_decode_legacy_final_and_json() -> None:
    name = "llamacpp_completions_n2.sse"
    entry = LEGACY_MANIFEST[name]
    result = run("decode", "--final", "-", stdin=(LEGACY / name).read_bytes())
    assert result.returncode == 0, result.stderr
    response = msgspec.json.decode(result.stdout, type=CreateCompletionResponse)
    assert response.object == "text_completion"
    assert [c.text for c in response.choices] == entry["text_by_index"]
    result = run("decode", "--json", "-q", str(LEGACY / name))
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(lines) == entry["n_chunks"]
    assert all("text" in c for line in lines for c in line["choices"])


def test_kind_flag_overrides_detection() -> None:
    name = "vllm_completions.sse"
    result = run("decode", "--kind", "chat", str(LEGACY / name))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""  # as chat chunks these carry no delta content
    assert "0 content chars" in summary(result)
    result = run("decode", "--kind", "completions", str(LEGACY / name))
    assert result.stdout == printed(LEGACY_MANIFEST[name]["text_by_index"][0])


class LegacyServer:
    """``POST /v1/completions`` streams a legacy fixture; records the request bodies."""

    def __init__(self, name: str) -> None:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route

        from mock_upstream import ServerThread

        data = (LEGACY / name).read_bytes()
        self.requests: list[dict[str, Any]] = []

        async def completions(request: Request) -> Response:
            self.requests.append(await request.json())
            return Response(data, media_type="text/event-stream")

        async def json_error(request: Request) -> Response:
            body = b'{"error": {"message": "the request exceeds the context size", "code": 400}}'
            return Response(body, media_type="application/json")

        app = Starlette(
            routes=[
                Route("/v1/completions", completions, methods=["POST"]),
                Route("/v1/chat/completions", json_error, methods=["POST"]),
            ]
        )
        self.server = ServerThread(app, name="legacy-server")

    def __enter__(self) -> LegacyServer:
        self.server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.stop()


@pytest.mark.parametrize("how", ["flag", "path"])
def test_decode_legacy_from_url(how: str) -> None:
    name = "vllm_completions.sse"
    with LegacyServer(name) as legacy:
        base = legacy.server.url + "/v1"
        args = ["--kind", "completions", base] if how == "flag" else [base + "/completions"]
        result = run("decode", *args, "--model", "m", "--prompt", "Tokyo is")
    assert result.returncode == 0, result.stderr
    assert result.stdout == printed(LEGACY_MANIFEST[name]["text_by_index"][0])
    assert "101 text chars" in summary(result)
    [body] = legacy.requests
    assert body == {
        "model": "m",
        "prompt": "Tokyo is",
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_json_error_with_status_200_is_the_server_message() -> None:
    with LegacyServer("vllm_completions.sse") as legacy:
        result = run("decode", legacy.server.url + "/v1", "--model", "m", "--prompt", "hi")
    assert result.returncode == 1
    line = one_error_line(result)
    assert "the request exceeds the context size" in line
    assert "internal error" not in line


# -- precise failures ---------------------------------------------------------------------------


def test_file_summary_has_no_timing() -> None:
    result = run("decode", str(STREAMS / "openai_text.sse"))
    assert result.returncode == 0, result.stderr
    lines = summary(result).splitlines()
    assert len(lines) == 1
    assert "first chunk" not in lines[0]
    assert " ms" not in lines[0]
    result = run("decode", "-", stdin=fixture("openai_text.sse"))
    assert len(summary(result).splitlines()) == 1


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_read_error_is_one_precise_line() -> None:
    result = run("decode", "/proc/self/mem")  # opens, then every read fails with EIO
    assert result.returncode == 2
    assert one_error_line(result) == "streamspec: cannot read /proc/self/mem: Input/output error"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://", "no host name"),
        ("http://127.0.0.1:99999/v1", "Port out of range 0-65535"),
        ("http://127.0.0.1:port/v1", "Port could not be cast to integer value as 'port'"),
        ("http://local host/v1", "it contains spaces or control characters"),
        ("https://[::1/v1", "Invalid IPv6 URL"),
    ],
)
def test_malformed_url_is_one_precise_line(url: str, reason: str) -> None:
    result = run("decode", url, "--model", "m", "--prompt", "hi")
    assert result.returncode == 2
    assert one_error_line(result) == f"streamspec: invalid URL {url!r}: {reason}"
