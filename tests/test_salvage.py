"""Salvage: a chunk with one value of an unexpected shape is decoded, minus that value.

The generated tests take valid chunks (every chunk of the fixture streams, and
chunks built by hypothesis), put a value of the wrong JSON type at one place,
and check the decoder against an oracle written from the schema: the chunk is
the one the server would have sent without that value (or without the list
element that needs it), one note names the place, and nothing depends on how
the bytes are split. Unit tests below cover each branch of the rule.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from msgspec import UNSET, UnsetType

import streamspec
from splitting import FIXTURE_NAMES, MANIFEST, STREAMS, bytewise, fixture, split_at
from streamspec import (
    ChunkDecoder,
    CreateChatCompletionStreamResponse,
    CreateCompletionResponse,
    MalformedEventError,
    SalvageNote,
    SSEParser,
    StreamError,
    accumulate,
    aiter_chunks,
    iter_chunks,
)

Path = tuple[str | int, ...]

decode_chunk = msgspec.json.Decoder(CreateChatCompletionStreamResponse).decode

# -- the oracle -----------------------------------------------------------------------------------


def json_path(path: Path) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def chat_required(parent: Path) -> frozenset[str]:
    """The required keys of the object at ``parent`` in a chat chunk (from the schema)."""
    if len(parent) >= 2 and isinstance(parent[-1], int):
        owner = parent[-2]
        if owner == "choices" and len(parent) == 2:
            return frozenset({"index"})
        if owner == "content" and len(parent) >= 3 and parent[-3] == "delta":
            return frozenset({"type"})
        if owner in ("content", "refusal") and len(parent) >= 3 and parent[-3] == "logprobs":
            return frozenset({"token", "logprob"})
        if owner == "top_logprobs":
            return frozenset({"token", "logprob"})
    return frozenset()


def legacy_required(parent: Path) -> frozenset[str]:
    """The required keys of the object at ``parent`` in a legacy completion chunk."""
    if parent == ():
        return frozenset({"choices"})
    if len(parent) == 2 and parent[0] == "choices":
        return frozenset({"text", "index"})
    return frozenset()


def members(value: Any, path: Path = ()) -> Iterator[Path]:
    """The path of every object member in ``value`` (the top-level ``error`` left out)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not (path == () and key == "error"):
                yield (*path, key)
                yield from members(item, (*path, key))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield from members(item, (*path, position))


def get(value: Any, path: Path) -> Any:
    for part in path:
        value = value[part]
    return value


def replaced(raw: Any, path: Path, new: Any) -> Any:
    copy = json.loads(json.dumps(raw))
    get(copy, path[:-1])[path[-1]] = new
    return copy


def without(raw: Any, path: Path, required: Callable[[Path], frozenset[str]]) -> tuple[Any, Path]:
    """``raw`` minus the value at ``path``, or minus the list element needing it; what went."""
    copy = json.loads(json.dumps(raw))
    parent, key = path[:-1], path[-1]
    gone = path
    if key in required(parent):
        gone = parent
        parent, key = parent[:-1], parent[-1]
    del get(copy, parent)[key]
    return copy, gone


WRONG: list[Any] = ["wrong", 12345, -1.5, True, {"unexpected": 1}, ["wrong"]]
"""A value of each JSON kind."""


def list_kind(path: Path) -> str | None:
    """What the field at ``path`` holds when it holds a list: ``"objects"`` or ``"values"``.

    From the schema: elements of a list of objects may be dropped one by one; a list of
    plain values (token ids, legacy logprob arrays) is positional and goes whole.
    """
    key, parent = path[-1], path[-2] if len(path) > 1 else None
    if key in ("choices", "tool_calls", "top_logprobs", "thinking"):
        return "objects"
    if key == "content" and parent in ("delta", "logprobs"):
        return "objects"
    if key == "refusal" and parent == "logprobs":
        return "objects"
    if key in ("bytes", "tokens", "token_logprobs", "text_offset"):
        return "values"
    return None


def oracle(
    raw: Any, path: Path, value: Any, required: Callable[[Path], frozenset[str]]
) -> tuple[Any, Path, Path]:
    """The chunk the decoder must give for ``raw`` with ``value`` at ``path``, the path
    the note names and the path of what it drops."""
    mutated = replaced(raw, path, value)
    if value == ["wrong"] and path[-1] not in required(path[:-1]):
        kind = list_kind(path)
        if kind == "objects":  # the element is dropped, the list kept
            return replaced(raw, path, []), (*path, 0), (*path, 0)
        if kind == "values":  # the list goes whole
            return without(mutated, path, required)[0], (*path, 0), path
    expected, gone = without(mutated, path, required)
    return expected, path, gone


def mutations(raw: Any, fits: Callable[[bytes], bool]) -> list[tuple[Path, Any]]:
    """Every (member, wrong value) pair that makes ``raw`` fail strict decoding."""
    found = []
    for path in members(raw):
        for value in WRONG:
            if not fits(json.dumps(replaced(raw, path, value)).encode()):
                found.append((path, value))
    return found


