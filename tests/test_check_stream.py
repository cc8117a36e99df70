"""StreamChecker: incremental, split-invariant, bounded, and never escaping on hostile input.

Every stream here is checked whole, byte by byte and at random split points,
strict and not, and must give the same report each way. Hostile inputs are
generated per class (deep nesting, endless ``retry:`` values, control and
invalid bytes, oversized events, error bodies) and spliced into a compliant
stream at several places.
"""

from __future__ import annotations

import gc
import json
import random
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from splitting import FIXTURE_NAMES, STREAMS, bytewise, fixture, split_at
from streamspec import StreamChecker
from streamspec.check import CheckReport, check_stream
from streamspec.samples import synthetic_stream

COMPLETIONS = STREAMS / "completions"
COMPLETION_FIXTURES = sorted(p.name for p in COMPLETIONS.glob("*.sse"))
COMPLETION_MANIFEST = json.loads((COMPLETIONS / "MANIFEST.json").read_text())

OK_CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1747045123,
    "model": "gpt-4o",
    "choices": [{"index": 0, "delta": {"content": "hi"}, "logprobs": None, "finish_reason": None}],
}


def event(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def good_stream(chunks: int = 4) -> bytes:
    return b"".join(event(OK_CHUNK) for _ in range(chunks)) + b"data: [DONE]\n\n"


def fed(reads: list[bytes], **options: Any) -> CheckReport:
    checker = StreamChecker(**options)
    for read in reads:
        checker.feed(read)
    return checker.close()


def every_way(data: bytes, seed: int = 0, **options: Any) -> CheckReport:
    """The report of ``data`` whole; asserts byte-by-byte and random splits give the same."""
    whole = check_stream(data, **options)
    assert fed(bytewise(data), **options) == whole, "byte by byte"
    rng = random.Random(seed)
    for _ in range(3):
        points = rng.sample(range(1, max(2, len(data))), min(12, max(0, len(data) - 1)))
        assert fed(split_at(data, points), **options) == whole, f"split at {sorted(points)}"
    return whole


# -- split invariance ------------------------------------------------------------------------


@pytest.mark.parametrize("strict", [False, True], ids=["decoding", "strict"])
@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixtures_split_invariant(name: str, strict: bool) -> None:
    every_way(fixture(name), strict=strict)


@pytest.mark.parametrize("strict", [False, True], ids=["decoding", "strict"])
@pytest.mark.parametrize("kind", ["text", "tools", "logprobs", "n4"])
def test_synthetic_streams_split_invariant(kind: str, strict: bool) -> None:
    data = synthetic_stream(40, kind)  # type: ignore[arg-type]
    report = every_way(data, strict=strict)
    assert report.ok, report.problems
    assert report.chunks == data.count(b"data: {")


def test_crlf_and_mixed_framing_split_invariant() -> None:
    data = good_stream(3).replace(b"\n", b"\r\n")
    data = b": hello\r\n\r\n" + data[:40] + b"\r" + data[40:]  # a lone CR mid-payload splits a line
    for strict in (False, True):
        every_way(data, strict=strict)


def test_iterable_of_reads_equals_bytes() -> None:
    data = fixture("openai_tool_calls.sse")
    reads = iter(split_at(data, range(7, len(data), 97)))
    assert check_stream(reads, strict=True) == check_stream(data, strict=True)


# -- the incremental API ---------------------------------------------------------------------


def test_stream_checker_api() -> None:
    checker = StreamChecker(strict=True)
    data = fixture("openai_text.sse")
    checker.feed(bytearray(data[:100]))
    checker.feed(memoryview(data)[100:5000])
    checker.feed(data[5000:])
    assert checker.events == 54
    report = checker.close()
    assert report.ok
    assert report.done
    assert report.size == len(data)
    assert checker.close() is report
    with pytest.raises(ValueError, match="after close"):
        checker.feed(b"data: {}\n\n")
    with pytest.raises(TypeError, match="bytes, not str"):
        StreamChecker().feed("data: {}\n\n")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind"):
        StreamChecker(kind="responses")  # type: ignore[arg-type]


def test_report_lists_are_capped() -> None:
    chunk = {**OK_CHUNK, "created": 0}
    data = b"".join(event({**chunk, f"x_{i}": 1}) for i in range(50)) + b"data: [DONE]\n\n"
    report = check_stream(data, strict=True, max_problems=10, max_notes=5)
    assert len(report.problems) == 10
    assert report.problems_omitted == 40
    assert len(report.notes) == 5
    assert report.notes_omitted == 45
    assert not report.ok
    assert [p.event for p in report.problems] == list(range(10))


def test_notes_counted_across_reads_and_tiers() -> None:
    """Probed reads count extension keys in bulk; walked events one by one; both add up."""
    plain = {**OK_CHUNK, "obfuscation": "abc"}
    reasoning = {**plain, "choices": [{**OK_CHUNK["choices"][0], "stop_reason": None}]}  # type: ignore[dict-item]
    odd = {**plain, "x_groq": {"id": "q"}}
    chunks = [plain] * 30 + [reasoning] * 5 + [odd] + [plain] * 30
    data = b"".join(map(event, chunks)) + b"data: [DONE]\n\n"
    for strict in (False, True):
        report = every_way(data, strict=strict)
        notes = {n.path: (n.events, n.first_event) for n in report.notes}
        assert notes == {
            "$.obfuscation": (66, 0),
            "$.choices[0].stop_reason": (5, 30),
            "$.x_groq": (1, 35),
        }
        assert report.ok


# -- memory ------------------------------------------------------------------------------------


def _peak(data: bytes, strict: bool) -> int:
    def reads() -> Iterator[bytes]:
        view = memoryview(data)
        for start in range(0, len(data), 65536):
            yield bytes(view[start : start + 65536])

    check_stream(reads(), strict=strict)  # warm-up: probe types and caches exist
    gc.collect()
    tracemalloc.start()
    try:
        report = check_stream(reads(), strict=strict)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.ok
    return peak


@pytest.mark.parametrize("strict", [False, True], ids=["decoding", "strict"])
def test_memory_does_not_grow_with_the_stream(strict: bool) -> None:
    short, long = synthetic_stream(2000), synthetic_stream(20000)
    peak_short, peak_long = _peak(short, strict), _peak(long, strict)
    # Ten times the stream, the same peak: a few reads' worth, not the stream.
    assert peak_long < 1.25 * peak_short + 64 * 1024, (peak_short, peak_long)
    assert peak_long < len(long) / 10


def test_oversized_event_stops_at_the_limit() -> None:
    data = good_stream(2)[:-14] + b"data: " + b"x" * 100_000  # never ends
    report = every_way(data, max_event_size=1000)
    [problem] = report.problems
    assert (problem.kind, problem.event, problem.offset) == ("sse", 2, data.index(b"data: xx"))
    assert report.chunks == 2


# -- hostile input never escapes ---------------------------------------------------------------

DEEP = 1000

HOSTILE: dict[str, tuple[bytes, set[str]]] = {
    "deep array": (b'data: {"a":' + b"[" * DEEP + b"]" * DEEP + b"}\n\n", {"json"}),
    "deep object": (b"data: " + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"\n\n", {"json"}),
    "deep in a choice": (
        b'data: {"choices":[{"index":0,"delta":{"content":'
        + b"[" * DEEP
        + b"]" * DEEP
        + b"}}]}\n\n",
        # Too deep for msgspec on some Pythons (json); where it decodes, the content list
        # does not fit and is salvaged away (a strict check names it).
        {"json", "salvage"},
    ),
    "deep error event": (
        b"event: error\ndata: " + b"[" * DEEP + b"]" * DEEP + b"\n\n",
        {"server_error"},
    ),
    "huge retry": (b"retry: " + b"7" * 5000 + b"\n\n", set()),
    "nul and controls": (b"data: \x00\x01\x02\x7f\n\n", {"json"}),
    "invalid utf-8": (b'data: {"id":"\xff\xfe"}\n\n', {"type", "sse", "spec"}),
    "lone surrogate escape": (
        b'data: {"choices":[{"index":0,"delta":{"content":"\\ud800"}}]}\n\n',
        {"json"},
    ),
    "huge number": (b'data: {"created":1' + b"0" * 400 + b"}\n\n", {"type", "spec"}),
    "not an object": (b"data: [1, 2]\n\n", {"type"}),
    "blank-line flood": (b"\n" * 10000, set()),
    "comment flood": (b": keep-alive\n\n" * 500, set()),
}


@pytest.mark.parametrize("strict", [False, True], ids=["decoding", "strict"])
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_piece_is_reported_not_raised(name: str, strict: bool) -> None:
    piece, kinds = HOSTILE[name]
    rng = random.Random(name)
    events = [event(OK_CHUNK) for _ in range(4)]
    for where in (0, 2, 4):
        data = b"".join(events[:where]) + piece + b"".join(events[where:]) + b"data: [DONE]\n\n"
        report = every_way(data, seed=rng.randrange(1000), strict=strict)
        found = {p.kind for p in report.problems if p.kind not in ("spec", "sse") or strict}
        allowed = kinds | ({"spec", "sse"} if strict else set())
        assert found <= allowed, report.problems
        # Nothing after the piece is lost: every good chunk is counted.
        assert report.chunks >= 4, report.problems
        assert report.done


def test_generated_garbage_never_escapes() -> None:
    """Random bytes and random splices of SSE syntax: always a report, never an exception."""
    rng = random.Random(12)
    alphabet = [b"data:", b"data: ", b"event: error\n", b"id: 1\n", b"retry: 9\n", b": c\n"]
    alphabet += [b"\n", b"\r", b"\r\n", b"{", b"}", b"[", b"]", b'"', b"[DONE]", b"\xff", b"\x00"]
    alphabet += [b'"error":', b'{"error":{"message":"m"}}', json.dumps(OK_CHUNK).encode()]
    for _ in range(150):
        data = b"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        for strict in (False, True):
            report = every_way(data, seed=rng.randrange(1000), strict=strict, max_event_size=300)
            assert isinstance(report, CheckReport)


# -- whole-body documents instead of a stream --------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"error": {"message": "Incorrect API key provided", "type":'
            b' "invalid_request_error", "code": "invalid_api_key"}}',
            "Incorrect API key provided type=invalid_request_error code=invalid_api_key",
        ),
        (
            b'\n  {"error": "model \'x\' not found", "error_type": "NotFound"}',
            "model 'x' not found",
        ),
        (b'{"error": {"message": "context length exceeded", "code": 400}}\n', "code=400"),
    ],
)
def test_json_error_body_reports_the_server_message(body: bytes, message: str) -> None:
    report = every_way(body)
    [problem] = report.problems  # not "ended without [DONE]"
    assert (problem.kind, problem.path, problem.event) == ("server_error", "$.error", 0)
    assert message in problem.message
    assert report.events == 0


