"""A paced mock OpenAI server for tests, benchmarks and load-test rehearsals.

:class:`MockServer` speaks HTTP/1.1 on loopback with the standard library
only (asyncio streams; no extra needed). It serves ``POST /v1/chat/completions``
and ``POST /v1/completions`` (legacy ``text_completion`` chunks), streaming
like a real server, at a pace you set:

* the role chunk (chat) as soon as the request is read, then ``tokens`` token
  chunks: the first ``ttft`` seconds after the request was read, the next
  ones ``itl`` seconds apart (scheduled from that first instant, so delays do
  not accumulate), each ``data: {...}`` event flushed on its own;
* then the finish chunk (``finish_reason: "length"``), a usage chunk when the
  request asks for it (``stream_options.include_usage``), and ``data: [DONE]``,
  in one write right after the last token;
* ``max_tokens`` (or ``max_completion_tokens``) in the request, when smaller,
  lowers the token count;
* every ``error_every``-th request (1-based) gets HTTP ``error_status`` with an
  OpenAI error body; every ``truncate_every``-th stream stops after half of its
  tokens and the connection is closed without ``[DONE]`` or the end of the
  chunked body;
* ``"stream": false`` gets one ``chat.completion`` (or ``text_completion``) body.

It records ground truth for every request in :attr:`MockServer.streams`
(:class:`MockStream`): when the request was read and when each token event was
written to the socket (``time.perf_counter_ns()``; on Linux that clock is
system-wide, so another process on the machine can compare its own readings).

In-process, in a background thread::

    from streamspec.testing import MockServer

    with MockServer(ttft=0.05, itl=0.02, tokens=64).run_in_thread() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
        ...
        truth = server.streams  # what was sent, and when

or inside a running event loop (``async with MockServer(...) as server``).
From the command line (the base URL is printed on the first line of stdout;
``GET /mock/streams`` returns the ground truth as JSON)::

    python -m streamspec.testing --ttft-ms 50 --itl-ms 20 --tokens 128 --port 8000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

import msgspec

__all__ = ["MockServer", "MockStream", "main"]

_WORDS = (
    " the", " stream", " of", " tokens", " arrives", " on", " time", ",", " one", " by", " one",
    " café", " naïve", " 😀", " and", " then", " it", " ends", ".",
)  # fmt: skip
_MAX_REQUEST = 16 << 20


class MockStream(msgspec.Struct, kw_only=True):
    """Ground truth of one request the mock answered (times: ``perf_counter_ns``).

    ``token_sent_ns`` holds the instant each token event was written to the
    socket; ``status`` is ``"complete"``, ``"error"`` (an HTTP error was
    returned), ``"truncated"`` (cut on purpose) or ``"disconnected"`` (the
    client went away); ``prompt_tokens`` is what the usage chunk reported.
    """

    index: int
    path: str
    model: str
    stream: bool
    received_ns: int
    token_sent_ns: list[int] = []
    end_ns: int = 0
    status: Literal["complete", "error", "truncated", "disconnected"] = "complete"
    http_status: int = 200
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _BadRequest(Exception):
    pass


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


class MockServer:
    """A paced OpenAI-compatible streaming server (see :mod:`streamspec.testing`).

    ``ttft`` and ``itl`` are seconds; ``tokens`` is the number of token chunks
    per stream; ``host``/``port`` where to listen (port 0: any free port,
    known once started as :attr:`port`).
    """

    def __init__(
        self,
        *,
        ttft: float = 0.05,
        itl: float = 0.02,
        tokens: int = 32,
        error_every: int = 0,
        error_status: int = 500,
        truncate_every: int = 0,
        model: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if tokens < 1:
            raise ValueError("tokens must be at least 1")
        self.ttft = ttft
        self.itl = itl
        self.tokens = tokens
        self.error_every = error_every
        self.error_status = error_status
        self.truncate_every = truncate_every
        self.model = model
        self.host = host
        self.port = port
        self.streams: list[MockStream] = []
        self._requests = 0
        self._streamed = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ``http://HOST:PORT/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> MockServer:
        """Start listening in the running event loop."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and close every open connection."""
        server = self._server
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)
        self._server = None

    async def __aenter__(self) -> MockServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def run_in_thread(self) -> Iterator[MockServer]:
        """Serve from a background thread (its own event loop) while the block runs."""
        started = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            self._stop = asyncio.Event()
            try:
                await self.start()
            except BaseException as exc:
                failure.append(exc)
                raise
            finally:
                started.set()
            await self._stop.wait()
            await self.stop()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(serve())
            except BaseException:  # reported through ``failure``
                pass
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="streamspec-mock", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise failure[0]
        try:
            yield self
        finally:
            loop, stop = self._loop, self._stop
            if loop is not None and stop is not None:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(stop.set)
            self._thread.join()

    # -- HTTP ----------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
                    return
                received = time.perf_counter_ns()
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = [*lines[0].split(" "), "", ""][:3]
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                if length > _MAX_REQUEST:
                    return
                body = await reader.readexactly(length) if length else b""
                keep = await self._respond(writer, method, path.split("?")[0], body, received)
                if not keep or headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    @staticmethod
    async def _send(
        writer: asyncio.StreamWriter, status: int, body: bytes, content_type: str
    ) -> None:
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()

    async def _error(self, writer: asyncio.StreamWriter, status: int, message: str) -> None:
        kind = "invalid_request_error" if status < 500 else "server_error"
        body = json.dumps(
            {"error": {"message": message, "type": kind, "param": None, "code": None}}
        )
        await self._send(writer, status, body.encode(), "application/json")

    async def _respond(
        self, writer: asyncio.StreamWriter, method: str, path: str, body: bytes, received: int
    ) -> bool:
        path = path.rstrip("/")
        if method == "GET" and path == "/mock/streams":
            await self._send(writer, 200, msgspec.json.encode(self.streams), "application/json")
            return True
        if method == "GET" and path == "/v1/models":
            model = self.model or "mock-model"
            listing = {"object": "list", "data": [{"id": model, "object": "model"}]}
            await self._send(writer, 200, json.dumps(listing).encode(), "application/json")
            return True
        if method != "POST" or path not in ("/v1/chat/completions", "/v1/completions"):
            await self._error(writer, 404, f"no route for {method} {path}")
            return True
        try:
            request = json.loads(body)
            if not isinstance(request, dict):
                raise _BadRequest("the body is not a JSON object")
        except (ValueError, _BadRequest) as exc:
            await self._error(writer, 400, f"invalid JSON body: {exc}")
            return True
        legacy = path == "/v1/completions"
        model = str(request.get("model") or "")
        self._requests += 1
        number = self._requests
        record = MockStream(
            index=number - 1,
            path=path,
            model=model,
            stream=request.get("stream") is True,
            received_ns=received,
        )
        self.streams.append(record)
        if self.model is not None and model != self.model:
            record.status, record.http_status = "error", 404
            await self._error(writer, 404, f"The model `{model}` does not exist.")
            return True
        if self.error_every and number % self.error_every == 0:
            record.status, record.http_status = "error", self.error_status
            await self._error(writer, self.error_status, "mock failure (error_every)")
            return True
        tokens = self.tokens
        for name in ("max_tokens", "max_completion_tokens"):
            limit = request.get(name)
            if isinstance(limit, int) and 0 < limit < tokens:
                tokens = limit
        prompt = request.get("prompt") if legacy else request.get("messages")
        record.prompt_tokens = max(1, len(json.dumps(prompt)) // 4)
        record.completion_tokens = tokens
        if not record.stream:
            await self._whole(writer, record, legacy, tokens, received)
            return True
        return await self._stream(writer, request, record, legacy, tokens, received)

    def _payloads(self, model: str, legacy: bool, number: int) -> tuple[bytes, bytes]:
        """The bytes before and after a token's text in a token event."""
        created = int(time.time())
        if legacy:
            head = (
                f'data: {{"id":"cmpl-mock-{number}","object":"text_completion",'
                f'"created":{created},"model":{json.dumps(model)},'
                '"choices":[{"index":0,"text":'
            )
            tail = ',"logprobs":null,"finish_reason":null}]}\n\n'
        else:
            head = (
                f'data: {{"id":"chatcmpl-mock-{number}","object":"chat.completion.chunk",'
                f'"created":{created},"model":{json.dumps(model)},'
                '"system_fingerprint":"fp_mock","choices":[{"index":0,"delta":{"content":'
            )
            tail = '},"logprobs":null,"finish_reason":null}]}\n\n'
        return head.encode(), tail.encode()

    def _ending(self, record: MockStream, legacy: bool, usage: bool) -> bytes:
        kind = "text_completion" if legacy else "chat.completion.chunk"
        prefix = "cmpl" if legacy else "chatcmpl"
        base: dict[str, Any] = {
            "id": f"{prefix}-mock-{record.index + 1}",
            "object": kind,
            "created": int(time.time()),
            "model": record.model,
        }
        choice: dict[str, Any] = {"index": 0, "finish_reason": "length"}
        if legacy:
            choice["text"] = ""
        else:
            choice["delta"] = {}
        parts = [{**base, "choices": [choice]}]
        if usage:
            counts = {
                "prompt_tokens": record.prompt_tokens,
                "completion_tokens": record.completion_tokens,
                "total_tokens": record.prompt_tokens + record.completion_tokens,
            }
            parts.append({**base, "choices": [], "usage": counts})
        events = b"".join(b"data: " + json.dumps(part).encode() + b"\n\n" for part in parts)
        return events + b"data: [DONE]\n\n"

    async def _whole(
        self, writer: asyncio.StreamWriter, record: MockStream, legacy: bool, tokens: int, at: int
    ) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(max(0.0, self.ttft + self.itl * (tokens - 1) - (loop.time() - start)))
        text = "".join(_WORDS[i % len(_WORDS)] for i in range(tokens))
        usage = {
            "prompt_tokens": record.prompt_tokens,
            "completion_tokens": tokens,
            "total_tokens": record.prompt_tokens + tokens,
        }
        if legacy:
            choice: dict[str, Any] = {"index": 0, "text": text, "finish_reason": "length"}
        else:
            message = {"role": "assistant", "content": text}
            choice = {"index": 0, "message": message, "finish_reason": "length"}
        kind = "text_completion" if legacy else "chat.completion"
        body = {"id": "mock", "object": kind, "created": 0, "model": record.model,
                "choices": [choice], "usage": usage}  # fmt: skip
        record.end_ns = time.perf_counter_ns()
        await self._send(writer, 200, json.dumps(body).encode(), "application/json")

    async def _stream(
        self,
        writer: asyncio.StreamWriter,
        request: dict[str, Any],
        record: MockStream,
        legacy: bool,
        tokens: int,
        received: int,
    ) -> bool:
        self._streamed += 1
        cut = self.truncate_every and self._streamed % self.truncate_every == 0
        options = request.get("stream_options")
        usage = isinstance(options, dict) and options.get("include_usage") is True
        head, tail = self._payloads(record.model, legacy, record.index + 1)
        words = [json.dumps(word).encode() for word in _WORDS]
        transport = writer.transport
        write = transport.write
        clock = time.perf_counter_ns
        sent = record.token_sent_ns
        start = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
            b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        if not legacy:
            role = head + b'"","role":"assistant"' + tail
            start += _chunked(role)
        write(start)
        loop = asyncio.get_running_loop()
        # The schedule: first token at received + ttft, then every itl, on the loop's clock.
        origin = loop.time() - (clock() - received) * 1e-9
        stop_at = tokens // 2 if cut else tokens
        try:
            for position in range(stop_at):
                due = origin + self.ttft + self.itl * position
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if transport.is_closing():
                    record.status = "disconnected"
                    record.end_ns = clock()
                    return False
                write(_chunked(head + words[position % len(words)] + tail))
                sent.append(clock())
                if transport.get_write_buffer_size() > 1 << 16:
                    await writer.drain()
            if cut:
                record.status = "truncated"
                record.end_ns = clock()
                transport.abort()
                return False
            write(_chunked(self._ending(record, legacy, usage)) + b"0\r\n\r\n")
            record.end_ns = clock()
            await writer.drain()
        except ConnectionError:
            record.status = "disconnected"
            record.end_ns = clock()
            return False
        return True


def main(argv: list[str] | None = None) -> int:
    """``python -m streamspec.testing``: serve until interrupted; print the base URL first."""
    parser = argparse.ArgumentParser(
        prog="python -m streamspec.testing", description="A paced mock OpenAI server."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--itl-ms", type=float, default=20.0)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--error-every", type=int, default=0)
    parser.add_argument("--truncate-every", type=int, default=0)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop if installed")
    args = parser.parse_args(argv)
    server = MockServer(
        ttft=args.ttft_ms / 1000,
        itl=args.itl_ms / 1000,
        tokens=args.tokens,
        error_every=args.error_every,
        truncate_every=args.truncate_every,
        host=args.host,
        port=args.port,
    )

    async def serve() -> None:
        await server.start()
        sys.stdout.write(server.base_url + "\n")
        sys.stdout.flush()
        await asyncio.Event().wait()

    loop_factory = None
    if args.uvloop:
        with contextlib.suppress(ImportError):
            import uvloop

            loop_factory = uvloop.new_event_loop
    try:
        if loop_factory is not None:
            loop = loop_factory()
            loop.run_until_complete(serve())
        else:
            asyncio.run(serve())
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
