"""A dropped StreamMeter is freed by reference counting alone, never left to the cycle collector.

A load generator makes one meter per request, thousands a second: a meter in
a reference cycle lives on, with its decoder and buffers, until the cycle
collector runs (and makes it pause). Each case meters a stream (chat or
legacy completions, decoded by the compiled or the pure-Python hot path, to
its end, to an error, cut, failed by the caller, or through ``iter()`` and
``aiter()``) with the collector disabled, drops the meter and checks that
it, and an object only its decoder refers to, are gone.
"""

from __future__ import annotations

import contextlib
import gc
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any

import pytest

import streamspec.metrics
from paths import PATHS
from streamspec import Error
from streamspec.load.records import record_from_meter
from streamspec.metrics import StreamMeter, StreamMetrics
from streamspec.salvage import SalvageNote
from streamspec.samples import sample_stream

LEGACY = (Path(__file__).resolve().parent.parent / "fixtures" / "streams" / "completions").joinpath(
    "vllm_completions.sse"
)
STREAMS = {"chat": sample_stream("openai_text"), "completions": LEGACY.read_bytes()}
BAD_JSON = b"data: {not json\n\n"
SERVER_ERROR = b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'


class Listener:
    """An ``on_salvage`` callback: an object that only the meter's decoder refers to."""

    def __call__(self, note: SalvageNote) -> None:
        pass


def events(data: bytes) -> list[bytes]:
    """One read per SSE event."""
    return [event + b"\n\n" for event in data.split(b"\n\n") if event.strip()]


def fed(meter: StreamMeter, reads: list[bytes]) -> None:
    for read in reads:
        with contextlib.suppress(Error):  # recorded by the meter; a reader may go on
            meter.feed(read)


def closed(meter: StreamMeter) -> None:
    with contextlib.suppress(Error):
        meter.close()


def complete(meter: StreamMeter, data: bytes) -> None:
    fed(meter, events(data))
    closed(meter)


def server_error(meter: StreamMeter, data: bytes) -> None:
    fed(meter, [*events(data)[:3], SERVER_ERROR])
    closed(meter)


def malformed(meter: StreamMeter, data: bytes) -> None:
    fed(meter, [*events(data)[:3], BAD_JSON, *events(data)[3:]])
    closed(meter)


def cut(meter: StreamMeter, data: bytes) -> None:
    fed(meter, [data[: len(data) // 2]])  # ends inside an event
    closed(meter)


def failed(meter: StreamMeter, data: bytes) -> None:
    fed(meter, events(data)[:3])
    meter.fail("the connection was reset", "error", "connection")
    meter.fail_with(ConnectionResetError("reset by peer"))


def iterated(meter: StreamMeter, data: bytes) -> None:
    for _ in meter.iter(iter(events(data))):
        pass


def iterated_to_an_error(meter: StreamMeter, data: bytes) -> None:
    try:
        for _ in meter.iter(iter([*events(data)[:3], SERVER_ERROR])):
            pass
    except Error:
        pass


def async_iterated(meter: StreamMeter, data: bytes) -> None:
    async def source() -> AsyncIterator[bytes]:
        for read in events(data):
            yield read

    async def drain() -> None:
        async for _ in meter.aiter(source()):
            pass

    # Driven by hand, not by an event loop: nothing here waits, and a loop's own objects (a
    # task, its coroutine and the closure it holds) would outlive the call in cycles of theirs.
    with contextlib.suppress(StopIteration):
        drain().send(None)


SCENARIOS: dict[str, Callable[[StreamMeter, bytes], None]] = {
    "complete": complete,
    "server error": server_error,
    "malformed": malformed,
    "cut": cut,
    "failed": failed,
    "iter": iterated,
    "iter to an error": iterated_to_an_error,
    "aiter": async_iterated,
}


def meter_on(path: str, kind: str, **options: Any) -> StreamMeter:
    """A meter whose decoder is the ``path`` hot path."""
    original = streamspec.metrics.ChunkDecoder
    streamspec.metrics.ChunkDecoder = PATHS[path]  # type: ignore[misc]
    try:
        return StreamMeter(kind=kind, **options)  # type: ignore[arg-type]
    finally:
        streamspec.metrics.ChunkDecoder = original  # type: ignore[misc]


def freed_by_refcount(make: Callable[[], tuple[object, object]]) -> tuple[bool, bool]:
    """With the cycle collector off, build ``(obj, inner)`` with ``make`` and drop both:
    whether each one is gone."""
    gc.collect()
    gc.disable()
    try:
        obj, inner = make()
        refs = weakref.ref(obj), weakref.ref(inner)
        del obj, inner
        return refs[0]() is None, refs[1]() is None
    finally:
        gc.enable()


class _Cyclic:
    def __init__(self) -> None:
        self.me = self


def test_the_check_sees_a_cycle() -> None:
    assert freed_by_refcount(lambda: (_Cyclic(), Listener())) == (False, True)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("kind", ["chat", "completions"])
@pytest.mark.parametrize("path", list(PATHS))
def test_a_dropped_meter_is_freed_by_refcounting(path: str, kind: str, scenario: str) -> None:
    results: list[StreamMetrics] = []

    def make() -> tuple[StreamMeter, Listener]:
        listener = Listener()  # referred to by the meter's decoder only, once make() returns
        meter = meter_on(path, kind, on_salvage=listener)
        assert meter.decoder.__class__ is PATHS[path]
        SCENARIOS[scenario](meter, STREAMS[kind])
        results.append(meter.result())
        return meter, listener

    meter_gone, decoder_gone = freed_by_refcount(make)
    assert meter_gone, f"a {kind} meter ({path} path, {scenario}) outlived its last reference"
    assert decoder_gone, f"the decoder of a {kind} meter ({path} path, {scenario}) outlived it"
    # The stream was metered as the scenario says: the case is not vacuous.
    [metrics] = results
    assert metrics.chunks > 0
    ended = {"complete": "complete", "iter": "complete", "aiter": "complete", "cut": "truncated"}
    assert metrics.status == ended.get(scenario, "error")


def reaches_itself(start: object) -> bool:
    """Whether ``start`` can be reached again by following references out of it (modules,
    classes and functions aside: they lead to the whole program, not back into one object)."""
    seen: set[int] = set()
    todo = list(gc.get_referents(start))
    while todo:
        obj = todo.pop()
        if obj is start:
            return True
        if id(obj) in seen or isinstance(obj, type | ModuleType | FunctionType):
            continue
        seen.add(id(obj))
        todo += gc.get_referents(obj)
    return False


@pytest.mark.parametrize("kind", ["chat", "completions"])
@pytest.mark.parametrize("path", list(PATHS))
def test_no_metrics_object_refers_back_to_itself(path: str, kind: str) -> None:
    """The meter, its decoder, its metrics and the load test's record hold no cycle."""
    meter = meter_on(path, kind, on_salvage=Listener())
    assert not reaches_itself(meter)
    complete(meter, STREAMS[kind])
    metrics = meter.result()
    record = record_from_meter(meter, 0.0)
    assert metrics.itl_ms is not None
    assert record.itl_ms
    for obj in (meter, meter.decoder, metrics, metrics.itl_ms, record):
        assert not reaches_itself(obj), obj
    assert reaches_itself(_Cyclic())  # the check can see one
