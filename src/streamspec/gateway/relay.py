"""The streamed response: upstream events relayed as they arrive, accounted on the side.

Each upstream read goes to the client as one body message: the read itself
when it ends on an event boundary (the usual case: servers flush one event per
write), else its complete events, the rest waiting for its end (the client
never receives half an event). When usage must be hidden from the client or
the model shown differs, the complete events go through
:class:`~streamspec.gateway.edit.StreamEditor` first. On the side a
:class:`~streamspec.ChunkDecoder` decodes the *upstream's* bytes and an
accumulator folds the chunks, so the record sees the usage the client may not.

How a stream ends, for the client and in the record alike:

* ``data: [DONE]`` relayed (or every choice finished, for servers that omit
  ``[DONE]``): ``complete``;
* an upstream error event, or an event over ``max_event_size``: the client
  gets ``data: {"error": {...}}`` (the ``openai`` SDK raises
  :class:`openai.APIError`), the record ``error``;
* the upstream silent past the read timeout, an event left incomplete past the
  idle timeout (a trickle), past the total deadline, dead mid-event, or ended
  before finishing: the client gets an error event (after ending any partial line the
  upstream left, such as ``: keep-alive`` without its LF), the record
  ``truncated``;
* the client gone before the end reached it: the upstream request is closed
  at once, the record says ``client_disconnected``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import httpx
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from ..decoder import ChunkDecoder
from ..encode import EventEncoder
from ..errors import (
    Error,
    EventTooLargeError,
    MalformedEventError,
    StreamError,
    TruncatedStreamError,
)
from ..types.common import ErrorObject
from .edit import StreamEditor
from .record import ErrorKind

if TYPE_CHECKING:
    from .exchange import Exchange

__all__ = ["StreamRelay"]

logger = logging.getLogger("streamspec.gateway")

_STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def _clock() -> Callable[[], float]:
    """The event loop's clock (the one cancel-scope deadlines use), cheap to call per read."""
    try:
        return asyncio.get_running_loop().time
    except RuntimeError:  # another backend (trio): anyio's own dispatch
        return anyio.current_time


def error_event(message: str, kind: str = "upstream_error", code: str | None = None) -> bytes:
    """``data: {"error": {...}}\\n\\n``, the mid-stream error the ``openai`` SDK raises on."""
    return EventEncoder().error(ErrorObject(message=message, type=kind, code=code))


