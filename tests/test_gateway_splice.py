"""The gateway's byte-level edits: the bytes of the edited object, nothing else moved."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamspec.gateway.edit import StreamEditor, edit_response
from streamspec.gateway.splice import member_span, remove_member, replace_member


def dumps(obj: Any, spaced: bool = False) -> bytes:
    separators = (", ", ": ") if spaced else (",", ":")
    return json.dumps(obj, separators=separators, ensure_ascii=False).encode()


def event(obj: Any) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"


CHUNK = {"id": "c", "model": "real", "choices": [{"index": 0, "delta": {"content": "usage"}}],
         "usage": None, "obfuscation": "Qz"}  # fmt: skip


def without(obj: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != key}


@pytest.mark.parametrize("spaced", [False, True])
@pytest.mark.parametrize("position", [0, 2, 4])
def test_remove_member_anywhere(spaced: bool, position: int) -> None:
    items = list(without(CHUNK, "usage").items())
    items.insert(position, ("usage", {"prompt_tokens": 1, "nested": {"usage": None}}))
    obj = dict(items)
    assert remove_member(dumps(obj, spaced), "usage") == dumps(without(obj, "usage"), spaced)


def test_remove_only_member_and_absent_member() -> None:
    assert remove_member(b'{"usage":null}', "usage") == b"{}"
    assert remove_member(b'{"a":"usage"}', "usage") == b'{"a":"usage"}'


def test_nested_key_is_never_taken_for_the_top_level() -> None:
    payload = dumps({"x_groq": {"usage": {"total_tokens": 3}}, "model": "m"})
    assert member_span(payload, "usage") is None
    assert remove_member(payload, "usage") == payload


def test_replace_member_keeps_escapes_around() -> None:
    obj = {"model": 'a"b\\c', "content": "\u00e9\u2713", "obfuscation": "x"}
    payload = dumps(obj)
    assert replace_member(payload, "model", b'"alias"') == dumps({**obj, "model": "alias"})


keys = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=6)
values = st.recursive(
    st.none() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None)
@given(
    extra=st.dictionaries(keys, values, max_size=5),
    usage=st.none() | st.fixed_dictionaries({"total_tokens": st.integers(0, 99)}),
    choices=st.booleans(),
    spaced=st.booleans(),
    order=st.randoms(use_true_random=False),
)
def test_editor_equals_encoding_the_edited_chunk(
    extra: dict[str, Any], usage: Any, choices: bool, spaced: bool, order: Any
) -> None:
    chunk: dict[str, Any] = {k: v for k, v in extra.items() if k not in ("usage", "model")}
    chunk["model"] = "real"
    chunk["choices"] = [{"index": 0, "delta": {"content": "usage"}}] if choices else []
    chunk["usage"] = usage
    items = list(chunk.items())
    order.shuffle(items)
    chunk = dict(items)
    payload = dumps(chunk, spaced)
    editor = StreamEditor(strip_usage=True, model="alias")
    edited = editor.payload(payload)
    if usage is not None and not choices:
        assert edited is None  # the usage-only chunk
        return
    assert edited == dumps({**without(chunk, "usage"), "model": "alias"}, spaced)
    assert StreamEditor(strip_usage=False, model=None).payload(payload) is payload


def test_edit_region_of_several_events() -> None:
    usage_chunk = {"id": "c", "model": "real", "choices": [], "usage": {"total_tokens": 3}}
    region = (
        b": keep-alive\n\n" + event(CHUNK) + b"event: message\nid: 7\n" + event(CHUNK)
        + event(usage_chunk) + b"data: [DONE]\n\n"
    )  # fmt: skip
    edited = StreamEditor(strip_usage=True, model="alias").edit(region)
    shown = event({**without(CHUNK, "usage"), "model": "alias"})
    assert edited == b": keep-alive\n\n" + shown + b"event: message\nid: 7\n" + shown + (
        b"data: [DONE]\n\n")  # fmt: skip


def test_edit_crlf_region() -> None:
    usage_chunk = {"choices": [], "usage": {"total_tokens": 3}}
    region = (event(CHUNK) + event(usage_chunk) + b"data: [DONE]\n\n").replace(b"\n", b"\r\n")
    edited = StreamEditor(strip_usage=True, model=None).edit(region)
    assert edited == (event(without(CHUNK, "usage")) + b"data: [DONE]\n\n").replace(b"\n", b"\r\n")


def test_nothing_to_edit_is_the_same_object() -> None:
    region = event(without(CHUNK, "usage")) + b"data: [DONE]\n\n"
    assert StreamEditor(strip_usage=True, model=None).edit(region) is region
    assert edit_response(region, None) is region
