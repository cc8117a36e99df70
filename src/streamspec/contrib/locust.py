"""Load-test an OpenAI-compatible server with Locust; measure each stream with streamspec.

Needs the ``locust`` extra (``pip install 'streamspec[locust]'``). Write a
locustfile that subclasses :class:`ChatCompletionUser`::

    # locustfile.py
    from streamspec.contrib.locust import ChatCompletionUser

    class Chat(ChatCompletionUser):
        model = "meta-llama/Llama-3.1-8B-Instruct"
        prompt = "Explain backpressure in two sentences."

and point Locust at the server's base URL (the one an OpenAI client takes)::

    locust -f locustfile.py --host http://localhost:8000/v1 --headless -u 50 -r 5 -t 5m \\
        --csv results --only-summary

Each user POSTs ``{"model", "messages", "stream": true, "stream_options":
{"include_usage": true}}`` to ``{host}/chat/completions`` in a loop, feeds
the response bytes to a :class:`streamspec.metrics.StreamMeter` as they
arrive, and reports four rows per ``name`` in Locust's statistics (and in
``results_stats.csv``; the "Type" column tells them apart):

* ``POST``: the whole request, from sending it to the end of the stream
  (``response_time`` in ms, ``response_length`` the stream's bytes). It fails
  on an HTTP error (with the server's message), a connection error, a server
  error inside the stream (:class:`streamspec.StreamError`), a malformed event,
  or a stream that ends without ``data: [DONE]``.
* ``TTFT``: time to first token, ms (from sending the request to the first
  chunk carrying text, reasoning or a tool call). Reported whenever a token
  arrived, even if the stream failed later.
* ``ITL``: inter-token latency, ms: the mean gap between consecutive chunks
  of the request (with ``report_each_gap = True``, one entry per gap, so that
  Locust's percentiles describe single gaps). Complete streams only.
* ``TPS``: decode speed in tokens per second, carried in the
  ``response_time`` columns (the "Average Response Time" of this row is the
  mean tokens/s). Tokens come from ``usage.completion_tokens`` when the server
  reports usage, else from the number of token chunks. Complete streams only.

Several machines (a master and workers; Locust's own distribution, nothing
streamspec-specific: every worker measures its streams and the master
aggregates all four rows)::

    # on the master (10.0.0.5), which only coordinates and writes the CSV:
    locust -f locustfile.py --master --expect-workers 8 --host http://gpu-box:8000/v1 \\
        --headless -u 400 -r 20 -t 10m --csv results --only-summary

    # on each load machine, one worker per CPU core (same locustfile, streamspec installed):
    locust -f locustfile.py --worker --master-host 10.0.0.5

Workers need their clocks only for durations (``time.perf_counter_ns``), so
they need not be synchronized. Keep each worker's CPU below ~80%: a saturated
generator inflates TTFT and ITL.
"""

from __future__ import annotations

import os
import time
from itertools import pairwise
from typing import Any, ClassVar

import msgspec
from locust import FastHttpUser, task
from locust.contrib.fasthttp import ResponseContextManager

from ..errors import Error
from ..metrics import StreamMeter, StreamMetrics

__all__ = ["ChatCompletionUser"]

_ERROR_BODY = 300


def _error_message(body: bytes) -> str:
    """The message of an HTTP error body (OpenAI's ``{"error": {"message"}}`` and variants)."""
    from ..decoder import error_object

    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        value = None
    if isinstance(value, dict) and value.get("error") not in (None, ""):
        return error_object(value["error"], value.get("error_type")).message
    text = " ".join(body.decode("utf-8", "replace").split())
    return text[:_ERROR_BODY] or "(empty body)"


def _mark(response: ResponseContextManager, failure: str | None) -> None:
    """Mark the request entry a success (``failure`` None) or a failure with that message."""
    outcome: Any = response  # success() and failure() carry no annotations
    if failure is None:
        outcome.success()
    else:
        outcome.failure(failure)


