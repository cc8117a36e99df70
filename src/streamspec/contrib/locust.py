"""Load-test an OpenAI-compatible server with Locust; measure each stream with streamspec.

Needs the ``locust`` extra (``pip install 'streamspec[locust]'``). Write a
locustfile that subclasses :class:`ChatCompletionUser`::

    # locustfile.py
    from streamspec.contrib.locust import ChatCompletionUser

    class Chat(ChatCompletionUser):
        model = "meta-llama/Llama-3.1-8B-Instruct"
        prompt = "Explain backpressure in two sentences."
        records_path = "records-{pid}.jsonl"   # per-request records, one file per process

and point Locust at the server's base URL (the one an OpenAI client takes)::

    locust -f locustfile.py --host http://localhost:8000/v1 --headless -u 50 -r 5 -t 5m

Each user POSTs ``{"model", "messages", "stream": true, "stream_options":
{"include_usage": true}}`` to ``{host}/chat/completions`` in a loop and feeds
the response bytes to a :class:`streamspec.metrics.StreamMeter` as they
arrive. The definitions are those of :mod:`streamspec.metrics` (and of vLLM's
``bench serve``).

**Locust's own statistics** get one entry per request, type ``POST``: its
response time is the E2EL (sending the request to the end of the stream), its
length the stream's bytes. It fails on an HTTP error (with the server's
message), a connection error, a server error inside the stream, a malformed
event, or a stream that ends without ``data: [DONE]``. Nothing else is
reported there, so the "Aggregated" row is the requests' own.

**Stream statistics** (TTFT, TPOT and ITL, in ms) go to a separate Locust
``RequestStats``, :func:`stream_stats` (``environment.streamspec_stats``),
under the same names with types ``TTFT`` (one entry per request that got a
token), ``TPOT`` (one per complete request with two tokens or more) and
``ITL`` (one entry per gap between token chunks, so its percentiles describe
single gaps). Workers send them to the master with their regular reports; the
master (or a local run) prints their table (:func:`format_stream_stats`) when
the run ends.

**Per-request records** (:class:`streamspec.load.RequestRecord`, JSON lines)
are appended to ``records_path`` when it is set (class attribute, or the
``STREAMSPEC_RECORDS`` environment variable; ``{pid}`` is replaced by the
process id, so every worker writes its own file). They merge exactly::

    streamspec report records-*.jsonl --goodput ttft:200,tpot:50 --save-result result.json

Several machines (a master and workers; Locust's own distribution)::

    # on the master (10.0.0.5), which only coordinates:
    locust -f locustfile.py --master --expect-workers 8 --host http://gpu-box:8000/v1 \\
        --headless -u 400 -r 20 -t 10m

    # on each load machine, one worker per CPU core (same locustfile, streamspec installed):
    locust -f locustfile.py --worker --master-host 10.0.0.5

    # afterwards, gather every worker's records-*.jsonl and merge them:
    streamspec report */records-*.jsonl

Durations use ``time.perf_counter_ns`` on each worker; a record's ``start`` is
Unix time, so keep the workers' clocks in sync (NTP) for the merged
``duration``. Keep each worker's CPU below ~80%: a saturated generator
inflates TTFT and ITL.
"""

from __future__ import annotations

import os
import threading
import time
from typing import IO, Any, ClassVar

from locust import FastHttpUser, events, task
from locust.contrib.fasthttp import ResponseContextManager
from locust.env import Environment
from locust.stats import RequestStats, StatsEntry

from ..errors import Error
from ..load.records import record_from_meter, write_records
from ..metrics import StreamMeter, StreamMetrics

__all__ = ["ChatCompletionUser", "format_stream_stats", "stream_stats"]

_REPORT_KEY = "streamspec_stats"


def stream_stats(environment: Environment) -> RequestStats:
    """The TTFT, TPOT and ITL statistics of ``environment`` (created on first use)."""
    stats: RequestStats | None = getattr(environment, "streamspec_stats", None)
    if stats is None:
        stats = RequestStats(use_response_times_cache=True)
        environment.streamspec_stats = stats  # type: ignore[attr-defined]
    return stats


def _send_stream_stats(client_id: str, data: dict[str, Any], **kwargs: Any) -> None:
    environment = kwargs.get("environment") or getattr(events, "_streamspec_env", None)
    if environment is None:
        return
    stats = stream_stats(environment)
    data[_REPORT_KEY] = [entry.get_stripped_report() for entry in stats.entries.values()]


def _merge_stream_stats(client_id: str, data: dict[str, Any], **kwargs: Any) -> None:
    environment = kwargs.get("environment") or getattr(events, "_streamspec_env", None)
    if environment is None:
        return
    stats = stream_stats(environment)
    for report in data.get(_REPORT_KEY, []):
        entry = StatsEntry.unserialize(report, stats)
        key = (entry.name, entry.method)
        if key not in stats.entries:
            stats.entries[key] = StatsEntry(stats, entry.name, entry.method, True)
        stats.entries[key].extend(entry)


def _remember(environment: Environment, **kwargs: Any) -> None:
    events._streamspec_env = environment  # type: ignore[attr-defined]
    stream_stats(environment)


