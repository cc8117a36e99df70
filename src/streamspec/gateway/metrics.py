"""Prometheus metrics of the gateway (extra ``prometheus``: ``prometheus-client``).

Counted once per request, from its :class:`~streamspec.gateway.GatewayRecord`
(nothing per chunk, so the hot path pays nothing):

* ``streamspec_gateway_requests_total{endpoint, model, status}``
* ``streamspec_gateway_tokens_total{endpoint, model, kind}`` (``prompt``, ``completion``)
* ``streamspec_gateway_errors_total{endpoint, kind}`` (see :data:`~streamspec.gateway.ErrorKind`)
* ``streamspec_gateway_usage_missing_total{endpoint, model}``: responses without usage
* ``streamspec_gateway_ttft_seconds{endpoint, model}`` and
  ``streamspec_gateway_duration_seconds{endpoint, model}``: histograms

``model`` is the requested model. Each :class:`GatewayMetrics` has its own
registry (``registry``), served by ``GET /metrics`` when the app is built with
``metrics=True``.
"""

from __future__ import annotations

from typing import Any

from .._extras import require

require("prometheus_client", "prometheus", "streamspec.gateway metrics")

from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402

from .record import GatewayRecord  # noqa: E402

__all__ = ["GatewayMetrics"]

_TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
_DURATION_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class GatewayMetrics:
    """The gateway's counters and histograms, in a registry of their own."""

    def __init__(self, registry: Any = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        prefix = "streamspec_gateway"
        self.requests = Counter(
            f"{prefix}_requests", "Requests by outcome", ["endpoint", "model", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.tokens = Counter(
            f"{prefix}_tokens", "Tokens reported by the upstream", ["endpoint", "model", "kind"],
            registry=self.registry,
        )  # fmt: skip
        self.errors = Counter(
            f"{prefix}_errors", "Requests that did not complete, by cause", ["endpoint", "kind"],
            registry=self.registry,
        )  # fmt: skip
        self.usage_missing = Counter(
            f"{prefix}_usage_missing", "Responses without usage", ["endpoint", "model"],
            registry=self.registry,
        )  # fmt: skip
        self.ttft = Histogram(
            f"{prefix}_ttft_seconds", "Time to the first chunk", ["endpoint", "model"],
            buckets=_TTFT_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.duration = Histogram(
            f"{prefix}_duration_seconds", "Request duration", ["endpoint", "model"],
            buckets=_DURATION_BUCKETS, registry=self.registry,
        )  # fmt: skip

    def observe(self, record: GatewayRecord) -> None:
        """Count one finished request."""
        endpoint = record.endpoint
        model = record.request_model or ""
        self.requests.labels(endpoint, model, record.status).inc()
        if record.error_kind is not None:
            self.errors.labels(endpoint, record.error_kind).inc()
        usage = record.usage
        if usage is not None:
            for kind, count in (("prompt", usage.prompt_tokens),
                                ("completion", usage.completion_tokens)):  # fmt: skip
                if isinstance(count, int):
                    self.tokens.labels(endpoint, model, kind).inc(count)
        elif record.status == "complete":
            self.usage_missing.labels(endpoint, model).inc()
        if record.ttft is not None:
            self.ttft.labels(endpoint, model).observe(record.ttft)
        self.duration.labels(endpoint, model).observe(record.duration)

    async def endpoint(self, request: Request) -> Response:
        """``GET /metrics``: the text exposition format."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
