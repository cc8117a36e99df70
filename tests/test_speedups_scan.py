"""The read scan of a chunk type without ``error``: CR and '"error"' found anywhere in a read.

For such a type one pass over each read looks for a CR (the read then goes to
the general path) and for the key '"error"' (its payloads are then probed one
by one). Every position of either in reads of many lengths must give what the
pure-Python hot path gives: the same chunks, the same error at the same event.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from paths import PATHS
from streamspec import Error


class NoErrorChunk(msgspec.Struct):
    """A projection without ``error``: an error payload decodes to it silently."""

    id: str = ""
    choices: list[Any] = []


def outcome(cls: Any, reads: list[bytes]) -> tuple[list[Any], str | None]:
    """The chunks decoded from ``reads`` (close() included) and the error, if any."""
    decoder = cls(NoErrorChunk)
    chunks: list[Any] = []
    try:
        for data in reads:
            chunks += decoder.feed(data)
        chunks += decoder.close()
    except Error as exc:
        return [msgspec.to_builtins(c) for c in chunks + list(exc.chunks)], type(exc).__name__
    return [msgspec.to_builtins(c) for c in chunks], None


def event(body: str) -> bytes:
    return b"data: " + body.encode() + b"\n\n"


# Payloads of several lengths around the 38-byte minimum of the vector scan.
BODIES = ['{"id": "a"}', '{"id": "' + "x" * 30 + '"}', '{"id": "' + "y" * 90 + '", "choices": []}']
FIRST = event('{"id": "start"}')


@pytest.mark.skipif("c" not in PATHS, reason="the accelerator is not built")
@pytest.mark.parametrize("body", BODIES)
def test_a_cr_anywhere_in_a_read_matches_the_python_path(body: str) -> None:
    read = event(body) + event(body)
    results = set()
    for at in range(len(read) + 1):
        reads = [FIRST, read[:at] + b"\r" + read[at:]]
        c, py = outcome(PATHS["c"], reads), outcome(PATHS["python"], reads)
        assert c == py, (at, reads[1])
        results.add(repr(py))
    assert len(results) > 1  # the CR's position matters: the rows differ


@pytest.mark.skipif("c" not in PATHS, reason="the accelerator is not built")
@pytest.mark.parametrize("body", BODIES)
def test_an_error_key_anywhere_in_a_read_matches_the_python_path(body: str) -> None:
    error = event('{"error": {"message": "overloaded"}}')
    read = event(body) + error + event(body)
    errors = 0
    for cut in range(1, len(read)):
        for reads in ([FIRST, read[:cut], read[cut:]], [FIRST + read[:cut], read[cut:]]):
            c, py = outcome(PATHS["c"], reads), outcome(PATHS["python"], reads)
            assert c == py, (cut, reads)
            errors += py[1] is not None
    assert errors == 2 * (len(read) - 1)  # the error payload is reported at every cut


@pytest.mark.skipif("c" not in PATHS, reason="the accelerator is not built")
def test_an_error_key_outside_payloads_changes_nothing() -> None:
    """'"error"' in a comment makes the read probed; its payloads still decode here."""
    read = b': "error"\n' + event('{"id": "' + "z" * 40 + '"}') + event('{"id": "b"}')
    reads = [FIRST, read]
    assert outcome(PATHS["c"], reads) == outcome(PATHS["python"], reads)
    assert outcome(PATHS["c"], reads)[1] is None
    assert [c["id"] for c in outcome(PATHS["c"], reads)[0]] == ["start", "z" * 40, "b"]


class RawChunk(msgspec.Struct):
    """``msgspec.Raw`` keeps the buffer it was decoded from: here, the joined event."""

    id: str = ""
    choices: msgspec.Raw = msgspec.Raw(b"[]")
    error: Any = None


@pytest.mark.parametrize("cls", sorted(PATHS))
def test_raw_fields_of_events_split_across_reads_keep_their_own_bytes(cls: str) -> None:
    """Each event completed across two reads is joined in a buffer a Raw field may keep."""
    bodies = [f"{i}," * (i % 7) + "0" for i in range(40)]
    events = [event(f'{{"id": "c{i}", "choices": [{body}]}}') for i, body in enumerate(bodies)]
    reads = [FIRST]
    for data in events:
        middle = len(data) // 2
        reads += [data[:middle], data[middle:]]
    decoder = PATHS[cls](RawChunk)
    chunks: list[Any] = []
    for data in reads:
        chunks += decoder.feed(data)
    del reads
    assert [c.id for c in chunks] == ["start"] + [f"c{i}" for i in range(40)]
    assert [bytes(c.choices) for c in chunks[1:]] == [f"[{body}]".encode() for body in bodies]


@pytest.mark.skipif("c" not in PATHS, reason="the accelerator is not built")
def test_the_error_key_is_found_at_every_offset_of_a_long_read() -> None:
    """The scan takes 64 bytes a step: a key across two steps, or in the last, is seen."""
    for pad in range(150):
        read = event('{"id": "' + "y" * pad + '", "error": {"message": "m"}}')
        for reads in ([FIRST, read], [FIRST, read + event('{"id": "' + "w" * 70 + '"}')]):
            c, py = outcome(PATHS["c"], reads), outcome(PATHS["python"], reads)
            assert c == py, pad
            assert py[1] is not None, pad
            assert [chunk["id"] for chunk in py[0]] == ["start"], pad
