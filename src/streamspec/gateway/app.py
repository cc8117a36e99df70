"""The gateway application: routes, admission, the upstream exchange, non-streamed responses.

Routes of the app :func:`create_app` builds:

* ``POST /v1/chat/completions`` and ``POST /v1/completions``: proxied and
  accounted (streamed or not), one :class:`GatewayRecord` each;
* ``GET /v1/models`` (and ``/v1/models/{id}``): passed through;
* ``GET /healthz``: ``{"status": "ok"}``; ``GET /metrics`` with ``metrics=True``;
* anything else: an OpenAI-shaped 404 (or 405 for a wrong method).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

import anyio
import anyio.lowlevel
import httpx
import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..accumulate import ChunkAccumulator
from ..accumulate_completions import CompletionAccumulator
from ..decoder import ChunkDecoder
from ..errors import Error
from ..types.completions import CreateCompletionResponse
from ..types.response import CreateChatCompletionResponse
from ..types.stream import CreateChatCompletionStreamResponse
from .edit import StreamEditor, edit_response
from .exchange import Exchange
from .hooks import Admission, GatewayRequest, OnComplete, OnRequest, Rejection, call_hook
from .record import Endpoint, GatewayRecord
from .relay import StreamRelay
from .settings import GatewaySettings
from .upstream import (
    decode_head,
    error_message,
    relayed_headers,
    request_id,
    upstream_body,
)

__all__ = ["Gateway", "ModelMap", "create_app"]

logger = logging.getLogger("streamspec.gateway")
access_logger = logging.getLogger("streamspec.gateway.access")

ModelMap = Mapping[str, str] | Callable[[str], "str | None"]
"""Requested model -> upstream model: a mapping, or a callable (None: unchanged)."""

_encode = msgspec.json.encode
_FORWARDED_HEADERS = ("openai-organization", "openai-project", "openai-beta", "user-agent")
_decode_chat = msgspec.json.Decoder(CreateChatCompletionResponse).decode
_decode_completion = msgspec.json.Decoder(CreateCompletionResponse).decode
_decode_dict = msgspec.json.Decoder(dict[str, Any]).decode


class _ErrorProbe(msgspec.Struct, gc=False):
    error: Any = None
    choices: Any = None


_decode_probe = msgspec.json.Decoder(_ErrorProbe).decode


def error_response(
    status: int,
    message: str,
    kind: str,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An OpenAI-shaped error: ``{"error": {"message", "type", "param", "code"}}``."""
    body = _encode({"error": {"message": message, "type": kind, "param": None, "code": code}})
    return Response(
        body,
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body; ``_BodyTooLarge`` past ``limit`` bytes, without buffering more."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _BodyTooLarge
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise _BodyTooLarge
    return bytes(body)


def _bearer(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class _Plan(NamedTuple):
    """An admitted request: what goes upstream, and what the client is to see."""

    content: bytes  # the body sent upstream
    headers: dict[str, str]  # the headers sent upstream
    shown: str | None  # the model the client sees in the answer (None: the upstream's)
    strip_usage: bool  # the client did not ask for usage in its stream
    api_key: str | None  # the credential from on_request, if any


class _Reply:
    """The client's side of one exchange: whether a response started, and its end.

    :meth:`whole` sends a whole response: its start and body, then two loop
    steps, then the end. A client that left while the body was being written
    is reported by the server (``http.disconnect``) within those steps, to a
    watcher that sees ``finishing`` still False; the end message itself wakes
    the watcher too, so ``finishing`` is set before it is sent. Once the end
    is sent, an answer still without an outcome is ``complete``.
    """

    __slots__ = ("exchange", "finishing", "send", "started")

    def __init__(self, send: Send, exchange: Exchange) -> None:
        self.send = send
        self.exchange = exchange
        self.started = False
        self.finishing = False

    async def whole(self, response: Response) -> None:
        exchange = self.exchange
        send = self.send
        self.started = True
        exchange.http_status = response.status_code
        await send(
            {"type": "http.response.start", "status": response.status_code,
             "headers": response.raw_headers}
        )  # fmt: skip
        await send({"type": "http.response.body", "body": response.body, "more_body": True})
        await anyio.lowlevel.checkpoint()
        await anyio.lowlevel.checkpoint()
        self.finishing = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if exchange.status is None:
            exchange.status = "complete" if response.status_code < 400 else "error"


class _Proxied:
    """The ASGI app of a proxied route (``/v1/chat/completions``, ``/v1/completions``)."""

    def __init__(self, gateway: Gateway, endpoint: Endpoint) -> None:
        self.gateway = gateway
        self.endpoint: Endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.gateway.serve(scope, receive, send, self.endpoint)


class Gateway:
    """The configuration, hooks and shared upstream client behind one app."""

    def __init__(
        self,
        upstream_url: str,
        *,
        api_key: str | None,
        model_map: ModelMap | None,
        rewrite_model: str | None,
        on_request: OnRequest | None,
        on_complete: OnComplete | None,
        settings: GatewaySettings,
        client: httpx.AsyncClient | None,
        metrics: Any,
    ) -> None:
        base = upstream_url.rstrip("/")
        for suffix in ("/chat/completions", "/completions"):
            base = base.removesuffix(suffix)
        self.base_url = base
        self.api_key = api_key
        self.model_map = model_map
        self.rewrite_model = rewrite_model
        self.on_request = on_request
        self.on_complete = on_complete
        self.settings = settings
        self.metrics = metrics
        self.timeout = httpx.Timeout(
            settings.connect_timeout, read=settings.read_timeout, write=settings.read_timeout,
            pool=settings.connect_timeout,
        )  # fmt: skip
        self._client = client
        self._own_client = client is None
        self._live = 0  # proxied requests not yet recorded
        self._drained: anyio.Event | None = None

    # -- shared pieces ---------------------------------------------------------------------------

    def client(self) -> httpx.AsyncClient:
        """The upstream HTTP client, created on first use in the serving event loop."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.timeout,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
            )
        return self._client

    async def drain(self) -> None:
        """Wait until every proxied request has delivered its record.

        At shutdown the server cancels the requests still running (uvicorn,
        past ``timeout_graceful_shutdown``) and then runs the app's lifespan
        shutdown, which awaits this: each cancelled request still records how
        it ended before the event loop stops.
        """
        if self._live:
            self._drained = anyio.Event()
            await self._drained.wait()

    async def aclose(self) -> None:
        if self._own_client and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def deliver(self, record: GatewayRecord) -> None:
        """Hand ``record`` to the metrics, the access log and ``on_complete``; never raises."""
        if self.metrics is not None:
            try:
                self.metrics.observe(record)
            except Exception:
                logger.exception("recording metrics failed")
        if access_logger.isEnabledFor(logging.INFO):
            access_logger.info(_access_line(record))
        if self.on_complete is None:
            return
        try:
            await call_hook(self.on_complete, record, self.settings.hooks_in_thread)
        except Exception:
            logger.exception("on_complete raised (record of %s request)", record.request_model)

    def upstream_model(self, model: str | None) -> str | None:
        mapping = self.model_map
        if model is None or mapping is None:
            return model
        if callable(mapping):
            mapped = mapping(model)
            return mapped if mapped is not None else model
        return mapping.get(model, model)

    def headers(self, request: Request, stream: bool, api_key: str | None) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            "accept-encoding": "identity",
        }
        key = api_key or self.api_key
        authorization = f"Bearer {key}" if key else request.headers.get("authorization")
        if authorization:
            headers["authorization"] = authorization
        for name in _FORWARDED_HEADERS:
            value = request.headers.get(name)
            if value is not None:
                headers[name] = value
        return headers

    # -- routes ----------------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def models(self, request: Request) -> Response:
        """``GET /v1/models[/{id}]``: the upstream's answer, passed through."""
        key: str | None = None
        if self.on_request is not None:
            info = GatewayRequest(
                endpoint="models", model=None, stream=False, api_key=_bearer(request),
                headers=request.headers, body=b"", http=request,
            )  # fmt: skip
            try:
                admitted = await call_hook(self.on_request, info, self.settings.hooks_in_thread)
            except Rejection as rejection:
                return _rejected(rejection)
            except Exception:
                logger.exception("on_request raised")
                return error_response(500, "the gateway failed", "server_error")
            if isinstance(admitted, Admission):
                key = admitted.api_key
        path = request.url.path.removeprefix("/v1")
        client = self.client()
        try:
            upstream = await client.get(
                self.base_url + path, headers=self.headers(request, False, key)
            )
        except httpx.TimeoutException:
            return error_response(504, "the upstream server timed out", "upstream_error")
        except httpx.HTTPError:
            return error_response(502, "the upstream server is unreachable", "upstream_error")
        if self.api_key and upstream.status_code in (401, 403) and key is None:
            return _auth_error()
        return Response(
            upstream.content,
            status_code=upstream.status_code,
            headers=_header_dict(relayed_headers(upstream.headers.raw)),
            media_type=_content_type(upstream, "application/json"),
        )

    # -- proxied requests ------------------------------------------------------------------------

    async def serve(self, scope: Scope, receive: Receive, send: Send, endpoint: Endpoint) -> None:
        """One proxied request, from its first byte to its record (delivered exactly once).

        Whatever ends it (an answer, a refusal, the client leaving, a gateway
        failure, the server cancelling the task), the record is delivered in
        the ``finally`` below, if the stream relay has not delivered it already.
        """
        exchange = Exchange(self, endpoint)
        reply = _Reply(send, exchange)
        self._live += 1
        try:
            admitted = await self._admit(Request(scope, receive), exchange)
            if isinstance(admitted, Response):
                await reply.whole(admitted)
            else:
                await self._proxy(exchange, admitted, scope, receive, reply)
        except anyio.get_cancelled_exc_class():  # the server cancelled it (shutting down)
            exchange.fail("error", "gateway", "the gateway cancelled the request (shutting down?)")
            raise
        except Exception as exc:
            logger.exception("the gateway failed on a %s request", endpoint)
            exchange.fail("error", "gateway", f"the gateway failed: {exc!r}")
            if not reply.started:
                await reply.whole(error_response(500, "the gateway failed", "server_error"))
        finally:
            with anyio.CancelScope(shield=True):
                await exchange.finish()
            self._live -= 1
            if not self._live and self._drained is not None:
                self._drained.set()

    async def _proxy(
        self, exchange: Exchange, plan: _Plan, scope: Scope, receive: Receive, reply: _Reply
    ) -> None:
        """Ask the upstream, answer the client; the upstream request closes at once if it leaves.

        While the upstream is asked and a whole answer sent, a watcher waits for
        the server's ``http.disconnect``; a streamed answer is handed over to
        :class:`StreamRelay`, which watches for itself.
        """
        gone = False
        relay: StreamRelay | None = None
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                nonlocal gone
                while (await receive())["type"] != "http.disconnect":
                    pass
                if not reply.finishing:  # not the end of our own response
                    gone = True
                    group.cancel_scope.cancel()

            group.start_soon(watch)
            # One loop step: a client that left already (during on_request, say) is seen
            # before anything goes upstream.
            await anyio.lowlevel.checkpoint()
            answer = await self._upstream(exchange, plan)
            if isinstance(answer, StreamRelay):
                relay = answer
            else:
                await reply.whole(answer)
            group.cancel_scope.cancel()
        if gone:
            if relay is not None:
                with anyio.CancelScope(shield=True):
                    await relay.upstream.aclose()
            exchange.fail("client_disconnected", "client_disconnected", "the client disconnected")
            if not reply.started:
                exchange.http_status = 499  # the client got nothing (nginx's "client closed")
            return
        if relay is not None:
            reply.started = True
            exchange.http_status = 200
            await relay(scope, receive, reply.send)  # it records how the stream ended

    async def _admit(self, request: Request, exchange: Exchange) -> Response | _Plan:
        """Read and check the request, ask ``on_request``: a refusal, or what to send upstream."""
        settings = self.settings
        try:
            body = await _read_body(request, settings.max_body_size)
        except ClientDisconnect:
            exchange.fail("client_disconnected", "client_disconnected", "the client disconnected")
            return Response(status_code=499)  # never seen: the client is gone
        except _BodyTooLarge:
            message = f"the request body exceeds {settings.max_body_size} bytes"
            exchange.fail("error", "body_too_large", message)
            return error_response(413, message, "invalid_request_error", "request_too_large")
        try:
            head = decode_head(body)
        except msgspec.DecodeError as exc:
            message = f"the request body is not a JSON object: {exc}"
            exchange.fail("error", "invalid_request", message)
            return error_response(400, message, "invalid_request_error")
        model = head.model if isinstance(head.model, str) else None
        stream = head.stream is True
        exchange.request_model = model
        exchange.stream = stream
        exchange.include_usage = head.include_usage

        api_key: str | None = None
        upstream_model = self.upstream_model(model)
        if self.on_request is not None:
            info = GatewayRequest(
                endpoint=exchange.endpoint, model=model, stream=stream,
                api_key=_bearer(request), headers=request.headers, body=body, http=request,
            )  # fmt: skip
            try:
                admitted = await call_hook(self.on_request, info, settings.hooks_in_thread)
            except Rejection as rejection:
                exchange.context = rejection.context
                exchange.fail("error", "rejected", rejection.message)
                return _rejected(rejection)
            except Exception as exc:
                logger.exception("on_request raised")
                exchange.fail("error", "hook_failed", f"on_request raised {exc!r}")
                return error_response(500, "the gateway failed", "server_error")
            if isinstance(admitted, Admission):
                exchange.context = admitted.context
                if admitted.model is not None:
                    upstream_model = admitted.model
                api_key = admitted.api_key
            else:
                exchange.context = admitted
        exchange.upstream_model = upstream_model

        ask_usage = stream and not head.include_usage
        content = upstream_body(body, head, upstream_model, ask_usage)
        shown = self.rewrite_model
        if shown is None and upstream_model != model:
            shown = model  # the client keeps seeing the name it asked for
        return _Plan(
            content=content,
            headers=self.headers(request, stream, api_key),
            shown=shown,
            strip_usage=not head.include_usage,
            api_key=api_key,
        )

    async def _upstream(self, exchange: Exchange, plan: _Plan) -> Response:
        """Send ``plan`` upstream: the relay of its stream, or the whole answer for the client."""
        settings = self.settings
        stream = exchange.stream
        shown, api_key = plan.shown, plan.api_key
        client = self.client()
        path = "/chat/completions" if exchange.endpoint == "chat.completions" else "/completions"
        upstream_request = client.build_request(
            "POST", self.base_url + path, content=plan.content, headers=plan.headers
        )
        upstream: httpx.Response | None = None
        try:
            with anyio.fail_after(settings.total_timeout):
                upstream = await client.send(upstream_request, stream=True)
        except (httpx.TimeoutException, TimeoutError) as exc:
            exchange.fail("error", "upstream_timeout", f"upstream timed out: {exc!r}")
            return error_response(504, "the upstream server timed out", "upstream_error")
        except httpx.HTTPError as exc:
            exchange.fail("error", "upstream_unreachable", f"upstream unreachable: {exc!r}")
            return error_response(502, "the upstream server is unreachable", "upstream_error")

        handed_over = False
        try:
            exchange.upstream_status = upstream.status_code
            headers = relayed_headers(upstream.headers.raw)
            exchange.request_id = request_id(headers)
            content_type = upstream.headers.get("content-type", "")
            if stream and upstream.status_code == 200 and "json" not in content_type:
                relay = self._relay(exchange, upstream, headers, shown, plan.strip_usage)
                handed_over = True
                return relay
            try:
                data = await self._read_whole(upstream)
            except _BodyTooLarge:
                message = "the upstream response is too large"
                exchange.fail("error", "upstream_invalid", message)
                return error_response(502, message, "upstream_error")
            except httpx.HTTPError as exc:
                exchange.fail("error", "upstream_error", f"the upstream response failed: {exc!r}")
                return error_response(502, "the upstream response failed", "upstream_error")
            return self._whole(exchange, upstream, data, headers, shown, api_key)
        finally:
            if not handed_over:
                with anyio.CancelScope(shield=True):  # closed even when the client left
                    await upstream.aclose()

    def _relay(
        self,
        exchange: Exchange,
        upstream: httpx.Response,
        headers: list[tuple[bytes, bytes]],
        shown: str | None,
        strip_usage: bool,
    ) -> StreamRelay:
        size = self.settings.max_event_size
        editor = StreamEditor(strip_usage=strip_usage, model=shown)
        decoder: ChunkDecoder[Any]
        accumulator: Any
        if exchange.endpoint == "completions":
            decoder = ChunkDecoder(CreateCompletionResponse, max_event_size=size)
            accumulator = CompletionAccumulator()
        else:
            decoder = ChunkDecoder(CreateChatCompletionStreamResponse, max_event_size=size)
            accumulator = ChunkAccumulator()
        return StreamRelay(exchange, upstream, headers, editor, decoder, accumulator)

    async def _read_whole(self, upstream: httpx.Response) -> bytes:
        limit = self.settings.max_response_size
        data = bytearray()
        with anyio.fail_after(self.settings.total_timeout):
            async for piece in upstream.aiter_raw():
                data += piece
                if len(data) > limit:
                    raise _BodyTooLarge
        return bytes(data)

    def _whole(
        self,
        exchange: Exchange,
        upstream: httpx.Response,
        data: bytes,
        headers: list[tuple[bytes, bytes]],
        shown: str | None,
        api_key: str | None,
    ) -> Response:
        """A non-streamed upstream answer (or an error status) for the client."""
        status = upstream.status_code
        if status != 200:
            message = error_message(data, status)
            if status in (401, 403) and self.api_key and api_key is None:
                # Our own credential was refused: the client must not see the upstream's text.
                exchange.fail("error", "upstream_auth", f"upstream HTTP {status}")
                return _auth_error()
            exchange.fail("error", "upstream_http", message)
            return Response(
                data,
                status_code=status,
                headers=_header_dict(headers),
                media_type=_content_type(upstream, "application/json"),
            )
        try:
            probe = _decode_probe(data)
        except msgspec.DecodeError:
            probe = None
        if probe is not None and probe.error is not None and probe.choices is None:
            message = error_message(data, status)
            exchange.fail("error", "upstream_error", message)
            return error_response(502, message, "upstream_error", headers=_header_dict(headers))
        if exchange.stream:
            return self._as_stream(exchange, data, headers, shown)
        decode = _decode_completion if exchange.endpoint == "completions" else _decode_chat
        media_type = _content_type(upstream, "application/json")
        try:
            if "event-stream" in media_type:
                # A server that streamed anyway: the client gets the accumulated response.
                response: Any = self._accumulated(exchange, data)
                data = _encode(response)
                media_type = "application/json"
            else:
                response = decode(data)
        except (msgspec.DecodeError, Error) as exc:
            exchange.fail("error", "upstream_invalid", f"undecodable upstream response: {exc}")
            return error_response(502, "the upstream response is invalid", "upstream_error")
        if shown is not None:
            response.model = shown
            data = edit_response(data, shown)
        exchange.response = response  # complete once it reached the client (see _Reply)
        return Response(data, status_code=200, headers=_header_dict(headers), media_type=media_type)

    def _as_stream(
        self,
        exchange: Exchange,
        data: bytes,
        headers: list[tuple[bytes, bytes]],
        shown: str | None,
    ) -> Response:
        """A whole response to a streaming request (a server that ignored ``stream``), as SSE.

        Chat: one chunk per choice holding the whole message as its delta (tool
        calls numbered), then the usage chunk if the client asked for usage,
        then ``[DONE]``. Legacy completions already have the chunk's shape.
        """
        legacy = exchange.endpoint == "completions"
        try:
            whole = _decode_dict(data)
            response: Any = (_decode_completion if legacy else _decode_chat)(data)
        except msgspec.DecodeError:
            message = "the upstream answered a streaming request with an invalid body"
            exchange.fail("error", "upstream_invalid", message)
            return error_response(502, message, "upstream_error", headers=_header_dict(headers))
        if shown is not None:
            whole["model"] = response.model = shown
        usage = whole.pop("usage", None)
        events = bytearray()
        if legacy:
            events += b"data: " + _encode(whole) + b"\n\n"
        else:
            head = {key: value for key, value in whole.items() if key != "choices"}
            head["object"] = "chat.completion.chunk"
            for choice in whole.get("choices") or []:
                delta = dict(choice.get("message") or {})
                calls = delta.get("tool_calls")
                if isinstance(calls, list):
                    delta["tool_calls"] = [
                        {"index": number, **call} for number, call in enumerate(calls)
                    ]
                chunk_choice = {key: value for key, value in choice.items() if key != "message"}
                chunk_choice["delta"] = delta
                events += b"data: " + _encode({**head, "choices": [chunk_choice]}) + b"\n\n"
            if usage is not None and exchange.include_usage:
                events += b"data: " + _encode({**head, "choices": [], "usage": usage}) + b"\n\n"
        events += b"data: [DONE]\n\n"
        exchange.response = response
        exchange.chunks = 1
        return Response(
            bytes(events), status_code=200, headers=_header_dict(headers),
            media_type="text/event-stream; charset=utf-8",
        )  # fmt: skip

    def _accumulated(self, exchange: Exchange, data: bytes) -> Any:
        """The response a whole SSE body adds up to (an upstream error in it raises)."""
        size = self.settings.max_event_size
        if exchange.endpoint == "completions":
            completions = CompletionAccumulator()
            decoder: ChunkDecoder[Any] = ChunkDecoder(CreateCompletionResponse, max_event_size=size)
            completions.extend(decoder.feed(data))
            completions.extend(decoder.close())
            exchange.chunks = completions.chunks
            return completions.result()
        chat = ChunkAccumulator()
        decoder = ChunkDecoder(CreateChatCompletionStreamResponse, max_event_size=size)
        chat.extend(decoder.feed(data))
        chat.extend(decoder.close())
        exchange.chunks = chat.chunks
        return chat.result()


def _content_type(upstream: httpx.Response, default: str) -> str:
    for name, value in upstream.headers.raw:
        if name.lower() == b"content-type" and value.isascii():
            return value.decode("ascii")
    return default


def _header_dict(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode("ascii"): value.decode("ascii") for name, value in headers}


def _rejected(rejection: Rejection) -> Response:
    return error_response(
        rejection.status, rejection.message, rejection.type, rejection.code, rejection.headers
    )


def _auth_error() -> Response:
    return error_response(
        502,
        "the upstream refused the gateway's credentials",
        "upstream_error",
        "upstream_auth_failed",
    )


def _access_line(record: GatewayRecord) -> str:
    """One ``key=value`` line per request: status, model, tokens, duration, TTFT."""
    usage = record.usage
    if usage is None:
        tokens = "usage=none"
    else:
        tokens = " ".join(
            f"{name}={value if isinstance(value, int) else '?'}"
            for name, value in (
                ("prompt_tokens", usage.prompt_tokens),
                ("completion_tokens", usage.completion_tokens),
                ("total_tokens", usage.total_tokens),
            )
        )
    ttft = f"{record.ttft * 1000:.1f}" if record.ttft is not None else "-"
    parts = [
        f"endpoint={record.endpoint}",
        f"status={record.status}",
        f"http={record.http_status}",
        f"upstream_http={record.upstream_status}",
        f"model={record.request_model}",
        f"upstream_model={record.upstream_model}",
        f"stream={str(record.stream).lower()}",
        tokens,
        f"chunks={record.chunks}",
        f"duration_ms={record.duration * 1000:.1f}",
        f"ttft_ms={ttft}",
    ]
    if record.error_kind is not None:
        parts.append(f"error_kind={record.error_kind}")
    if record.request_id is not None:
        parts.append(f"request_id={record.request_id}")
    return " ".join(parts)


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    if status == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
        return error_response(405, message, "invalid_request_error", "method_not_allowed")
    message = f"Unknown request URL: {request.method} {request.url.path}"
    return error_response(404, message, "invalid_request_error", "unknown_url")


def create_app(
    upstream_url: str,
    *,
    api_key: str | None = None,
    model_map: ModelMap | None = None,
    rewrite_model: str | None = None,
    on_request: OnRequest | None = None,
    on_complete: OnComplete | None = None,
    read_timeout: float | None = None,
    connect_timeout: float | None = None,
    idle_timeout: float | None = None,
    total_timeout: float | None = None,
    max_body_size: int | None = None,
    max_event_size: int | None = None,
    max_response_size: int | None = None,
    hooks_in_thread: bool | None = None,
    settings: GatewaySettings | None = None,
    metrics: bool | Any = False,
    client: httpx.AsyncClient | None = None,
) -> Starlette:
    """Build the gateway: a Starlette app in front of one OpenAI-compatible upstream.

    * ``upstream_url``: the upstream's OpenAI base URL (``http://host:8000/v1``).
    * ``api_key``: the gateway's own upstream credential (``Authorization:
      Bearer ...``); when None, the client's ``Authorization`` is forwarded.
      An upstream 401/403 against the gateway's own key reaches the client as
      a 502 gateway error, without the upstream's text.
    * ``model_map``: requested model -> upstream model (a mapping or a
      callable returning None for "unchanged"). The client keeps seeing the
      name it asked for: it is spliced into each relayed chunk's ``model``.
    * ``rewrite_model``: a fixed ``model`` every client sees instead.
    * ``on_request``, ``on_complete``: see :mod:`streamspec.gateway.hooks`.
    * timeouts and limits: see :class:`GatewaySettings` (``settings`` gives
      them all at once; a keyword given here wins).
    * ``metrics``: True to count requests, tokens, TTFT and errors with
      ``prometheus-client`` (extra ``prometheus``) and serve ``GET /metrics``;
      or a :class:`streamspec.gateway.metrics.GatewayMetrics` to share.
    * ``client``: an ``httpx.AsyncClient`` to use (not closed by the app); by
      default the app creates one and closes it at shutdown.
    """
    base = settings or GatewaySettings()
    overrides = {
        "read_timeout": read_timeout,
        "connect_timeout": connect_timeout,
        "idle_timeout": idle_timeout,
        "total_timeout": total_timeout,
        "max_body_size": max_body_size,
        "max_event_size": max_event_size,
        "max_response_size": max_response_size,
        "hooks_in_thread": hooks_in_thread,
    }
    chosen = msgspec.structs.replace(
        base, **{name: value for name, value in overrides.items() if value is not None}
    )
    collector: Any = None
    if metrics is True:
        from .metrics import GatewayMetrics

        collector = GatewayMetrics()
    elif metrics:
        collector = metrics
    gateway = Gateway(
        upstream_url,
        api_key=api_key,
        model_map=model_map,
        rewrite_model=rewrite_model,
        on_request=on_request,
        on_complete=on_complete,
        settings=chosen,
        client=client,
        metrics=collector,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await gateway.drain()
            await gateway.aclose()

    routes = [
        Route("/v1/chat/completions", _Proxied(gateway, "chat.completions"), methods=["POST"]),
        Route("/v1/completions", _Proxied(gateway, "completions"), methods=["POST"]),
        Route("/v1/models", gateway.models, methods=["GET"]),
        Route("/v1/models/{model:path}", gateway.models, methods=["GET"]),
        Route("/healthz", gateway.healthz, methods=["GET"]),
    ]
    if collector is not None:
        routes.append(Route("/metrics", collector.endpoint, methods=["GET"]))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: _not_found, 405: _not_found},
    )
    app.state.gateway = gateway
    return app
