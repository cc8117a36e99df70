"""The streaming gateway, end to end on loopback.

MockUpstream replays fixtures as real chunked HTTP at token pace, the gateway
app runs under uvicorn in a thread, and the official openai SDK (or a raw
httpx client) is the client. Expectations come from MANIFEST.json, from the
SDK's own accumulation, and from accumulate() of the fixture's chunks decoded
directly (never through the gateway).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionMessageParam

import streamspec
from mock_upstream import MockUpstream, ServerThread, load_fixture, split_events
from streamspec import CreateChatCompletionStreamResponse
from streamspec.accumulate import accumulate
from streamspec.gateway import GatewayRecord, create_app
from streamspec.samples import synthetic_stream

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "streams"
MANIFEST: dict[str, dict[str, Any]] = json.loads((FIXTURES / "MANIFEST.json").read_text("utf-8"))
OK_FIXTURES = sorted(name for name, entry in MANIFEST.items() if entry["expect"] == "ok")
ERROR_FIXTURES = sorted(
    name for name, entry in MANIFEST.items() if entry["expect"] == "stream_error"
)
LONG = "long-stream"
LONG_EVENTS = 300
NO_DONE = "finished-without-done"
CUT = "cut-between-events"
CUT_EVENTS = 10
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Bonjour"}]
# The fixtures are what upstreams send when asked for usage: clients here ask too, so that the
# gateway has nothing to hide from them (tests/test_gateway_usage.py covers clients that do not).
USAGE: Any = {"include_usage": True}


def fixture_chunks(name: str) -> list[CreateChatCompletionStreamResponse]:
    """The fixture's chunks decoded directly, up to its end or error (an error chunk
    that carries choices included, as MANIFEST.json counts it)."""
    chunks: list[CreateChatCompletionStreamResponse] = []
    try:
        chunks.extend(streamspec.iter_chunks([load_fixture(name)]))
    except streamspec.StreamError as exc:
        if isinstance(exc.chunk, CreateChatCompletionStreamResponse) and exc.chunk.choices:
            chunks.append(exc.chunk)
    except streamspec.TruncatedStreamError:
        pass
    return chunks


class Recorder:
    """Collects the gateway's records (called from the server thread)."""

    def __init__(self) -> None:
        self.records: list[GatewayRecord] = []
        self._changed = threading.Condition()

    def __call__(self, record: GatewayRecord) -> None:
        with self._changed:
            self.records.append(record)
            self._changed.notify_all()

    def take(self, model: str, timeout: float = 5.0) -> GatewayRecord:
        """Wait for the record of a request for ``model``, and remove it."""

        def find() -> GatewayRecord | None:
            for record in self.records:
                if record.request_model == model:
                    return record
            return None

        with self._changed:
            found = self._changed.wait_for(find, timeout)
            assert found is not None, f"no record for {model!r}"
            self.records.remove(found)
            return found


class Gateway:
    def __init__(self, upstream_url: str, **options: Any) -> None:
        self.recorder = Recorder()
        app = create_app(upstream_url, on_complete=self.recorder, **options)
        self.server = ServerThread(app, lifespan="on", name="gateway").start()
        self.base_url = self.server.url + "/v1"
        self.sdk = openai.OpenAI(base_url=self.base_url, api_key="test", max_retries=0)

    def close(self) -> None:
        self.sdk.close()
        self.server.stop()


@pytest.fixture(scope="module")
def upstream() -> Iterator[MockUpstream]:
    streams = {name: load_fixture(name) for name in MANIFEST}
    streams[LONG] = synthetic_stream(LONG_EVENTS)
    text = load_fixture("openai_text.sse")
    streams[NO_DONE] = text[: text.rindex(b"data: [DONE]")]
    streams[CUT] = b"".join(split_events(text)[:CUT_EVENTS])
    with MockUpstream(streams, token_delay=0.002) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(upstream: MockUpstream) -> Iterator[Gateway]:
    proxy = Gateway(upstream.base_url, read_timeout=5.0)
    yield proxy
    proxy.close()