def strictly(tp: Any) -> Callable[[bytes], bool]:
    decode = msgspec.json.Decoder(tp).decode

    def fits(data: bytes) -> bool:
        try:
            decode(data)
        except msgspec.ValidationError:
            return False
        return True

    return fits


# -- running a stream every way -------------------------------------------------------------------


def event(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


Outcome = tuple[list[Any], list[SalvageNote], bool]


def run(reads: list[bytes], factory: Callable[[], Any]) -> Outcome:
    decoder = factory()
    chunks: list[Any] = []
    for data in reads:
        chunks += decoder.feed(data)
    chunks += decoder.close()
    return chunks, list(decoder.salvaged.notes), decoder.done


def run_every_way(data: bytes, seed: int, factory: Callable[[], Any] = ChunkDecoder) -> Outcome:
    whole = run([data], factory)
    assert run(bytewise(data), factory) == whole, "byte by byte differs from whole"
    rng = random.Random(seed)
    for _ in range(3):
        points = [rng.randrange(1, max(len(data), 2)) for _ in range(rng.randrange(1, 30))]
        assert run(split_at(data, points), factory) == whole, f"split at {sorted(points)} differs"
    return whole


def check_mutation(
    raw: dict[str, Any],
    path: Path,
    value: Any,
    seed: int,
    tp: Any = CreateChatCompletionStreamResponse,
    required: Callable[[Path], frozenset[str]] = chat_required,
    *,
    bytewise: bool = True,
) -> None:
    """The mutated chunk, between two intact ones, decodes as the oracle says, every way.

    Without ``bytewise``: whole and at one random split only (for the exhaustive sweep).
    """
    decode = msgspec.json.Decoder(tp).decode
    mutated = replaced(raw, path, value)
    expected, named, gone = oracle(raw, path, value, required)
    before, middle = event(raw), event(mutated)
    data = before + middle + event(raw) + b"data: [DONE]\n\n"
    if bytewise:
        chunks, notes, done = run_every_way(data, seed, lambda: ChunkDecoder(tp))
    else:
        chunks, notes, done = run([data], lambda: ChunkDecoder(tp))
        points = random.Random(seed).sample(range(1, len(data)), 5)
        assert run(split_at(data, points), lambda: ChunkDecoder(tp)) == (chunks, notes, done)
    assert done
    assert chunks == [
        decode(json.dumps(raw)),
        decode(json.dumps(expected)),
        decode(json.dumps(raw)),
    ]
    assert [(n.event, n.offset, n.path, n.dropped, n.action) for n in notes] == [
        (1, len(before), json_path(named), json_path(gone), "dropped")
    ]
    assert notes[0].reason


# -- valid chunks: every chunk of the fixtures, and generated ones --------------------------------


def fixture_payloads() -> list[dict[str, Any]]:
    """Each distinct chunk payload of the fixture streams that decodes strictly, errors aside."""
    found: dict[str, dict[str, Any]] = {}
    for name in FIXTURE_NAMES:
        for sse in SSEParser().feed(fixture(name) + b"\n\n"):
            try:
                raw = json.loads(sse.data)
                decode_chunk(sse.data)
            except ValueError:
                continue
            if isinstance(raw, dict) and "error" not in raw and sse.event in (None, "message"):
                found.setdefault(json.dumps(raw, sort_keys=True), raw)
    return list(found.values())


def fixture_cases(per_place: int = 4) -> list[tuple[dict[str, Any], Path, Any]]:
    """(chunk, member, wrong value) cases: for each member path and wrong value, a few chunks."""
    cases: dict[tuple[Path, str], list[tuple[dict[str, Any], Path, Any]]] = {}
    for raw in FIXTURE_PAYLOADS:
        for path, value in mutations(raw, strictly(CreateChatCompletionStreamResponse)):
            found = cases.setdefault((path, json.dumps(value)), [])
            if len(found) < per_place:
                found.append((raw, path, value))
    return [case for found in cases.values() for case in found]


FIXTURE_PAYLOADS = fixture_payloads()
FIXTURE_CASES = fixture_cases()

text = st.text(max_size=10)
small = st.integers(0, 3)
top_logprob = st.fixed_dictionaries(
    {"token": text, "logprob": st.floats(-30, 0)},
    optional={"bytes": st.one_of(st.none(), st.lists(st.integers(0, 255), max_size=4))},
)
token_logprob = st.fixed_dictionaries(
    {"token": text, "logprob": st.floats(-30, 0)},
    optional={
        "bytes": st.one_of(st.none(), st.lists(st.integers(0, 255), max_size=4)),
        "top_logprobs": st.lists(top_logprob, max_size=2),
    },
)
block = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": text}),
    st.fixed_dictionaries(
        {
            "type": st.just("thinking"),
            "thinking": st.one_of(
                text,
                st.lists(
                    st.fixed_dictionaries({"type": st.just("text")}, optional={"text": text}),
                    max_size=3,
                ),
            ),
        }
    ),
)
tool_call = st.fixed_dictionaries(
    {},
    optional={
        "index": small,
        "id": st.one_of(text, st.none()),
        "type": st.just("function"),
        "function": st.fixed_dictionaries(
            {}, optional={"name": st.one_of(text, st.none()), "arguments": text}
        ),
    },
)
delta = st.fixed_dictionaries(
    {},
    optional={
        "role": st.one_of(st.just("assistant"), st.none()),
        "content": st.one_of(text, st.none(), st.lists(block, max_size=3)),
        "reasoning_content": st.one_of(text, st.none()),
        "reasoning": text,
        "refusal": st.one_of(text, st.none()),
        "tool_calls": st.lists(tool_call, max_size=2),
    },
)
choice = st.fixed_dictionaries(
    {"index": small},
    optional={
        "delta": delta,
        "finish_reason": st.one_of(st.none(), st.sampled_from(["stop", "length", "eos", ""])),
        "logprobs": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {},
                optional={
                    "content": st.one_of(st.none(), st.lists(token_logprob, max_size=2)),
                    "refusal": st.none(),
                },
            ),
        ),
    },
)
count = st.integers(0, 10**6)
usage = st.fixed_dictionaries(
    {},
    optional={
        "prompt_tokens": count,
        "completion_tokens": count,
        "total_tokens": count,
        "prompt_tokens_details": st.one_of(
            st.none(), st.fixed_dictionaries({}, optional={"cached_tokens": count})
        ),
        "completion_tokens_details": st.fixed_dictionaries(
            {}, optional={"reasoning_tokens": count}
        ),
    },
)
chat_chunk = st.fixed_dictionaries(
    {"choices": st.lists(choice, max_size=2)},
    optional={
        "id": text,
        "object": st.just("chat.completion.chunk"),
        "created": st.integers(0, 2**31),
        "model": text,
        "system_fingerprint": st.one_of(text, st.none()),
        "service_tier": st.one_of(st.sampled_from(["default", "on_demand"]), st.none()),
        "usage": st.one_of(st.none(), usage),
    },
)
legacy_chunk = st.fixed_dictionaries(
    {
        "choices": st.lists(
            st.fixed_dictionaries(
                {"text": text, "index": small},
                optional={
                    "finish_reason": st.one_of(st.none(), st.just("length")),
                    "logprobs": st.one_of(
                        st.none(),
                        st.fixed_dictionaries(
                            {
                                "tokens": st.lists(text, max_size=3),
                                "token_logprobs": st.lists(st.floats(-30, 0), max_size=3),
                            }
                        ),
                    ),
                },
            ),
            min_size=1,
            max_size=2,
        )
    },
    optional={
        "id": text,
        "object": st.just("text_completion"),
        "created": st.integers(0, 2**31),
        "model": text,
        "usage": st.one_of(st.none(), usage),
    },
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def test_fixtures_give_many_mutations() -> None:
    # The fixture-based class below is broad: every kind of chunk real servers send.
    assert len(FIXTURE_PAYLOADS) > 300
    assert len({path for _, path, _ in FIXTURE_CASES}) > 60
    assert len(FIXTURE_CASES) > 900


def test_every_fixture_chunk_with_each_wrong_value() -> None:
    # Every member path found in the fixtures, with each wrong value that does not fit
    # there, in up to four different chunks; whole and at random split points.
    for seed, (raw, path, value) in enumerate(FIXTURE_CASES):
        check_mutation(raw, path, value, seed, bytewise=False)


@SETTINGS
@given(st.sampled_from(FIXTURE_CASES), st.integers(0, 2**32))
def test_fixture_chunk_with_one_wrong_value(case: tuple[Any, Path, Any], seed: int) -> None:
    raw, path, value = case
    check_mutation(raw, path, value, seed)


@SETTINGS
@given(chat_chunk, st.data())
def test_generated_chunk_with_one_wrong_value(raw: dict[str, Any], data: st.DataObject) -> None:
    found = mutations(raw, strictly(CreateChatCompletionStreamResponse))
    assume(found)
    path, value = data.draw(st.sampled_from(found))
    check_mutation(raw, path, value, data.draw(st.integers(0, 2**32)))


@SETTINGS
@given(legacy_chunk, st.data())
def test_generated_legacy_chunk_with_one_wrong_value(
    raw: dict[str, Any], data: st.DataObject
) -> None:
    found = [
        (path, value)
        for path, value in mutations(raw, strictly(CreateCompletionResponse))
        if path != ("choices",)  # required at the top: nothing encloses it (see below)
    ]
    assume(found)
    path, value = data.draw(st.sampled_from(found))
    seed = data.draw(st.integers(0, 2**32))
    check_mutation(raw, path, value, seed, CreateCompletionResponse, legacy_required)


class SlimDelta(msgspec.Struct, frozen=True):
    content: str | list[dict[str, Any]] | UnsetType | None = UNSET


class SlimChoice(msgspec.Struct):
    index: int
    delta: SlimDelta = SlimDelta()
    finish_reason: str | UnsetType | None = UNSET


class SlimUsage(msgspec.Struct):
    completion_tokens: int | UnsetType = UNSET


class Slim(msgspec.Struct):
    """A gateway's projection: only what it meters."""

    choices: list[SlimChoice] = []
    usage: SlimUsage | UnsetType | None = UNSET


@SETTINGS
@given(chat_chunk, st.data())
def test_slim_projection_with_one_wrong_value(raw: dict[str, Any], data: st.DataObject) -> None:
    found = mutations(raw, strictly(Slim))
    assume(found)
    path, value = data.draw(st.sampled_from(found))
    check_mutation(raw, path, value, data.draw(st.integers(0, 2**32)), Slim)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=12,
)
schema_keys = st.sampled_from(
    ["choices", "index", "delta", "content", "role", "tool_calls", "function", "arguments",
     "name", "usage", "prompt_tokens", "total_tokens", "logprobs", "thinking", "type", "text",
     "error", "finish_reason", "reasoning_content", "created", "id", "bytes", "top_logprobs"]
)  # fmt: skip
chunk_like = st.recursive(
    json_values,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(schema_keys, inner, max_size=4),
    max_leaves=25,
)


