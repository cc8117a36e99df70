"""Only top-level members are edited: differential tests of the gateway's usage and model edits.

Payloads are written by a serializer of this file that keeps every formatting
choice (whitespace anywhere, keys spelled with ``\\uXXXX`` escapes, strings
that contain ``"usage"``, brackets and backslashes, ``usage``/``model`` keys
nested at any depth, in choices, deltas, arrays and vendor objects). The
expected bytes are the same payload written again with the same choices,
minus the top-level ``usage`` member (and the comma that separated it) or
with the top-level ``model`` value replaced: never from the gateway's code.
Each expected payload is also checked against ``json.loads``, so the oracle
itself is sound.

The same payloads go through :class:`StreamEditor` directly (one payload,
regions of several events in LF, CRLF or CR framing) and through the real
gateway on loopback (an upstream writing the events one per write, all in one
write, or cut at random points, and httpx reading the raw bytes the client
receives).
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mock_upstream import ServerThread, read_body
from streamspec.gateway import GatewayRecord, create_app, splice
from streamspec.gateway.edit import StreamEditor, edit_response
from streamspec.gateway.splice import member_span, member_spans, remove_member, replace_member

ALIAS = "alias-✓"
LINE_SPACE = [" ", "\t", "  ", " \t"]  # whitespace that keeps a payload on one SSE line
ANY_SPACE = [*LINE_SPACE, "\n", "\r\n", "\r", " \n "]


# -- a JSON writer that remembers where each top-level member is ------------------------------


@dataclass
class Style:
    """The formatting choices of one payload, drawn from a seeded generator."""

    rng: random.Random
    spaces: list[str]
    density: float = 0.3  # how often whitespace appears between two tokens
    escapes: float = 0.15  # how often a key letter is written as \\uXXXX

    def space(self) -> str:
        return self.rng.choice(self.spaces) if self.rng.random() < self.density else ""

    def key(self, name: str) -> str:
        out = []
        for char in json.dumps(name, ensure_ascii=False)[1:-1]:
            if char.isalpha() and char.isascii() and self.rng.random() < self.escapes:
                code = f"{ord(char):04x}"
                out.append("\\u" + (code.upper() if self.rng.random() < 0.5 else code))
            else:
                out.append(char)
        return '"' + "".join(out) + '"'

    def string(self, text: str) -> str:
        written = json.dumps(text, ensure_ascii=self.rng.random() < 0.3)
        return written.replace("/", "\\/") if self.rng.random() < 0.3 else written

    def value(self, value: Any) -> str:
        if isinstance(value, dict):
            if not value:
                return "{" + self.space() + "}"
            members = [
                self.key(k) + self.space() + ":" + self.space() + self.value(v)
                for k, v in value.items()
            ]
            return "{" + self.space() + self.join(members) + self.space() + "}"
        if isinstance(value, list):
            if not value:
                return "[" + self.space() + "]"
            return (
                "[" + self.space() + self.join([self.value(v) for v in value]) + self.space() + "]"
            )
        if isinstance(value, str):
            return self.string(value)
        return json.dumps(value)

    def join(self, parts: list[str]) -> str:
        out = parts[0]
        for part in parts[1:]:
            out += self.space() + "," + self.space() + part
        return out


@dataclass
class Payload:
    """A top-level object as written, in pieces: open, member, separator, member, ..., close.

    A member piece is ``key + colon + value``; a separator is ``<ws>,<ws>``.
    """

    pieces: list[str]
    names: dict[str, int]  # member name -> index of its piece
    colons: dict[str, int]  # member name -> length of its key and colon texts
    values: dict[str, Any]

    @classmethod
    def write(cls, items: list[tuple[str, Any]], style: Style) -> Payload:
        pieces = [style.space() + "{" + style.space()]
        names, colons = {}, {}
        for position, (name, value) in enumerate(items):
            if position:
                pieces.append(style.space() + "," + style.space())
            head = style.key(name) + style.space() + ":" + style.space()
            names[name], colons[name] = len(pieces), len(head)
            pieces.append(head + style.value(value))
        pieces.append(style.space() + "}" + style.space())
        return cls(pieces, names, colons, dict(items))

    def encoded(self) -> bytes:
        return "".join(self.pieces).encode()

    def span(self, name: str) -> tuple[int, int, int]:
        """Byte offsets (key start, value start, value end) of the top-level member ``name``."""
        index = self.names[name]
        start = len("".join(self.pieces[:index]).encode())
        head = self.pieces[index][: self.colons[name]]
        return start, start + len(head.encode()), start + len(self.pieces[index].encode())

    def edited(self, strip: str | None = None, model: str | None = None) -> bytes:
        """The payload with the member ``strip`` taken out and the value of ``model`` replaced.

        The member goes with the comma before it (the whitespace before that
        comma stays); the first member goes with the separator after it.
        """
        pieces: list[str | None] = list(self.pieces)
        if model is not None and "model" in self.names:
            index = self.names["model"]
            head = self.pieces[index][: self.colons["model"]]
            pieces[index] = head + json.dumps(model, ensure_ascii=False)
        if strip is not None and strip in self.names:
            index = self.names[strip]
            pieces[index] = None
            if index > 1:
                separator = self.pieces[index - 1]
                pieces[index - 1] = separator[: separator.index(",")]
            elif index + 1 < len(pieces) - 1:
                pieces[index + 1] = None
        return "".join(piece for piece in pieces if piece is not None).encode()


def expected(payload: Payload, strip: bool, model: str | None) -> bytes | None:
    """What the client must get for ``payload`` (None: the event is dropped)."""
    values = payload.values
    if strip and values.get("usage") is not None and values.get("choices", []) == []:
        return None  # the usage-only chunk
    edited = payload.edited("usage" if strip else None, model)
    shown = {k: v for k, v in values.items() if not (strip and k == "usage")}
    if model is not None and "model" in shown:
        shown["model"] = model
    assert json.loads(edited) == shown  # the oracle itself: only the top level changed
    return edited


# -- what payloads look like ------------------------------------------------------------------

TRICKY = ["usage", "model", '"usage', 'x"usage', '"usage":null}', '{"model":"m"}', "}]", "[{",
          "\\", "é✓", "\\u0075sage", "", ',"usage":null}', '"model":"x"']  # fmt: skip
texts = st.sampled_from(TRICKY) | st.text(max_size=5)
names = st.sampled_from(["usage", "model", "content", "x", '"usage', "us\\age", 'model"', "id"])
leaves = st.none() | st.booleans() | st.integers(-5, 10**6) | texts
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=8,
)
usages = st.fixed_dictionaries(
    {
        "prompt_tokens": st.integers(0, 99),
        "completion_tokens": st.integers(0, 99),
        "total_tokens": st.integers(0, 200),
    }
)
deltas = st.fixed_dictionaries(
    {}, optional={"content": texts, "role": st.just("assistant"), "usage": values, "model": values}
)
choices = st.fixed_dictionaries(
    {"index": st.integers(0, 2), "delta": deltas},
    optional={
        "finish_reason": st.none() | st.just("stop"),
        "logprobs": st.none(),
        "usage": values,
        "model": values,
    },
)
# Chat chunks as servers send them, with usage and model keys nested anywhere.
chunks = st.fixed_dictionaries(
    {"choices": st.lists(choices, max_size=2)},
    optional={
        "id": texts,
        "object": st.just("chat.completion.chunk"),
        "created": st.integers(0, 2**31),
        "model": texts,
        "usage": st.none() | usages,
        "x_groq": st.fixed_dictionaries(
            {}, optional={"usage": st.none() | usages, "id": texts, "model": texts}
        ),
        "obfuscation": texts,
        "provider": values,
    },
)
# Any JSON object, usage and model of any value at the top level or nested.
objects = st.dictionaries(names | st.sampled_from(["choices", "usage", "model"]), values,
                          max_size=5)  # fmt: skip


def written(obj: dict[str, Any], seed: int, spaces: list[str], dense: bool) -> Payload:
    rng = random.Random(seed)
    items = list(obj.items())
    rng.shuffle(items)
    style = Style(rng, spaces, density=0.7 if dense else 0.15, escapes=0.2 if dense else 0.0)
    payload = Payload.write(items, style)
    assert json.loads(payload.encoded()) == obj  # the writer itself
    return payload


# -- one payload ------------------------------------------------------------------------------

NESTED_ONLY = [
    b'{"id":"c","choices":[{"index":0,"delta":{"content":"x"},"usage":null}]}',
    b'{"choices":[],"x_groq":{"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}}',
    b'{"choices":[],"x_groq":{"usage":null}}',
    b'{"id":"c","choices":[{"index":0,"delta":{"usage":null,"model":"m"}}]}',
    b'{"choices":[{"delta":{}, "usage" : null}]}',
    b'{"a":[[{"usage":null}]],"b":"\\"usage","c":{"model":"m"}}',
    b'{"content":"\\"usage\\":null}","choices":[]}',
    b'{"x":{"model":"m"}, "choices":[{"index":0,"delta":{}}]}',
    b'{"choices":[{"index":0,"delta":{},"model":"m"}],"usage_x":null}',
    b'{"choices":[],"x":["model","usage"]}',
]


@pytest.mark.parametrize("payload", NESTED_ONLY)
def test_nested_usage_and_model_are_relayed_untouched(payload: bytes) -> None:
    assert json.loads(payload)  # valid JSON
    assert StreamEditor(strip_usage=True, model=ALIAS).payload(payload) == payload
    assert edit_response(payload, ALIAS) == payload
    assert member_spans(payload, "usage") == member_spans(payload, "model") == []
    assert remove_member(payload, "usage") == payload
    assert replace_member(payload, "model", b'"x"') == payload


@pytest.mark.parametrize(
    ("payload", "stripped"),
    [
        # The top-level member goes, the nested one stays.
        (b'{"choices":[{"index":0,"delta":{},"usage":null}],"usage":null}',
         b'{"choices":[{"index":0,"delta":{},"usage":null}]}'),
        (b'{"usage":null,"choices":[{"index":0,"delta":{"usage":null}}]}',
         b'{"choices":[{"index":0,"delta":{"usage":null}}]}'),
        (b'{"choices":[{"index":0}],"x_groq":{"usage":{"total_tokens":3}},"usage":{"total_tokens":3}}',
         b'{"choices":[{"index":0}],"x_groq":{"usage":{"total_tokens":3}}}'),
        # Escaped spellings of the key, duplicated keys: every top-level one goes.
        (b'{"choices":[{"index":0}], "us\\u0061ge" : null}', b'{"choices":[{"index":0}]}'),
        (b'{"usage":null,"choices":[{"index":0}],"usage":null}', b'{"choices":[{"index":0}]}'),
        (b'{"choices":[{"index":0}],"usage":null,"us\\u0061ge":null, "x": 1}',
         b'{"choices":[{"index":0}], "x": 1}'),
        # A backslash before the quote: not a key of that name.
        (b'{"a":"\\"usage","choices":[{"index":0}],"usage":null}',
         b'{"a":"\\"usage","choices":[{"index":0}]}'),
    ],
)  # fmt: skip
def test_top_level_usage_removed_nested_kept(payload: bytes, stripped: bytes) -> None:
    assert StreamEditor(strip_usage=True, model=None).payload(payload) == stripped
    assert remove_member(payload, "usage") == stripped


def test_model_replaced_only_at_the_top_level() -> None:
    nested = b'{"choices":[{"index":0,"delta":{"model":"n"},"model":"n"}],'
    payload = nested + b'"model":"real","x":{"model":"n"}}'
    shown = nested + b'"model":"alias","x":{"model":"n"}}'
    assert StreamEditor(strip_usage=False, model="alias").payload(payload) == shown
    assert edit_response(payload, "alias") == shown
    first = b'{"model":"real","x":{"model":"n"},"choices":[]}'
    assert edit_response(first, "alias") == b'{"model":"alias","x":{"model":"n"},"choices":[]}'
    spelled = b'{"m\\u006Fdel":"real","choices":[{"model":"n"}]}'
    assert edit_response(spelled, "alias") == b'{"m\\u006Fdel":"alias","choices":[{"model":"n"}]}'
    value = spelled.index(b'"real"')
    assert member_span(spelled, "model") == (1, value, value + len(b'"real"'))


@settings(max_examples=400, deadline=None)
@given(
    obj=chunks | objects,
    seed=st.integers(0, 2**32),
    dense=st.booleans(),
    strip=st.booleans(),
    alias=st.booleans(),
)
@example(obj={"choices": [{"index": 0, "delta": {"content": "x"}, "usage": None}], "id": "c"},
         seed=0, dense=False, strip=True, alias=True)  # fmt: skip
@example(obj={"choices": [], "x_groq": {"usage": {"total_tokens": 3}}}, seed=0, dense=False,
         strip=True, alias=True)  # fmt: skip
def test_editor_differential(
    obj: dict[str, Any], seed: int, dense: bool, strip: bool, alias: bool
) -> None:
    payload = written(obj, seed, ANY_SPACE, dense)
    data = payload.encoded()
    model = ALIAS if alias else None
    assert StreamEditor(strip_usage=strip, model=model).payload(data) == expected(
        payload, strip, model
    )
    raw = msgspec.json.decode(data, type=dict[str, msgspec.Raw])
    for name in ("usage", "model", "choices"):
        spans = [payload.span(name)] if name in obj else []
        assert member_spans(data, name) == spans
        assert member_spans(data, name, raw.get(name)) == spans  # with the decoded value
        assert splice._walk(data, name) == spans  # the general path, on every payload
    if alias:
        assert edit_response(data, model) == payload.edited(model=model)


# -- regions of several events ----------------------------------------------------------------


ENDINGS = {"lf": ["\n"], "crlf": ["\r\n"], "cr": ["\r"], "mixed": ["\n", "\r\n", "\r"]}


def framed(
    payloads: list[Payload], rng: random.Random, endings: list[str], strip: bool, model: str | None
) -> tuple[list[bytes], bytes]:
    """SSE events around ``payloads`` (comments, ``id``/``event`` lines, ``data:`` with or
    without its space), and what the client must get: the same events edited or dropped."""
    sent, shown = [], []
    for payload in payloads:
        end = rng.choice(endings).encode()
        lines = []
        if rng.random() < 0.3:
            lines.append(b": keep-alive")
        if rng.random() < 0.3:
            lines.append(b"id: %d" % rng.randrange(100))
        if rng.random() < 0.2:
            lines.append(b"event: message")
        position = rng.randint(0, len(lines))
        prefix = b"data: " if rng.random() < 0.8 else b"data:"
        edited = expected(payload, strip, model)
        event_lines = [*lines[:position], prefix + payload.encoded(), *lines[position:]]
        event = b"".join(line + end for line in event_lines) + end
        sent.append(event)
        if edited is not None:
            event_lines[position] = prefix + edited
            shown.append(b"".join(line + end for line in event_lines) + end)
    done = b"data: [DONE]\n\n"
    return [*sent, done], b"".join(shown) + done


@settings(max_examples=150, deadline=None)
@given(
    objs=st.lists(chunks, min_size=1, max_size=4),
    seed=st.integers(0, 2**32),
    framing=st.sampled_from(["lf", "crlf", "cr", "mixed"]),
    strip=st.booleans(),
)
def test_regions_of_events(objs: list[dict[str, Any]], seed: int, framing: str, strip: bool):
    rng = random.Random(seed)
    payloads = [written(obj, rng.randrange(2**32), LINE_SPACE, rng.random() < 0.5) for obj in objs]
    events, shown = framed(payloads, rng, ENDINGS[framing], strip, ALIAS)
    assert StreamEditor(strip_usage=strip, model=ALIAS).edit(b"".join(events)) == shown


# -- through the gateway on loopback ----------------------------------------------------------


class Replay:
    """An upstream that writes the registered stream of the requested model, piece by piece."""

    def __init__(self) -> None:
        self.streams: dict[str, list[bytes]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        assert body is not None
        writes = self.streams[json.loads(body)["model"]]
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for piece in writes:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class Records:
    def __init__(self) -> None:
        self.records: dict[str, GatewayRecord] = {}
        self.changed = threading.Condition()

    def __call__(self, record: GatewayRecord) -> None:
        with self.changed:
            self.records[record.request_model or ""] = record
            self.changed.notify_all()

    def take(self, model: str) -> GatewayRecord:
        with self.changed:
            assert self.changed.wait_for(lambda: model in self.records, 10), model
            return self.records.pop(model)


def shown_as(name: str) -> str | None:
    return name.removeprefix("shown-") if name.startswith("shown-") else None


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Replay, Records, str]]:
    replay, records = Replay(), Records()
    with ServerThread(replay, name="replay") as upstream:
        app = create_app(
            upstream.url + "/v1",
            # "shown-NAME" is sent upstream as "NAME": the client sees "shown-NAME" in each chunk.
            model_map=shown_as,
            on_complete=records,
        )
        with ServerThread(app, lifespan="on", name="gateway") as gateway:
            yield replay, records, gateway.url + "/v1"


def pieces(events: list[bytes], rng: random.Random, split: str) -> list[bytes]:
    """The upstream's writes: one per event, two per write, all at once, or cut anywhere."""
    if split == "event":
        return events
    if split == "pairs":
        return [b"".join(events[at : at + 2]) for at in range(0, len(events), 2)]
    data = b"".join(events)
    if split == "whole":
        return [data]
    cuts = sorted({rng.randrange(1, len(data)) for _ in range(rng.randint(1, 12))})
    return [data[start:end] for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True)]


