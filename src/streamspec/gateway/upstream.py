"""The upstream side: the request body sent on, the headers kept, the error bodies read.

* :func:`upstream_body`: the client's JSON body with ``model`` replaced and
  ``stream_options.include_usage`` set, every other member kept byte for byte
  (a ``dict[str, msgspec.Raw]`` round trip);
* :func:`relayed_headers`: the upstream response headers the client gets:
  ``x-ratelimit-*``, ``retry-after``, ``retry-after-ms``, ``x-request-id``,
  ``openai-processing-ms``, taken from the raw header bytes; a value outside
  printable ASCII is dropped (never an error);
* :func:`error_message`: the message of an upstream error body
  (:func:`streamspec.http.parse_error_body`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..http import parse_error_body

__all__ = ["RequestHead", "error_message", "relayed_headers", "request_id", "upstream_body"]


class _StreamOptions(msgspec.Struct, gc=False):
    include_usage: Any = None


class RequestHead(msgspec.Struct, gc=False):
    """The request members the gateway reads; the body itself is forwarded."""

    model: Any = None
    stream: Any = False
    stream_options: Any = None

    @property
    def include_usage(self) -> bool:
        options = self.stream_options
        return isinstance(options, dict) and options.get("include_usage") is True


decode_head = msgspec.json.Decoder(RequestHead).decode
_decode_members = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_encode = msgspec.json.encode
_TRUE = msgspec.Raw(b"true")


def upstream_body(body: bytes, head: RequestHead, model: str | None, ask_usage: bool) -> bytes:
    """The body to send upstream: ``model`` set (None: unchanged), usage asked when ``ask_usage``.

    ``body`` is returned as it is when nothing changes.
    """
    change_model = model is not None and model != head.model
    if not change_model and not ask_usage:
        return body
    members = _decode_members(body)
    if change_model:
        members["model"] = msgspec.Raw(_encode(model))
    if ask_usage:
        options = head.stream_options if isinstance(head.stream_options, dict) else {}
        members["stream_options"] = msgspec.Raw(_encode({**options, "include_usage": True}))
    return _encode(members)


_RELAYED = (b"retry-after", b"retry-after-ms", b"x-request-id", b"openai-processing-ms")


def _printable(value: bytes) -> bool:
    return value.isascii() and all(32 <= byte < 127 or byte == 9 for byte in value)


def relayed_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The upstream headers to pass on to the client (names lower-cased)."""
    out: list[tuple[bytes, bytes]] = []
    for name, value in raw:
        lower = name.lower()
        if (lower in _RELAYED or lower.startswith(b"x-ratelimit-")) and _printable(value):
            out.append((lower, value))
    return out


def request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The ``x-request-id`` among relayed headers, if any."""
    for name, value in headers:
        if name == b"x-request-id":
            return value.decode("ascii")
    return None


def error_message(body: bytes, status: int, content_type: str = "") -> str:
    """The message of an upstream error body, whatever its shape (see :mod:`streamspec.http`)."""
    return parse_error_body(body, status=status, content_type=content_type).message or (
        f"upstream HTTP {status}"
    )