class ChatCompletionUser(FastHttpUser):
    """A Locust user that streams chat completions and reports TTFT, ITL and TPS.

    Subclass it and set the class attributes (see :mod:`streamspec.contrib.locust`).
    Override :meth:`request_body` to vary prompts per request; call
    :meth:`stream_chat_completion` from your own tasks for other mixes.
    """

    abstract = True

    path: ClassVar[str] = "/chat/completions"
    """Appended to ``--host`` (a base URL such as ``http://localhost:8000/v1``)."""

    model: ClassVar[str] = "gpt-4o-mini"
    """``model`` of the request (ignored when :attr:`body` sets one)."""

    prompt: ClassVar[str] = "Write a haiku about load testing."
    """Sent as the only user message (ignored when :attr:`body` sets ``messages``)."""

    body: ClassVar[dict[str, Any] | None] = None
    """A full request body (a ``CreateChatCompletionRequest`` as a dict); streaming is forced on."""

    max_tokens: ClassVar[int | None] = None
    """``max_tokens`` of the request, when set."""

    api_key: ClassVar[str | None] = None
    """Bearer token; defaults to the ``OPENAI_API_KEY`` environment variable."""

    request_name: ClassVar[str] = "chat.completions"
    """The ``name`` of the rows in Locust's statistics."""

    report_each_gap: ClassVar[bool] = False
    """Report one ``ITL`` entry per gap between chunks instead of one mean per request."""

    network_timeout = 300.0
    connection_timeout = 30.0

    @task
    def chat_completion(self) -> None:
        """The default task: one streamed chat completion."""
        self.stream_chat_completion()

    def request_body(self) -> dict[str, Any]:
        """The JSON body of the next request (override to vary it)."""
        if self.body is not None:
            body = dict(self.body)
        else:
            body = {"messages": [{"role": "user", "content": self.prompt}]}
        body.setdefault("model", self.model)
        if self.max_tokens is not None:
            body.setdefault("max_tokens", self.max_tokens)
        body["stream"] = True
        body.setdefault("stream_options", {"include_usage": True})
        return body

    def headers(self) -> dict[str, str]:
        """The request headers: SSE, no compression, the bearer token if any."""
        headers = {"Accept": "text/event-stream", "Accept-Encoding": "identity"}
        key = self.api_key or os.environ.get("OPENAI_API_KEY")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def stream_chat_completion(self, body: dict[str, Any] | None = None) -> StreamMetrics | None:
        """Send one streaming request, report it, and return its metrics (None if no stream)."""
        meter = StreamMeter()
        with self.client.request(
            "POST",
            self.path,
            name=self.request_name,
            json=self.request_body() if body is None else body,
            headers=self.headers(),
            stream=True,
            catch_response=True,
        ) as response:
            return self._consume(response, meter)

    def _consume(
        self, response: ResponseContextManager, meter: StreamMeter
    ) -> StreamMetrics | None:
        error = getattr(response, "error", None)
        raw = response._response
        if response.status_code == 0 or raw is None:
            _mark(response, f"connection error: {error or 'no response'}")
            return None
        if response.status_code >= 400:
            try:
                message = _error_message(response.content or b"")
            except Exception:  # the body could not be read either
                message = str(error) if error else "(no body)"
            _mark(response, f"HTTP {response.status_code}: {message}")
            return None
        size = 0
        try:
            # readline() returns as soon as a line is buffered: each chunk is
            # stamped when its event's blank line arrives. b"" is the end of the body.
            while line := raw.readline(b"\n"):
                size += len(line)
                if not meter.done:
                    meter.feed(line)
            rest = raw.read()
            size += len(rest)
            if rest and not meter.done:
                meter.feed(rest)
            if not meter.done:
                meter.close()
        except Error:
            pass  # recorded by the meter
        except Exception as exc:  # the connection broke mid-stream
            meter.fail(f"{type(exc).__name__}: {exc}", "truncated")
        metrics = meter.result()
        response.request_meta["response_time"] = (time.perf_counter_ns() - meter.start_ns) / 1e6
        response.request_meta["response_length"] = size
        if metrics.status == "complete":
            _mark(response, None)
        else:
            _mark(response, f"{metrics.status}: {metrics.error}")
        self._report(metrics, meter)
        return metrics

    def _report(self, metrics: StreamMetrics, meter: StreamMeter) -> None:
        """Fire the TTFT, ITL and TPS entries of one stream."""
        fire = self.environment.events.request.fire
        name = self.request_name
        context = self.context()

        def entry(kind: str, value: float) -> None:
            fire(
                request_type=kind,
                name=name,
                response_time=value,
                response_length=0,
                exception=None,
                context=context,
            )

        if metrics.time_to_first_token_ms is not None:
            entry("TTFT", metrics.time_to_first_token_ms)
        if metrics.status != "complete":
            return
        if self.report_each_gap:
            for earlier, later in pairwise(meter.timestamps):
                entry("ITL", (later - earlier) / 1e6)
        elif metrics.inter_chunk_ms is not None:
            entry("ITL", metrics.inter_chunk_ms.mean)
        if metrics.tokens_per_second is not None:
            entry("TPS", metrics.tokens_per_second)
