"""StreamMeter gives the same metrics whether the C decoder meters or Python does.

With the accelerator, ``StreamMeter`` lets the decoder's C ``feed()`` take the
clock reading and the common token chunk; the pure-Python path does it in
``StreamMeter.feed``. Both call the clock once per ``feed()``, so a clock that
ticks by a fixed step per call gives both runs the same readings, and every
figure (:class:`StreamMetrics`, token times, gaps, end) must be identical, on
every fixture and however the stream is cut into reads.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

import streamspec
import streamspec.metrics
from splitting import FIXTURE_NAMES, RESUMABLE, bytewise, fixture, split_at
from streamspec import Error
from streamspec._fastpath import IMPLEMENTATION
from streamspec.decoder import PyChunkDecoder
from streamspec.metrics import StreamMeter
from streamspec.samples import synthetic_stream

if IMPLEMENTATION != "c":
    pytest.skip("the C accelerator is not built (or disabled)", allow_module_level=True)

COMPLETIONS = Path(__file__).resolve().parent.parent / "fixtures" / "streams" / "completions"
LEGACY = sorted(json.loads((COMPLETIONS / "MANIFEST.json").read_text()))


class Ticks:
    """A clock that moves by a fixed step each time it is read."""

    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        self.now += 7_919
        return self.now


def run(
    reads: list[bytes], *, python: bool, kind: str = "chat", fail_at: int | None = None
) -> tuple[Any, ...]:
    """Meter ``reads`` (going on after resumable errors, as a reader may), then close."""
    original = streamspec.metrics.ChunkDecoder
    if python:
        streamspec.metrics.ChunkDecoder = PyChunkDecoder  # type: ignore[misc]
    try:
        meter = StreamMeter(clock=Ticks(), kind=kind)  # type: ignore[arg-type]
    finally:
        streamspec.metrics.ChunkDecoder = original  # type: ignore[misc]
    assert meter._metered is not python
    chunks: list[Any] = []
    for number, data in enumerate(reads):
        if number == fail_at:
            meter.fail("connection reset", kind="connection")
        while True:
            try:
                chunks += meter.feed(data)
                break
            except Error as exc:
                chunks += exc.chunks
                if not isinstance(exc, RESUMABLE):
                    break
                data = b""
        if meter.done:
            break
    try:
        chunks += meter.close()
    except Error as exc:
        chunks += exc.chunks
    metrics = meter.result()
    return metrics, meter.token_times, meter.itl_ns, meter.end_ns, chunks


def assert_same_metrics(reads: list[bytes], **options: Any) -> Any:
    c = run(reads, python=False, **options)
    py = run(reads, python=True, **options)
    assert msgspec.json.encode(c[0]) == msgspec.json.encode(py[0])  # bit for bit
    assert c[1:] == py[1:]
    return c[0]


def events(data: bytes) -> list[bytes]:
    pieces = data.split(b"\n\n")
    return [piece + b"\n\n" for piece in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])


def shapes(data: bytes, seed: str) -> dict[str, list[bytes]]:
    chooser = random.Random(seed)
    cuts = [sorted(chooser.sample(range(1, len(data)), min(len(data) - 1, k))) for k in (3, 40)]
    boundaries = [i for i in range(len(data)) if data.startswith(b"\n\n", i)]
    around = [cut for i in boundaries for cut in (i, i + 1, i + 2, i + 3)]
    return {
        "around-boundaries": split_at(data, around),  # inside each blank line and just after
        "after-data": split_at(
            data, [i + 6 for i in range(len(data)) if data.startswith(b"data: ", i)]
        ),
        "whole": [data],
        "events": events(data),
        "lines": data.splitlines(keepends=True),
        "bytes": bytewise(data),
        "random-3": split_at(data, cuts[0]),
        "random-40": split_at(data, cuts[1]),
    }


SHAPES = ["whole", "events", "lines", "bytes", "random-3", "random-40", "around-boundaries",
          "after-data"]  # fmt: skip


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixtures(name: str, shape: str) -> None:
    data = fixture(name)
    assert_same_metrics(shapes(data, name)[shape])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", LEGACY)
def test_legacy_fixtures(name: str, shape: str) -> None:
    data = (COMPLETIONS / name).read_bytes()
    metrics = assert_same_metrics(shapes(data, name)[shape], kind="completions")
    assert metrics.chunks > 0


def sse(*items: dict[str, Any] | str) -> bytes:
    payloads = (item if isinstance(item, str) else json.dumps(item) for item in items)
    return b"".join(f"data: {payload}\n\n".encode() for payload in payloads)


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> Any:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    body = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return {**body, "choices": choices, **extra}


USAGE = {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
MAGISTRAL = [{"type": "thinking", "thinking": [{"type": "text", "text": "Let me see"}]}]
ARGUMENTS = {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Pa'}}]}
STREAMS: dict[str, bytes] = {
    "mixed": sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": MAGISTRAL}),
        chunk({"reasoning_content": "hmm"}),
        chunk({"content": "héllo"}),
        chunk({"tool_calls": [{"index": 0, "id": "t", "function": {"name": "f"}}]}),
        chunk(ARGUMENTS),
        chunk({"content": "!"}, "stop"),
        chunk(usage=USAGE),
        "[DONE]",
    ),
    "usage with content": sse(chunk({"content": "a"}), chunk({"content": "b"}, usage=USAGE)),
    "error midway": sse(chunk({"content": "a"}), chunk({"content": "b"}))
    + b'data: {"error": {"message": "overloaded", "code": 529}}\n\n'
    + sse(chunk({"content": "c"}), "[DONE]"),
    "openrouter error chunk": sse(chunk({"content": "a"}))
    + sse({**chunk({"content": "b"}, "error"), "error": {"message": "upstream died"}}),
    "malformed": sse(chunk({"content": "a"})) + b"data: {nope\n\n" + sse(chunk({"content": "z"})),
    "truncated": sse(chunk({"content": "a"}), chunk({"content": "b"}))
    + b'data: {"choices": [{"index": 0, "de',
    "done then garbage": sse(chunk({"content": "a"}), "[DONE]") + b"data: {nope}\n\n",
    "n2": sse({**chunk(), "choices": [{"index": i, "delta": {"content": "ab"}} for i in (0, 1)]}),
}


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_every_split_point(name: str) -> None:
    data = STREAMS[name]
    for cut in range(len(data) + 1):
        assert_same_metrics(split_at(data, [cut]))
    assert_same_metrics(bytewise(data))


@pytest.mark.parametrize("fail_at", [1, 3])
def test_a_failure_reported_by_the_caller(fail_at: int) -> None:
    metrics = assert_same_metrics(events(STREAMS["error midway"]), fail_at=fail_at)
    assert metrics.error_kind == ("connection" if fail_at == 1 else "server_error")


def test_the_synthetic_benchmark_stream() -> None:
    data = synthetic_stream(300)
    for reads in (events(data), split_at(data, range(0, len(data), 4096))):
        metrics = assert_same_metrics(reads)
        assert metrics.token_chunks == 300
        assert metrics.itl_ms is not None


def test_the_real_clock_takes_the_c_path() -> None:
    meter = StreamMeter()
    assert meter._metered
    assert meter.feed == meter.decoder.feed  # the decoder's own feed(), no frame around it
    for data in events(synthetic_stream(20)):
        meter.feed(data)
    meter.close()
    metrics = meter.result()
    times = meter.token_times
    assert (metrics.token_chunks, len(times), metrics.status) == (20, 20, "complete")
    assert times == sorted(times)
    assert meter.start_ns <= times[0] <= (meter.end_ns or 0)


def test_a_clock_that_is_not_an_int() -> None:
    clock: Callable[[], Any] = lambda: 1.5  # noqa: E731
    meter = StreamMeter(clock=lambda: 0)
    meter.decoder.set_meter(lambda reading, item: None, clock)  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="not an int"):
        meter.decoder.feed(sse(chunk({"content": "a"})))


def test_the_meter_keeps_no_chunk() -> None:
    data = sse(chunk({"reasoning_content": "hmm"}), chunk({"content": "a"}, "stop"))
    meter = StreamMeter()
    [reasoning, finish] = meter.feed(data)
    plain = streamspec.ChunkDecoder()
    [alone, alone_finish] = plain.feed(data)
    # Chunks the decoder hands to the meter are noted at once, not held until result().
    assert sys.getrefcount(reasoning) == sys.getrefcount(alone)
    assert sys.getrefcount(finish) == sys.getrefcount(alone_finish)
    assert meter.result().token_chunks == 2


def test_a_meter_is_freed_without_the_cycle_collector() -> None:
    import gc
    import weakref

    gc.disable()
    try:
        meter = StreamMeter()
        meter.feed(sse(chunk({"role": "assistant", "content": ""}), chunk({"content": "a"})))
        gone = weakref.ref(meter)
        del meter
        assert gone() is None
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("mistral_magistral_thinking.sse", "chat"),
        ("openrouter_error.sse", "chat"),
        ("ollama_tool_calls.sse", "chat"),
        ("completions/llamacpp_completions_n2.sse", "completions"),
    ],
)
def test_every_split_point_of_a_fixture(name: str, kind: str) -> None:
    data = fixture(name)
    for cut in range(1, len(data)):
        assert_same_metrics([data[:cut], data[cut:]], kind=kind)