def test_json_document_that_is_not_an_error() -> None:
    body = b'{"id": "chatcmpl-1", "object": "chat.completion", "choices": []}'
    [problem] = every_way(body).problems
    assert problem.kind == "sse"
    assert '"chat.completion"' in problem.message
    assert "stream" in problem.message


def test_json_body_over_the_limit() -> None:
    body = b'{"error": "' + b"x" * 5000 + b'"}'
    [problem] = every_way(body, max_event_size=1000).problems
    assert problem.kind == "sse"
    assert "max_event_size" in problem.message


def test_html_body() -> None:
    body = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    [problem] = every_way(body).problems
    assert problem.kind == "sse"
    assert "502 Bad Gateway" in problem.message


# -- legacy completions ------------------------------------------------------------------------


@pytest.mark.parametrize("name", COMPLETION_FIXTURES)
def test_completion_fixtures_detected_and_decodable(name: str) -> None:
    data = (COMPLETIONS / name).read_bytes()
    report = every_way(data)
    assert report.kind == "completions"
    assert report.ok, report.problems
    assert report.chunks == COMPLETION_MANIFEST[name]["n_chunks"]
    assert every_way(data, strict=True).kind == "completions"


def test_openai_completions_fixture_is_strictly_compliant() -> None:
    data = (COMPLETIONS / "openai_completions_logprobs.sse").read_bytes()
    report = check_stream(data, strict=True)
    assert report.problems == []


