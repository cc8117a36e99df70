"""The gateway as an operator runs it: accounting, hooks, mapping, endpoints, hostile upstreams.

A :class:`hostile_upstream.HostileUpstream` on loopback, the gateway under
uvicorn in a thread, the official ``openai`` SDK (or httpx for raw bytes) as
client. Every expected byte string is built by the upstream's own generator
for the request the client made, never by the gateway's code.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from hostile_upstream import TOKENS, USAGE, HostileUpstream, openai_stream
from mock_upstream import ServerThread
from streamspec.gateway import Admission, GatewayRecord, GatewayRequest, Rejection, create_app

KEY = "sk-UPSTREAM-secret-1234"
MESSAGES: Any = [{"role": "user", "content": "Bonjour"}]
TEXT = "".join(TOKENS)


class Recorder:
    """Collects records (from any thread) and waits for them."""

    def __init__(self) -> None:
        self.records: list[GatewayRecord] = []
        self.changed = threading.Condition()

    def __call__(self, record: GatewayRecord) -> None:
        with self.changed:
            self.records.append(record)
            self.changed.notify_all()

    def wait(self, count: int, timeout: float = 10.0) -> list[GatewayRecord]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.records) >= count, timeout), (
                f"{len(self.records)} records, expected {count}"
            )
            return list(self.records)

    def take(self) -> GatewayRecord:
        """The one record of the request just made."""
        with self.changed:
            assert self.changed.wait_for(lambda: self.records, 10.0), "no record"
            return self.records.pop(0)


def admit(request: GatewayRequest) -> Admission | None:
    """Keys: ``good`` (context ``key-good``), ``blocked`` (403), ``slow`` (429), else 401."""
    if request.api_key == "good":
        return Admission(context={"key_id": "key-good"})
    if request.api_key == "route":
        return Admission(context="routed", model="openai")
    if request.api_key == "blocked":
        raise Rejection(403, "this key may not use the gateway", context="blocked")
    if request.api_key == "slow":
        raise Rejection(429, "slow down", code="rate_limited", headers={"retry-after": "7"})
    if request.api_key == "crash":
        raise RuntimeError("the key store is down: password=hunter2")
    raise Rejection(401, "Invalid API key", code="invalid_api_key")


class Served:
    def __init__(self, upstream_url: str, **options: Any) -> None:
        self.recorder = Recorder()
        options.setdefault("on_complete", self.recorder)
        self.app = create_app(upstream_url, **options)
        self.server = ServerThread(self.app, lifespan="on", name="gateway").start()
        self.base_url = self.server.url + "/v1"

    def sdk(self, key: str = "good") -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key=key, max_retries=0)

    def close(self) -> None:
        self.server.stop()


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[HostileUpstream, str]]:
    app = HostileUpstream(trickle_delay=0.05)
    with ServerThread(app, name="hostile") as server:
        yield app, server.url + "/v1"


@pytest.fixture(scope="module")
def gateway(upstream: tuple[HostileUpstream, str]) -> Iterator[Served]:
    served = Served(
        upstream[1],
        api_key=KEY,
        model_map={"alias": "openai"},
        on_request=admit,
        idle_timeout=0.5,
        max_body_size=1 << 20,
        metrics=True,
    )
    yield served
    served.close()


def raw(served: Served, body: dict[str, Any], key: str = "good", path: str = "/chat/completions"):
    with httpx.stream(
        "POST", served.base_url + path, json=body, headers={"authorization": f"Bearer {key}"},
        timeout=10,
    ) as response:  # fmt: skip
        return response.status_code, response.headers, b"".join(response.iter_raw())


# -- usage accounting ---------------------------------------------------------------------------


@pytest.mark.parametrize("asked", [False, True])
def test_usage_recorded_whether_or_not_asked(
    upstream: tuple[HostileUpstream, str], gateway: Served, asked: bool
) -> None:
    body: dict[str, Any] = {"model": "openai", "messages": MESSAGES, "stream": True}
    if asked:
        body["stream_options"] = {"include_usage": True}
    status, _, data = raw(gateway, body)
    assert status == 200
    # Exactly what the upstream sends for the client's own request.
    assert data == b"".join(openai_stream("openai", include_usage=asked))
    assert upstream[0].requests[-1]["stream_options"] == {"include_usage": True}
    record = gateway.recorder.take()
    assert record.status == "complete"
    assert record.usage_reported
    assert record.usage is not None
    assert record.usage.total_tokens == USAGE["total_tokens"]
    assert record.context == {"key_id": "key-good"}
    assert record.response.choices[0].message.content == TEXT


def test_sdk_without_usage_sees_none(gateway: Served) -> None:
    chunks = list(
        gateway.sdk().chat.completions.create(model="openai", messages=MESSAGES, stream=True)
    )
    assert all(chunk.usage is None and chunk.choices for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == TEXT
    assert gateway.recorder.take().usage == msgspec_usage()


def msgspec_usage() -> Any:
    from streamspec.types.common import CompletionUsage

    return CompletionUsage(**USAGE)


def test_upstream_without_usage_is_explicit(gateway: Served) -> None:
    status, _, data = raw(gateway, {"model": "no-usage", "messages": MESSAGES, "stream": True})
    assert status == 200
    assert data == b"".join(openai_stream("no-usage", include_usage=False))
    record = gateway.recorder.take()
    assert (record.status, record.usage, record.usage_reported) == ("complete", None, False)


# -- hooks and mapping --------------------------------------------------------------------------


def test_model_map_splices_the_alias_into_every_chunk(
    upstream: tuple[HostileUpstream, str], gateway: Served
) -> None:
    body = {"model": "alias", "messages": MESSAGES, "stream": True}
    _status, _, data = raw(gateway, body)
    assert upstream[0].requests[-1]["model"] == "openai"
    # The upstream's bytes with only the model value changed (obfuscation and all kept).
    expected = b"".join(openai_stream("openai", include_usage=False))
    assert data == expected.replace(b'"model":"openai"', b'"model":"alias"')
    record = gateway.recorder.take()
    assert (record.request_model, record.upstream_model) == ("alias", "openai")
    assert record.usage is not None


def test_model_map_non_streamed(gateway: Served) -> None:
    response = gateway.sdk().chat.completions.create(model="alias", messages=MESSAGES)
    assert response.model == "alias"
    assert response.choices[0].message.content == TEXT
    record = gateway.recorder.take()
    assert (record.status, record.stream, record.upstream_model) == ("complete", False, "openai")
    assert record.usage is not None
    assert record.usage.total_tokens == USAGE["total_tokens"]


def test_model_map_callable(upstream: tuple[HostileUpstream, str]) -> None:
    served = Served(upstream[1], model_map=lambda name: "openai" if name.startswith("x-") else None)
    try:
        sdk = served.sdk()
        chunks = list(sdk.chat.completions.create(model="x-small", messages=MESSAGES, stream=True))
        assert upstream[0].requests[-1]["model"] == "openai"
        assert {chunk.model for chunk in chunks} == {"x-small"}
        first = served.recorder.take()
        sdk.chat.completions.create(model="openai", messages=MESSAGES)  # unmapped: as it is
        assert upstream[0].requests[-1]["model"] == "openai"
        second = served.recorder.take()
        assert (first.upstream_model, second.upstream_model) == ("openai", "openai")
        assert first.usage is not None
    finally:
        served.close()


def test_on_request_chooses_the_model(upstream: tuple[HostileUpstream, str], gateway: Served):
    chunks = list(
        gateway.sdk("route").chat.completions.create(model="any", messages=MESSAGES, stream=True)
    )
    assert upstream[0].requests[-1]["model"] == "openai"
    assert {chunk.model for chunk in chunks} == {"any"}
    record = gateway.recorder.take()
    assert (record.context, record.upstream_model) == ("routed", "openai")


@pytest.mark.parametrize(
    ("key", "error", "status"),
    [
        ("nope", openai.AuthenticationError, 401),
        ("blocked", openai.PermissionDeniedError, 403),
        ("slow", openai.RateLimitError, 429),
    ],
)
def test_on_request_rejects(gateway: Served, key: str, error: type, status: int) -> None:
    before = len(gateway.recorder.records)
    with pytest.raises(error) as caught:
        gateway.sdk(key).chat.completions.create(model="openai", messages=MESSAGES, stream=True)
    assert caught.value.status_code == status
    assert caught.value.body["type"] in {
        "authentication_error", "permission_error", "rate_limit_error"}  # fmt: skip
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "7"
    record = gateway.recorder.wait(before + 1)[-1]
    gateway.recorder.records.clear()
    assert (record.status, record.error_kind, record.http_status) == ("error", "rejected", status)


def test_on_request_crash_is_a_clean_500(gateway: Served, caplog: Any) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.sdk("crash").chat.completions.create(model="openai", messages=MESSAGES)
    assert "hunter2" not in caught.value.response.text
    record = gateway.recorder.take()
    assert (record.status, record.error_kind) == ("error", "hook_failed")


def test_async_hooks_and_a_raising_on_complete(upstream: tuple[HostileUpstream, str]) -> None:
    seen: list[GatewayRecord] = []
    delivered = threading.Event()

    async def on_request(request: GatewayRequest) -> str:
        await asyncio.sleep(0)
        return f"ctx-{request.model}"

    async def on_complete(record: GatewayRecord) -> None:
        seen.append(record)
        delivered.set()
        raise ValueError("the billing database is down")

    served = Served(upstream[1], on_request=on_request, on_complete=on_complete)
    try:
        handler = _Capture()
        logging.getLogger("streamspec").addHandler(handler)
        try:
            text = "".join(
                c.choices[0].delta.content or ""
                for c in served.sdk().chat.completions.create(
                    model="openai", messages=MESSAGES, stream=True
                )
            )
            assert text == TEXT
            assert delivered.wait(10)
            # A second request works as well: the raising hook broke nothing.
            served.sdk().chat.completions.create(model="openai", messages=MESSAGES)
        finally:
            logging.getLogger("streamspec").removeHandler(handler)
        assert seen[0].context == "ctx-openai"
        assert seen[0].usage is not None
        failures = [r for r in handler.records if "on_complete raised" in r.getMessage()]
        assert len(failures) >= 1
        assert all(r.exc_info for r in failures)
    finally:
        served.close()


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


# -- endpoints ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
def test_legacy_completions(gateway: Served, stream: bool) -> None:
    sdk = gateway.sdk()
    if stream:
        chunks = list(sdk.completions.create(model="alias", prompt="Bonjour", stream=True))
        assert "".join(chunk.choices[0].text for chunk in chunks if chunk.choices) == TEXT
        assert all(chunk.model == "alias" and chunk.usage is None for chunk in chunks)
    else:
        completion = sdk.completions.create(model="alias", prompt="Bonjour")
        assert (completion.choices[0].text, completion.model) == (TEXT, "alias")
    record = gateway.recorder.take()
    assert (record.endpoint, record.status, record.stream) == ("completions", "complete", stream)
    assert record.usage is not None
    assert record.usage.total_tokens == USAGE["total_tokens"]
    assert record.response.choices[0].text == TEXT
    assert record.response.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("legacy", [False, True])
def test_upstream_streaming_a_non_streamed_request(gateway: Served, legacy: bool) -> None:
    sdk = gateway.sdk()
    if legacy:
        completion = sdk.completions.create(model="always-streams", prompt="Bonjour")
        assert completion.choices[0].text == TEXT
    else:
        response = sdk.chat.completions.create(model="always-streams", messages=MESSAGES)
        assert response.choices[0].message.content == TEXT
        assert response.choices[0].finish_reason == "stop"
    record = gateway.recorder.take()
    assert (record.status, record.stream, record.chunks) == ("complete", False, 7)
    assert (record.usage, record.usage_reported) == (None, False)


@pytest.mark.parametrize("asked", [False, True])
def test_upstream_ignoring_stream(gateway: Served, asked: bool) -> None:
    options: Any = {"include_usage": True} if asked else None
    stream = gateway.sdk().chat.completions.create(
        model="never-streams", messages=MESSAGES, stream=True, stream_options=options
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert [c.usage.total_tokens for c in chunks if c.usage] == ([14] if asked else [])
    record = gateway.recorder.take()
    assert (record.status, record.stream) == ("complete", True)
    assert record.usage is not None
    assert record.usage.total_tokens == USAGE["total_tokens"]
    legacy = list(gateway.sdk().completions.create(model="never-streams", prompt="x", stream=True))
    assert "".join(c.choices[0].text for c in legacy) == TEXT
    assert gateway.recorder.take().response.choices[0].text == TEXT


def test_models_pass_through(gateway: Served) -> None:
    models = gateway.sdk().models.list()
    assert [model.id for model in models] == ["openai"]


def test_unknown_path_is_an_openai_404(gateway: Served) -> None:
    response = httpx.post(gateway.base_url + "/embeddings", json={})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(gateway.server.url + "/healthz").json() == {"status": "ok"}


def test_metrics_endpoint(gateway: Served) -> None:
    raw(gateway, {"model": "openai", "messages": MESSAGES, "stream": True})
    gateway.recorder.take()
    text = httpx.get(gateway.server.url + "/metrics").text
    assert 'streamspec_gateway_requests_total{endpoint="chat.completions",model="openai"' in text
    assert "streamspec_gateway_ttft_seconds_bucket" in text


# -- headers, limits, hostile upstreams -------------------------------------------------------


def test_headers_forwarded_and_non_latin1_dropped(gateway: Served) -> None:
    status, headers, data = raw(gateway, {"model": "headers", "messages": MESSAGES, "stream": True})
    assert status == 200
    assert data == b"".join(openai_stream("headers", include_usage=False))
    assert headers["x-ratelimit-remaining-requests"] == "99"
    assert headers["x-ratelimit-reset-tokens"] == "6ms"
    assert headers["retry-after"] == "1"
    assert headers.get_list("x-request-id") == ["req-abc123"]  # the UTF-8 one is dropped
    assert "x-internal" not in headers
    record = gateway.recorder.take()
    assert (record.status, record.request_id) == ("complete", "req-abc123")


def test_body_limit(gateway: Served) -> None:
    big = {"model": "openai", "messages": [{"role": "user", "content": "x" * (2 << 20)}]}
    with pytest.raises(openai.APIStatusError) as caught:
        gateway.sdk().chat.completions.create(**big)
    assert caught.value.status_code == 413
    record = gateway.recorder.take()
    assert (record.status, record.error_kind) == ("error", "body_too_large")


def test_max_event_size(upstream: tuple[HostileUpstream, str]) -> None:
    served = Served(upstream[1], max_event_size=64)
    try:
        with pytest.raises(openai.APIError):
            list(
                served.sdk().chat.completions.create(model="openai", messages=MESSAGES, stream=True)
            )
        record = served.recorder.take()
        assert (record.status, record.error_kind) == ("error", "upstream_invalid")
    finally:
        served.close()


def test_own_credential_never_reaches_the_client(gateway: Served) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        gateway.sdk().chat.completions.create(model="auth", messages=MESSAGES, stream=True)
    text = caught.value.response.text
    assert caught.value.status_code == 502
    assert "sk-UPS" not in text
    assert "1234" not in text
    assert "Incorrect" not in text
    record = gateway.recorder.take()
    assert (record.status, record.error_kind, record.upstream_status) == (
        "error", "upstream_auth", 401)  # fmt: skip


def test_json_error_with_200_raises_in_the_sdk(gateway: Served) -> None:
    with pytest.raises(openai.APIError) as caught:
        list(gateway.sdk().chat.completions.create(model="json-error", messages=MESSAGES,
                                                   stream=True))  # fmt: skip
    assert "model overloaded" in caught.value.message
    assert gateway.recorder.take().status == "error"


def test_keepalive_without_lf_then_end(gateway: Served) -> None:
    body = {"model": "keepalive-end", "messages": MESSAGES, "stream": True}
    _status, _, data = raw(gateway, body)
    events = openai_stream("keepalive-end", include_usage=False)
    assert data.startswith(events[0] + events[1] + b": keep-alive\n")
    with pytest.raises(openai.APIError):
        list(gateway.sdk().chat.completions.create(model="keepalive-end", messages=MESSAGES,
                                                   stream=True))  # fmt: skip
    first, second = gateway.recorder.take(), gateway.recorder.take()
    assert first.status == second.status == "truncated"


def test_trickle_ends_truncated(gateway: Served) -> None:
    with pytest.raises(openai.APIError) as caught:
        list(gateway.sdk().chat.completions.create(model="trickle", messages=MESSAGES,
                                                   stream=True))  # fmt: skip
    assert not isinstance(caught.value, openai.APIConnectionError)
    record = gateway.recorder.take()
    assert (record.status, record.error_kind, record.chunks) == ("truncated", "deadline", 1)


def test_a_pause_between_events_is_no_trickle(gateway: Served) -> None:
    # The module's gateway has idle_timeout=0.5: it bounds an incomplete event, not the
    # silence between whole events (the read timeout's business).
    status, _, data = raw(gateway, {"model": "pause", "messages": MESSAGES, "stream": True})
    assert status == 200
    assert data == b"".join(openai_stream("pause", include_usage=False))
    assert gateway.recorder.take().status == "complete"


def test_crlf_death_is_truncated_without_internal_text(gateway: Served) -> None:
    _status, _, data = raw(gateway, {"model": "crlf-die", "messages": MESSAGES, "stream": True})
    events = openai_stream("crlf-die", include_usage=False)
    assert data.startswith(b"".join(e.replace(b"\n", b"\r\n") for e in events[:3]))
    tail = data.rsplit(b"\r\n\r\n", 1)[1]
    assert b"error" in tail
    assert b"RemoteProtocolError" not in tail
    assert b"peer" not in tail
    record = gateway.recorder.take()
    assert (record.status, record.chunks) == ("truncated", 3)


# -- disconnects under load -------------------------------------------------------------------


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _load(url: str, count: int, seed: int) -> list[str]:
    """``count`` streams, a third cut by the client after a random number of chunks."""
    rng = random.Random(seed)
    # None: read to the end (half of them from an upstream with a non-latin-1 request id);
    # a number: cut after that many events.
    plans = [rng.choice([None, None, rng.randint(1, 6)]) for _ in range(count)]
    hostile = [rng.random() < 0.5 for _ in range(count)]
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        semaphore = asyncio.Semaphore(32)

        async def one(cut: int | None, odd_headers: bool) -> str:
            model = ("headers" if odd_headers else "openai") if cut is None else f"stall-{cut}"
            body = {"model": model, "messages": MESSAGES, "stream": True}
            async with semaphore, client.stream(
                "POST", url + "/chat/completions", json=body,
                headers={"authorization": "Bearer good"},
            ) as response:  # fmt: skip
                seen = 0
                buffer = b""
                async for data in response.aiter_raw():
                    buffer += data
                    seen = buffer.count(b"\n\n")
                    if cut is not None and seen >= cut:
                        break  # leaves the block: the connection is closed mid-body
            return "complete" if cut is None else "client_disconnected"

        return list(await asyncio.gather(*map(one, plans, hostile)))


def test_load_with_client_cuts(upstream: tuple[HostileUpstream, str]) -> None:
    served = Served(upstream[1], on_request=admit)
    handler = _Capture()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        expected = asyncio.run(_load(served.base_url, 200, seed=1))  # warm up
        served.recorder.wait(len(expected))
        served.recorder.records.clear()
        fds, rss = _fds(), _rss()
        expected = []
        for seed in (2, 3, 4, 5, 6, 7):
            expected += asyncio.run(_load(served.base_url, 300, seed=seed))
        records = served.recorder.wait(len(expected))
        assert len(records) == len(expected)
        by_status: dict[str, int] = {}
        for status in expected:
            by_status[status] = by_status.get(status, 0) + 1
        got: dict[str, int] = {}
        for record in records:
            got[record.status] = got.get(record.status, 0) + 1
            assert record.context == {"key_id": "key-good"}
        assert got == by_status
        assert all(r.usage is not None for r in records if r.status == "complete")
        # Flat, not exact: sockets of the last streams may still be closing and the pools keep
        # up to 32 connections each way; a leak of one per request would be hundreds more.
        assert _fds() <= fds + 128
        assert _rss() - rss < 64 << 20
    finally:
        root.removeHandler(handler)
        served.close()
    noisy = [r for r in handler.records if r.exc_info or "socket.send" in r.getMessage()]
    assert noisy == []


def test_client_gone_while_sending_its_body(gateway: Served) -> None:
    import socket

    port = int(gateway.server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 1000\r\n\r\n" + b'{"model": "openai"'
        )
    record = gateway.recorder.take()
    assert (record.status, record.error_kind) == ("client_disconnected", "client_disconnected")


def test_a_blocking_sync_on_complete_does_not_stall_the_gateway(
    upstream: tuple[HostileUpstream, str],
) -> None:
    blocked = threading.Event()
    release = threading.Event()
    records: list[GatewayRecord] = []

    second = threading.Event()

    def on_complete(record: GatewayRecord) -> None:
        records.append(record)
        if not blocked.is_set():
            blocked.set()
            release.wait(30)  # blocks its worker thread only
        else:
            second.set()

    served = Served(upstream[1], on_complete=on_complete)
    try:
        sdk = openai.OpenAI(base_url=served.base_url, api_key="k", max_retries=0, timeout=20)
        sdk.chat.completions.create(model="openai", messages=MESSAGES)
        assert blocked.wait(10)
        # The first hook is still blocked: the gateway serves a stream all the same.
        chunks = list(sdk.chat.completions.create(model="openai", messages=MESSAGES, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == TEXT
        assert second.wait(10)  # its record too, while the first hook still blocks
        assert not release.is_set()
        assert [record.stream for record in records] == [False, True]
    finally:
        release.set()
        served.close()