class StreamRelay(Response):
    """The streamed response of one exchange (a Starlette ``Response`` run as ASGI)."""

    def __init__(
        self,
        exchange: Exchange,
        upstream: httpx.Response,
        headers: list[tuple[bytes, bytes]],
        editor: StreamEditor,
        decoder: ChunkDecoder[Any],
        accumulator: Any,
    ) -> None:
        # Response.__init__ would add a content-length; a stream has none.
        self.status_code = 200
        self.background = None
        self.body = b""
        self.raw_headers = _STREAM_HEADERS + headers
        self.exchange = exchange
        self.upstream = upstream
        self.editor = editor
        self.decoder = decoder
        self.accumulator = accumulator
        self.finished = False  # the last byte went to the client
        self.gone = False  # the client disconnected
        self.malformed_logged = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = self.exchange
        try:
            async with anyio.create_task_group() as group:

                async def watch() -> None:
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            if not self.finished:
                                self.gone = True
                                group.cancel_scope.cancel()
                            return

                group.start_soon(watch)
                try:
                    await self.relay(send)
                except OSError:  # ASGI servers implementing spec 2.4 raise on a gone client
                    self.gone = True
                except Exception as exc:
                    logger.exception("the gateway failed while relaying a stream")
                    exchange.fail("error", "gateway", f"the gateway failed: {exc!r}")
                    if not self.finished:
                        await self._end(send, error_event("the gateway failed", "server_error"))
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self.upstream.aclose()
                if self.gone and not self.finished:
                    exchange.fail(
                        "client_disconnected", "client_disconnected", "the client disconnected"
                    )
                exchange.chunks = self.accumulator.chunks
                exchange.response = self.accumulator.result()
                await exchange.finish()

    # -- relaying ------------------------------------------------------------------------------

    async def relay(self, send: Send) -> None:
        """Send the response: upstream events as they arrive, then the end or an error event."""
        exchange = self.exchange
        settings = exchange.settings
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        decoder = self.decoder
        feed = decoder.feed
        extend = self.accumulator.extend
        editor = self.editor
        edit = editor.edit if editor.active else None
        pending = bytearray()  # received bytes not yet sent: an incomplete event
        sent = 0  # stream offset up to which bytes went to the client
        received = 0
        idle = settings.idle_timeout
        clock = _clock()
        total = clock() + settings.total_timeout - (time.perf_counter() - exchange.started)
        # The deadline is the total one, or, while an event is incomplete (bytes of it came,
        # not its end), idle seconds after its first bytes: a trickle that never completes an
        # event ends there. Waits between events are the read timeout's business. The usual
        # read (whole events) leaves the deadline alone: no timer is rescheduled.
        deadline = anyio.CancelScope(deadline=total)
        partial = False  # an incomplete event is pending, and the idle deadline armed
        waiting_first = True
        message: Message = {"type": "http.response.body", "body": b"", "more_body": True}
        try:
            with deadline:
                async for data in self.upstream.aiter_raw():
                    try:
                        chunks = feed(data)
                    except Error as exc:
                        chunks, failure = self._recover(exc)
                        if failure is not None:
                            extend(chunks)
                            received += len(data)
                            offset = failure.offset if failure.offset is not None else sent
                            head = self._take(pending, data, max(min(offset, received) - sent, 0))
                            await self._send_error(send, head, failure)
                            return
                    received += len(data)
                    if chunks:
                        extend(chunks)
                        if waiting_first:
                            waiting_first = self._first(chunks)
                    end = decoder.bytes_consumed
                    if end == sent:
                        pending += data
                        if not partial:
                            partial = True
                            deadline.deadline = min(total, clock() + idle)
                        continue
                    if end >= received and not pending:
                        out = data if end == received else data[: end - sent]
                    else:
                        out = self._take(pending, data, min(end, received) - sent)
                    sent = end
                    if pending:  # the read also began the next event
                        partial = True
                        deadline.deadline = min(total, clock() + idle)
                    elif partial:
                        partial = False
                        deadline.deadline = total
                    if edit is not None:
                        out = edit(out)
                    if out:
                        message = {"type": "http.response.body", "body": out, "more_body": True}
                        await send(message)
                    if decoder.done:
                        await self._finish(send)
                        return
        except httpx.ReadTimeout:
            await self._truncated(
                send,
                "truncated",
                f"the upstream sent nothing for {settings.read_timeout:g} s",
                pending,
            )
            return
        except httpx.HTTPError as exc:  # connection reset, incomplete chunked body...
            await self._truncated(
                send, "truncated", f"the upstream connection failed mid-stream: {exc!r}", pending
            )
            return
        if deadline.cancelled_caught:
            now = clock()
            what = (
                f"the stream exceeded the total deadline of {settings.total_timeout:g} s"
                if now >= total
                else f"an upstream event stayed incomplete for {idle:g} s"
            )
            await self._truncated(send, "deadline", what, pending)
            return
        await self._end_of_stream(send, pending)

    def _first(self, chunks: list[Any]) -> bool:
        """Note the time to first token at the first chunk with a choice; False once noted."""
        for chunk in chunks:
            if chunk.choices:
                self.exchange.ttft = time.perf_counter() - self.exchange.started
                return False
        return True

    def _recover(self, error: Error) -> tuple[list[Any], Error | None]:
        """Go on past malformed events after ``error``; stop at an upstream error or worse."""
        decoder = self.decoder
        chunks: list[Any] = []
        while True:
            chunks += error.chunks
            if not isinstance(error, MalformedEventError):
                return chunks, error
            # Not a chunk: passed through as sent; decoding goes on after it.
            if not self.malformed_logged:
                self.malformed_logged = True
                logger.warning("upstream sent a malformed event: %s", error)
            try:
                chunks += decoder.feed(b"")
                return chunks, None
            except Error as exc:
                error = exc

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

    async def _send_error(self, send: Send, head: bytes, failure: Error) -> None:
        """Forward the bytes before a failing event, then the error as an error event."""
        error: ErrorObject
        kind: ErrorKind
        if isinstance(failure, StreamError):
            chunk = failure.chunk
            if chunk is not None and getattr(chunk, "choices", None):
                self.accumulator.add(chunk)  # a normal chunk that also carries an error
            error = failure.error
            kind = "upstream_error"
        elif isinstance(failure, EventTooLargeError):
            error = ErrorObject(
                message="the upstream sent an oversized event", type="upstream_error"
            )
            kind = "upstream_invalid"
        else:
            error = ErrorObject(message="the upstream stream is invalid", type="upstream_error")
            kind = "upstream_invalid"
        self.exchange.fail("error", kind, error.message or str(failure))
        if self.editor.active and head:
            head = self.editor.edit(head)
        await self._end(send, head + EventEncoder().error(error))

    async def _truncated(
        self, send: Send, kind: ErrorKind, message: str, pending: bytearray
    ) -> None:
        """Report truncation: the error event, after ending a partial line left by the upstream."""
        self.exchange.fail("truncated", kind, message)
        client_message = (
            "the upstream stream ended before it was complete"
            if kind == "truncated"
            else "the upstream stream timed out"
        )
        await self._end(send, error_event(client_message, code="upstream_truncated"))

    async def _end_of_stream(self, send: Send, pending: bytearray) -> None:
        """The upstream ended without ``[DONE]``: finish a last event, or report truncation."""
        decoder = self.decoder
        try:
            chunks = decoder.close()
        except TruncatedStreamError:
            await self._truncated(
                send, "truncated", "the upstream closed the stream inside an event", pending
            )
            return
        except StreamError as exc:  # an error event lacking its blank line
            self.accumulator.extend(exc.chunks)
            await self._send_error(send, b"", exc)
            return
        self.accumulator.extend(chunks)
        tail = bytes(pending)
        if tail.strip():
            # End the last line and the last event, so that nothing we send is glued onto it.
            if tail.endswith(b"\r"):
                tail += b"\r"
            elif tail.endswith(b"\n"):
                tail += b"\n"
            else:
                tail += b"\n\n"
            if self.editor.active:
                tail = self.editor.edit(tail)
        else:
            tail = b""
        if decoder.done or self._all_finished():
            if tail:
                await send({"type": "http.response.body", "body": tail, "more_body": True})
            await self._finish(send)
            return
        self.exchange.fail(
            "truncated", "truncated", "the upstream ended the stream before it was finished"
        )
        await self._end(
            send,
            tail
            + error_event(
                "the upstream stream ended before it was complete", code="upstream_truncated"
            ),
        )

    def _all_finished(self) -> bool:
        """Whether every choice seen has a finish reason (some servers omit ``[DONE]``)."""
        choices = self.accumulator.snapshot().choices
        return bool(choices) and all(choice.finish_reason for choice in choices)

    async def _end(self, send: Send, data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": True})
        await self._finish(send)

    async def _finish(self, send: Send) -> None:
        """End the response, unless the client turned out to be gone already.

        The server's disconnect notice (if the client left while the last bytes
        were being sent) reaches the watcher within these two loop steps; the
        watcher then cancels this task. The end message itself wakes the
        watcher too, so ``finished`` is set before it is sent.
        """
        await anyio.lowlevel.checkpoint()
        await anyio.lowlevel.checkpoint()
        self.finished = True
        if self.exchange.status is None:
            self.exchange.status = "complete"
        await send({"type": "http.response.body", "body": b"", "more_body": False})
