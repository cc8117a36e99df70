"""An OpenAI-compatible streaming proxy that decodes and accounts for what it relays.

Requires the ``gateway`` extra (starlette, uvicorn, httpx)::

    from streamspec.gateway import create_app

    app = create_app("http://vllm:8000/v1", on_complete=print)
    # uvicorn.run(app, port=8080); clients use base_url="http://localhost:8080/v1"

``POST /v1/chat/completions`` is forwarded to ``{upstream_url}/chat/completions``.
For a streaming request the upstream's SSE bytes go to the client as they
arrive: each upstream read is passed through unchanged (only an event still
incomplete at the end of a read waits for its remaining bytes, so the client
never receives half an event). On the side, a :class:`~streamspec.ChunkDecoder`
decodes the chunks and a :class:`~streamspec.accumulate.ChunkAccumulator`
folds them; when the response ends, ``on_complete`` receives a
:class:`GatewayRecord`.

* ``rewrite_model``: every chunk is decoded, its ``model`` replaced, and
  re-encoded (keys streamspec does not model, and SSE comments, are dropped).
* An error reported by the upstream mid-stream (any of the forms
  :class:`~streamspec.ChunkDecoder` recognises) reaches the client as
  ``data: {"error": {...}}``, which the ``openai`` SDK raises
  :class:`openai.APIError` on; the record's status is ``"error"``.
* An upstream that stops sending for ``read_timeout`` seconds, closes the
  connection inside an event, or ends before ``[DONE]`` with a choice still
  unfinished is ``"truncated"``: the client gets an error event too, never a
  stream that looks complete.
* A client that disconnects makes the proxy close the upstream request at
  once; the status is ``"client_disconnected"``.
* Non-streaming requests, and upstream HTTP errors, are forwarded as they are
  (the record decodes the JSON body when it can).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
import httpx
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from .accumulate import ChunkAccumulator
from .decoder import ChunkDecoder
from .encode import EventEncoder
from .errors import (
    Error,
    EventTooLargeError,
    MalformedEventError,
    StreamError,
    TruncatedStreamError,
)
from .types.common import CompletionUsage, ErrorObject, ErrorResponse
from .types.response import CreateChatCompletionResponse
from .types.stream import CreateChatCompletionStreamResponse

__all__ = ["GatewayRecord", "GatewayStatus", "create_app"]

logger = logging.getLogger(__name__)

GatewayStatus = Literal["complete", "truncated", "error", "client_disconnected"]
"""How a proxied response ended; see :class:`GatewayRecord`."""


class GatewayRecord(msgspec.Struct, kw_only=True):
    """What the gateway saw of one request, passed to ``on_complete`` when it ends.

    * ``status``: ``"complete"`` (``[DONE]`` arrived, or a non-streamed
      response succeeded), ``"truncated"`` (the upstream stalled past the read
      timeout, died mid-event, or ended before finishing), ``"error"`` (an
      upstream error, mid-stream or as an HTTP status, or no upstream at all)
      or ``"client_disconnected"``.
    * ``request_model``: the ``model`` of the client's request, if any.
    * ``response``: the chunks accumulated so far (for a non-streamed
      response, its decoded body; empty when there was none).
    * ``usage``: the last usage the upstream reported, if any.
    * ``error``: a message when the status is not ``"complete"``.
    * ``chunks``: chunks decoded from the upstream stream.
    * ``stream``: whether the request asked for a stream.
    * ``upstream_status``: the upstream's HTTP status (None if it never answered).
    * ``duration``: seconds from the request to the end of the response.
    """

    status: GatewayStatus
    request_model: str | None
    response: CreateChatCompletionResponse
    usage: CompletionUsage | None = None
    error: str | None = None
    chunks: int = 0
    stream: bool = True
    upstream_status: int | None = None
    duration: float = 0.0


class _RequestHead(msgspec.Struct, gc=False):
    """The two request fields the proxy reads; the body itself is forwarded untouched."""

    model: Any = None
    stream: Any = False


_decode_head = msgspec.json.Decoder(_RequestHead).decode
_decode_response = msgspec.json.Decoder(CreateChatCompletionResponse).decode
_decode_error = msgspec.json.Decoder(ErrorResponse).decode
_decode_dict = msgspec.json.Decoder(dict[str, Any]).decode
_encode = msgspec.json.encode

_FORWARDED_HEADERS = ("openai-organization", "openai-project", "openai-beta", "user-agent")
_STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def _empty_response() -> CreateChatCompletionResponse:
    return CreateChatCompletionResponse(object="chat.completion", choices=[])


def _error_json(status: int, message: str, kind: str, code: str | None = None) -> Response:
    body = _encode({"error": {"message": message, "type": kind, "param": None, "code": code}})
    return Response(body, status_code=status, media_type="application/json")


def _error_message(body: bytes, status: int) -> str:
    """The message of an upstream error body, or a description of the status."""
    try:
        return _decode_error(body).error.message or f"upstream HTTP {status}"
    except msgspec.DecodeError:
        text = body[:200].decode("utf-8", "replace").strip()
        return f"upstream HTTP {status}: {text}" if text else f"upstream HTTP {status}"


class _Gateway:
    """The proxy's configuration and shared upstream client."""

    def __init__(
        self,
        upstream_url: str,
        *,
        api_key: str | None,
        rewrite_model: str | None,
        on_complete: Callable[[GatewayRecord], None] | None,
        read_timeout: float,
        connect_timeout: float,
        client: httpx.AsyncClient | None,
    ) -> None:
        url = upstream_url.rstrip("/")
        if not url.endswith("/chat/completions"):
            url += "/chat/completions"
        self.url = url
        self.api_key = api_key
        self.rewrite_model = rewrite_model
        self.on_complete = on_complete
        self.read_timeout = read_timeout
        self.timeout = httpx.Timeout(connect_timeout, read=read_timeout)
        self._client = client
        self._own_client = client is None

    def client(self) -> httpx.AsyncClient:
        """The upstream HTTP client, created on first use in the serving event loop."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.timeout,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
            )
        return self._client

    async def aclose(self) -> None:
        if self._own_client and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def report(self, record: GatewayRecord) -> None:
        """Hand ``record`` to ``on_complete``; an exception there is logged, not raised."""
        if self.on_complete is None:
            return
        try:
            self.on_complete(record)
        except Exception:
            logger.exception("on_complete raised")

    def headers(self, request: Request, stream: bool) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            "accept-encoding": "identity",
        }
        authorization = (
            f"Bearer {self.api_key}" if self.api_key else request.headers.get("authorization")
        )
        if authorization:
            headers["authorization"] = authorization
        for name in _FORWARDED_HEADERS:
            value = request.headers.get(name)
            if value is not None:
                headers[name] = value
        return headers

    async def chat_completions(self, request: Request) -> Response:
        """``POST /v1/chat/completions``."""
        started = time.perf_counter()
        body = await request.body()
        try:
            head = _decode_head(body)
        except msgspec.DecodeError as exc:
            return _error_json(400, f"invalid JSON body: {exc}", "invalid_request_error")
        model = head.model if isinstance(head.model, str) else None
        stream = head.stream is True

        def record(status: GatewayStatus, error: str, upstream_status: int | None) -> None:
            self.report(
                GatewayRecord(
                    status=status,
                    request_model=model,
                    response=_empty_response(),
                    error=error,
                    stream=stream,
                    upstream_status=upstream_status,
                    duration=time.perf_counter() - started,
                )
            )

        client = self.client()
        upstream_request = client.build_request(
            "POST", self.url, content=body, headers=self.headers(request, stream)
        )
        try:
            upstream = await client.send(upstream_request, stream=True)
        except httpx.TimeoutException as exc:
            record("error", f"upstream timed out: {exc!r}", None)
            return _error_json(504, "the upstream server timed out", "upstream_error")
        except httpx.HTTPError as exc:
            record("error", f"upstream unreachable: {exc!r}", None)
            return _error_json(502, "the upstream server is unreachable", "upstream_error")

        # A stream is relayed as one whatever its content type, unless the upstream answered JSON.
        content_type = upstream.headers.get("content-type", "")
        if stream and upstream.status_code == 200 and "json" not in content_type:
            return _ProxyStream(self, upstream, model, started)
        try:
            data = await upstream.aread()
        except httpx.HTTPError as exc:
            record("error", f"upstream failed: {exc!r}", upstream.status_code)
            return _error_json(502, "the upstream response failed", "upstream_error")
        finally:
            await upstream.aclose()
        return self._whole(data, upstream, model, stream, started)

    def _whole(
        self,
        data: bytes,
        upstream: httpx.Response,
        model: str | None,
        stream: bool,
        started: float,
    ) -> Response:
        """Forward a non-streamed upstream response, and report it."""
        status = upstream.status_code
        response = _empty_response()
        error: str | None = None
        outcome: GatewayStatus = "complete"
        if status == 200:
            try:
                response = _decode_response(data)
            except msgspec.DecodeError as exc:
                outcome, error = "error", f"undecodable upstream response: {exc}"
            else:
                if self.rewrite_model is not None:
                    response.model = self.rewrite_model
                    try:
                        whole = _decode_dict(data)
                    except msgspec.DecodeError:
                        pass
                    else:
                        whole["model"] = self.rewrite_model
                        data = _encode(whole)
        else:
            outcome, error = "error", _error_message(data, status)
        usage = response.usage if isinstance(response.usage, CompletionUsage) else None
        self.report(
            GatewayRecord(
                status=outcome,
                request_model=model,
                response=response,
                usage=usage,
                error=error,
                stream=stream,
                upstream_status=status,
                duration=time.perf_counter() - started,
            )
        )
        headers = {}
        request_id = upstream.headers.get("x-request-id")
        if request_id is not None:
            headers["x-request-id"] = request_id
        return Response(
            data,
            status_code=status,
            headers=headers,
            media_type=upstream.headers.get("content-type", "application/json"),
        )


class _ProxyStream(Response):
    """The streamed response: relays the upstream, watches the client, reports at the end."""

    def __init__(
        self, gateway: _Gateway, upstream: httpx.Response, model: str | None, started: float
    ) -> None:
        # Response.__init__ would add a content-length; a stream has none.
        self.status_code = 200
        self.background = None
        self.body = b""
        raw = list(_STREAM_HEADERS)
        request_id = upstream.headers.get("x-request-id")
        if request_id is not None:
            raw.append((b"x-request-id", request_id.encode("latin-1")))
        self.raw_headers = raw
        self.gateway = gateway
        self.upstream = upstream
        self.model = model
        self.started = started
        self.decoder = ChunkDecoder()
        self.accumulator = ChunkAccumulator()
        self.status: GatewayStatus | None = None  # set once the outcome is known
        self.error: str | None = None
        self.finished = False  # the last byte went to the client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        disconnected = False
        try:
            async with anyio.create_task_group() as group:

                async def watch() -> None:
                    nonlocal disconnected
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            if not self.finished:
                                disconnected = True
                                group.cancel_scope.cancel()
                            return

                group.start_soon(watch)
                try:
                    await self.relay(send)
                except OSError:  # ASGI servers implementing spec 2.4 raise on a gone client
                    disconnected = True
                except Exception as exc:
                    self.status, self.error = "error", f"the gateway failed: {exc!r}"
                    raise
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self.upstream.aclose()
            if disconnected and not self.finished:
                self.status, self.error = "client_disconnected", "the client disconnected"
            self._report()

    def _report(self) -> None:
        result = self.accumulator.result()
        usage = result.usage if isinstance(result.usage, CompletionUsage) else None
        self.gateway.report(
            GatewayRecord(
                status=self.status or "truncated",
                request_model=self.model,
                response=result,
                usage=usage,
                error=self.error if self.status != "complete" else None,
                chunks=self.accumulator.chunks,
                stream=True,
                upstream_status=self.upstream.status_code,
                duration=time.perf_counter() - self.started,
            )
        )

    # -- relaying ------------------------------------------------------------------------------

    async def relay(self, send: Send) -> None:
        """Send the response: upstream events as they arrive, then the end or an error event."""
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        rewrite = self.gateway.rewrite_model
        encoder = EventEncoder() if rewrite is not None else None
        decoder = self.decoder
        extend = self.accumulator.extend
        pending = bytearray()  # received bytes not yet sent: an incomplete event
        sent = 0  # stream offset up to which bytes went to the client
        try:
            async for data in self.upstream.aiter_raw():
                if not data:
                    continue
                chunks, failure = self._feed(data)
                extend(chunks)
                received = sent + len(pending) + len(data)
                if failure is not None:
                    # Forward what preceded the failing event, then our error event.
                    offset = failure.offset if failure.offset is not None else sent
                    head = self._take(pending, data, max(min(offset, received) - sent, 0))
                    await self._send_error(send, chunks, head, encoder, failure)
                    return
                end = min(decoder.bytes_consumed, received)
                out = self._take(pending, data, end - sent)
                sent = end
                if encoder is not None:
                    out = encoder.events(msgspec.structs.replace(c, model=rewrite) for c in chunks)
                    if decoder.done:
                        out += encoder.done()
                if out:
                    await _body(send, out)
                if decoder.done:
                    self.status = "complete"
                    await self._finish(send)
                    return
        except httpx.ReadTimeout:
            await self._truncated(
                send, f"the upstream sent nothing for {self.gateway.read_timeout:g} s"
            )
            return
        except httpx.HTTPError as exc:  # connection reset, incomplete chunked body...
            await self._truncated(send, f"the upstream connection failed mid-stream: {exc!r}")
            return
        await self._end_of_stream(send, pending, encoder)

    def _feed(self, data: bytes) -> tuple[list[CreateChatCompletionStreamResponse], Error | None]:
        """Decode ``data``; skip malformed events; stop at an error or an oversized event."""
        decoder = self.decoder
        chunks: list[CreateChatCompletionStreamResponse] = []
        while True:
            try:
                chunks += decoder.feed(data)
                return chunks, None
            except MalformedEventError as exc:
                # Not a chunk: passed through as sent; decoding goes on after it.
                chunks += exc.chunks
                logger.warning("upstream sent a malformed event: %s", exc)
                data = b""
            except (StreamError, EventTooLargeError) as exc:
                chunks += exc.chunks
                return chunks, exc

    @staticmethod
    def _take(pending: bytearray, data: bytes, count: int) -> bytes:
        """The first ``count`` bytes of ``pending + data``; the rest stays in ``pending``."""
        if not pending:
            if count >= len(data):
                return data
            pending += data[count:]
            return data[:count]
        pending += data
        out = bytes(pending[:count])
        del pending[:count]
        return out

    async def _send_error(
        self,
        send: Send,
        chunks: list[CreateChatCompletionStreamResponse],
        head: bytes,
        encoder: EventEncoder | None,
        failure: Error,
    ) -> None:
        """Forward the bytes before a failing event, then the error as an error event."""
        error: ErrorObject
        if isinstance(failure, StreamError):
            chunk = failure.chunk
            if isinstance(chunk, CreateChatCompletionStreamResponse) and chunk.choices:
                self.accumulator.add(chunk)  # a normal chunk that also carries an error
            error = failure.error
        else:  # an event over the decoder's size limit
            error = ErrorObject(message=str(failure), type="upstream_error")
        self.status, self.error = "error", error.message or str(failure)
        if encoder is not None:
            rewrite = self.gateway.rewrite_model
            head = encoder.events(msgspec.structs.replace(c, model=rewrite) for c in chunks)
        await _body(send, head + _error_event(error))
        await self._finish(send)

    async def _truncated(self, send: Send, message: str) -> None:
        self.status, self.error = "truncated", message
        error = ErrorObject(message=message, type="upstream_error", code="upstream_truncated")
        await _body(send, _error_event(error))
        await self._finish(send)

    async def _end_of_stream(
        self, send: Send, pending: bytearray, encoder: EventEncoder | None
    ) -> None:
        """The upstream ended without ``[DONE]``: finish a last event, or report truncation."""
        decoder = self.decoder
        try:
            chunks = decoder.close()
        except TruncatedStreamError:
            await self._truncated(send, "the upstream closed the stream inside an event")
            return
        except StreamError as exc:  # an error event lacking its blank line
            self.accumulator.extend(exc.chunks)
            await self._send_error(send, exc.chunks, b"", encoder, exc)
            return
        self.accumulator.extend(chunks)
        completed = bool(chunks) or decoder.done
        if encoder is not None:
            rewrite = self.gateway.rewrite_model
            out = encoder.events(msgspec.structs.replace(c, model=rewrite) for c in chunks)
            if decoder.done:
                out += encoder.done()
        else:
            out = bytes(pending) + (b"\n\n" if completed else b"")
        if out:
            await _body(send, out)
        if decoder.done or self._all_finished():
            self.status = "complete"
            await self._finish(send)
            return
        await self._truncated(send, "the upstream ended the stream before it was finished")

    def _all_finished(self) -> bool:
        """Whether every choice seen has a finish reason (some servers omit ``[DONE]``)."""
        choices = self.accumulator.snapshot().choices
        return bool(choices) and all(choice.finish_reason for choice in choices)

    async def _finish(self, send: Send) -> None:
        self.finished = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _error_event(error: ErrorObject) -> bytes:
    return EventEncoder().error(error)


async def _body(send: Send, data: bytes) -> None:
    message: Message = {"type": "http.response.body", "body": data, "more_body": True}
    await send(message)


def create_app(
    upstream_url: str,
    *,
    api_key: str | None = None,
    rewrite_model: str | None = None,
    on_complete: Callable[[GatewayRecord], None] | None = None,
    read_timeout: float = 60.0,
    connect_timeout: float = 10.0,
    client: httpx.AsyncClient | None = None,
) -> Starlette:
    """Build the proxy: a Starlette app serving ``POST /v1/chat/completions``.

    * ``upstream_url``: the upstream's OpenAI base URL (``http://host:8000/v1``);
      a URL already ending in ``/chat/completions`` is used as is.
    * ``api_key``: sent upstream as ``Authorization: Bearer ...``; when None, the
      client's own ``Authorization`` header is forwarded.
    * ``rewrite_model``: the ``model`` the client sees in every chunk (and in a
      non-streamed response).
    * ``on_complete``: called with a :class:`GatewayRecord` when each response
      ends (in the server's event loop: keep it quick). Exceptions it raises
      are logged.
    * ``read_timeout``: seconds without upstream bytes after which a stream is
      reported truncated; ``connect_timeout``: for reaching the upstream.
    * ``client``: an ``httpx.AsyncClient`` to use (it is not closed by the app);
      by default the app creates one and closes it at shutdown.
    """
    gateway = _Gateway(
        upstream_url,
        api_key=api_key,
        rewrite_model=rewrite_model,
        on_complete=on_complete,
        read_timeout=read_timeout,
        connect_timeout=connect_timeout,
        client=client,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await gateway.aclose()

    return Starlette(
        routes=[Route("/v1/chat/completions", gateway.chat_completions, methods=["POST"])],
        lifespan=lifespan,
    )