def completion_chunk(**changes: Any) -> dict[str, Any]:
    choice = {"text": "Hello", "index": 0, "logprobs": None, "finish_reason": None}
    chunk: dict[str, Any] = {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1747045123,
        "model": "gpt-3.5-turbo-instruct",
        "choices": [choice],
    }
    for key, value in changes.items():
        if key.startswith("choice_"):
            choice[key.removeprefix("choice_")] = value
        else:
            chunk[key] = value
    return chunk


@pytest.mark.parametrize(
    ("changes", "path", "message"),
    [
        ({"choice_finish_reason": "eos"}, "$.choices[0].finish_reason", '"eos"'),
        ({"choice_finish_reason": "tool_calls"}, "$.choices[0].finish_reason", "tool_calls"),
        ({"object": "chat.completion.chunk"}, "$.object", '"text_completion"'),
        ({"created": 0}, "$.created", "is 0"),
        ({"choice_logprobs": {"tokens": ["a"]}}, "$.choices[0].logprobs.token_logprobs", "missing"),
    ],
)
def test_legacy_strict_violations(changes: dict[str, Any], path: str, message: str) -> None:
    data = event(completion_chunk()) + event(completion_chunk(**changes)) + b"data: [DONE]\n\n"
    report = every_way(data, strict=True, kind="completions")
    assert [(p.event, p.path) for p in report.problems][:1] == [(1, path)], report.problems
    assert message in report.problems[0].message
    assert check_stream(data, kind="completions").ok


