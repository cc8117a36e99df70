"""Byte-level edits of one chunk's JSON payload, never a decode and re-encode.

A relayed chunk keeps every byte the upstream sent (key order, spacing,
escapes, extension members such as ``obfuscation``) except the member being
edited. Two edits exist:

* :func:`replace_member`: ``{"id":"x","model":"real-7b","choices":[]}`` with
  ``model`` set to ``"alias"`` becomes ``{"id":"x","model":"alias","choices":[]}``;
* :func:`remove_member`: ``{"choices":[...],"usage":null,"obfuscation":"Qz"}``
  without ``usage`` becomes ``{"choices":[...],"obfuscation":"Qz"}``.

Only a top-level member is edited. The quoted key (``"usage"``) can only
appear in JSON as a string token, so when the payload holds it exactly once
and the payload's top level has that key, that occurrence is the key: the
fast path is one ``bytes.count`` and one regular-expression match. Otherwise
(the key also nested, or the same text as a string value) the top-level
members are located in order from a ``dict[str, msgspec.Raw]`` decode.
"""

from __future__ import annotations

import re

import msgspec

__all__ = ["member_span", "remove_member", "replace_member"]

_WS = b" \t\r\n"
_COLON = re.compile(rb"[ \t\r\n]*:[ \t\r\n]*")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_decode_members = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode


def _value_end(payload: bytes, start: int) -> int | None:
    """Where the JSON value beginning at ``start`` ends, for the common short values."""
    first = payload[start : start + 1]
    if first == b'"':
        match = _STRING.match(payload, start)
        return match.end() if match else None
    if first == b"n" and payload.startswith(b"null", start):
        return start + 4
    return None


def member_span(payload: bytes, key: str) -> tuple[int, int, int] | None:
    """``(key_start, value_start, value_end)`` of the top-level member ``key``, or None.

    ``payload`` is one JSON object. None when it has no such member (or is
    not valid JSON).
    """
    quoted = msgspec.json.encode(key)
    if payload.count(quoted) == 1:
        start = payload.find(quoted)
        colon = _COLON.match(payload, start + len(quoted))
        if colon is not None:
            value_start = colon.end()
            end = _value_end(payload, value_start)
            if end is not None:
                return start, value_start, end
    return _located(payload, key)


def _located(payload: bytes, key: str) -> tuple[int, int, int] | None:
    """The general path: walk the top-level members in order (their raw values are exact)."""
    try:
        members = _decode_members(payload)
    except msgspec.DecodeError:
        return None
    if key not in members:
        return None
    position = payload.find(b"{") + 1
    for name, raw in members.items():
        quoted = msgspec.json.encode(name)
        start = payload.find(quoted, position)
        if start < 0:  # a key written with escapes: not located
            return None
        colon = _COLON.match(payload, start + len(quoted))
        if colon is None:
            return None
        value_start = colon.end()
        value_end = value_start + len(raw)
        if name == key:
            return start, value_start, value_end
        position = value_end
    return None


def replace_member(payload: bytes, key: str, value: bytes) -> bytes:
    """``payload`` with the value of its top-level ``key`` replaced by the JSON ``value``.

    Unchanged when there is no such member.
    """
    span = member_span(payload, key)
    if span is None:
        return payload
    _, start, end = span
    return payload[:start] + value + payload[end:]


def remove_member(payload: bytes, key: str) -> bytes:
    """``payload`` without its top-level member ``key`` (and the comma that separated it)."""
    span = member_span(payload, key)
    if span is None:
        return payload
    start, _, end = span
    before = start
    while before > 0 and payload[before - 1] in _WS:
        before -= 1
    if before > 0 and payload[before - 1 : before] == b",":
        return payload[: before - 1] + payload[end:]
    # The first member: drop the comma after it instead (and the spaces that follow).
    after = end
    while after < len(payload) and payload[after] in _WS:
        after += 1
    if payload[after : after + 1] == b",":
        after += 1
        while after < len(payload) and payload[after] in _WS:
            after += 1
        return payload[:start] + payload[after:]
    return payload[:start] + payload[end:]  # the only member
