"""The load generator's own HTTP/1.1 client against canned responses, split every way.

A tiny asyncio server on loopback answers each request with fixed bytes,
written whole, byte by byte or at random split points; the record of the
request must not depend on the split. The kernel may join the server's writes
into fewer reads, so the protocol is also fed directly (a fake transport, no
socket): there every split is exactly the reads the client sees.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from streamspec.load import LoadConfig, RequestRecord, run_load
from streamspec.load.generator import run

EVENTS = [
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
    {"choices": [{"index": 0, "delta": {"content": "Hel"}}]},
    {"choices": [{"index": 0, "delta": {"content": "lo"}}]},
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}},
]
SSE = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in EVENTS) + b"data: [DONE]\n\n"


def chunked(body: bytes, size: int = 40) -> bytes:
    out = b"".join(
        b"%x;ext=1\r\n%b\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    )
    return out + b"0\r\n\r\n"


def head(status: str, *headers: str) -> bytes:
    return ("\r\n".join([f"HTTP/1.1 {status}", *headers]) + "\r\n\r\n").encode()


SSE_HEAD = "Content-Type: text/event-stream"
SPLITS: dict[str, Callable[[bytes], list[bytes]]] = {
    "whole": lambda data: [data],
    "bytes": lambda data: [data[i : i + 1] for i in range(len(data))],
    "random": lambda data: random_pieces(data, random.Random(len(data))),
}


def random_pieces(data: bytes, rng: random.Random) -> list[bytes]:
    pieces, start = [], 0
    while start < len(data):
        step = rng.randint(1, 23)
        pieces.append(data[start : start + step])
        start += step
    return pieces


def serve(
    response: bytes,
    split: str,
    close: bool = False,
    requests: int = 1,
    connections: list[int] | None = None,
) -> list[RequestRecord]:
    """Answer every request with ``response`` (cut by ``split``); return the load's records.

    ``connections`` gets one item per connection the client opened."""

    async def main() -> list[RequestRecord]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if connections is not None:
                connections.append(1)
            try:
                while True:
                    request = await reader.readuntil(b"\r\n\r\n")
                    length = 0
                    for line in request.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    await reader.readexactly(length)
                    for piece in SPLITS[split](response):
                        writer.write(piece)
                        await writer.drain()
                    if close:
                        break
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        config = LoadConfig(url=f"http://127.0.0.1:{port}/v1", model="m", concurrency=1,
                            num_requests=requests)  # fmt: skip
        try:
            return (await run_load(config)).records
        finally:
            server.close()

    return run(main)


@pytest.mark.parametrize("split", list(SPLITS))
@pytest.mark.parametrize(
    ("framing", "response"),
    [
        ("chunked", head("200 OK", SSE_HEAD, "Transfer-Encoding: chunked") + chunked(SSE)),
        ("length", head("200 OK", SSE_HEAD, f"Content-Length: {len(SSE)}") + SSE),
    ],
)
def test_streams_with_every_framing_and_split(framing: str, response: bytes, split: str) -> None:
    opened: list[int] = []
    records = serve(response, split, requests=3, connections=opened)
    assert len(opened) == 1  # kept alive: three on one connection
    assert len(records) == 3
    for record in records:
        assert record.status == "complete", record.error
        assert (record.token_chunks, record.output_tokens, record.input_tokens) == (2, 2, 3)
        assert record.chunks == 5
        assert len(record.itl_ms) == 1


LAST_CHUNK = b"0\r\n\r\n"


@pytest.mark.parametrize("split", list(SPLITS))
@pytest.mark.parametrize(
    "ending", [LAST_CHUNK, b"0\r\nX-Usage: 5\r\nX-Checksum: abc\r\n\r\n"], ids=["plain", "trailers"]
)
def test_the_last_chunk_and_trailers_are_read_to_their_end(ending: bytes, split: str) -> None:
    """Every byte of the last chunk and the trailer section is read before the next request
    goes out on the connection, however the reads cut them: one connection serves all."""
    body = chunked(SSE).removesuffix(LAST_CHUNK) + ending
    response = head("200 OK", SSE_HEAD, "Transfer-Encoding: chunked") + body
    opened: list[int] = []
    records = serve(response, split, requests=3, connections=opened)
    assert [record.status for record in records] == ["complete"] * 3
    assert all(record.token_chunks == 2 for record in records)
    assert len(opened) == 1


@pytest.mark.parametrize("split", list(SPLITS))
def test_a_close_inside_the_trailer_section_keeps_the_stream(split: str) -> None:
    """The server closes after the last chunk's size line: the body itself was whole."""
    body = chunked(SSE).removesuffix(b"\r\n")
    response = head("200 OK", SSE_HEAD, "Transfer-Encoding: chunked") + body
    opened: list[int] = []
    records = serve(response, split, close=True, requests=2, connections=opened)
    assert [record.status for record in records] == ["complete"] * 2
    assert len(opened) == 2