def test_legacy_type_problem_salvage_and_kind_flag() -> None:
    data = event(completion_chunk(choices=5)) + b"data: [DONE]\n\n"
    [problem] = check_stream(data).problems  # nothing to keep: the decoder rejects it
    assert (problem.kind, problem.path) == ("type", "$.choices")
    data = event(completion_chunk(choice_text=5)) + b"data: [DONE]\n\n"
    report = check_stream(data)
    assert report.ok
    assert [(n.kind, n.path) for n in report.notes] == [("salvaged", "$.choices[0]")]
    [problem] = check_stream(data, strict=True).problems
    assert (problem.kind, problem.path) == ("salvage", "$.choices[0].text")
    # Read as a chat stream, the same chunk is a different problem: the flag decides.
    chat = check_stream(data, kind="chat", strict=True)
    assert chat.kind == "chat"
    assert any(p.path == "$.object" for p in chat.problems)


def test_kind_detected_from_choices_without_object() -> None:
    chunk = completion_chunk()
    del chunk["object"]
    report = check_stream(event(chunk) + b"data: [DONE]\n\n")
    assert report.kind == "completions"
    assert report.ok


# -- the command -------------------------------------------------------------------------------


def _run_cli(*args: str, stdin: bytes | None = None) -> tuple[int, str]:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "streamspec", *args],
        input=stdin,
        capture_output=True,
        check=False,
    )
    return result.returncode, result.stdout.decode()


def test_cli_check_kind_and_error_body(tmp_path: Path) -> None:
    body = tmp_path / "error.json"
    body.write_bytes(b'{"error": {"message": "Rate limit reached", "type": "rate_limit"}}')
    code, out = _run_cli("check", str(body))
    assert code == 1
    assert "Rate limit reached" in out
    assert "[server_error]" in out
    code, out = _run_cli(
        "check", "--json", "--strict", "--kind", "completions", "-", stdin=good_stream(1)
    )
    report = msgspec.json.decode(out.encode(), type=CheckReport)
    assert report.kind == "completions"
    assert code == 1
    assert any(p.path == "$.object" for p in report.problems)  # a chat chunk is no legacy one
    code, out = _run_cli("check", str(COMPLETIONS / "vllm_completions.sse"))
    assert code == 0
    assert "completions chunks" in out


# -- salvage -----------------------------------------------------------------------------------


def test_salvaged_values_counted_per_path_split_invariant() -> None:
    bad = {**OK_CHUNK, "choices": [{**OK_CHUNK["choices"][0], "delta": {"content": 7}}]}  # type: ignore[dict-item]
    usage = {**OK_CHUNK, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2.5}}
    data = b"".join(map(event, [OK_CHUNK, bad, OK_CHUNK, bad, usage])) + b"data: [DONE]\n\n"
    report = every_way(data)
    assert report.ok  # the decoder reads every chunk
    assert report.chunks == 5
    salvaged = {n.path: (n.events, n.first_event) for n in report.notes if n.kind == "salvaged"}
    assert salvaged == {"$.choices[0].delta.content": (2, 1), "$.usage.completion_tokens": (1, 4)}
    strict = every_way(data, strict=True)
    found = [(p.event, p.kind, p.path) for p in strict.problems if p.kind == "salvage"]
    assert found == [
        (1, "salvage", "$.choices[0].delta.content"),
        (3, "salvage", "$.choices[0].delta.content"),
        (4, "salvage", "$.usage.completion_tokens"),
    ]


@pytest.mark.parametrize("value", [False, 0, "", [], {}, None])
def test_error_member_that_reports_nothing_is_a_note(value: Any) -> None:
    chunk = {**OK_CHUNK, "error": value}
    report = every_way(event(chunk) + b"data: [DONE]\n\n")
    assert report.problems == []
    assert [n.path for n in report.notes] == ["$.error"]


def test_error_member_that_reports_is_a_server_error() -> None:
    chunk = {**OK_CHUNK, "error": {"message": "upstream timeout", "code": 504}}
    report = every_way(event(OK_CHUNK) + event(chunk))
    [problem] = report.problems
    assert (problem.kind, problem.event, problem.path) == ("server_error", 1, "$.error")
    assert "upstream timeout" in problem.message


# -- a URL: the HTTP exchange is part of the report ----------------------------------------------


def _report_of(*args: str) -> tuple[int, CheckReport]:
    code, out = _run_cli("check", "--json", *args)
    return code, msgspec.json.decode(out.encode(), type=CheckReport)


