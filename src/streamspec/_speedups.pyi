from collections.abc import Callable, Iterable, Iterator
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
    metered_chars: int
    done_ns: int
    def feed(self, data: bytes) -> list[Any]: ...
    metered_tokens: int
    def set_meter(
        self, note: Callable[[int, Any], object] | None, clock: Callable[[], int] | None = None, /
    ) -> None: ...
    def meter_times(self) -> list[int]: ...
    def meter_itl(
        self, late: list[int], ranks: tuple[int, ...], /
    ) -> tuple[int, int, int, tuple[int, ...]] | None: ...

def bind_methods(cls: type, /) -> None: ...
def split_events(
    data: bytes, start: int, head: bytes = ..., /
) -> tuple[list[bytes], int] | None: ...

class ChunkIterator(Iterator[Any]):
    def __init__(
        self, decoder: Any, source: Iterable[Any], error_type: type[BaseException], /
    ) -> None: ...
    def __next__(self) -> Any: ...
    def close(self) -> None: ...