def sdk_stream(client: openai.OpenAI, model: str) -> tuple[list[Any], Any]:
    """Stream ``model`` with the SDK: the chunks and the SDK's accumulated snapshot."""
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    chunks = []
    for chunk in client.chat.completions.create(
        model=model, messages=MESSAGES, stream=True, stream_options=USAGE
    ):
        state.handle_chunk(chunk)
        chunks.append(chunk)
    return chunks, state.current_completion_snapshot


def raw_stream(url: str, model: str) -> bytes:
    body = {"model": model, "messages": MESSAGES, "stream": True, "stream_options": USAGE}
    with httpx.stream("POST", url + "/chat/completions", json=body, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return b"".join(response.iter_raw())


def calls_of(message: Any) -> list[tuple[str, str, str]]:
    return [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []]


# -- the SDK through the gateway ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "openai_text.sse",
        "openai_tool_calls.sse",
        "openai_n2.sse",
        "mistral_tool_calls.sse",
        "vllm_reasoning.sse",
        "deepseek_reasoning.sse",
    ],
)
def test_sdk_result_equals_accumulate(gateway: Gateway, name: str) -> None:
    chunks, snapshot = sdk_stream(gateway.sdk, name)
    expected = accumulate(fixture_chunks(name))
    theirs = sorted(snapshot.choices, key=lambda c: c.index)
    assert [c.index for c in theirs] == [c.index for c in expected.choices]
    for mine, their in zip(expected.choices, theirs, strict=True):
        assert (their.message.content or "") == (mine.message.content or "")
        assert calls_of(their.message) == calls_of(mine.message)
        assert their.finish_reason == mine.finish_reason
    entry = MANIFEST[name]
    assert (theirs[0].message.content or "") == entry["text"]
    assert [
        {"id": i, "name": n, "arguments": a} for i, n, a in calls_of(theirs[0].message)
    ] == entry["tool_calls"]
    assert len(chunks) == entry["n_chunks"]

    record = gateway.recorder.take(name)
    assert record.status == "complete"
    assert record.error is None
    assert record.chunks == entry["n_chunks"]
    assert record.response == expected
    assert record.usage == (expected.usage or None)
    assert record.upstream_status == 200
    assert record.stream


def test_n2_text_by_index(gateway: Gateway) -> None:
    name = "openai_n2.sse"
    _, snapshot = sdk_stream(gateway.sdk, name)
    texts = {str(c.index): c.message.content for c in snapshot.choices}
    assert texts == MANIFEST[name]["text_by_index"]
    gateway.recorder.take(name)


@pytest.mark.parametrize("name", OK_FIXTURES)
def test_bytes_pass_through_unchanged(upstream: MockUpstream, gateway: Gateway, name: str) -> None:
    data = load_fixture(name)
    received = raw_stream(gateway.base_url, name)
    if name == "framing_done_no_newline.sse":
        # The final event lacked its line end and blank line: the gateway ends it properly.
        assert received == data + b"\n\n"
    elif name == "framing_done_no_blank_line.sse":
        assert received == data + b"\n"
    else:
        assert received == data
    record = gateway.recorder.take(name)
    assert record.status == "complete"
    assert record.chunks == MANIFEST[name]["n_chunks"]


def test_random_reads_pass_through(upstream: MockUpstream) -> None:
    names = ["openai_tool_calls.sse", "xinference_text.sse", "framing_utf8_bom.sse"]
    streams = {name: load_fixture(name) for name in names}
    with MockUpstream(streams, token_delay=0.0005, split="random", seed=3) as cutting:
        proxy = Gateway(cutting.base_url)
        try:
            for name in names:
                assert raw_stream(proxy.base_url, name) == streams[name]
                record = proxy.recorder.take(name)
                assert record.status == "complete"
                assert record.response == accumulate(fixture_chunks(name))
        finally:
            proxy.close()


def test_stream_without_done_but_finished_is_complete(gateway: Gateway) -> None:
    chunks, snapshot = sdk_stream(gateway.sdk, NO_DONE)
    assert snapshot.choices[0].message.content == MANIFEST["openai_text.sse"]["text"]
    record = gateway.recorder.take(NO_DONE)
    assert record.status == "complete"
    assert record.chunks == len(chunks)


