"""streamspec.http against a Starlette server on loopback: httpx (sync and async) and aiohttp.

Each route answers the way some real server does: an error status with one of
the error body shapes servers use, a 200 whose body is a JSON error, an HTML
page from a proxy, a non-streamed completion, a mislabelled stream, a normal
event stream. The three clients must give the same outcome for each.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from mock_upstream import MockUpstream, ServerThread, load_fixture
from splitting import MANIFEST, fixture, run_decoder
from streamspec import (
    ChunkDecoder,
    CreateChatCompletionStreamResponse,
    ErrorObject,
    StreamError,
)
from streamspec._extras import MissingExtraError, require
from streamspec.http import (
    MAX_ERROR_BODY,
    HTTPStatusError,
    NotAStreamError,
    TransportError,
    aconnect_stream,
    connect_stream,
    parse_error_body,
)

NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n"
    b"</body>\r\n</html>\r\n"
)

# name -> (status, content type, body, expected ErrorObject)
ERROR_BODIES: dict[str, tuple[int, str, bytes, ErrorObject]] = {
    "openai": (
        404,
        "application/json",
        b'{"error": {"message": "The model `nope` does not exist", "type":'
        b' "invalid_request_error", "param": null, "code": "model_not_found"}}',
        ErrorObject(
            message="The model `nope` does not exist",
            type="invalid_request_error",
            param=None,
            code="model_not_found",
        ),
    ),
    "vllm": (
        400,
        "application/json",
        b'{"object": "error", "message": "max_tokens must be at least 1, got -1.",'
        b' "type": "BadRequestError", "param": null, "code": 400}',
        ErrorObject(
            message="max_tokens must be at least 1, got -1.",
            type="BadRequestError",
            param=None,
            code=400,
        ),
    ),
    "string": (
        404,
        "application/json",
        b'{"error": "model \\"llama9\\" not found, try pulling it first"}',
        ErrorObject(message='model "llama9" not found, try pulling it first'),
    ),
    "tgi": (
        422,
        "application/json",
        b'{"error": "Input validation error: `inputs` must have less than 4096 tokens",'
        b' "error_type": "validation"}',
        ErrorObject(
            message="Input validation error: `inputs` must have less than 4096 tokens",
            type="validation",
        ),
    ),
    "detail": (
        401,
        "application/json",
        b'{"detail": "Not authenticated"}',
        ErrorObject(message="Not authenticated"),
    ),
    "detail_list": (
        422,
        "application/json",
        b'{"detail": [{"loc": ["body", "messages"], "msg": "Field required", "type": "missing"}]}',
        ErrorObject(message="body.messages: Field required"),
    ),
    "message": (
        429,
        "application/json",
        b'{"message": "Rate limit exceeded", "code": "rate_limited"}',
        ErrorObject(message="Rate limit exceeded", type=None, param=None, code="rate_limited"),
    ),
    "html": (502, "text/html", NGINX_502, ErrorObject(message="502 Bad Gateway")),
    "text": (
        503,
        "text/plain; charset=utf-8",
        b"upstream connect error or disconnect/reset before headers.\n",
        ErrorObject(message="upstream connect error or disconnect/reset before headers."),
    ),
    "empty": (503, "text/plain", b"", ErrorObject(message="HTTP 503 Service Unavailable")),
    "gemini": (
        400,
        "application/json",
        b'[{"error": {"code": 400, "message": "API key not valid.", "status":'
        b' "INVALID_ARGUMENT"}}]',
        ErrorObject(message="API key not valid.", type="INVALID_ARGUMENT", param=None, code=400),
    ),
}

JSON_200_ERROR = (
    b'{"error": {"code": 400, "message": "the request exceeds the available context size,'
    b' try increasing it", "type": "exceed_context_size_error", "n_prompt_tokens": 5000}}'
)
WHOLE_COMPLETION = (
    b'{"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",'
    b' "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},'
    b' "finish_reason": "stop"}]}'
)


def _app() -> Starlette:
    async def error(request: Request) -> Response:
        status, kind, body, _ = ERROR_BODIES[request.path_params["name"]]
        headers = {"retry-after": "7"} if status == 429 else None
        return Response(body, status_code=status, headers=headers, media_type=kind)

    async def big_error(request: Request) -> Response:
        body = json.dumps({"error": {"message": "x" * (3 * MAX_ERROR_BODY)}}).encode()
        return Response(body, status_code=500, media_type="application/json")

    async def json_200(request: Request) -> Response:
        return Response(JSON_200_ERROR, media_type="application/json")

    async def whole(request: Request) -> Response:
        return Response(WHOLE_COMPLETION, media_type="application/json")

    async def html_200(request: Request) -> Response:
        return Response(
            b"<!DOCTYPE html><html><title>Sign in</title></html>", media_type="text/html"
        )

    async def stream(request: Request) -> StreamingResponse:
        data = fixture(request.path_params["name"])
        kind = request.query_params.get("type", "text/event-stream")

        async def body() -> Any:
            for start in range(0, len(data), 97):
                yield data[start : start + 97]

        return StreamingResponse(body(), media_type=kind)

    async def held(request: Request) -> StreamingResponse:
        # The first event, then nothing until the test sets the release event.
        release = request.app.state.release = asyncio.Event()
        first, rest = fixture("openai_text.sse").split(b"\n\n", 1)

        async def body() -> Any:
            yield first + b"\n\n"
            await release.wait()
            yield rest

        return StreamingResponse(body(), media_type="application/json")

    async def echo(request: Request) -> Response:
        body = {"accept": request.headers.get("accept"), "json": await request.json()}
        return Response(
            b"data: "
            + json.dumps({"choices": [], "echo": body}).encode()
            + b"\n\ndata: [DONE]\n\n",
            media_type="text/event-stream",
        )

    return Starlette(
        routes=[
            Route("/error/{name}", error, methods=["GET", "POST"]),
            Route("/big-error", big_error, methods=["POST"]),
            Route("/json-200", json_200, methods=["POST"]),
            Route("/whole", whole, methods=["POST"]),
            Route("/html-200", html_200, methods=["POST"]),
            Route("/stream/{name}", stream, methods=["GET", "POST"]),
            Route("/echo", echo, methods=["POST"]),
            Route("/held", held, methods=["POST"]),
        ]
    )


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(_app(), name="http-edge-server") as running:
        yield running


# -- the three clients, one interface -----------------------------------------------------------

Opened = tuple[int, dict[str, str], list[Any]]


def _httpx_sync(url: str, **kwargs: Any) -> Opened:
    with (
        httpx.Client(timeout=10) as client,
        connect_stream(client, "POST", url, **kwargs) as stream,
    ):
        return stream.status_code, stream.headers, list(stream)


async def _httpx_async(url: str, **kwargs: Any) -> Opened:
    async with (
        httpx.AsyncClient(timeout=10) as client,
        aconnect_stream(client, "POST", url, **kwargs) as stream,
    ):
        return stream.status_code, stream.headers, [chunk async for chunk in stream]


async def _aiohttp(url: str, **kwargs: Any) -> Opened:
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        aconnect_stream(session, "POST", url, **kwargs) as stream,
    ):
        return stream.status_code, stream.headers, [chunk async for chunk in stream]


CLIENTS: dict[str, Callable[..., Opened]] = {
    "httpx": _httpx_sync,
    "httpx-async": lambda url, **kw: asyncio.run(_httpx_async(url, **kw)),
    "aiohttp": lambda url, **kw: asyncio.run(_aiohttp(url, **kw)),
}


@pytest.fixture(params=sorted(CLIENTS))
def open_stream(request: pytest.FixtureRequest) -> Callable[..., Opened]:
    return CLIENTS[request.param]


# -- error statuses -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ERROR_BODIES))
def test_error_status_carries_the_server_error(
    server: ServerThread, open_stream: Callable[..., Opened], name: str
) -> None:
    status, kind, body, expected = ERROR_BODIES[name]
    with pytest.raises(HTTPStatusError) as caught:
        open_stream(f"{server.url}/error/{name}", json={"model": "m"})
    exc = caught.value
    assert isinstance(exc, StreamError)
    assert exc.status_code == status
    assert exc.error == expected
    assert exc.body == body
    assert not exc.body_truncated
    assert exc.headers["content-type"].startswith(kind.split(";")[0])
    assert str(exc).startswith(f"HTTP {status} ")
    assert expected.message in str(exc)
    assert exc.url == f"{server.url}/error/{name}"
    assert exc.retry_after == (7.0 if status == 429 else None)


def test_error_body_is_bounded(server: ServerThread, open_stream: Callable[..., Opened]) -> None:
    with pytest.raises(HTTPStatusError) as caught:
        open_stream(f"{server.url}/big-error")
    exc = caught.value
    assert exc.status_code == 500
    assert len(exc.body) == MAX_ERROR_BODY
    assert exc.body_truncated
    assert exc.body.startswith(b'{"error": {"message": "xxx')
    assert len(str(exc)) < 1000  # a cut-off JSON body still gives a readable one-line message


def test_json_200_error_raises_stream_error(
    server: ServerThread, open_stream: Callable[..., Opened]
) -> None:
    with pytest.raises(StreamError) as caught:
        open_stream(f"{server.url}/json-200")
    exc = caught.value
    assert not isinstance(exc, HTTPStatusError)
    assert exc.error.type == "exceed_context_size_error"
    assert exc.error.code == 400
    assert exc.error.message.startswith("the request exceeds the available context size")
    assert exc.payload == JSON_200_ERROR


def test_whole_json_response_is_not_a_stream(
    server: ServerThread, open_stream: Callable[..., Opened]
) -> None:
    with pytest.raises(NotAStreamError) as caught:
        open_stream(f"{server.url}/whole")
    assert caught.value.status_code == 200
    assert caught.value.content_type == "application/json"
    assert caught.value.body == WHOLE_COMPLETION
    assert "expected an event stream, got application/json" in str(caught.value)


def test_html_200_is_not_a_stream(server: ServerThread, open_stream: Callable[..., Opened]) -> None:
    with pytest.raises(NotAStreamError, match="text/html"):
        open_stream(f"{server.url}/html-200")


def test_connection_refused(open_stream: Callable[..., Opened]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    with pytest.raises(TransportError) as caught:
        open_stream(url)
    assert caught.value.kind == "connect"
    assert str(caught.value).startswith(f"cannot connect to {url}: ")
    assert caught.value.__cause__ is not None


def test_connection_dropped_mid_body(open_stream: Callable[..., Opened]) -> None:
    with MockUpstream({"m": load_fixture("openai_text")}, split="die") as upstream:
        url = upstream.base_url + "/chat/completions"
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        with pytest.raises(TransportError) as caught:
            open_stream(url, json=body)
    assert caught.value.kind == "broken"


# -- streams ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["openai_text.sse", "openai_tool_calls.sse", "vllm_reasoning.sse"])
def test_stream_gives_the_decoder_chunks(
    server: ServerThread, open_stream: Callable[..., Opened], name: str
) -> None:
    status, headers, chunks = open_stream(f"{server.url}/stream/{name}")
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    assert chunks == run_decoder([fixture(name)]).items
    assert len(chunks) == MANIFEST[name]["n_chunks"]


def test_stream_error_mid_stream_raises_after_the_chunks(
    server: ServerThread, open_stream: Callable[..., Opened]
) -> None:
    name = "openai_error_midstream.sse"
    with pytest.raises(StreamError) as caught:
        open_stream(f"{server.url}/stream/{name}")
    assert not isinstance(caught.value, HTTPStatusError)
    assert MANIFEST[name]["error_message"] in caught.value.error.message


@pytest.mark.parametrize("kind", ["application/json", "text/html"])
def test_mislabelled_stream_is_still_decoded(
    server: ServerThread, open_stream: Callable[..., Opened], kind: str
) -> None:
    name = "openai_text.sse"
    _, _, chunks = open_stream(f"{server.url}/stream/{name}?type={kind}")
    assert len(chunks) == MANIFEST[name]["n_chunks"]


def test_request_gets_accept_and_the_callers_body(
    server: ServerThread, open_stream: Callable[..., Opened]
) -> None:
    class Echo(CreateChatCompletionStreamResponse, kw_only=True):
        echo: dict[str, Any]

    _, _, [chunk] = open_stream(f"{server.url}/echo", type=Echo, json={"model": "m"})
    assert chunk.echo == {"accept": "text/event-stream", "json": {"model": "m"}}
    _, _, [chunk] = open_stream(f"{server.url}/echo", type=Echo, json={}, headers={"accept": "*/*"})
    assert chunk.echo["accept"] == "*/*"


def test_raw_reads_are_the_body_unchanged(server: ServerThread) -> None:
    name = "openai_logprobs.sse"
    with (
        httpx.Client(timeout=10) as client,
        connect_stream(client, "GET", f"{server.url}/stream/{name}") as stream,
    ):
        reads = list(stream.iter_bytes())
        with pytest.raises(RuntimeError, match="already read"):
            stream.iter_bytes()
    assert b"".join(reads) == fixture(name)
    assert len(reads) > 1


async def test_async_raw_reads_feed_the_decoder(server: ServerThread) -> None:
    name = "openai_n2.sse"
    async with (
        aiohttp.ClientSession() as session,
        aconnect_stream(session, "GET", f"{server.url}/stream/{name}") as stream,
    ):
        assert isinstance(stream.decoder, ChunkDecoder)
        data = b""
        chunks = []
        async for read in stream.aiter_bytes():
            data += read
            chunks += stream.decoder.feed(read)
        chunks += stream.decoder.close()
    assert data == fixture(name)
    assert len(chunks) == MANIFEST[name]["n_chunks"]
    assert stream.decoder.done


# -- parse_error_body on its own ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ERROR_BODIES))
def test_parse_error_body_shapes(name: str) -> None:
    status, kind, body, expected = ERROR_BODIES[name]
    reason = "Service Unavailable" if status == 503 else ""
    assert parse_error_body(body, status=status, reason=reason, content_type=kind) == expected
    assert parse_error_body(body.decode(), status=status, reason=reason, content_type=kind) == (
        expected
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'"a bare JSON string"', "a bare JSON string"),
        (b"[1, 2]", "[1, 2]"),
        (b'{"error": {"type": "server_error"}}', "HTTP 500"),
        (b'{"error": false, "message": "flat"}', "flat"),
        (
            b"<!doctype html><body><script>x()</script><p>Service &amp; down</p></body>",
            "Service & down",
        ),
        (b"\xff\xfe bad utf-8", "\ufffd\ufffd bad utf-8"),
    ],
)
def test_parse_error_body_odd_bodies(body: bytes, message: str) -> None:
    assert parse_error_body(body, status=500).message == message


# -- optional dependencies ----------------------------------------------------------------------


def test_importing_the_module_imports_no_client() -> None:
    code = (
        "import sys, streamspec.http\n"
        "assert 'httpx' not in sys.modules and 'aiohttp' not in sys.modules, sorted(sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()


def test_missing_client_names_the_extra() -> None:
    with pytest.raises(MissingExtraError) as caught:
        require("streamspec_not_a_module", "http", "streamspec.http with an httpx client")
    assert isinstance(caught.value, ImportError)
    assert caught.value.extra == "http"
    assert str(caught.value) == (
        "streamspec.http with an httpx client needs streamspec_not_a_module, which is not"
        " installed: pip install 'streamspec[http]'"
    )


def test_stalled_server_is_a_timeout() -> None:
    # The server sends half the stream, then nothing until it stops: any read timeout fires.
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with MockUpstream({"m": load_fixture("openai_text")}, split="stall") as upstream:
        url = upstream.base_url + "/chat/completions"
        chunks: list[Any] = []
        with (
            httpx.Client(timeout=httpx.Timeout(10, read=0.3)) as client,
            connect_stream(client, "POST", url, json=body) as stream,
            pytest.raises(TransportError) as caught,
        ):
            chunks.extend(stream)

        async def via_aiohttp() -> TransportError:
            timeout = aiohttp.ClientTimeout(total=10, sock_read=0.3)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                try:
                    async with aconnect_stream(session, "POST", url, json=body) as astream:
                        async for _ in astream:
                            pass
                except TransportError as exc:
                    return exc
            raise AssertionError("no timeout")

        late = asyncio.run(via_aiohttp())
    assert caught.value.kind == "timeout"
    assert str(caught.value).startswith(f"timed out talking to {url}")
    assert 0 < len(chunks) < MANIFEST["openai_text.sse"]["n_chunks"]
    assert late.kind == "timeout"


def test_mislabelled_stream_is_not_buffered(server: ServerThread) -> None:
    # A stream labelled application/json must not wait for the whole body: the
    # first chunk arrives while the server still holds the rest back.
    with (
        httpx.Client(timeout=10) as client,
        connect_stream(client, "POST", f"{server.url}/held") as stream,
    ):
        chunks = iter(stream)
        first = next(chunks)
        server.call_soon(server.app.state.release.set)
        rest = list(chunks)
    assert len(rest) + 1 == MANIFEST["openai_text.sse"]["n_chunks"]
    assert first == run_decoder([fixture("openai_text.sse")]).items[0]