def _print_stream_stats(environment: Environment, **kwargs: Any) -> None:
    from locust.runners import WorkerRunner

    _Records.close_all()
    if isinstance(environment.runner, WorkerRunner):
        return
    stats = stream_stats(environment)
    if stats.entries:
        print(format_stream_stats(stats))


_hooks: Any = events  # Locust's event hooks carry no annotations
_hooks.report_to_master.add_listener(_send_stream_stats)
_hooks.worker_report.add_listener(_merge_stream_stats)
_hooks.init.add_listener(_remember)
_hooks.quitting.add_listener(_print_stream_stats)


def format_stream_stats(stats: RequestStats) -> str:
    """The TTFT, TPOT and ITL statistics as a table (ms; one row per type and name)."""
    head = f"{'Type':<6} {'Name':<32} {'# entries':>10} {'mean':>9} {'min':>9}"
    head += "".join(f" {label:>9}" for label in ("p50", "p90", "p99", "max"))
    lines = ["streamspec stream statistics (ms)", head]
    for entry in sorted(stats.entries.values(), key=lambda e: (e.name, e.method)):
        values = [entry.avg_response_time, entry.min_response_time or 0.0]
        values += [entry.get_response_time_percentile(q) for q in (0.5, 0.9, 0.99)]
        values.append(entry.max_response_time)
        row = f"{entry.method:<6} {entry.name[:32]:<32} {entry.num_requests:>10}"
        lines.append(row + "".join(f" {value:>9.1f}" for value in values))
    return "\n".join(lines)


class _Records:
    """The per-request records file of this process (appended to, flushed when Locust quits)."""

    _lock = threading.Lock()
    _files: ClassVar[dict[str, IO[bytes]]] = {}

    @classmethod
    def write(cls, path: str, line: Any) -> None:
        path = path.replace("{pid}", str(os.getpid()))
        with cls._lock:
            file = cls._files.get(path)
            if file is None:
                file = cls._files[path] = open(path, "ab")  # noqa: SIM115
            write_records([line], file)

    @classmethod
    def close_all(cls) -> None:
        with cls._lock:
            for file in cls._files.values():
                file.close()
            cls._files.clear()


_ERROR_BODY = 300


def _error_message(status: int, body: bytes, content_type: str) -> str:
    """An HTTP error response in one line, worded as :class:`streamspec.http.HTTPStatusError`."""
    from ..http import HTTPStatusError, parse_error_body

    error = parse_error_body(body, status=status, content_type=content_type)
    return HTTPStatusError(status, error).message


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

    records_path: ClassVar[str | None] = None
    """Append per-request records here (JSON lines; ``{pid}``: the process id).

    Defaults to the ``STREAMSPEC_RECORDS`` environment variable; None: no records."""

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
        """Send one streaming request, report it, and return its metrics."""
        start = time.time()
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
            metrics = self._consume(response, meter)
        path = self.records_path or os.environ.get("STREAMSPEC_RECORDS")
        if path:
            _Records.write(path, record_from_meter(meter, start))
        return metrics

    def _consume(self, response: ResponseContextManager, meter: StreamMeter) -> StreamMetrics:
        error = getattr(response, "error", None)
        raw = response._response
        if response.status_code == 0 or raw is None:
            meter.fail(f"connection error: {error or 'no response'}", "error", "connection")
            return self._finish(response, meter, 0)
        if response.status_code >= 400:
            status = response.status_code
            try:
                kind = str(response.headers.get("Content-Type", "")) if response.headers else ""
                message = _error_message(status, response.content or b"", kind)
            except Exception:  # the body could not be read either
                message = f"HTTP {status}: {error or '(no body)'}"
            meter.fail(message, "error", f"http_{status}")
            return self._finish(response, meter, 0)
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
            meter.fail(f"{type(exc).__name__}: {exc}", "truncated", "connection")
        return self._finish(response, meter, size)

    def _finish(
        self, response: ResponseContextManager, meter: StreamMeter, size: int
    ) -> StreamMetrics:
        metrics = meter.result()
        e2el = metrics.e2el_ms
        if e2el is None:
            e2el = (time.perf_counter_ns() - meter.start_ns) / 1e6
        response.request_meta["response_time"] = e2el
        response.request_meta["response_length"] = size
        if metrics.status == "complete":
            _mark(response, None)
        else:
            _mark(response, metrics.error or metrics.status)
        self._report(metrics, meter)
        return metrics

    def _report(self, metrics: StreamMetrics, meter: StreamMeter) -> None:
        """Log the TTFT, TPOT and ITL entries of one stream in :func:`stream_stats`."""
        stats = stream_stats(self.environment)
        name = self.request_name
        if metrics.ttft_ms is not None:
            stats.log_request("TTFT", name, metrics.ttft_ms, 0)  # type: ignore[arg-type]
        if metrics.status != "complete":
            return
        if metrics.tpot_ms is not None:
            stats.log_request("TPOT", name, metrics.tpot_ms, 0)  # type: ignore[arg-type]
        for gap in meter.itl_ns:
            stats.log_request("ITL", name, gap / 1e6, 0)  # type: ignore[arg-type]