# -- disconnects, errors, truncation ------------------------------------------------------------


def test_client_disconnect_closes_upstream(upstream: MockUpstream, gateway: Gateway) -> None:
    before = upstream.disconnects
    stream = gateway.sdk.chat.completions.create(model=LONG, messages=MESSAGES, stream=True)
    received = [next(stream) for _ in range(5)]
    stream.close()
    assert len(received) == 5
    assert upstream.wait_for_disconnects(before + 1, timeout=5)
    record = gateway.recorder.take(LONG)
    assert record.status == "client_disconnected"
    assert 5 <= record.chunks < LONG_EVENTS


@pytest.mark.parametrize("name", ERROR_FIXTURES)
def test_upstream_error_reaches_the_sdk(gateway: Gateway, name: str) -> None:
    entry = MANIFEST[name]
    received: list[Any] = []
    stream = gateway.sdk.chat.completions.create(model=name, messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError) as caught:
        received.extend(stream)
    assert not isinstance(caught.value, openai.APIConnectionError)
    assert caught.value.message == entry["error_message"]
    text = "".join(c.choices[0].delta.content or "" for c in received if c.choices)
    assert text == entry["text"]

    record = gateway.recorder.take(name)
    assert record.status == "error"
    assert record.error == entry["error_message"]
    assert record.chunks == entry["n_chunks"]
    assert (record.response.choices[0].message.content or "") == entry["text"]


def test_upstream_truncated_mid_event(gateway: Gateway) -> None:
    name = "framing_truncated_mid_event.sse"
    received: list[Any] = []
    stream = gateway.sdk.chat.completions.create(model=name, messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError) as caught:
        received.extend(stream)
    assert not isinstance(caught.value, openai.APIConnectionError)
    assert len(received) == MANIFEST[name]["n_chunks"]
    record = gateway.recorder.take(name)
    assert record.status == "truncated"
    assert record.response.choices[0].message.content == MANIFEST[name]["text"]


def test_upstream_ending_between_events_before_finishing(gateway: Gateway) -> None:
    received: list[Any] = []
    stream = gateway.sdk.chat.completions.create(model=CUT, messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError) as caught:
        received.extend(stream)
    assert not isinstance(caught.value, openai.APIConnectionError)
    assert len(received) == CUT_EVENTS
    record = gateway.recorder.take(CUT)
    assert (record.status, record.chunks) == ("truncated", CUT_EVENTS)
    assert record.response.choices[0].finish_reason is None


@pytest.mark.parametrize("split", ["stall", "die"])
def test_stalled_or_dead_upstream_is_truncated(split: str) -> None:
    name = "openai_text.sse"
    data = load_fixture(name)
    sent = len(split_events(data)) // 2  # both modes send half the events first
    with MockUpstream({name: data}, token_delay=0.001, split=split) as broken:
        proxy = Gateway(broken.base_url, read_timeout=0.5)
        try:
            received: list[Any] = []
            stream = proxy.sdk.chat.completions.create(model=name, messages=MESSAGES, stream=True)
            with pytest.raises(openai.APIError) as caught:
                received.extend(stream)
            assert not isinstance(caught.value, openai.APIConnectionError)
            assert len(received) == sent
            record = proxy.recorder.take(name)
            assert record.status == "truncated"
            assert record.chunks == sent
            assert record.error
            if split == "stall":  # the gateway gave up on the upstream and closed it
                assert broken.wait_for_disconnects(1, timeout=5)
        finally:
            proxy.close()


# -- model rewriting, plain requests, upstream failures ------------------------------------------


@pytest.fixture(scope="module")
def rewriting(upstream: MockUpstream) -> Iterator[Gateway]:
    proxy = Gateway(upstream.base_url, rewrite_model="house-model")
    yield proxy
    proxy.close()


