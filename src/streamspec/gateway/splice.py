"""Byte-level edits of one chunk's JSON payload, never a decode and re-encode.

A relayed chunk keeps every byte the upstream sent (key order, spacing,
escapes, extension members such as ``obfuscation``) except the member being
edited. Two edits exist:

* :func:`replace_member`: ``{"id":"x","model":"real-7b","choices":[]}`` with
  ``model`` set to ``"alias"`` becomes ``{"id":"x","model":"alias","choices":[]}``;
* :func:`remove_member`: ``{"choices":[...],"usage":null,"obfuscation":"Qz"}``
  without ``usage`` becomes ``{"choices":[...],"obfuscation":"Qz"}``.

Only a *top-level* member is edited: ``usage`` inside a choice or inside a
vendor object (``"x_groq": {"usage": {...}}``) is relayed untouched.

How a member is found (the payload is one valid JSON object):

1. **One spelling, proven at the top level.** When the quoted key
   (``"usage"``) occurs once in the payload and no other spelling of it (with
   ``\\uXXXX`` escapes) occurs at all, that occurrence is the only candidate.
   Not preceded by a backslash, it is a string token (a ``"`` closing a string
   cannot be followed by a letter); followed by ``:``, it is a key, so an
   object encloses it, opened by a ``{`` before it and closed by a ``}`` after
   its value, both outside strings. When the last ``{`` before the key is the
   payload's first byte (bar whitespace), or the first ``}`` after its value
   is the payload's last, that object is the payload itself: the member is at
   the top level. A bracket inside a string can only make such a test fail,
   never pass wrongly. A caller that decoded the payload and knows the top
   level has the key passes the raw value and needs no such proof.
2. **Otherwise**, the payload's top level is walked token by token (strings,
   brackets, commas and colons; a string's escapes never confuse it), which
   finds every top-level member of that name, escaped spellings and
   duplicated keys included.
"""

from __future__ import annotations

import functools
import re

import msgspec

__all__ = [
    "Span",
    "cut_member",
    "has_other_spelling",
    "member_span",
    "member_spans",
    "remove_member",
    "replace_member",
]

_WS = b" \t\r\n"
_COLON = re.compile(rb"[ \t\r\n]*:[ \t\r\n]*")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_SCALAR = re.compile(rb"null|true|false|-?[0-9][0-9.eE+-]*")
# The tokens that give a JSON text its structure; numbers and literals lie between them.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\],:]', re.DOTALL)
_BACKSLASH = 92
_decode_object = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_decode_str = msgspec.json.Decoder(str).decode

Span = tuple[int, int, int]
"""``(key_start, value_start, value_end)``: offsets of one member in the payload."""


@functools.lru_cache(maxsize=16)
def _spellings(key: str) -> re.Pattern[bytes]:
    """Every way JSON writes ``key`` as a string: each character as itself or ``\\uXXXX``."""
    parts = []
    for char in key:
        if not (char.isascii() and char.isprintable()) or char in '"\\':
            raise ValueError(f"member names are printable ASCII without quotes, not {key!r}")
        code = "".join(
            f"[{digit.lower()}{digit.upper()}]" if digit.isalpha() else digit
            for digit in f"{ord(char):04x}"
        )
        parts.append(f"(?:{re.escape(char)}|\\\\u{code})")
    return re.compile(('"' + "".join(parts) + '"').encode())


def has_other_spelling(payload: bytes, key: str) -> bool:
    """Whether ``payload`` may hold ``key`` written with ``\\uXXXX`` escapes (a string token)."""
    if b"\\u" not in payload:
        return False
    quoted = msgspec.json.encode(key)
    return any(match.group() != quoted for match in _spellings(key).finditer(payload))


def _value_end(payload: bytes, start: int) -> int | None:
    """Where a string, number or literal beginning at ``start`` ends (None: an object or array)."""
    first = payload[start : start + 1]
    if first == b'"':
        match = _STRING.match(payload, start)
        return match.end() if match else None
    if first in (b"{", b"["):
        return None
    match = _SCALAR.match(payload, start)
    return match.end() if match else None