@SETTINGS
@given(st.dictionaries(schema_keys, chunk_like, max_size=5), st.integers(0, 2**32))
def test_any_json_object_decodes_or_raises_a_located_error(raw: dict[str, Any], seed: int) -> None:
    # Anything a server may send as a payload: a chunk (salvaged as needed), a server error,
    # or a malformed event; the same whatever the reads, and never another exception.
    data = event(raw) + b"data: [DONE]\n\n"
    outcomes = []
    for reads in (
        [data],
        bytewise(data),
        split_at(data, random.Random(seed).sample(range(1, len(data)), 3)),
    ):
        decoder = ChunkDecoder()
        got: list[Any] = []
        errors: list[tuple[type[Exception], int | None, int | None]] = []
        for piece in [*reads, b""]:
            try:
                got += decoder.feed(piece)
            except streamspec.Error as exc:
                got += exc.chunks
                errors.append((type(exc), exc.event_index, exc.offset))
        outcomes.append((got, errors, list(decoder.salvaged.notes), decoder.done))
    assert outcomes[1] == outcomes[0]
    assert outcomes[2] == outcomes[0]
    got, errors, _, done = outcomes[0]
    assert done
    assert len(got) + len(errors) == 1
    assert all(kind in (MalformedEventError, StreamError) for kind, _, _ in errors)


