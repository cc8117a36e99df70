"""Every proxied request ends in exactly one record that says how it ended.

A client that leaves before its answer reached it is ``client_disconnected``,
streamed or not, wherever it leaves: during ``on_request``, while the upstream
has not answered yet, while the upstream's body is still coming. The upstream
request is then closed at once. Real clients on loopback (httpx and the
official ``openai`` SDK, async, their request task cancelled), an upstream that
holds its answer until the test releases it, and events for every "now": the
test never waits for time to pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mock_upstream import ServerThread, read_body
from streamspec.gateway import GatewayRecord, GatewayRequest, create_app
from test_gateway_edge import Recorder

MESSAGES: Any = [{"role": "user", "content": "Bonjour"}]
ANSWER = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "held",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Bonjour !"},
                 "finish_reason": "stop", "logprobs": None}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
}  # fmt: skip
STREAM = [
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"held","choices":'
    b'[{"index":0,"delta":{"role":"assistant","content":"Bonjour"},"finish_reason":null}]}\n\n',
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"held","choices":'
    b'[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
    b"data: [DONE]\n\n",
]
WAIT = 10.0  # seconds: only a guard against a hang, never reached when the code is right


class Held:
    """An upstream that answers only once released (or notes that the gateway left first).

    The model chooses what is held: ``head`` (nothing sent yet) or ``body``
    (the status and headers sent, the body held). A streaming request gets an
    SSE stream, any other a JSON ``chat.completion``.
    """

    def __init__(self) -> None:
        self.arrived = threading.Event()  # a request reached the upstream
        self.gone = threading.Event()  # the gateway closed it before the answer
        self.requests = 0
        self.release: asyncio.Event | None = None
        self.server: ServerThread | None = None

    def reset(self) -> None:
        self.arrived.clear()
        self.gone.clear()

    def let_go(self) -> None:
        """Release the held answers (from the test's thread)."""
        assert self.server is not None

        def release() -> None:
            if self.release is not None:
                self.release.set()

        self.server.call_soon(release)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        assert body is not None
        self.requests += 1
        request = json.loads(body)
        model = request["model"]
        self.release = asyncio.Event()
        streamed = request.get("stream") is True
        kind = b"text/event-stream" if streamed else b"application/json"
        data = json.dumps(ANSWER).encode()
        head = {"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", kind), *([] if streamed else [(b"content-length", b"%d" % len(data))])
        ]}  # fmt: skip
        if model != "head":
            await send(head)
        self.arrived.set()
        if not await self._held(receive):
            self.gone.set()
            return
        if model == "head":
            await send(head)
        if streamed:
            for event in STREAM:
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        else:
            await send({"type": "http.response.body", "body": data})

    async def _held(self, receive: Any) -> bool:
        """Wait for the release; False if the gateway went away first."""
        assert self.release is not None
        released = asyncio.ensure_future(self.release.wait())
        left = asyncio.ensure_future(receive())
        done, _ = await asyncio.wait([released, left], return_when=asyncio.FIRST_COMPLETED)
        released.cancel()
        left.cancel()
        return released in done


class Records(Recorder):
    def take(self) -> GatewayRecord:
        """The one record of the request just made, and no other."""
        record = super().take()
        assert not self.records, f"more than one record: {self.records}"
        return record


class Gateway:
    """The gateway under test; ``headed`` is set when it has the upstream's response head."""

    def __init__(self, held: Held, **options: Any) -> None:
        self.records = Records()
        self.headed = threading.Event()

        async def headed(response: httpx.Response) -> None:
            self.headed.set()

        client = httpx.AsyncClient(timeout=WAIT * 3, event_hooks={"response": [headed]})
        app = create_app(
            held_url(held), on_complete=self.records, metrics=True, client=client, **options
        )
        self.server = ServerThread(app, lifespan="on", name="gateway").start()
        self.url = self.server.url

    def reached(self, held: Held, held_part: str) -> threading.Event:
        """What the client waits for before it leaves: the request held by the upstream with
        nothing sent (``head``), or the gateway holding the upstream's headers (``body``)."""
        return held.arrived if held_part == "head" else self.headed

    def metric(self, name: str, **labels: str) -> float:
        """A sample of ``GET /metrics`` (0 when it was never counted)."""
        text = httpx.get(self.url + "/metrics").text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                matches = all(sample.labels.get(k) == v for k, v in labels.items())
                if sample.name == name and matches:
                    return float(sample.value)
        return 0.0


def held_url(held: Held) -> str:
    assert held.server is not None
    return held.server.url + "/v1"


@pytest.fixture(scope="module")
def held() -> Iterator[Held]:
    app = Held()
    with ServerThread(app, name="held") as server:
        app.server = server
        yield app


@pytest.fixture(scope="module")
def gateway(held: Held) -> Iterator[Gateway]:
    served = Gateway(held)
    yield served
    served.server.stop()


@pytest.fixture(autouse=True)
def fresh(held: Held, gateway: Gateway) -> None:
    held.reset()
    gateway.headed.clear()


async def leave_once(request: Callable[[], Awaitable[Any]], reached: threading.Event) -> None:
    """Start ``request``, cancel it once ``reached`` is set (the client closes its connection)."""
    task = asyncio.ensure_future(request())
    assert await asyncio.to_thread(reached.wait, WAIT), "the request never arrived"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def httpx_client(url: str, body: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
    async def request() -> Any:
        async with httpx.AsyncClient(timeout=WAIT) as client:
            return await client.post(url + "/v1/chat/completions", json=body)

    return request


def sdk_client(url: str, model: str, stream: bool) -> Callable[[], Awaitable[Any]]:
    async def request() -> Any:
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="k", max_retries=0) as sdk:
            create = sdk.chat.completions.create
            answer = await create(model=model, messages=MESSAGES, stream=stream)
            if stream:
                return [chunk async for chunk in answer]
            return answer

    return request


