"""One request's life in the gateway, from its first byte to its record."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .record import Endpoint, ErrorKind, GatewayRecord, GatewayStatus, empty_response, usage_of

if TYPE_CHECKING:
    from .app import Gateway

__all__ = ["Exchange"]


class Exchange:
    """The state of one request; :meth:`finish` turns it into a :class:`GatewayRecord`, once.

    The first outcome set (:meth:`fail`, or ``status = "complete"``) is the one
    the record keeps.
    """

    __slots__ = (
        "chunks",
        "context",
        "endpoint",
        "error",
        "error_kind",
        "finished",
        "gateway",
        "http_status",
        "include_usage",
        "request_id",
        "request_model",
        "response",
        "settings",
        "started",
        "status",
        "stream",
        "ttft",
        "upstream_model",
        "upstream_status",
    )

    def __init__(self, gateway: Gateway, endpoint: Endpoint) -> None:
        self.gateway = gateway
        self.settings = gateway.settings
        self.endpoint = endpoint
        self.started = time.perf_counter()
        self.request_model: str | None = None
        self.upstream_model: str | None = None
        self.context: Any = None
        self.stream = False
        self.include_usage = False  # the client asked for usage in its stream
        self.status: GatewayStatus | None = None
        self.error: str | None = None
        self.error_kind: ErrorKind | None = None
        self.http_status: int | None = None
        self.upstream_status: int | None = None
        self.request_id: str | None = None
        self.response: Any = None
        self.chunks = 0
        self.ttft: float | None = None
        self.finished = False

    def fail(self, status: GatewayStatus, kind: ErrorKind, message: str) -> None:
        """Set the outcome, unless one is already set."""
        if self.status is None:
            self.status, self.error_kind, self.error = status, kind, message

    def record(self) -> GatewayRecord:
        response = self.response if self.response is not None else empty_response(self.endpoint)
        usage = usage_of(response)
        status = self.status or "truncated"
        return GatewayRecord(
            status=status,
            request_model=self.request_model,
            response=response,
            usage=usage,
            usage_reported=usage is not None,
            error=self.error if status != "complete" else None,
            error_kind=self.error_kind if status != "complete" else None,
            endpoint=self.endpoint,
            upstream_model=self.upstream_model,
            context=self.context,
            chunks=self.chunks,
            stream=self.stream,
            http_status=self.http_status,
            upstream_status=self.upstream_status,
            request_id=self.request_id,
            duration=time.perf_counter() - self.started,
            ttft=self.ttft,
        )

    async def finish(self) -> None:
        """Deliver the record (once); never raises."""
        if self.finished:
            return
        self.finished = True
        # Every path to the end sets an outcome; none means the task was cancelled
        # (the server shutting down) or the gateway failed in an unforeseen way.
        self.fail("error", "gateway", "the request ended before its outcome was known")
        await self.gateway.deliver(self.record())
