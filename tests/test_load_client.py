"""The load generator's own HTTP/1.1 client against canned responses, split every way.

A tiny asyncio server on loopback answers each request with fixed bytes,
written whole, byte by byte or at random split points; the record of the
request must not depend on the split.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable

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
    response: bytes, split: str, close: bool = False, requests: int = 1
) -> list[RequestRecord]:
    """Answer every request with ``response`` (cut by ``split``); return the load's records."""

    async def main() -> list[RequestRecord]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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
    records = serve(response, split, requests=3)  # kept alive: three on one connection
    assert len(records) == 3
    for record in records:
        assert record.status == "complete", record.error
        assert (record.token_chunks, record.output_tokens, record.input_tokens) == (2, 2, 3)
        assert record.chunks == 5
        assert len(record.itl_ms) == 1


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
