"""What the gateway changes in a relayed stream, event by event, in the bytes.

The upstream is asked for usage on every streamed request
(``"stream_options": {"include_usage": true}``). When the client did not ask
for it, :class:`StreamEditor` takes out what that added, so the client gets
what it would have got without the gateway:

* the usage-only chunk (``"choices": []`` and a non-null ``usage``) is
  dropped, event and all;
* a top-level ``usage`` member of any other chunk (``"usage": null`` on each
  chunk, from OpenAI) is removed.

With a model to show (model mapping), the top-level ``model`` of each chunk is
replaced. Every other byte is relayed as the upstream sent it: comments,
``[DONE]``, error events, events whose data spans several lines, and the
members of the chunk that are not edited (see :mod:`streamspec.gateway.splice`).
"""

from __future__ import annotations

import re

import msgspec
from msgspec import UNSET, UnsetType

from .splice import has_other_spelling, remove_member, replace_member

__all__ = ["StreamEditor", "edit_response"]

_USAGE_KEY = b'"usage"'
_MODEL_KEY = b'"model"'
_LINE = re.compile(rb"\r\n|\r|\n")
_NULL = b"null"


class _Shape(msgspec.Struct, gc=False):
    """The top-level members an edit looks at, as raw JSON."""

    choices: msgspec.Raw | UnsetType = UNSET
    usage: msgspec.Raw | UnsetType = UNSET
    model: msgspec.Raw | UnsetType = UNSET


_decode_shape = msgspec.json.Decoder(_Shape).decode
_EMPTY_LIST = re.compile(rb"\[[ \t\r\n]*\]")