def _single(payload: bytes, key: str, value: msgspec.Raw | None) -> list[Span] | None:
    """Step 1 of the module docstring: the spans (none or one) when proven, else None."""
    quoted = msgspec.json.encode(key)
    at = payload.find(quoted)
    if has_other_spelling(payload, key):
        return None
    if at < 0:
        return []
    if payload.find(quoted, at + len(quoted)) >= 0 or at == 0 or payload[at - 1] == _BACKSLASH:
        return None
    colon = _COLON.match(payload, at + len(quoted))
    if colon is None:  # the only spelling is a string value, not a key
        return [] if value is None else None
    start = colon.end()
    if value is not None:
        # The caller decoded a top-level member of this name, and this is its only spelling.
        known = start + len(value)
        return [(at, start, known)] if payload[start:known] == bytes(value) else None
    end = _value_end(payload, start)
    if end is None:
        return None
    # The key's own object is the top-level one when it opens at the payload's first "{"
    # (nothing but whitespace before it) or closes at its last "}" (whitespace after it).
    opening = payload.find(b"{")
    if payload.rfind(b"{", 0, at) == opening and not payload[:opening].strip(_WS):
        return [(at, start, end)]
    closing = payload.rfind(b"}")
    if payload.find(b"}", end) == closing and not payload[closing + 1 :].strip(_WS):
        return [(at, start, end)]
    return None


def _walk(payload: bytes, key: str) -> list[Span]:
    """Step 2 of the module docstring: every top-level member named ``key``, in order."""
    try:
        _decode_object(payload)  # a JSON object, or nothing is edited
    except msgspec.DecodeError:
        return []
    quoted = msgspec.json.encode(key)
    spans: list[Span] = []
    depth = 0
    expect_key = False  # the next string at depth 1 is a key
    named = -1  # where the key of the member being read starts, when it is ``key``
    value_start = 0
    for token in _TOKEN.finditer(payload):
        at = token.start()
        byte = payload[at]
        if byte == 34:  # a string
            if depth == 1 and expect_key:
                expect_key = False
                text = token.group()
                if text == quoted or (_BACKSLASH in text and _decode_str(text) == key):
                    named = at
        elif byte == 58:  # ':'
            if depth == 1 and named >= 0:
                value_start = token.end()
                while payload[value_start] in _WS:
                    value_start += 1
        elif byte == 44:  # ','
            if depth == 1:
                if named >= 0:
                    spans.append((named, value_start, len(payload[:at].rstrip(_WS))))
                    named = -1
                expect_key = True
        elif byte == 123 or byte == 91:  # '{' '['
            depth += 1
            expect_key = depth == 1
        else:  # '}' ']'
            if depth == 1 and named >= 0:
                spans.append((named, value_start, len(payload[:at].rstrip(_WS))))
                named = -1
            depth -= 1
    return spans


def member_spans(payload: bytes, key: str, value: msgspec.Raw | None = None) -> list[Span]:
    """Every top-level member ``key`` of the JSON object ``payload``, as :data:`Span`, in order.

    Usually none or one; a payload with the key twice at the top level gives
    both. ``value``: the member's raw value when the caller decoded the
    payload and found the member at its top level (it spares the depth proof).
    Empty when there is no such member or ``payload`` is not a JSON object.
    """
    spans = _single(payload, key, value)
    return spans if spans is not None else _walk(payload, key)


def member_span(payload: bytes, key: str) -> Span | None:
    """The top-level member ``key`` (the last one, which JSON parsers keep), or None."""
    spans = member_spans(payload, key)
    return spans[-1] if spans else None


def replace_member(
    payload: bytes, key: str, value: bytes, decoded: msgspec.Raw | None = None
) -> bytes:
    """``payload`` with the value of its top-level ``key`` replaced by the JSON ``value``.

    Unchanged when there is no such member. ``decoded``: see :func:`member_spans`.
    """
    for _, start, end in reversed(member_spans(payload, key, decoded)):
        payload = payload[:start] + value + payload[end:]
    return payload


def remove_member(payload: bytes, key: str, decoded: msgspec.Raw | None = None) -> bytes:
    """``payload`` without its top-level member ``key`` (and the comma that separated it).

    ``decoded``: see :func:`member_spans`.
    """
    for start, _, end in reversed(member_spans(payload, key, decoded)):
        payload = cut_member(payload, start, end)
    return payload


def cut_member(payload: bytes, start: int, end: int) -> bytes:
    """``payload`` without the member from ``start`` (its key) to ``end`` (its value's end)."""
    before = start
    while before > 0 and payload[before - 1] in _WS:
        before -= 1
    if before > 0 and payload[before - 1] == 44:  # the comma before it
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