def int_members(raw: Any) -> list[Path]:
    return [
        p
        for p in members(raw)
        if isinstance(get(raw, p), int) and not isinstance(get(raw, p), bool)
    ]


@SETTINGS
@given(chat_chunk, st.data())
def test_integral_floats_read_as_integers(raw: dict[str, Any], data: st.DataObject) -> None:
    found = int_members(raw)
    assume(found)
    path = data.draw(st.sampled_from(found))
    mutated = replaced(raw, path, float(get(raw, path)))
    before = event(raw)
    stream = before + event(mutated) + b"data: [DONE]\n\n"
    chunks, notes, done = run_every_way(stream, data.draw(st.integers(0, 2**32)))
    intact = decode_chunk(json.dumps(raw))
    assert done
    assert chunks == [intact, intact]
    assert [(n.event, n.offset, n.path, n.dropped, n.action) for n in notes] == [
        (1, len(before), json_path(path), json_path(path), "converted")
    ]


# -- real-shaped streams that need salvage (fixtures/streams/lenient) ---------------------------

LENIENT = STREAMS / "lenient"
LENIENT_MANIFEST: dict[str, dict[str, Any]] = json.loads(
    (LENIENT / "MANIFEST.json").read_text(encoding="utf-8")
)


@pytest.mark.parametrize("name", sorted(LENIENT_MANIFEST))
def test_lenient_fixture_decodes_every_way_with_its_notes(name: str) -> None:
    entry = LENIENT_MANIFEST[name]
    chunks, notes, done = run_every_way((LENIENT / name).read_bytes(), seed=len(name))
    assert done
    assert len(chunks) == entry["n_chunks"]
    assert [[n.event, n.path, n.action] for n in notes] == entry["salvaged"]
    result = accumulate(chunks)
    message = result.choices[0].message
    assert (message.content, message.reasoning_content or None) == (
        entry["text"],
        entry["reasoning"],
    )
    assert result.choices[0].finish_reason == entry["finish_reason"]
    assert msgspec.to_builtins(result.usage) == entry["usage"]