class StreamEditor:
    """Edits complete SSE events: strips unrequested usage, shows another model.

    ``strip_usage``: the client did not ask for usage. ``model``: the value the
    client sees in ``model`` (None leaves it alone). :meth:`edit` takes bytes
    that end on an event boundary and returns the bytes to relay.
    """

    __slots__ = ("model", "strip_usage")

    def __init__(self, *, strip_usage: bool, model: str | None) -> None:
        self.strip_usage = strip_usage
        self.model = msgspec.json.encode(model) if model is not None else None

    @property
    def active(self) -> bool:
        """Whether anything is edited at all (otherwise bytes pass through)."""
        return self.strip_usage or self.model is not None

    def payload(self, payload: bytes) -> bytes | None:
        """One event's data: the edited payload, or None to drop the event.

        Only top-level members are edited (a ``usage`` or ``model`` key inside
        a choice or a vendor object is relayed as it came). The usual chunk is
        edited without decoding anything: OpenAI's ``,"usage":null`` is the
        only ``"usage"`` in the payload and the first ``}`` after it is the
        payload's last byte, which proves it is a member of the top-level
        object; its ``"model":"..."`` is the only ``"model"`` and the last
        ``{`` before it is the payload's first byte. See
        :mod:`streamspec.gateway.splice` for why that is a proof. Any other
        shape is decoded into :class:`_Shape` first, which says whether the
        top level has the member at all.
        """
        model = self.model
        # Without a backslash in the payload, no key is spelled with escapes (one memchr).
        escapes = 92 in payload  # a backslash
        if self.strip_usage:
            at = payload.find(_USAGE_KEY)
            if at >= 0:
                end = at + 12
                if not (
                    payload[at - 1] == 44  # a comma before it: the quote opens a key
                    and payload.startswith(b":null", at + 7)  # compact JSON, as OpenAI writes it
                    # Its object closes at the payload's last byte: it is the top-level object.
                    and payload.find(b"}", end) == len(payload) - 1
                    and payload.find(_USAGE_KEY, end) < 0
                    and not (escapes and has_other_spelling(payload, "usage"))
                ):
                    return self._decoded(payload)
                payload = payload[: at - 1] + payload[end:]
            elif escapes and has_other_spelling(payload, "usage"):
                return self._decoded(payload)
        if model is None:
            return payload
        at = payload.find(_MODEL_KEY)
        if at < 0:
            if escapes and has_other_spelling(payload, "model"):
                return self._decoded(payload)
            return payload
        if payload.startswith(b':"', at + 7):  # compact JSON
            close = payload.find(b'"', at + 9)
            if (
                close > 0
                # Its object opens at the payload's first byte: it is the top-level object.
                and payload.rfind(b"{", 0, at) == 0
                and payload.find(_MODEL_KEY, close) < 0
                and not (
                    escapes
                    and (
                        payload[at - 1] == 92  # the quote is escaped: not a key
                        or payload.find(b"\\", at + 9, close) >= 0  # the value has escapes
                        or has_other_spelling(payload, "model")
                    )
                )
            ):
                return payload[: at + 8] + model + payload[close + 1 :]
        return self._decoded(payload)

    def _decoded(self, payload: bytes) -> bytes | None:
        """:meth:`payload` for any shape: the top-level members are decoded first."""
        try:
            shape = _decode_shape(payload)
        except msgspec.DecodeError:  # not a chunk: relayed as it is
            return payload
        usage = shape.usage
        if self.strip_usage and usage is not UNSET:
            choices = shape.choices
            if bytes(usage) != _NULL and (
                choices is UNSET or _EMPTY_LIST.fullmatch(bytes(choices)) is not None
            ):
                return None  # the usage-only chunk
            payload = remove_member(payload, "usage", usage)
        model = self.model
        if model is not None and shape.model is not UNSET:
            payload = replace_member(payload, "model", model, shape.model)
        return payload

    def edit(self, region: bytes) -> bytes:
        """Edit the complete events in ``region`` (it ends on an event boundary)."""
        if (
            region[:5] == b"data:"
            and region.find(b"\n") == len(region) - 2
            and region[-1] == 10
            and 13 not in region  # no CR: the line ends are LF
        ):
            # The usual read: one event of one data line.
            start = 6 if region[5] == 32 else 5
            payload = region[start:-2]
            new = self.payload(payload)
            if new is payload:
                return region
            return region[:start] + new + b"\n\n" if new is not None else b""
        return self._events(region)

    def _events(self, region: bytes) -> bytes:
        """:meth:`edit` for any number of events, of any shape."""
        if b"\r" in region:
            return self._general(region)
        parts: list[bytes | None] = list(region.split(b"\n\n"))
        changed = False
        for position, part in enumerate(parts):
            assert part is not None
            if part[:5] != b"data:" or b"\n" in part:
                if b"data:" in part:
                    edited = self._block(part)
                    if edited is not part:
                        parts[position] = edited
                        changed = True
                continue
            start = 6 if part[5:6] == b" " else 5
            payload = part[start:]
            new = self.payload(payload)
            if new is payload:
                continue
            changed = True
            parts[position] = part[:start] + new if new is not None else None
        if not changed:
            return region
        # A dropped event takes its blank line with it.
        return b"\n\n".join(part for part in parts if part is not None)

    def _block(self, block: bytes) -> bytes | None:
        """An event of several LF-separated lines (comments, ``event:``, ``id:``...)."""
        lines = block.split(b"\n")
        data = [i for i, line in enumerate(lines) if line[:5] == b"data:"]
        if len(data) != 1:
            return block  # data spread over several lines: relayed as it is
        line = lines[data[0]]
        start = 6 if line[5:6] == b" " else 5
        payload = line[start:]
        new = self.payload(payload)
        if new is payload:
            return block
        if new is None:
            return None
        lines[data[0]] = line[:start] + new
        return b"\n".join(lines)

    def _general(self, region: bytes) -> bytes:
        """Any line endings (CR, CRLF): events are runs of lines ended by an empty line."""
        out: list[bytes] = []
        event: list[bytes] = []  # lines with their endings
        data: list[int] = []
        position = 0
        changed = False
        for match in _LINE.finditer(region):
            line = region[position : match.start()]
            event.append(region[position : match.end()])
            position = match.end()
            if line:
                if line[:5] == b"data:":
                    data.append(len(event) - 1)
                continue
            # An empty line ends the event.
            if len(data) == 1:
                index = data[0]
                raw = event[index]
                body = _LINE.split(raw, maxsplit=1)[0]
                start = 6 if body[5:6] == b" " else 5
                payload = body[start:]
                new = self.payload(payload)
                if new is not payload:
                    changed = True
                    if new is None:
                        event = []
                    else:
                        event[index] = body[:start] + new + raw[len(body) :]
            out.extend(event)
            event, data = [], []
        out.extend(event)
        out.append(region[position:])
        return b"".join(out) if changed else region


def edit_response(body: bytes, model: str | None) -> bytes:
    """A non-streamed JSON response with its top-level ``model`` replaced (None: unchanged).

    Every other byte is kept; a ``model`` nested in the response is left alone.
    """
    if model is None:
        return body
    try:
        shape = _decode_shape(body)
    except msgspec.DecodeError:
        return body
    if shape.model is UNSET:
        return body
    return replace_member(body, "model", msgspec.json.encode(model), shape.model)