@pytest.mark.parametrize("name", ["openai_text.sse", "openai_tool_calls.sse", "tgi_text.sse"])
def test_rewrite_model_in_every_chunk(rewriting: Gateway, name: str) -> None:
    data = raw_stream(rewriting.base_url, name)
    # Comments (TGI's ":" keep-alives) are relayed too, byte for byte.
    events = [event for event in data.split(b"\n\n") if event and not event.startswith(b":")]
    assert events[-1].replace(b" ", b"") == b"data:[DONE]"
    payloads = [json.loads(event.removeprefix(b"data:")) for event in events[:-1]]
    assert len(payloads) == MANIFEST[name]["n_chunks"]
    assert all(payload["model"] == "house-model" for payload in payloads)
    rewriting.recorder.take(name)

    chunks, snapshot = sdk_stream(rewriting.sdk, name)
    assert chunks
    assert all(chunk.model == "house-model" for chunk in chunks)
    assert (snapshot.choices[0].message.content or "") == MANIFEST[name]["text"]
    assert calls_of(snapshot.choices[0].message) == calls_of(
        accumulate(fixture_chunks(name)).choices[0].message
    )
    record = rewriting.recorder.take(name)
    assert record.status == "complete"


def test_rewrite_model_error_still_reported(rewriting: Gateway) -> None:
    name = "vllm_error.sse"
    stream = rewriting.sdk.chat.completions.create(model=name, messages=MESSAGES, stream=True)
    received: list[Any] = []
    with pytest.raises(openai.APIError) as caught:
        received.extend(stream)
    assert caught.value.message == MANIFEST[name]["error_message"]
    assert all(chunk.model == "house-model" for chunk in received)
    assert rewriting.recorder.take(name).status == "error"


def test_rewrite_model_non_streaming(rewriting: Gateway) -> None:
    name = "openai_text.sse"
    response = rewriting.sdk.chat.completions.create(model=name, messages=MESSAGES)
    assert response.model == "house-model"
    assert response.choices[0].message.content == MANIFEST[name]["text"]
    assert rewriting.recorder.take(name).response.model == "house-model"


def test_non_streaming_request_is_forwarded(gateway: Gateway) -> None:
    name = "mistral_tool_calls.sse"
    response = gateway.sdk.chat.completions.create(model=name, messages=MESSAGES)
    assert response.choices[0].finish_reason == MANIFEST[name]["finish_reason"]
    calls = [
        {"id": i, "name": n, "arguments": a} for i, n, a in calls_of(response.choices[0].message)
    ]
    assert calls == MANIFEST[name]["tool_calls"]
    record = gateway.recorder.take(name)
    assert (record.status, record.stream, record.chunks) == ("complete", False, 0)
    assert record.usage is not None
    assert record.usage.total_tokens == MANIFEST[name]["usage"]["total_tokens"]


def test_unknown_model_forwards_the_upstream_error(gateway: Gateway) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        gateway.sdk.chat.completions.create(model="no-such-model", messages=MESSAGES, stream=True)
    assert "no-such-model" in caught.value.message
    record = gateway.recorder.take("no-such-model")
    assert (record.status, record.upstream_status) == ("error", 404)
    assert record.error is not None
    assert "does not exist" in record.error


def test_invalid_json_body(gateway: Gateway) -> None:
    response = httpx.post(gateway.base_url + "/chat/completions", content=b"{not json")
    assert response.status_code == 400
    assert "error" in response.json()


def test_unreachable_upstream() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proxy = Gateway(f"http://127.0.0.1:{port}/v1", connect_timeout=2.0)
    try:
        with pytest.raises(openai.InternalServerError) as caught:
            proxy.sdk.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        assert caught.value.status_code == 502
        record = proxy.recorder.take("m")
        assert (record.status, record.upstream_status) == ("error", None)
    finally:
        proxy.close()


def test_record_is_a_typed_struct(gateway: Gateway) -> None:
    name = "groq_reasoning.sse"
    raw_stream(gateway.base_url, name)
    record = gateway.recorder.take(name)
    encoded = msgspec.json.decode(msgspec.json.encode(record))
    assert encoded["status"] == "complete"
    assert encoded["request_model"] == name
    assert (
        encoded["response"]["choices"][0]["message"]["reasoning_content"]
        == (MANIFEST[name]["reasoning"])
    )
    assert encoded["usage"]["total_tokens"] == MANIFEST[name]["usage"]["total_tokens"]