@pytest.mark.parametrize("name", sorted(LENIENT_MANIFEST))
def test_the_iterators_hand_their_notes_to_on_salvage(name: str) -> None:
    entry = LENIENT_MANIFEST[name]
    data = (LENIENT / name).read_bytes()
    reads = [data[i : i + 37] for i in range(0, len(data), 37)]
    seen: list[Any] = []
    chunks = list(iter_chunks(reads, on_salvage=seen.append))
    assert len(chunks) == entry["n_chunks"]
    assert [[n.event, n.path, n.action] for n in seen] == entry["salvaged"]

    async def collect() -> tuple[list[Any], list[Any]]:
        async def source() -> AsyncIterator[bytes]:
            for read in reads:
                yield read

        notes: list[Any] = []
        got = [chunk async for chunk in aiter_chunks(source(), on_salvage=notes.append)]
        return got, notes

    assert asyncio.run(collect()) == (chunks, seen)
    if entry["salvaged"]:  # without salvage the first chunk of the wrong shape is an error
        with pytest.raises(MalformedEventError):
            list(iter_chunks(reads, salvage=False))


# -- the rule, case by case -----------------------------------------------------------------------


def feed_all(data: bytes, **options: Any) -> tuple[list[Any], ChunkDecoder[Any]]:
    decoder = ChunkDecoder(**options)
    chunks = decoder.feed(data)
    chunks += decoder.close()
    return chunks, decoder


def notes_of(decoder: ChunkDecoder[Any]) -> list[tuple[str, str, str]]:
    return [(n.path, n.dropped, n.action) for n in decoder.salvaged.notes]


def test_a_chunk_that_fits_is_not_salvaged() -> None:
    chunks, decoder = feed_all(fixture("openai_text.sse"))
    assert chunks
    assert (decoder.salvaged.events, decoder.salvaged.values, decoder.salvaged.notes) == (0, 0, [])
    assert not decoder.salvaged


def test_optional_field_reads_as_unset_and_the_rest_is_kept() -> None:
    payload = {
        "id": "c1",
        "choices": [
            {"index": 0, "delta": {"content": "Hi", "role": 7}, "finish_reason": None},
            {"index": 1, "delta": {"content": "Yo"}, "logprobs": "none"},
        ],
    }
    [chunk], decoder = feed_all(event(payload))
    assert chunk.id == "c1"
    assert [c.delta.content for c in chunk.choices] == ["Hi", "Yo"]
    assert chunk.choices[0].delta.role is UNSET
    assert chunk.choices[0].finish_reason is None
    assert chunk.choices[1].logprobs is UNSET
    assert notes_of(decoder) == [
        ("$.choices[0].delta.role", "$.choices[0].delta.role", "dropped"),
        ("$.choices[1].logprobs", "$.choices[1].logprobs", "dropped"),
    ]
    assert decoder.salvaged.notes[0].reason == "Expected `str | null`, got `int`"
    assert decoder.salvaged.events == 1
    assert decoder.salvaged.values == 2


def test_required_field_drops_its_list_element() -> None:
    payload = {"choices": [{"index": "0", "delta": {"content": "lost"}}, {"index": 1}]}
    [chunk], decoder = feed_all(event(payload))
    assert [c.index for c in chunk.choices] == [1]
    assert notes_of(decoder) == [("$.choices[0].index", "$.choices[0]", "dropped")]


def test_missing_required_field_drops_its_list_element() -> None:
    payload = {"choices": [{"delta": {"content": "no index"}}, {"index": 0, "delta": {}}]}
    [chunk], decoder = feed_all(event(payload))
    assert [c.index for c in chunk.choices] == [0]
    [note] = decoder.salvaged.notes
    assert (note.path, note.dropped, note.reason) == (
        "$.choices[0].index",
        "$.choices[0]",
        "missing required field `index`",
    )


def test_list_of_plain_values_is_dropped_whole() -> None:
    entry = {"token": "a", "logprob": -0.5, "bytes": [97, "x"], "top_logprobs": []}
    payload = {"choices": [{"index": 0, "delta": {}, "logprobs": {"content": [entry]}}]}
    [chunk], decoder = feed_all(event(payload))
    [kept] = chunk.choices[0].logprobs.content
    assert (kept.token, kept.logprob, kept.bytes, kept.top_logprobs) == ("a", -0.5, UNSET, [])
    assert notes_of(decoder) == [
        (
            "$.choices[0].logprobs.content[0].bytes[1]",
            "$.choices[0].logprobs.content[0].bytes",
            "dropped",
        )
    ]


def test_legacy_parallel_arrays_are_never_shifted() -> None:
    payload = {
        "object": "text_completion",
        "choices": [
            {
                "text": "ab",
                "index": 0,
                "logprobs": {"tokens": ["a", "b"], "token_logprobs": [-1, "?"]},
            }
        ],
    }
    [chunk], decoder = feed_all(event(payload), type=CreateCompletionResponse)
    logprobs = chunk.choices[0].logprobs
    assert (logprobs.tokens, logprobs.token_logprobs) == (["a", "b"], UNSET)
    assert notes_of(decoder) == [
        (
            "$.choices[0].logprobs.token_logprobs[1]",
            "$.choices[0].logprobs.token_logprobs",
            "dropped",
        )
    ]


