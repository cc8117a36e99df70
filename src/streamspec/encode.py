"""Encoding: typed objects back to SSE bytes, as an OpenAI-compatible server sends them.

* :func:`encode_event` gives one ``data: {json}\\n\\n`` event.
* :func:`encode_done` gives the closing ``data: [DONE]\\n\\n``.
* :func:`encode_error` gives ``data: {"error": {...}}\\n\\n`` (optionally preceded
  by ``event: error``), which the official ``openai`` SDK raises
  :class:`openai.APIError` on.
* :class:`EventEncoder` does the same for a server or proxy that sends many
  events: it reuses one buffer and one :class:`msgspec.json.Encoder`.

Chunks decoded by :class:`streamspec.ChunkDecoder` encode back to equal chunks:
absent fields are :data:`msgspec.UNSET` and stay absent, so nothing is added to
what the server sent (unknown keys the decoder ignored are, of course, gone).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import msgspec
from msgspec import UNSET

from .types.common import ErrorObject

__all__ = ["EventEncoder", "encode_done", "encode_error", "encode_event"]

_DATA = b"data: "
_END = b"\n\n"
_DONE = b"data: [DONE]\n\n"
_ERROR_EVENT = b"event: error\n"


class _WireError(msgspec.Struct, gc=False):
    """The error object as OpenAI sends it: all four keys present, ``null`` when unknown."""

    message: str
    type: str | None
    param: str | None
    code: str | int | None


class _WireErrorEnvelope(msgspec.Struct, gc=False):
    error: _WireError


def _wire_error(error: ErrorObject | str) -> _WireErrorEnvelope:
    if isinstance(error, str):
        return _WireErrorEnvelope(_WireError(error, None, None, None))
    return _WireErrorEnvelope(
        _WireError(
            error.message,
            None if error.type is UNSET else error.type,
            None if error.param is UNSET else error.param,
            None if error.code is UNSET else error.code,
        )
    )


class EventEncoder:
    """Encodes objects as SSE ``data:`` events, reusing one buffer.

    ``obj`` is anything :mod:`msgspec` can encode as JSON: a stream chunk, a
    response, a dict. Each method returns new ``bytes``::

        encoder = EventEncoder()
        encoder.event(chunk)   # b'data: {"id":...}\\n\\n'
        encoder.done()         # b'data: [DONE]\\n\\n'
        encoder.error("boom")  # b'data: {"error":{"message":"boom",...}}\\n\\n'

    Not thread-safe: use one encoder per thread or task.
    """

    __slots__ = ("_buffer", "_encode_into")

    def __init__(self) -> None:
        self._encode_into = msgspec.json.Encoder().encode_into
        self._buffer = bytearray(_DATA)

    def event(self, obj: Any) -> bytes:
        """One ``data: {json}\\n\\n`` event holding ``obj``."""
        buffer = self._buffer
        self._encode_into(obj, buffer, 6)  # keeps the "data: " prefix, overwrites the rest
        buffer += _END
        return bytes(buffer)

    def events(self, objs: Iterable[Any]) -> bytes:
        """Consecutive events for ``objs``, in one ``bytes`` (empty for no objects)."""
        buffer = bytearray()
        encode_into = self._encode_into
        for obj in objs:
            buffer += _DATA
            encode_into(obj, buffer, len(buffer))
            buffer += _END
        return bytes(buffer)

    @staticmethod
    def done() -> bytes:
        """The ``data: [DONE]\\n\\n`` event that ends a stream."""
        return _DONE

    def error(self, error: ErrorObject | str, *, event: bool = False) -> bytes:
        """An error event: ``data: {"error": {...}}\\n\\n``; see :func:`encode_error`."""
        payload = self.event(_wire_error(error))
        return _ERROR_EVENT + payload if event else payload


_local = threading.local()


def _encoder() -> EventEncoder:
    """This thread's shared encoder."""
    try:
        encoder: EventEncoder = _local.encoder
    except AttributeError:
        encoder = _local.encoder = EventEncoder()
    return encoder


def encode_event(obj: Any) -> bytes:
    """Encode ``obj`` (a chunk, or anything msgspec encodes) as ``data: {json}\\n\\n``."""
    return _encoder().event(obj)


def encode_done() -> bytes:
    """Return ``b"data: [DONE]\\n\\n"``, the event that ends a stream."""
    return _DONE


def encode_error(error: ErrorObject | str, *, event: bool = False) -> bytes:
    """Encode an error event the way OpenAI-compatible servers send one mid-stream.

    ``error`` is an :class:`~streamspec.ErrorObject` or a message. The result is
    ``data: {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}\\n\\n``
    (unknown members as ``null``), preceded by ``event: error\\n`` when
    ``event`` is true. The ``openai`` SDK raises :class:`openai.APIError` with
    that message on either form.
    """
    return _encoder().error(error, event=event)
