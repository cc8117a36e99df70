"""The decoder's two hot paths, for tests that run on both in one process.

``PATHS`` maps a name to a decoder class: ``"python"`` is always the pure-Python
hot path (:class:`streamspec.decoder.PyChunkDecoder`), ``"c"`` the compiled one
when it is built. Builds of the accelerator that predate two of the decoder's
rules (every exception from decoding goes to the general path; the '"error"'
probe of a type without an ``error`` field looks across the join of two reads)
are detected here, so the rows that need them can say why they are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from streamspec import ChunkDecoder, Error, StreamError, _fastpath
from streamspec.decoder import PyChunkDecoder

__all__ = ["PATHS", "compiled_lets_out", "compiled_misses_a_cut_error_key"]

PATHS: dict[str, Callable[..., Any]] = {"python": PyChunkDecoder}
if _fastpath.IMPLEMENTATION == "c":
    PATHS["c"] = ChunkDecoder


class _Slim(msgspec.Struct):
    choices: list[Any] = []


def compiled_lets_out(raw: bytes, type: Any = None) -> bool:
    """Whether this build of the compiled hot path lets an exception from decoding escape."""
    if "c" not in PATHS:
        return False
    decoder = ChunkDecoder() if type is None else ChunkDecoder(type)
    try:
        decoder.feed(b'data: {"choices": []}\n\n')  # past the stream start
        decoder.feed(raw)
    except Error:
        return False
    except Exception:
        return True
    return False


def compiled_misses_a_cut_error_key() -> bool:
    """Whether this build of the compiled hot path misses '"error"' cut across two reads."""
    if "c" not in PATHS:
        return False
    decoder = ChunkDecoder(_Slim)
    decoder.feed(b'data: {"choices": []}\n\n')
    decoder.feed(b'data: {"err')
    try:
        decoder.feed(b'or": "x"}\n\n')
    except StreamError:
        return False
    return True