def test_nothing_encloses_a_required_top_level_field() -> None:
    data = event({"object": "text_completion", "choices": "none"}) + b"data: [DONE]\n\n"
    decoder = ChunkDecoder(CreateCompletionResponse)
    with pytest.raises(MalformedEventError, match=r"\$\.choices"):
        decoder.feed(data)
    assert decoder.feed(b"") == []
    assert decoder.done
    assert decoder.salvaged.events == 0


@pytest.mark.parametrize("payload", [b'["a", "list"]', b'"text"', b"12", b"null"])
def test_a_payload_that_is_not_an_object_is_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedEventError):
        ChunkDecoder().feed(b"data: " + payload + b"\n\n")


@pytest.mark.parametrize(
    "payload",
    [
        # Deeper than msgspec decodes on any supported Python (3.13 goes near 9,000).
        b'{"choices": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
        b'{"usage": {"prompt_tokens": "x"}, "extra": '
        + b'{"a":' * 20_000
        + b"1"
        + b"}" * 20_000
        + b"}",
    ],
)
def test_a_payload_nested_too_deep_to_walk_is_malformed(payload: bytes) -> None:
    decoder = ChunkDecoder()
    data = b"data: " + payload + b"\n\ndata: {}\n\ndata: [DONE]\n\n"
    with pytest.raises(MalformedEventError, match=r"\$\.(choices|usage)"):
        decoder.feed(data)
    assert decoder.feed(b"") == [CreateChatCompletionStreamResponse()]
    assert decoder.done


class Checked(msgspec.Struct):
    """A user type with its own validation."""

    name: str | UnsetType = UNSET

    def __post_init__(self) -> None:
        if self.name == "bad":
            raise ValueError("the name is bad")


class Holder(msgspec.Struct):
    checked: Checked | UnsetType = UNSET
    count: int | UnsetType = UNSET


def test_a_value_the_type_itself_refuses_is_dropped() -> None:
    [chunk], decoder = feed_all(event({"checked": {"name": "bad"}, "count": 2}), type=Holder)
    assert chunk == Holder(count=2)
    [note] = decoder.salvaged.notes
    assert (note.path, note.dropped, note.reason) == ("$.checked", "$.checked", "the name is bad")


class Touchy(msgspec.Struct):
    """A type whose own validation raises an exception that is not msgspec's."""

    name: str | UnsetType = UNSET

    def __post_init__(self) -> None:
        if self.name == "bad":
            raise KeyError(self.name)


class TouchyHolder(msgspec.Struct):
    items: list[Touchy] = []
    first: Touchy | UnsetType = UNSET


def test_an_exception_that_names_no_path_is_found_by_trying_each_part() -> None:
    payload = {"first": {"name": "bad"}, "items": [{"name": "a"}, {"name": "bad"}]}
    value, notes = streamspec.salvage(json.dumps(payload), TouchyHolder)
    assert value == TouchyHolder(items=[Touchy(name="a")])
    assert [(n.path, n.dropped, n.reason) for n in notes] == [
        ("$.first", "$.first", "KeyError: 'bad'"),
        ("$.items[1]", "$.items[1]", "KeyError: 'bad'"),
    ]
    with pytest.raises(KeyError):
        streamspec.salvage(b'{"name": "bad"}', Touchy)
    # The decoder does the same, and a top-level refusal is a located malformed event.
    [chunk], decoder = feed_all(event(payload), type=TouchyHolder)
    assert chunk == value
    assert [(n.path, n.reason) for n in decoder.salvaged.notes] == [
        (n.path, n.reason) for n in notes
    ]
    with pytest.raises(MalformedEventError, match="KeyError"):
        ChunkDecoder(Touchy).feed(event({"name": "bad"}))


class Dotted(msgspec.Struct):
    version: int | UnsetType = msgspec.field(default=UNSET, name="api.version")
    count: int | UnsetType = UNSET


def test_a_wire_name_msgspec_paths_cannot_spell_is_found_by_trying_each_field() -> None:
    value, notes = streamspec.salvage(b'{"api.version": "2", "count": 3}', Dotted)
    assert value == Dotted(count=3)
    assert [(n.path, n.dropped) for n in notes] == [('$["api.version"]', '$["api.version"]')]


class Documented(msgspec.Struct):
    count: Annotated[int, {"doc": "unhashable metadata"}] = 0
    name: str | UnsetType = UNSET


