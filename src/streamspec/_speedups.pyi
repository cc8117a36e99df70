from collections.abc import Callable
from typing import Any

class DecoderCore:
    _decode: Callable[[Any], Any]
    _error_of: Callable[[Any], Any]
    _shortcut_limit: int
    _tail: bytearray
    max_event_size: int
    _consumed: int
    _events: int
    _has_error_field: bool
    def feed(self, data: bytes) -> list[Any]: ...

def split_events(
    data: bytes, start: int, head: bytes = ..., /
) -> tuple[list[bytes], int] | None: ...