def test_cli_check_url_ok_and_http_error() -> None:
    from mock_upstream import MockUpstream, load_fixture

    with MockUpstream({"gpt-4o": load_fixture("openai_text")}, token_delay=0) as upstream:
        code, report = _report_of(upstream.base_url, "--model", "gpt-4o", "--strict")
        assert code == 0
        assert (report.ok, report.status, report.chunks, report.done) == (True, 200, 53, True)
        code, report = _report_of(upstream.base_url, "--model", "unknown")
        assert code == 1
        assert report.status == 404
        [problem] = report.problems
        assert (problem.kind, problem.path) == ("server_error", "$.error")
        assert "HTTP 404" in problem.message
        assert "does not exist" in problem.message
        assert upstream.requests[0]["stream"] is True


def test_cli_check_url_broken_connection_is_truncation() -> None:
    from mock_upstream import MockUpstream, load_fixture

    with MockUpstream({"m": load_fixture("openai_text")}, token_delay=0, split="die") as upstream:
        code, report = _report_of(upstream.base_url, "--model", "m")
    assert code == 1
    [problem] = report.problems
    assert problem.kind == "truncated"
    assert "broke" in problem.message
    assert report.chunks == 27
    assert report.status == 200


LENIENT = STREAMS / "lenient"
LENIENT_MANIFEST = (
    json.loads((LENIENT / "MANIFEST.json").read_text())
    if (LENIENT / "MANIFEST.json").exists()
    else {}
)


@pytest.mark.parametrize("name", sorted(LENIENT_MANIFEST))
def test_lenient_fixtures_salvaged_exactly(name: str) -> None:
    """Streams the decoder reads by salvage: ok, and strict names exactly the salvaged paths."""
    data = (LENIENT / name).read_bytes()
    assert every_way(data).ok
    strict = every_way(data, strict=True)
    expected = sorted((event, path) for event, path, _ in LENIENT_MANIFEST[name]["salvaged"])
    found = sorted((p.event, p.path) for p in strict.problems if p.kind == "salvage")
    assert found == expected


def test_acheck_stream_over_async_reads() -> None:
    import asyncio

    from streamspec.check import acheck_stream

    data = fixture("openai_tool_calls.sse")

    async def reads() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 50):
            yield data[start : start + 50]

    report = asyncio.run(acheck_stream(reads(), strict=True))
    assert report == check_stream(data, strict=True)


def test_cli_limits(tmp_path: Path) -> None:
    path = tmp_path / "big.sse"
    path.write_bytes(good_stream(2)[:-14] + b"data: " + b"x" * 5000 + b"\n\n")
    code, out = _run_cli("check", "--max-event-size", "1000", str(path))
    assert code == 1
    assert "max_event_size (more than 1000 bytes)" in out
    code, _ = _run_cli("check", "--max-problems", "0", str(path))
    assert code == 2


def test_endless_tool_call_indexes_stay_bounded() -> None:
    """A stream that opens calls forever: bounded state, no spurious problems past the bound."""
    from streamspec.check._walk import MAX_TRACKED

    def call(j: int) -> dict[str, Any]:
        return {"index": j, "id": f"c{j}", "type": "function", "function": {"name": "f"}}

    chunks = [
        {
            **OK_CHUNK,
            "choices": [{"index": i, "delta": {"tool_calls": [call(j) for j in range(8)]}}],
        }
        for i in range(MAX_TRACKED // 4)
    ]
    data = b"".join(map(event, chunks)) + b"data: [DONE]\n\n"
    checker = StreamChecker(strict=True)
    checker.feed(data)
    report = checker.close()
    assert checker.tracked == MAX_TRACKED
    assert [p.kind for p in report.problems] == ["spec"] * len(report.problems)
    assert all("finish_reason" in p.path for p in report.problems)  # none about the calls


def test_long_unknown_keys_are_cut_in_note_paths() -> None:
    chunks = [{**OK_CHUNK, "k" * 100_000 + str(i): 1} for i in range(3)]
    report = check_stream(b"".join(map(event, chunks)) + b"data: [DONE]\n\n")
    assert report.ok
    assert [len(note.path) for note in report.notes] == [102]  # "$." + 100: one cut path
    assert report.notes[0].events == 3


def test_long_server_messages_are_cut() -> None:
    error = {"error": {"message": "m" * 50_000}}
    for data in (event(OK_CHUNK) + event(error), json.dumps(error).encode()):
        [problem] = check_stream(data).problems
        assert problem.kind == "server_error"
        assert len(problem.message) == 1000
        assert problem.message.endswith("...")
