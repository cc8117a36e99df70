"""check_stream: decodable fixtures pass; off-spec streams fail at exact paths.

Off-spec streams are a compliant built stream with one change.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from splitting import FIXTURE_NAMES, MANIFEST, fixture
from streamspec.check import CheckReport, Problem, check_stream

OK_FIXTURES = [name for name in FIXTURE_NAMES if MANIFEST[name]["expect"] == "ok"]
OPENAI_FIXTURES = [
    "openai_text.sse",
    "openai_n2.sse",
    "openai_logprobs.sse",
    "openai_refusal.sse",
    "openai_tool_calls.sse",
]

Chunk = dict[str, Any]


def base_chunks() -> list[Chunk]:
    """A compliant OpenAI stream: role, two content chunks, finish, usage."""
    head = {
        "id": "chatcmpl-abc",
        "object": "chat.completion.chunk",
        "created": 1747045123,
        "model": "gpt-4o",
        "service_tier": "default",
        "system_fingerprint": "fp_1",
    }

    def choice(delta: Chunk, finish: str | None = None) -> Chunk:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    return [
        {**head, "choices": [choice({"role": "assistant", "content": ""})], "usage": None},
        {**head, "choices": [choice({"content": "Hello"})], "usage": None},
        {**head, "choices": [choice({"content": " world"})], "usage": None},
        {**head, "choices": [choice({}, "stop")], "usage": None},
        {
            **head,
            "choices": [],
            "usage": {
                "prompt_tokens": 5,
                "completion_tokens": 2,
                "total_tokens": 7,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            },
        },
    ]


def tool_chunks() -> list[Chunk]:
    """A compliant tool call turn: the first fragment names the call, later ones add arguments."""
    chunks = base_chunks()
    first = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    chunks[1]["choices"][0]["delta"] = {"tool_calls": [first]}
    chunks[2]["choices"][0]["delta"] = {
        "tool_calls": [{"index": 0, "function": {"arguments": '{"city":"Lyon"}'}}]
    }
    chunks[3]["choices"][0]["finish_reason"] = "tool_calls"
    return chunks


def encode(chunks: list[Chunk], *, done: bool = True) -> bytes:
    events = [b"data: " + json.dumps(c, ensure_ascii=False).encode() + b"\n\n" for c in chunks]
    if done:
        events.append(b"data: [DONE]\n\n")
    return b"".join(events)


def at(report: CheckReport, path: str) -> list[Problem]:
    return [p for p in report.problems if p.path == path]


# -- compliant streams --------------------------------------------------------------------------


@pytest.mark.parametrize("name", OK_FIXTURES)
def test_decodable_fixtures_have_no_problems(name: str) -> None:
    report = check_stream(fixture(name))
    assert report.problems == []
    assert report.ok
    assert report.done
    assert report.chunks == MANIFEST[name]["n_chunks"]


@pytest.mark.parametrize("name", OPENAI_FIXTURES)
def test_openai_fixtures_are_strictly_compliant(name: str) -> None:
    report = check_stream(fixture(name), strict=True)
    assert report.problems == []
    assert [note.path for note in report.notes] == ["$.obfuscation"]
    assert report.notes[0].events == MANIFEST[name]["n_chunks"]


@pytest.mark.parametrize("build", [base_chunks, tool_chunks])
def test_built_compliant_stream_is_strictly_clean(build: Callable[[], list[Chunk]]) -> None:
    report = check_stream(encode(build()), strict=True)
    assert report.problems == []
    assert report.notes == []
    assert (report.events, report.chunks, report.done) == (6, 5, True)


# -- what breaks decoding: always reported ------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in FIXTURE_NAMES if MANIFEST[n]["expect"] != "ok"])
def test_failing_fixtures(name: str) -> None:
    entry = MANIFEST[name]
    report = check_stream(fixture(name))
    assert not report.ok
    kinds = {p.kind for p in report.problems}
    if entry["expect"] == "stream_error":
        assert kinds == {"server_error"}
        assert entry["error_message"] in report.problems[0].message
    else:
        assert kinds == {"truncated"}
    assert report.chunks == entry["n_chunks"]


def test_bad_json_is_located() -> None:
    chunks = base_chunks()
    data = encode(chunks[:2])[: -len(b"data: [DONE]\n\n")] + b"data: {oops\n\n" + encode(chunks[2:])
    report = check_stream(data)
    [problem] = report.problems
    assert (problem.kind, problem.event, problem.path) == ("json", 2, "$")
    assert data[problem.offset :].startswith(b"data: {oops")


def test_wrong_type_is_salvaged_and_reported_at_its_path() -> None:
    """The decoder keeps the chunk without the value; strict says so, non-strict notes it."""
    chunks = base_chunks()
    chunks[2]["choices"][0]["delta"]["content"] = 42
    report = check_stream(encode(chunks))
    assert report.ok
    [note] = [n for n in report.notes if n.kind == "salvaged"]
    assert (note.path, note.events, note.first_event) == ("$.choices[0].delta.content", 1, 2)
    assert "got `int`" in note.reason
    assert report.chunks == 5
    [problem] = check_stream(encode(chunks), strict=True).problems
    assert (problem.kind, problem.event) == ("salvage", 2)
    assert problem.path == "$.choices[0].delta.content"
    assert "the decoder drops it" in problem.message


def test_missing_choice_index_drops_the_choice() -> None:
    chunks = base_chunks()
    del chunks[1]["choices"][0]["index"]
    report = check_stream(encode(chunks))
    assert report.ok
    assert [(n.kind, n.path) for n in report.notes] == [("salvaged", "$.choices[0]")]
    strict = check_stream(encode(chunks), strict=True)
    assert [(p.kind, p.path) for p in strict.problems] == [("salvage", "$.choices[0].index")]
    assert "drops $.choices[0]" in strict.problems[0].message


def test_unsalvageable_payload_is_a_type_problem() -> None:
    chunks: list[Any] = base_chunks()
    chunks[2] = ["not", "a", "chunk"]
    for strict in (False, True):
        report = check_stream(encode(chunks), strict=strict)
        [problem] = report.problems
        assert (problem.kind, problem.event, problem.path) == ("type", 2, "$")


def test_no_done_is_truncation() -> None:
    report = check_stream(encode(base_chunks(), done=False))
    [problem] = report.problems
    assert problem.kind == "truncated"
    assert problem.event == 5
    assert not report.done


def test_cut_mid_event_is_truncation() -> None:
    data = encode(base_chunks())
    cut = data.index(b"data:", 100) + 30
    report = check_stream(data[:cut])
    [problem] = report.problems
    assert problem.kind == "truncated"
    assert data[problem.offset :].startswith(b"data:")


@pytest.mark.parametrize(
    ("payload", "path", "message"),
    [
        (b'event: error\ndata: {"message": "overloaded"}\n\n', "", "overloaded"),
        (b'data: {"error": {"message": "boom", "code": 500}}\n\n', "$.error", "boom"),
        (b'data: {"error": "CUDA OOM", "error_type": "internal"}\n\n', "$.error", "CUDA OOM"),
    ],
)
def test_server_errors(payload: bytes, path: str, message: str) -> None:
    data = encode(base_chunks()[:2], done=False) + payload
    report = check_stream(data)
    [problem] = report.problems  # no "[DONE] missing" on top of the server's error
    assert (problem.kind, problem.event, problem.path) == ("server_error", 2, path)
    assert message in problem.message


# -- strict: off-spec values at exact paths ----------------------------------------------------


def _set(event: int, path: list[Any], value: Any) -> Callable[[list[Chunk]], None]:
    def mutate(chunks: list[Chunk]) -> None:
        target: Any = chunks[event]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _set_from(first: int, path: list[Any], value: Any) -> Callable[[list[Chunk]], None]:
    def mutate(chunks: list[Chunk]) -> None:
        for event in range(first, len(chunks)):
            _set(event, path, value)(chunks)

    return mutate


def _delete(event: int, path: list[Any]) -> Callable[[list[Chunk]], None]:
    def mutate(chunks: list[Chunk]) -> None:
        target: Any = chunks[event]
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


DELTA = ["choices", 0, "delta"]
CASES: list[tuple[str, Callable[[list[Chunk]], None], int, str, str]] = [
    ("id missing", _delete(1, ["id"]), 1, "$.id", "missing"),
    ("id empty", _set(1, ["id"], ""), 1, "$.id", "empty"),
    ("id changes", _set_from(2, ["id"], "chatcmpl-other"), 2, "$.id", "changed"),
    ("object missing", _delete(0, ["object"]), 0, "$.object", "missing"),
    ("object wrong", _set(1, ["object"], "chat.completion"), 1, "$.object", '"chat.completion"'),
    ("object empty", _set(1, ["object"], ""), 1, "$.object", 'is ""'),
    ("created missing", _delete(1, ["created"]), 1, "$.created", "missing"),
    ("created zero", _set(1, ["created"], 0), 1, "$.created", "is 0"),
    ("created changes", _set_from(3, ["created"], 1747045124), 3, "$.created", "changed"),
    ("model missing", _delete(1, ["model"]), 1, "$.model", "missing"),
    ("model empty", _set(1, ["model"], ""), 1, "$.model", "empty"),
    ("choices missing", _delete(1, ["choices"]), 1, "$.choices", "missing"),
    ("delta missing", _delete(3, ["choices", 0, "delta"]), 3, "$.choices[0].delta", "missing"),
    (
        "finish_reason empty",
        _set(1, ["choices", 0, "finish_reason"], ""),
        1,
        "$.choices[0].finish_reason",
        'is ""',
    ),
    (
        "finish_reason eos",
        _set(3, ["choices", 0, "finish_reason"], "eos"),
        3,
        "$.choices[0].finish_reason",
        '"eos"',
    ),
    (
        "finish_reason absent",
        _delete(1, ["choices", 0, "finish_reason"]),
        1,
        "$.choices[0].finish_reason",
        "missing",
    ),
    ("service_tier", _set(0, ["service_tier"], "on_demand"), 0, "$.service_tier", '"on_demand"'),
    ("role user", _set(0, [*DELTA, "role"], "user"), 0, "$.choices[0].delta.role", '"user"'),
    ("role null", _set(1, [*DELTA, "role"], None), 1, "$.choices[0].delta.role", "null"),
    (
        "content blocks",
        _set(1, [*DELTA, "content"], [{"type": "text", "text": "Hello"}]),
        1,
        "$.choices[0].delta.content",
        "array",
    ),
    (
        "tool_calls null",
        _set(1, [*DELTA, "tool_calls"], None),
        1,
        "$.choices[0].delta.tool_calls",
        "null",
    ),
    (
        "usage with choices",
        _set(3, ["usage"], {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}),
        3,
        "$.usage",
        "choices",
    ),
    (
        "usage details null",
        _set(4, ["usage", "prompt_tokens_details"], None),
        4,
        "$.usage.prompt_tokens_details",
        "null",
    ),
    (
        "usage total float",
        _set(4, ["usage", "total_tokens"], 7.5),
        4,
        "$.usage.total_tokens",
        "",
    ),
    ("empty choices", _set(2, ["choices"], []), 2, "$.choices", "empty"),
    (
        "logprobs without bytes",
        _set(
            1,
            ["choices", 0, "logprobs"],
            {"content": [{"token": "Hello", "logprob": -0.1, "top_logprobs": []}], "refusal": None},
        ),
        1,
        "$.choices[0].logprobs.content[0].bytes",
        "missing",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "event", "path", "message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_strict_violation(
    mutate: Callable[[list[Chunk]], None], event: int, path: str, message: str
) -> None:
    chunks = base_chunks()
    mutate(chunks)
    data = encode(chunks)
    report = check_stream(data, strict=True)
    found = at(report, path)
    assert len(found) == 1, report.problems
    [problem] = found
    assert problem.event == event
    assert message in problem.message
    assert data[problem.offset :].startswith(b"data: ")
    assert len(report.problems) == 1, report.problems
    lenient = check_stream(data)
    assert lenient.problems == []  # the decoder reads it (salvaging what does not fit)


TOOL = [*DELTA, "tool_calls", 0]
TOOL_CASES: list[tuple[str, Callable[[list[Chunk]], None], int, str, str]] = [
    ("no index", _delete(2, [*TOOL, "index"]), 2, "$.choices[0].delta.tool_calls[0].index", ""),
    ("first without id", _delete(1, [*TOOL, "id"]), 1, "$.choices[0].delta.tool_calls[0].id", ""),
    (
        "first without type",
        _delete(1, [*TOOL, "type"]),
        1,
        "$.choices[0].delta.tool_calls[0].type",
        "missing",
    ),
    (
        "first without name",
        _delete(1, [*TOOL, "function", "name"]),
        1,
        "$.choices[0].delta.tool_calls[0].function.name",
        "missing",
    ),
    (
        "type custom",
        _set(1, [*TOOL, "type"], "custom"),
        1,
        "$.choices[0].delta.tool_calls[0].type",
        '"custom"',
    ),
    (
        "index from 1",
        lambda chunks: [_set(event, [*TOOL, "index"], 1)(chunks) for event in (1, 2)],
        1,
        "$.choices[0].delta.tool_calls[0].index",
        "expected 0",
    ),
    (
        "later id null",
        _set(2, [*TOOL, "id"], None),
        2,
        "$.choices[0].delta.tool_calls[0].id",
        "null",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "event", "path", "message"),
    [case[1:] for case in TOOL_CASES],
    ids=[case[0] for case in TOOL_CASES],
)
def test_strict_tool_call_violation(
    mutate: Callable[[list[Chunk]], None], event: int, path: str, message: str
) -> None:
    chunks = tool_chunks()
    mutate(chunks)
    report = check_stream(encode(chunks), strict=True)
    assert [(p.event, p.path) for p in report.problems] == [(event, path)]
    assert message in report.problems[0].message
    assert check_stream(encode(chunks)).problems == []


def test_strict_framing() -> None:
    chunks = base_chunks()
    body = encode(chunks[:2], done=False)
    data = (
        body
        + b'error: {"message": "context shift is disabled"}\n\n'
        + b"event: delta\n"
        + encode(chunks[2:3], done=False)
        + encode(chunks[3:])
        + b"data: {}\n\n"
    )
    report = check_stream(data, strict=True)
    messages = [(p.kind, p.event, p.message) for p in report.problems]
    assert [(kind, event) for kind, event, _ in messages] == [("sse", 2), ("spec", 2), ("sse", 6)]
    assert "unknown SSE field `error:`" in messages[0][2]
    assert "`event: delta`" in messages[1][2]
    assert "after data: [DONE]" in messages[2][2]
    assert check_stream(data).problems == []


@pytest.mark.parametrize("ending", [b"data: [DONE]\n", b"data: [DONE]"])
def test_last_event_without_blank_line(ending: bytes) -> None:
    data = encode(base_chunks(), done=False) + ending
    assert check_stream(data).problems == []
    [problem] = check_stream(data, strict=True).problems
    assert (problem.kind, problem.event) == ("sse", 5)
    assert "blank line" in problem.message


def test_invalid_utf8_is_strict() -> None:
    chunks = base_chunks()
    data = encode(chunks).replace(b"world", b"w\xffrld")
    assert check_stream(data).problems == []
    [problem] = check_stream(data, strict=True).problems
    assert (problem.kind, problem.event) == ("sse", 2)
    assert "invalid UTF-8" in problem.message


# -- extension fields are notes -----------------------------------------------------------------


def test_extension_fields_are_notes_not_violations() -> None:
    chunks = base_chunks()
    for chunk in chunks:
        chunk["obfuscation"] = "xYz"
    chunks[0]["prompt_filter_results"] = []
    chunks[0]["x_groq"] = {"id": "req_1"}
    chunks[1]["provider"] = "Google"
    chunks[1]["choices"][0]["content_filter_results"] = {}
    chunks[2]["choices"][0]["delta"]["reasoning"] = "hmm"
    chunks[2]["choices"][0]["delta"]["reasoning_content"] = "hmm"
    chunks[3]["choices"][0]["stop_reason"] = None
    chunks[3]["timings"] = {"predicted_ms": 12.5}
    chunks[4]["usage"]["cost"] = 0.0001
    chunks[4]["usage"]["prompt_tokens_details"]["cache_write_tokens"] = 0
    report = check_stream(encode(chunks), strict=True)
    assert report.problems == []
    notes = {note.path: (note.events, note.first_event) for note in report.notes}
    assert notes == {
        "$.obfuscation": (5, 0),
        "$.prompt_filter_results": (1, 0),
        "$.x_groq": (1, 0),
        "$.provider": (1, 1),
        "$.choices[0].content_filter_results": (1, 1),
        "$.choices[0].delta.reasoning": (1, 2),
        "$.choices[0].delta.reasoning_content": (1, 2),
        "$.choices[0].stop_reason": (1, 3),
        "$.timings": (1, 3),
        "$.usage.cost": (1, 4),
        "$.usage.prompt_tokens_details.cache_write_tokens": (1, 4),
    }
    assert check_stream(encode(chunks)).notes == report.notes


def test_fixture_notes() -> None:
    report = check_stream(fixture("groq_reasoning.sse"), strict=True)
    paths = {note.path for note in report.notes}
    assert {"$.x_groq", "$.choices[0].delta.reasoning", "$.usage.queue_time"} <= paths
    assert all(not p.path.startswith("$.x_groq") for p in report.problems)


def test_report_encodes_to_json() -> None:
    chunks = copy.deepcopy(base_chunks())
    chunks[1]["choices"][0]["finish_reason"] = ""
    report = check_stream(encode(chunks), strict=True)
    decoded = json.loads(msgspec.json.encode(report))
    assert decoded["ok"] is False
    assert decoded["problems"][0]["path"] == "$.choices[0].finish_reason"
    assert set(decoded) == {
        "ok",
        "strict",
        "size",
        "events",
        "chunks",
        "done",
        "problems",
        "notes",
        "kind",
        "problems_omitted",
        "notes_omitted",
        "status",
    }


def test_oversized_event_keeps_the_events_before_it() -> None:
    data = encode(base_chunks()[:2], done=False) + b"data: " + b"x" * 5000 + b"\n\n"
    report = check_stream(data, max_event_size=1000)
    [problem] = report.problems
    assert (problem.kind, problem.event) == ("sse", 2)
    assert "max_event_size" in problem.message
    assert report.chunks == 2
    assert data[problem.offset :].startswith(b"data: xxx")
