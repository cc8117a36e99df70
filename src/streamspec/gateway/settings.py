"""The gateway's settings: what :func:`~streamspec.gateway.create_app` takes besides hooks.

:class:`GatewaySettings` holds them, with their defaults; ``streamspec
serve`` fills it from flags and ``STREAMSPEC_GATEWAY_*`` environment variables.
"""

from __future__ import annotations

import msgspec

from ..sse import DEFAULT_MAX_EVENT_SIZE

__all__ = ["GatewaySettings"]


class GatewaySettings(msgspec.Struct, kw_only=True, frozen=True):
    """Limits and timeouts of the gateway (sizes in bytes, durations in seconds).

    * ``read_timeout``: the longest wait for any upstream byte (httpx's read
      timeout); ``connect_timeout``: for reaching the upstream.
    * ``idle_timeout``: the longest an upstream event may stay incomplete once
      its first bytes came (a trickle that never completes an event ends as
      truncated); waits between events are bounded by ``read_timeout``.
    * ``total_timeout``: the longest a request may take, first byte to last.
    * ``max_body_size``: the largest request body accepted (larger: HTTP 413).
    * ``max_event_size``: the largest upstream SSE event (larger: an error event).
    * ``max_response_size``: the largest non-streamed upstream body read.
    * ``hooks_in_thread``: run plain (non-async) hooks in a worker thread.
    """

    read_timeout: float = 60.0
    connect_timeout: float = 10.0
    idle_timeout: float = 30.0
    total_timeout: float = 900.0
    max_body_size: int = 32 * 1024 * 1024
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    max_response_size: int = 64 * 1024 * 1024
    hooks_in_thread: bool = True
