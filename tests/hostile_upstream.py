"""An OpenAI-compatible upstream that behaves as real servers (and hostile ones) do.

Served by :class:`mock_upstream.ServerThread`. The request's ``model`` picks
the behaviour:

* ``openai`` (and any model not listed below): honours
  ``stream_options.include_usage`` as OpenAI does: with it, every chunk carries
  ``"usage":null`` and a usage-only chunk precedes ``[DONE]``; without it,
  neither. Chunks carry ``obfuscation`` and echo the requested model. A
  non-streamed request gets a ``chat.completion`` with usage.
* ``no-usage``: never sends usage, asked or not.
* ``headers``: ``openai`` plus a non-latin-1 ``x-request-id`` (raw UTF-8 bytes),
  after the usual ``x-request-id: req-abc123`` every stream carries,
  rate-limit headers and ``retry-after``.
* ``keepalive-end``: two chunks, then ``: keep-alive`` without LF, then the end.
* ``json-error``: HTTP 200, ``application/json`` body ``{"error": {...}}``.
* ``auth``: HTTP 401 quoting the masked credential the gateway sent.
* ``trickle``: the start of an event, one byte every ``trickle_delay`` s, forever.
* ``crlf-die``: CRLF events, then the connection drops inside an event.
* ``stall-K``: ``K`` chunks, then nothing until the client goes away.

``POST /v1/completions`` streams legacy ``text_completion`` chunks the same
way (usage as asked); ``GET /v1/models`` lists ``openai``. ``requests`` holds
the JSON bodies received, ``headers`` the request headers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["TOKENS", "HostileUpstream", "openai_stream"]

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]

TOKENS = ["Bon", "jour", " à", " tous", " !"]
USAGE = {"prompt_tokens": 9, "completion_tokens": len(TOKENS), "total_tokens": 9 + len(TOKENS)}


def _event(payload: dict[str, Any]) -> bytes:
    return (
        b"data: "
        + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        + b"\n\n"
    )


def openai_stream(model: str, include_usage: bool, legacy: bool = False) -> list[bytes]:
    """The events OpenAI sends for :data:`TOKENS`, with or without usage."""
    events: list[bytes] = []
    head: dict[str, Any] = {
        "id": "chatcmpl-abc" if not legacy else "cmpl-abc",
        "object": "chat.completion.chunk" if not legacy else "text_completion",
        "created": 1758037512,
        "model": model,
    }
    if not legacy:
        head["service_tier"] = "default"
        head["system_fingerprint"] = "fp_1"
    pieces = [("", None), *[(token, None) for token in TOKENS], ("", "stop")]
    for number, (text, finish) in enumerate(pieces):
        if legacy:
            choice: dict[str, Any] = {"text": text, "index": 0, "logprobs": None}
        else:
            delta: dict[str, Any] = {"content": text}
            if number == 0:
                delta = {"role": "assistant", "content": "", "refusal": None}
            elif finish:
                delta = {}
            choice = {"index": 0, "delta": delta, "logprobs": None}
        choice["finish_reason"] = finish
        chunk: dict[str, Any] = {**head, "choices": [choice]}
        if include_usage:
            chunk["usage"] = None
        chunk["obfuscation"] = "Qz" * (number % 3 + 1)
        events.append(_event(chunk))
    if include_usage:
        events.append(_event({**head, "choices": [], "usage": USAGE, "obfuscation": "xY"}))
    events.append(b"data: [DONE]\n\n")
    return events


class HostileUpstream:
    """The ASGI app; see the module docstring."""

    def __init__(self, *, trickle_delay: float = 0.05) -> None:
        self.trickle_delay = trickle_delay
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.headers.append(
            {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        )
        path = scope["path"]
        if path == "/v1/models":
            await _json(
                send, 200, {"object": "list", "data": [{"id": "openai", "object": "model"}]}
            )
            return
        payload = json.loads(bytes(body))
        self.requests.append(payload)
        model = payload.get("model", "")
        legacy = path == "/v1/completions"
        stream = payload.get("stream") is True
        include_usage = (payload.get("stream_options") or {}).get("include_usage") is True
        if model == "json-error":
            await _json(
                send, 200, {"error": {"message": "model overloaded", "type": "server_error"}}
            )
            return
        if model == "auth":
            key = self.headers[-1].get("authorization", "")[7:]
            masked = key[:6] + "*" * 6 + key[-4:]
            text = f"Incorrect API key provided: {masked}."
            await _json(send, 401, {"error": {"message": text, "type": "invalid_request_error",
                                              "code": "invalid_api_key"}})  # fmt: skip
            return
        events = openai_stream(model, include_usage and model != "no-usage", legacy)
        if not stream:
            await self._whole(send, model, legacy)
            return
        extra: list[tuple[bytes, bytes]] = [(b"x-request-id", b"req-abc123")]
        if model == "headers":
            extra += [
                (b"x-request-id", "req-é-✓".encode()),
                (b"x-ratelimit-remaining-requests", b"99"),
                (b"x-ratelimit-reset-tokens", b"6ms"),
                (b"retry-after", b"1"),
                (b"x-internal", b"secret"),
            ]
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream; charset=utf-8"), *extra]})  # fmt: skip
        if model == "keepalive-end":
            for event in events[:2]:
                await _body(send, event)
            await _body(send, b": keep-alive")
        elif model == "trickle":
            await _body(send, events[0])
            gone = asyncio.ensure_future(_disconnected(receive))
            for byte in events[1]:
                await _body(send, bytes([byte]))
                done, _ = await asyncio.wait([gone], timeout=self.trickle_delay)
                if done:
                    return
            gone.cancel()
        elif model == "crlf-die":
            for event in events[:3]:
                await _body(send, event.replace(b"\n", b"\r\n"))
            await _body(send, events[3][:20])
            raise _Die
        elif model.startswith("stall-"):
            count = int(model.removeprefix("stall-"))
            for event in events[:count]:
                await _body(send, event)
            await _disconnected(receive)
            return
        else:
            for event in events:
                await _body(send, event)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _whole(self, send: Send, model: str, legacy: bool) -> None:
        text = "".join(TOKENS)
        if legacy:
            choice: dict[str, Any] = {"text": text, "index": 0, "logprobs": None,
                                      "finish_reason": "stop"}  # fmt: skip
            kind = "text_completion"
        else:
            choice = {"index": 0, "message": {"role": "assistant", "content": text},
                      "logprobs": None, "finish_reason": "stop"}  # fmt: skip
            kind = "chat.completion"
        usage = None if model == "no-usage" else USAGE
        response = {"id": "x", "object": kind, "created": 1, "model": model,
                    "choices": [choice], "usage": usage, "obfuscation": "ab"}  # fmt: skip
        await _json(send, 200, response)


class _Die(Exception):
    """Raised to make uvicorn drop the connection mid-body."""


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _body(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def _json(send: Send, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