def test_an_unhashable_annotation_is_still_walked() -> None:
    value, notes = streamspec.salvage(b'{"count": 3, "name": 4}', Documented)
    assert value == Documented(count=3)
    assert [n.path for n in notes] == ["$.name"]
    value, notes = streamspec.salvage(b'{"count": "3", "name": "a"}', Documented)
    assert value == Documented(name="a")
    assert [n.path for n in notes] == ["$.count"]


def test_invalid_json_is_not_salvaged() -> None:
    with pytest.raises(MalformedEventError, match="JSON"):
        ChunkDecoder().feed(b'data: {"choices": [}\n\n')


def test_salvage_can_be_turned_off() -> None:
    decoder = ChunkDecoder(salvage=False)
    with pytest.raises(MalformedEventError, match=r"\$\.choices\[0\]\.delta\.role"):
        decoder.feed(event({"choices": [{"index": 0, "delta": {"role": 7}}]}))
    assert not decoder.salvaged.enabled
    assert decoder.salvaged.events == 0


def test_notes_are_bounded_and_the_callback_sees_every_one() -> None:
    seen: list[SalvageNote] = []
    decoder = ChunkDecoder(on_salvage=seen.append)
    bad = event({"choices": [{"index": 0, "delta": {"content": "x", "role": 1, "refusal": 2}}]})
    chunks = decoder.feed(bad * 500 + b"data: [DONE]\n\n")
    assert [c.choices[0].delta.content for c in chunks] == ["x"] * 500
    log = decoder.salvaged
    assert (log.events, log.values, len(log.notes)) == (500, 1000, log.limit)
    assert log.notes == seen[: log.limit]
    assert len(seen) == 1000
    assert [n.event for n in seen[-2:]] == [499, 499]
    assert seen[-1].offset == 499 * len(bad)


def test_a_map_entry_is_dropped_alone() -> None:
    class Scored(msgspec.Struct):
        scores: dict[str, int] = {}

    [chunk], decoder = feed_all(event({"scores": {"a": 1, "b c": "x", "d": 2}}), type=Scored)
    assert chunk.scores == {"a": 1, "d": 2}
    assert notes_of(decoder) == [('$.scores["b c"]', '$.scores["b c"]', "dropped")]


def test_raw_and_any_fields_always_fit() -> None:
    class Loose(msgspec.Struct):
        raw: msgspec.Raw = msgspec.Raw(b"null")
        anything: Any = None
        count: int | UnsetType = UNSET

    [chunk], decoder = feed_all(
        event({"raw": {"x": [1]}, "anything": [1, "a"], "count": "3"}), type=Loose
    )
    assert (bytes(chunk.raw), chunk.anything, chunk.count) == (b'{"x":[1]}', [1, "a"], UNSET)
    assert notes_of(decoder) == [("$.count", "$.count", "dropped")]


class Text(msgspec.Struct, tag="text"):
    text: str | UnsetType = UNSET


class Image(msgspec.Struct, tag="image"):
    url: str | UnsetType = UNSET


class Message(msgspec.Struct):
    parts: list[Text | Image] = []


def test_tagged_union_member_is_chosen_by_its_tag() -> None:
    payload = {"parts": [{"type": "text", "text": 1}, {"type": "image", "url": "u"}, {"type": "?"}]}
    [chunk], decoder = feed_all(event(payload), type=Message)
    assert chunk.parts == [Text(), Image(url="u")]
    assert notes_of(decoder) == [
        ("$.parts[0].text", "$.parts[0].text", "dropped"),
        ("$.parts[2].type", "$.parts[2]", "dropped"),
    ]


def test_unknown_fields_of_a_closed_type_are_dropped() -> None:
    class Closed(msgspec.Struct, forbid_unknown_fields=True):
        a: int = 0

    [chunk], decoder = feed_all(event({"a": 1, "b": 2}), type=Closed)
    assert chunk == Closed(a=1)
    assert notes_of(decoder) == [("$.b", "$.b", "dropped")]


def test_an_error_report_in_a_salvaged_chunk_is_still_raised() -> None:
    payload = {"choices": "none", "error": {"message": "overloaded", "code": 503}}
    decoder = ChunkDecoder()
    with pytest.raises(StreamError, match="overloaded") as caught:
        decoder.feed(event(payload))
    assert caught.value.chunk == CreateChatCompletionStreamResponse(
        error=streamspec.ErrorObject(message="overloaded", code=503)
    )
    assert notes_of(decoder) == [("$.choices", "$.choices", "dropped")]


def test_a_final_event_without_its_blank_line_is_salvaged_at_close() -> None:
    decoder = ChunkDecoder()
    assert decoder.feed(b'data: {"choices": [{"index": 0, "delta": {"content": 5}}]}') == []
    [chunk] = decoder.close()
    assert chunk.choices[0].delta.content is UNSET
    assert notes_of(decoder) == [
        ("$.choices[0].delta.content", "$.choices[0].delta.content", "dropped")
    ]