@pytest.mark.parametrize("split", list(SPLITS))
def test_body_until_the_connection_closes(split: str) -> None:
    response = head("200 OK", SSE_HEAD, "Connection: close") + SSE
    records = serve(response, split, close=True, requests=2)
    assert [record.status for record in records] == ["complete", "complete"]


@pytest.mark.parametrize("split", list(SPLITS))
def test_http_error_bodies(split: str) -> None:
    body = json.dumps({"error": {"message": "slow down", "type": "rate_limit"}}).encode()
    response = head("429 Too Many Requests", "Content-Type: application/json",
                    "Transfer-Encoding: chunked") + chunked(body, 7)  # fmt: skip
    [record] = serve(response, split)
    assert (record.status, record.error_kind) == ("error", "http_429")
    assert record.error == "HTTP 429: slow down type=rate_limit"


def test_json_instead_of_a_stream() -> None:
    body = json.dumps({"error": {"message": "bad model"}}).encode()
    response = head("200 OK", "Content-Type: application/json",
                    f"Content-Length: {len(body)}") + body  # fmt: skip
    [record] = serve(response, "whole")
    assert (record.status, record.error_kind) == ("error", "not_a_stream")
    assert record.error is not None
    assert "bad model" in record.error


@pytest.mark.parametrize("split", list(SPLITS))
def test_cut_body_is_truncated(split: str) -> None:
    whole = chunked(SSE)
    response = head("200 OK", SSE_HEAD, "Transfer-Encoding: chunked") + whole[: len(whole) // 2]
    [record] = serve(response, split, close=True)
    assert (record.status, record.error_kind) == ("truncated", "truncated")
    assert record.token_chunks >= 1  # what arrived before the cut is kept


def test_not_http() -> None:
    [record] = serve(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "whole", close=True)
    assert (record.status, record.error_kind) == ("error", "protocol")


def test_server_error_inside_the_stream() -> None:
    body = SSE[: SSE.index(b"data: [DONE]")] + b'data: {"error": {"message": "boom"}}\n\n'
    response = head("200 OK", SSE_HEAD, f"Content-Length: {len(body)}") + body
    [record] = serve(response, "whole")
    assert (record.status, record.error_kind) == ("error", "server_error")
    assert record.error is not None
    assert "boom" in record.error


def test_a_stalled_stream_times_out() -> None:
    """The server sends the head and one event, then nothing: the request fails with timeout."""

    async def main() -> list[RequestRecord]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            event = b"data: " + json.dumps(EVENTS[1]).encode() + b"\n\n"
            writer.write(
                head("200 OK", SSE_HEAD, "Transfer-Encoding: chunked") + chunked(event)[:-5]
            )
            await writer.drain()
            await reader.read()  # until the client gives up and closes
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        config = LoadConfig(url=f"http://127.0.0.1:{port}/v1", model="m", concurrency=1,
                            num_requests=1, timeout=0.2)  # fmt: skip
        try:
            return (await run_load(config)).records
        finally:
            server.close()

    [record] = run(main)
    assert (record.status, record.error_kind) == ("error", "timeout")
    assert record.token_chunks == 1  # what arrived before is kept


# -- the protocol fed directly: every split is exactly the reads the client sees -------------------


class FakeTransport:
    """What ``_Exchange`` writes to and closes, recorded."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    abort = close


def exchange_reads(responses: list[list[bytes]], eof: bool = False) -> tuple[list[Any], bool]:
    """Run one request per item of ``responses`` on one ``_Exchange``, each response arriving
    as the reads given (then the end of the connection, with ``eof``); return each request's
    metrics and whether the exchange stayed usable."""
    from streamspec.load._client import _Exchange
    from streamspec.metrics import StreamMeter

    async def main() -> tuple[list[Any], bool]:
        exchange = _Exchange()
        transport = FakeTransport()
        exchange.connection_made(transport)  # type: ignore[arg-type]
        results = []
        for reads in responses:
            meter = StreamMeter()
            finished = exchange.start(meter, b"POST / HTTP/1.1\r\n\r\n")
            for read in reads:
                exchange.data_received(read)
            if eof:
                exchange.eof_received()
                exchange.connection_lost(None)
            assert finished.done(), "the response did not settle its request"
            results.append(meter.result())
        return results, exchange.reusable and not transport.closed

    return asyncio.run(main())


TRAILERS = b"0\r\nX-Usage: 5\r\nX-Checksum: abc\r\n\r\n"


@pytest.mark.parametrize("ending", [LAST_CHUNK, TRAILERS], ids=["plain", "trailers"])
def test_every_cut_of_the_last_chunk_and_trailers(ending: bytes) -> None:
    """Cut the response in two at every byte of its end: the request settles, complete, only
    once the message has ended, and the next response on the connection is read as one."""
    body = chunked(SSE).removesuffix(LAST_CHUNK) + ending
    response = head("200 OK", SSE_HEAD, "Transfer-Encoding: chunked") + body
    tail = len(ending) + 8
    for cut in range(len(response) - tail, len(response)):
        first, second = response[:cut], response[cut:]
        results, usable = exchange_reads([[first, second], [response]])
        assert [m.status for m in results] == ["complete", "complete"], cut
        assert [m.token_chunks for m in results] == [2, 2], cut
        assert usable, cut
    # One byte per read, twice on the same connection.
    results, usable = exchange_reads([bytewise(response), bytewise(response)])
    assert [m.status for m in results] == ["complete", "complete"]
    assert usable


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


@pytest.mark.parametrize("split", list(SPLITS))
@pytest.mark.parametrize(
    ("framing", "response"),
    [
        ("chunked", head("200 OK", SSE_HEAD, "Transfer-Encoding: chunked") + chunked(SSE)),
        ("length", head("200 OK", SSE_HEAD, f"Content-Length: {len(SSE)}") + SSE),
        ("close", head("200 OK", SSE_HEAD, "Connection: close") + SSE),
    ],
)
def test_the_protocol_with_every_framing_and_split(
    framing: str, response: bytes, split: str
) -> None:
    reads = SPLITS[split](response)
    if framing == "close":
        results, _ = exchange_reads([reads], eof=True)
    else:
        results, usable = exchange_reads([reads, reads, reads])
        assert usable
    for metrics in results:
        assert metrics.status == "complete", metrics.error
        assert (metrics.token_chunks, metrics.output_tokens, metrics.prompt_tokens) == (2, 2, 3)
        assert metrics.chunks == len(EVENTS)


@pytest.mark.parametrize("split", list(SPLITS))
def test_the_protocol_with_a_cut_body(split: str) -> None:
    """The connection ends halfway through a chunked body: truncated, whatever the reads."""
    whole = head("200 OK", SSE_HEAD, "Transfer-Encoding: chunked") + chunked(SSE)
    cut = whole[: len(whole) // 2]
    [metrics], _ = exchange_reads([SPLITS[split](cut)], eof=True)
    assert (metrics.status, metrics.error_kind) == ("truncated", "truncated")
    assert metrics.token_chunks == 1  # the first token arrived before the cut