@pytest.mark.parametrize("client", ["httpx", "openai"])
@pytest.mark.parametrize("held_part", ["head", "body"])
def test_client_leaving_a_non_streamed_request(
    held: Held, gateway: Gateway, client: str, held_part: str
) -> None:
    labels = {"endpoint": "chat.completions", "model": held_part}
    before = {
        status: gateway.metric("streamspec_gateway_requests_total", **labels, status=status)
        for status in ("complete", "client_disconnected")
    }
    request = (
        httpx_client(gateway.url, {"model": held_part, "messages": MESSAGES})
        if client == "httpx"
        else sdk_client(gateway.url, held_part, stream=False)
    )
    asyncio.run(leave_once(request, gateway.reached(held, held_part)))
    # The gateway closes the upstream request as soon as its client is gone.
    assert held.gone.wait(WAIT), "the upstream request stayed open after the client left"
    record = gateway.records.take()
    assert (record.status, record.error_kind) == ("client_disconnected", "client_disconnected")
    assert (record.stream, record.request_model) == (False, held_part)
    assert record.http_status == 499  # nothing reached the client
    assert record.upstream_status == (None if held_part == "head" else 200)
    assert (record.usage, record.usage_reported) == (None, False)
    assert (
        gateway.metric("streamspec_gateway_requests_total", **labels, status="complete")
        == (before["complete"])
    )
    assert gateway.metric(
        "streamspec_gateway_requests_total", **labels, status="client_disconnected"
    ) == (before["client_disconnected"] + 1)


@pytest.mark.parametrize("held_part", ["head", "body"])
def test_client_leaving_a_stream_before_its_first_event(
    held: Held, gateway: Gateway, held_part: str
) -> None:
    if held_part == "head":  # the SDK still waits for the response head: its task is cancelled
        asyncio.run(leave_once(sdk_client(gateway.url, held_part, stream=True), held.arrived))
    else:  # the SDK has the stream's head (the gateway relays at once), and closes it

        async def open_and_close() -> None:
            async with openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="k") as sdk:
                stream = await sdk.chat.completions.create(
                    model=held_part, messages=MESSAGES, stream=True
                )
                await stream.close()

        asyncio.run(open_and_close())
    assert held.gone.wait(WAIT), "the upstream request stayed open after the client left"
    record = gateway.records.take()
    assert (record.status, record.error_kind) == ("client_disconnected", "client_disconnected")
    # Without upstream headers nothing was sent; with them the stream had begun.
    assert (record.stream, record.http_status) == (True, 499 if held_part == "head" else 200)
    assert record.upstream_status == (None if held_part == "head" else 200)
    assert record.chunks == 0


def test_client_leaving_during_on_request(held: Held) -> None:
    in_hook = threading.Event()
    saw_leave = threading.Event()

    async def on_request(request: GatewayRequest) -> None:
        in_hook.set()
        # The hook itself waits until the server reports the client gone.
        while (await request.http.receive())["type"] != "http.disconnect":
            pass
        saw_leave.set()

    served = Gateway(held, on_request=on_request)
    try:
        before = held.requests
        asyncio.run(
            leave_once(httpx_client(served.url, {"model": "head", "messages": MESSAGES}), in_hook)
        )
        assert saw_leave.wait(WAIT)
        record = served.records.take()
        assert (record.status, record.error_kind) == ("client_disconnected", "client_disconnected")
        assert held.requests == before  # nothing went upstream for a client already gone
    finally:
        served.server.stop()


@pytest.mark.parametrize("held_part", ["head", "body"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_released_answer_is_complete(
    held: Held, gateway: Gateway, stream: bool, held_part: str
) -> None:
    """The same upstream, released: the client gets its answer, the record says complete."""

    async def run() -> Any:
        task = asyncio.ensure_future(sdk_client(gateway.url, held_part, stream=stream)())
        assert await asyncio.to_thread(held.arrived.wait, WAIT)
        held.let_go()
        return await task

    answer = asyncio.run(run())
    record = gateway.records.take()
    assert (record.status, record.http_status, record.stream) == ("complete", 200, stream)
    if stream:
        assert "".join(c.choices[0].delta.content or "" for c in answer) == "Bonjour"
    else:
        assert answer.choices[0].message.content == "Bonjour !"
        assert record.usage is not None
        assert record.usage.total_tokens == 7
    assert not held.gone.is_set()


def test_a_request_cut_by_the_server_shutting_down_is_recorded(held: Held) -> None:
    """uvicorn cancels the request's task once its graceful shutdown time is over (1 s here),
    then runs the lifespan shutdown, which waits for the cancelled request's record."""
    served = Gateway(held)

    async def run() -> None:
        task = asyncio.ensure_future(httpx_client(served.url, {"model": "head", "messages": []})())
        assert await asyncio.to_thread(held.arrived.wait, WAIT)
        await asyncio.to_thread(served.server.stop)
        with contextlib.suppress(httpx.HTTPError):
            await task

    asyncio.run(run())
    record = served.records.take()
    assert (record.status, record.error_kind) == ("error", "gateway")
    assert record.error is not None
    assert "cancelled" in record.error
    assert held.gone.wait(WAIT)  # the upstream request was closed too
