"""A body that is one JSON document, not an event stream, is reported, never lost.

Servers answer a bad request with a JSON error body, even when a stream was
asked for: HTTP 400/401/404/429/500, and LiteLLM's proxy and llama.cpp with 200
too. The decoder recognises such a body by its first byte after whitespace
(``{``, which no useful SSE field name starts with) and raises
:class:`StreamError` with the server's error at ``close()``; a JSON body that
is not an error raises :class:`MalformedEventError` saying an event stream was
expected. Every case runs on both hot paths, whole, byte by byte and split,
through ``feed``/``close``, the iterators, and a real HTTP response.
"""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import Any

import httpx
import pytest

from paths import PATHS
from splitting import Outcome, assert_same, bytewise, run_decoder, split_at
from streamspec import (
    EventTooLargeError,
    MalformedEventError,
    StreamError,
)
from streamspec.iterate import aiterate, iterate

paths = pytest.mark.parametrize("path", sorted(PATHS))

# What real servers send (see the project's notes on real servers).
ERROR_BODIES = {
    "llama.cpp-400": (
        b'{"error":{"code":400,"message":"the request exceeds the available context size",'
        b'"type":"exceed_context_size_error","n_prompt_tokens":9000,"n_ctx":4096}}',
        {"message": "the request exceeds the available context size", "code": 400},
    ),
    "litellm-400": (
        b'{"error": {"message": "Invalid model name passed in model=gpt-9", "type": "None",'
        b' "param": "None", "code": "400", "provider_specific_fields": {}}}\n',
        {"message": "Invalid model name passed in model=gpt-9", "code": "400"},
    ),
    "openai-401": (
        b'{\n    "error": {\n        "message": "Incorrect API key provided",\n'
        b'        "type": "invalid_request_error",\n        "param": null,\n'
        b'        "code": "invalid_api_key"\n    }\n}\n',
        {"message": "Incorrect API key provided", "code": "invalid_api_key"},
    ),
    "openai-429": (
        b'{"error": {"message": "Rate limit reached", "type": "requests", "code": null}}',
        {"message": "Rate limit reached", "type": "requests"},
    ),
    "vllm-400": (
        b'{"object":"error","message":"max_tokens is too large","type":"BadRequestError",'
        b'"param":null,"code":400}',
        {"message": "max_tokens is too large", "code": 400, "type": "BadRequestError"},
    ),
    "plain-string-500": (b'{"error": "CUDA out of memory"}', {"message": "CUDA out of memory"}),
    "after-whitespace-and-bom": (
        b'\xef\xbb\xbf \r\n\t{"error": {"message": "late"}}',
        {"message": "late"},
    ),
}


def all_ways(path: str, raw: bytes, **options: Any) -> Outcome:
    run = partial(run_decoder, factory=partial(PATHS[path], **options), resume=True)
    whole = run([raw])
    assert_same(whole, run(bytewise(raw)), f"{path}: byte by byte")
    assert_same(whole, run(split_at(raw, range(3, len(raw), 17))), f"{path}: split")
    return whole


@paths
@pytest.mark.parametrize("name", ERROR_BODIES)
def test_error_body_raises_the_servers_error(path: str, name: str) -> None:
    raw, fields = ERROR_BODIES[name]
    outcome = all_ways(path, raw)
    assert outcome.items == []
    (error,) = outcome.errors
    assert error.type is StreamError
    for key, value in fields.items():
        assert getattr(error.error, key) == value
    start = raw.index(b"{")
    assert (error.event_index, error.offset) == (0, start)
    assert not outcome.done


@paths
def test_the_error_comes_at_close_and_nothing_before(path: str) -> None:
    raw = ERROR_BODIES["llama.cpp-400"][0]
    decoder = PATHS[path]()
    for piece in (raw[:10], raw[10:]):
        assert decoder.feed(piece) == []
    with pytest.raises(StreamError) as info:
        decoder.close()
    assert info.value.error.code == 400
    assert "context size" in str(info.value)


@paths
@pytest.mark.parametrize(
    "raw",
    [
        b'{"id": "chatcmpl-1", "object": "chat.completion", "choices": []}',
        b'{"detail": "Not Found"}',
        b'{"error": {"message": "cut',
        b"{not json at all",
        b'{"a": 1}\n\ndata: {"choices": []}\n\n',
    ],
    ids=["non-streaming-response", "fastapi-404", "truncated", "not-json", "json-then-sse"],
)
def test_other_json_bodies_say_a_stream_was_expected(path: str, raw: bytes) -> None:
    outcome = all_ways(path, raw)
    (error,) = outcome.errors
    assert error.type is MalformedEventError
    assert "expected an event stream" in error.message
    assert (error.event_index, error.offset) == (0, 0)


@paths
def test_a_json_body_is_bounded_by_max_event_size(path: str) -> None:
    raw = b'{"error": {"message": "' + b"m" * 500 + b'"}}'
    outcome = all_ways(path, raw, max_event_size=200)
    assert [e.type for e in outcome.errors] == [EventTooLargeError]
    assert outcome.errors[0].offset == 0
    fits = all_ways(path, raw, max_event_size=len(raw))
    assert [e.type for e in fits.errors] == [StreamError]


@paths
@pytest.mark.parametrize(
    "raw",
    [
        b'data: {"choices": []}\n\n{"error": {"message": "x"}}\n\n',
        b': comment\n{"error": {"message": "x"}}\n\n',
        b'\n\nid: 1\n\n{"error": "x"}\n\n',
    ],
    ids=["after-an-event", "after-a-comment", "after-a-field"],
)
def test_only_the_first_byte_of_the_stream_decides(path: str, raw: bytes) -> None:
    # Later, a line starting with "{" is a field named "{...": ignored, as the spec says.
    outcome = all_ways(path, raw)
    assert outcome.errors == ()


def _reads(raw: bytes) -> list[bytes]:
    return [raw[i : i + 7] for i in range(0, len(raw), 7)]


@paths
def test_through_the_iterators(path: str) -> None:
    raw = ERROR_BODIES["openai-401"][0]
    with pytest.raises(StreamError) as info:
        list(iterate(PATHS[path](), _reads(raw)))
    assert info.value.error.code == "invalid_api_key"

    async def source() -> AsyncIterator[bytes]:
        for data in _reads(raw):
            yield data

    async def consume() -> list[Any]:
        return [chunk async for chunk in aiterate(PATHS[path](), source())]

    with pytest.raises(StreamError) as async_info:
        asyncio.run(consume())
    assert async_info.value.error.code == "invalid_api_key"


# -- over HTTP ----------------------------------------------------------------------------------


class _ErrorBodyHandler(http.server.BaseHTTPRequestHandler):
    body = ERROR_BODIES["llama.cpp-400"][0]

    def do_POST(self) -> None:
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean


@pytest.fixture
def error_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ErrorBodyHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/chat/completions"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@paths
def test_an_http_400_json_body_through_iter_chunks(path: str, error_server: str) -> None:
    with (
        httpx.Client(timeout=10.0) as client,
        client.stream("POST", error_server, json={"stream": True}) as response,
    ):
        assert response.status_code == 400
        with pytest.raises(StreamError) as info:
            list(iterate(PATHS[path](), response.iter_bytes()))
    assert info.value.error.type == "exceed_context_size_error"
    assert info.value.error.code == 400
