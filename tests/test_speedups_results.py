"""The lists ``feed()`` returns: the compiled core reuses one the caller let go.

A read of a live stream most often completes one chunk (or none, when it is
the start of an event), and the caller most often drops the list as soon as it
has taken the chunk out. The C core then hands the same list object back on
the next such read instead of allocating a new one. What a caller can observe
must not change: a list it keeps is never touched again, a list it changed is
never handed back as it left it, and a chunk released along the way (the one a
reused list held) finalizes with the decoder in a consistent state.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from streamspec import ChunkDecoder, CreateChatCompletionStreamResponse
from streamspec._fastpath import IMPLEMENTATION
from test_speedups_hostile import GeneralPath, chunk_payload, halves, stream_of

if IMPLEMENTATION != "c":
    pytest.skip("the C accelerator is not built (or disabled)", allow_module_level=True)

EVENTS = [b"data: " + chunk_payload(i, f"t{i}") + b"\n\n" for i in range(8)]
SHAPES: dict[str, list[bytes]] = {
    "one event per read": [b": start\n\n", *EVENTS],
    "events halved": [b": start\n\n", *halves(b"".join(EVENTS))],
    "events in three": [
        b": start\n\n",
        *[part for e in EVENTS for part in (e[:20], e[20:60], e[60:])],
    ],
}


def ids(chunks: list[Any]) -> list[str]:
    return [chunk.id for chunk in chunks]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_lists_kept_by_the_caller_stay_as_they_were(shape: str) -> None:
    reads = SHAPES[shape]
    decoder: ChunkDecoder[Any] = ChunkDecoder()
    kept = [decoder.feed(data) for data in reads]
    general = GeneralPath()
    assert [ids(chunks) for chunks in kept] == [ids(general.feed(data)) for data in reads]
    assert len({id(chunks) for chunks in kept}) == len(kept)  # all alive, all distinct


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_lists_dropped_at_once_give_every_chunk(shape: str) -> None:
    reads = SHAPES[shape]
    decoder: ChunkDecoder[Any] = ChunkDecoder()
    seen: list[str] = []
    for data in reads:
        for chunk in decoder.feed(data):  # the list is dropped after each read
            seen.append(chunk.id)
    assert seen == [f"c{i}" for i in range(len(EVENTS))]
    assert decoder.bytes_consumed == sum(map(len, reads))


MUTATIONS: dict[str, Callable[[list[Any]], None]] = {
    "append": lambda chunks: chunks.append("extra"),
    "clear": lambda chunks: chunks.clear(),
    "replace the item": lambda chunks: chunks.__setitem__(slice(None), ["other"]),
    "extend then pop": lambda chunks: (chunks.extend([1, 2]), chunks.pop(), chunks.pop()),
    "delete the item": lambda chunks: chunks.__delitem__(0) if chunks else None,
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_a_list_changed_then_dropped_never_comes_back_changed(name: str, shape: str) -> None:
    reads = SHAPES[shape]
    decoder: ChunkDecoder[Any] = ChunkDecoder()
    general = GeneralPath()
    for data in reads:
        chunks = decoder.feed(data)
        assert ids(chunks) == ids(general.feed(data))
        MUTATIONS[name](chunks)
        del chunks


class Tracked(msgspec.Struct, weakref=True):
    """A chunk type whose instances can be watched for their release."""

    id: str = ""


def test_a_released_chunk_finalizes_with_the_decoder_consistent() -> None:
    decoder: ChunkDecoder[Tracked] = ChunkDecoder(Tracked)
    holder = [decoder]
    seen: list[tuple[str, int, int, str]] = []

    def finalized(chunk_id: str) -> None:
        if not holder:
            seen.append((chunk_id, -1, -1, "released with the decoder"))
            return
        decoder = holder[0]
        try:
            decoder.feed(b"")
        except RuntimeError as exc:  # a finalizer inside feed(): re-entry is refused
            outcome = "re-entry refused" if "re-entered" in str(exc) else repr(exc)
        else:
            outcome = "fed"
        seen.append((chunk_id, decoder.bytes_consumed, decoder.events, outcome))

    def watch(chunks: list[Tracked]) -> None:
        for chunk in chunks:
            weakref.finalize(chunk, finalized, chunk.id)

    consumed = 0
    for i, data in enumerate([b": start\n\n", *EVENTS]):
        chunks = decoder.feed(data)
        consumed += len(data)
        watch(chunks)
        assert decoder.bytes_consumed == consumed
        del chunks
        assert [step[0] for step in seen] == [f"c{k}" for k in range(max(0, i - 1))]
    # Each chunk was released by the next read, after that read was committed.
    assert [step[1:] for step in seen] == [
        (len(b": start\n\n") + sum(map(len, EVENTS[: k + 2])), k + 2, "re-entry refused")
        for k in range(len(EVENTS) - 1)
    ]
    holder.clear()
    del decoder
    gc.collect()
    assert seen[-1] == (f"c{len(EVENTS) - 1}", -1, -1, "released with the decoder")


def test_a_decoder_in_a_reference_cycle_is_collected_with_its_last_chunk() -> None:
    decoder: ChunkDecoder[Tracked] = ChunkDecoder(Tracked)
    chunk = decoder.feed(b": start\n\n" + EVENTS[0])[0]
    chunk = decoder.feed(EVENTS[1])[0]
    alive = weakref.ref(chunk)
    decoder.cycle = decoder  # type: ignore[attr-defined]
    del decoder, chunk
    gc.collect()
    assert alive() is None


def test_the_default_type_on_a_long_stream_keeps_no_more_than_one_list() -> None:
    stream = stream_of(200)
    decoder: ChunkDecoder[CreateChatCompletionStreamResponse] = ChunkDecoder()
    lists = set()
    count = 0
    for data in [stream[:1], *[e + b"\n\n" for e in stream[1:].split(b"\n\n") if e]]:
        chunks = decoder.feed(data)
        lists.add(id(chunks))
        count += len(chunks)
        del chunks
    assert count == 200
    assert decoder.done
    assert len(lists) <= 3  # the first read's, the one-chunk list, the [DONE] read's


CUTS = [b"data:", b"data: {", EVENTS[0][:40], EVENTS[0][:-2], EVENTS[0][:-1]]


@pytest.mark.parametrize("cut", range(len(CUTS)))
def test_a_stream_cut_after_the_start_of_an_event_ends_as_on_the_general_path(cut: int) -> None:
    """The start of an event kept as its read came (not copied) is still the unfinished event."""
    reads = [b": start\n\n", EVENTS[1], CUTS[cut]]
    outcomes = []
    for decoder in (ChunkDecoder(), GeneralPath()):
        got = [ids(decoder.feed(data)) for data in reads]
        tail = bytes(decoder._tail)
        try:
            decoder.close()
        except Exception as exc:
            got.append([type(exc).__name__, getattr(exc, "offset", None)])
        outcomes.append((got, tail, decoder.bytes_consumed))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1] == CUTS[cut]