def test_salvage_function_matches_the_decoder() -> None:
    payload = json.dumps({"choices": [{"index": 0, "delta": {"content": "a", "role": 5}}]})
    chunk, notes = streamspec.salvage(payload, event=3, offset=120)
    [decoded], _ = feed_all(event(json.loads(payload)))
    assert chunk == decoded
    assert [(n.event, n.offset, n.path) for n in notes] == [(3, 120, "$.choices[0].delta.role")]
    assert streamspec.salvage(b'{"choices": []}') == (
        CreateChatCompletionStreamResponse(choices=[]),
        [],
    )
    with pytest.raises(msgspec.ValidationError, match=r"\$\.choices"):
        streamspec.salvage(b'{"choices": 1}', CreateCompletionResponse)
    with pytest.raises(msgspec.DecodeError):
        streamspec.salvage(b"{oops")


def test_note_text_names_event_offset_path_and_reason() -> None:
    note = SalvageNote(
        event=4,
        offset=900,
        path="$.choices[0].index",
        dropped="$.choices[0]",
        reason="Expected `int`, got `str`",
    )
    assert str(note) == (
        "event 4 (byte 900): $.choices[0].index: Expected `int`, got `str` (dropped $.choices[0])"
    )


# -- usage and error members in otherwise normal chunks ------------------------------------------

CHUNK_WITH_ERROR = b'data: {"choices":[{"index":0,"delta":{"content":"x"}}],"error":%s}\n\n'


def test_usage_counts_float_missing_and_wrong() -> None:
    payload = {
        "choices": [],
        "usage": {"prompt_tokens": 12.0, "completion_tokens": 7.5, "prompt_tokens_details": None},
    }
    [chunk], decoder = feed_all(event(payload))
    usage = chunk.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (12, UNSET, UNSET)
    assert notes_of(decoder) == [
        ("$.usage.prompt_tokens", "$.usage.prompt_tokens", "converted"),
        ("$.usage.completion_tokens", "$.usage.completion_tokens", "dropped"),
    ]
    assert decoder.salvaged.notes[0].reason == "12.0 read as 12"


@pytest.mark.parametrize("value", ["false", "0", "[]", "{}", '""', "null", "0.0", '"  "'])
def test_empty_error_member_in_a_normal_chunk_is_not_an_error(value: str) -> None:
    data = CHUNK_WITH_ERROR.replace(b'"x"', b'"kept"') % value.encode() + b"data: [DONE]\n\n"
    chunks, decoder = feed_all(data)
    assert accumulate(chunks).choices[0].message.content == "kept"
    assert decoder.done
    assert decoder.salvaged.events == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"message": "boom"}', "boom"),
        ('{"code": 503}', "code=503"),
        ('{"type": "server_error"}', "type=server_error"),
        ('"plain text"', "plain text"),
        ("true", "no message"),
    ],
)
def test_error_report_in_a_normal_chunk_is_an_error(value: str, message: str) -> None:
    data = (
        b'data: {"choices":[{"index":0,"delta":{"content":"x"}}],"error":'
        + value.encode()
        + b"}\n\n"
    )
    with pytest.raises(StreamError, match=message) as caught:
        ChunkDecoder().feed(data)
    assert caught.value.chunk.choices[0].delta.content == "x"


@pytest.mark.parametrize("value", ["{}", '{"message": ""}', '{"message": "", "type": null}'])
def test_a_bare_error_envelope_is_always_an_error(value: str) -> None:
    with pytest.raises(StreamError):
        ChunkDecoder().feed(b'data: {"error": ' + value.encode() + b"}\n\n")


@pytest.mark.parametrize("value", ["false", "null", '""', "0", "[]"])
def test_a_bare_empty_error_member_is_not_an_error(value: str) -> None:
    [chunk] = ChunkDecoder().feed(b'data: {"error": ' + value.encode() + b"}\n\n")
    assert list(chunk.choices) == []


class SlimNoError(msgspec.Struct):
    choices: list[SlimChoice] = []


@pytest.mark.parametrize(
    ("value", "raises"), [("false", False), ("{}", False), ('{"message": "boom"}', True)]
)
def test_error_rule_holds_for_a_projection_without_an_error_field(value: str, raises: bool) -> None:
    data = (
        b'data: {"choices":[{"index":0,"delta":{"content":"x"}}],"error":'
        + value.encode()
        + b"}\n\n"
    )
    decoder = ChunkDecoder(SlimNoError)
    if raises:
        with pytest.raises(StreamError, match="boom"):
            decoder.feed(data)
    else:
        [chunk] = decoder.feed(data)
        assert chunk.choices[0].delta.content == "x"


@pytest.mark.parametrize("name", [n for n in FIXTURE_NAMES if MANIFEST[n]["expect"] == "ok"])
def test_no_fixture_that_decodes_needs_salvage(name: str) -> None:
    chunks, decoder = feed_all(fixture(name))
    assert len(chunks) == MANIFEST[name]["n_chunks"]
    assert decoder.salvaged.notes == []