counter = iter(range(10**9))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    objs=st.lists(chunks, min_size=1, max_size=4),
    seed=st.integers(0, 2**32),
    framing=st.sampled_from(sorted(ENDINGS)),
    split=st.sampled_from(["event", "pairs", "whole", "random"]),
    strip=st.booleans(),
    mapped=st.booleans(),
)
def test_through_the_gateway(
    served: tuple[Replay, Records, str],
    objs: list[dict[str, Any]],
    seed: int,
    framing: str,
    split: str,
    strip: bool,
    mapped: bool,
) -> None:
    replay, records, url = served
    rng = random.Random(seed)
    name = f"m{next(counter)}"
    requested = f"shown-{name}" if mapped else name
    payloads = [written(obj, rng.randrange(2**32), LINE_SPACE, rng.random() < 0.5) for obj in objs]
    events, shown = framed(payloads, rng, ENDINGS[framing], strip, requested if mapped else None)
    replay.streams[name] = pieces(events, rng, split)
    body: dict[str, Any] = {"model": requested, "messages": [], "stream": True}
    if not strip:
        body["stream_options"] = {"include_usage": True}
    with httpx.stream("POST", url + "/chat/completions", json=body, timeout=10) as response:
        assert response.status_code == 200
        received = b"".join(response.iter_raw())
    assert received == shown
    record = records.take(requested)
    assert record.status == "complete"
