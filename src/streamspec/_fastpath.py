"""The chunk decoder's fast paths: runs of data-only events, framed at C speed.

What they accept, and nothing else::

    data:<payload>\\n\\n          (the space after "data:" is kept in the payload;
    data:<payload>\\n\\n           msgspec skips it as JSON whitespace)

with no CR anywhere and no LF inside a payload. Whatever else a stream holds
(comments, ``event:``/``id:`` lines, multi-line data, CR line endings, a BOM,
blank-line runs) is left to :class:`streamspec.ChunkDecoder`'s general path,
which runs the WHATWG algorithm from the last clean event boundary on.

Two pieces, each in two interchangeable implementations with the same
contract: the compiled module ``streamspec._speedups`` when it was built, and
the pure-Python code below otherwise (or when ``STREAMSPEC_PURE_PYTHON=1``):

* ``DecoderCore``: the base class of ``ChunkDecoder``; its ``feed()`` decodes a
  read holding exactly one such event (a live socket's typical read) and
  otherwise calls ``self._feed()``. The compiled one also handles, in fast
  mode, any read without CR whose events are all data-only, including the
  unfinished event it completes; whenever it cannot, it hands the read to
  ``self._feed()`` with nothing changed.
* ``split_events(data, start, head=b"")``: cuts ``head + data[start:]`` into
  the payloads of consecutive such events, returning ``(payloads, stop)``
  where ``stop`` is where in ``data`` the last complete event ends, or
  ``None`` as soon as a line is anything else. ``head`` is the beginning of an
  event whose end (its blank line) is in ``data``; it is joined to its end
  without copying the rest of ``data``. Payloads exclude ``data:``; they may
  keep the LF that ends their line.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from io import BytesIO
from itertools import repeat
from operator import is_
from typing import TYPE_CHECKING, Any

import msgspec

__all__ = ["IMPLEMENTATION", "DecoderCore", "split_events"]

PREFIX = b"data:"
ERROR_KEY = b'"error"'

SplitEvents = Callable[[bytes, int, bytes], "tuple[list[bytes], int] | None"]


class PyDecoderCore:
    """Pure-Python twin of ``streamspec._speedups.DecoderCore``."""

    _decode: Callable[[Any], Any]
    _error_of: Callable[[Any], Any]
    _shortcut_limit: int
    _tail: bytearray
    max_event_size: int
    _consumed: int
    _events: int
    _has_error_field: bool

    def feed(self, data: bytes) -> list[Any]:
        """Decode the next bytes of the stream; return the chunks they complete."""
        if len(data) <= self._shortcut_limit and not self._tail:
            # One complete data-only event, "data:<payload>\n\n": each test is
            # one C call (partition and "in" with an int run memchr).
            line, _, rest = data.partition(b"\n")
            if (
                rest == b"\n"
                and 13 not in line
                and (self._has_error_field or line.find(ERROR_KEY) < 0)
            ):
                payload = line.removeprefix(PREFIX)
                if payload is not line:
                    try:
                        chunk = self._decode(payload)
                    except (msgspec.DecodeError, UnicodeDecodeError):
                        pass  # [DONE], an error payload or bad data: the general path says
                    else:
                        if not self._error_of(chunk):
                            self._consumed += len(data)
                            self._events += 1
                            return [chunk]
        return self._feed(data)

    def _feed(self, data: bytes) -> list[Any]:  # pragma: no cover - ChunkDecoder defines it
        raise NotImplementedError


def py_split_events(data: bytes, start: int, head: bytes = b"") -> tuple[list[bytes], int] | None:
    """Pure-Python twin of ``streamspec._speedups.split_events``.

    ``BytesIO.readlines()`` cuts at every LF with memchr, giving alternating
    ``b"data:<payload>\\n"`` and ``b"\\n"`` lines; an odd line out at the end is
    the event still arriving.
    """
    payloads: list[bytes] = []
    if head:  # the event head begins ends at the first blank line, maybe across the join
        if head[-1:] == b"\n" == data[start : start + 1]:
            end = start + 1
        else:
            end = data.find(b"\n\n", start) + 2
            if end < 2:
                return None
        first = _split(head + data[start:end], 0)
        if first is None or first[1] != len(head) + end - start:
            return None
        payloads, start = first[0], end
    rest = _split(data, start)
    if rest is None:
        return None
    return payloads + rest[0], rest[1]


def _split(data: bytes, start: int) -> tuple[list[bytes], int] | None:
    reader = BytesIO(data)  # shares data's memory: no copy
    reader.seek(start)
    lines = reader.readlines()
    stop = len(data) - len(lines.pop()) if len(lines) & 1 else len(data)
    blanks = lines[1::2]
    data_lines = lines[0::2]
    payloads = list(map(bytes.removeprefix, data_lines, repeat(PREFIX)))
    # One-byte bytes objects are shared, so count() compares identities; a
    # line that lacked the prefix comes back from removeprefix() as itself.
    if blanks.count(b"\n") != len(blanks) or any(map(is_, payloads, data_lines)):
        return None
    return payloads, stop


def _load() -> tuple[Any, SplitEvents, str]:
    if not os.environ.get("STREAMSPEC_PURE_PYTHON"):
        try:
            from . import _speedups  # type: ignore[attr-defined,unused-ignore]
        except ImportError:
            pass
        else:
            return _speedups.DecoderCore, _speedups.split_events, "c"
    return PyDecoderCore, py_split_events, "python"


if TYPE_CHECKING:
    DecoderCore = PyDecoderCore
    split_events: SplitEvents = py_split_events
    IMPLEMENTATION: str = "python"
else:
    DecoderCore, split_events, IMPLEMENTATION = _load()
