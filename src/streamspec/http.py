"""The HTTP edge: open a streaming response with httpx or aiohttp, and tell a stream from an error.

What a server answers to ``POST /v1/chat/completions`` with ``"stream": true``:

* ``200`` with ``Content-Type: text/event-stream`` and the SSE body: the stream;
* ``4xx``/``5xx`` with a JSON error body, in one of several shapes::

      {"error": {"message": "...", "type": "...", "param": null, "code": "..."}}   OpenAI
      {"object": "error", "message": "...", "type": "...", "code": 400}            vLLM
      {"error": "model 'x' not found"}                                             Ollama, TGI
      {"detail": "Not Found"}   {"detail": [{"loc": [...], "msg": "..."}]}         FastAPI
      {"message": "..."}                                                           others

  or, from a proxy in front of the server, an HTML page (``<title>502 Bad
  Gateway</title>``) or plain text;
* ``200`` with a JSON body that is an error (LiteLLM, llama.cpp for a bad
  request), or a whole non-streamed response (a server that ignored ``stream``).

:func:`connect_stream` (httpx sync) and :func:`aconnect_stream` (httpx async,
aiohttp) send the request, check the status and the content type, and either
raise a typed error or hand back an :class:`EventStream` /
:class:`AsyncEventStream`: iterate it for chunks, or read ``iter_bytes()`` /
``aiter_bytes()`` (the body exactly as it arrives) and feed ``decoder``
yourself, as a relay or a meter does::

    with httpx.Client() as client:
        with connect_stream(client, "POST", url, json=body) as stream:
            for chunk in stream:
                ...

    async with aconnect_stream(session, "POST", url, json=body) as stream:
        async for data in stream.aiter_bytes():
            await forward(data)  # unchanged
            for chunk in stream.decoder.feed(data):
                ...

Errors, all :class:`streamspec.Error` subclasses:

* :class:`HTTPStatusError` (a :class:`~streamspec.StreamError`): a status
  outside 2xx; carries ``status_code``, ``headers``, the server's ``error``
  (:class:`~streamspec.ErrorObject`, built by :func:`parse_error_body`) and
  the first :data:`MAX_ERROR_BODY` bytes of the ``body``;
* :class:`~streamspec.StreamError`: a 200 whose body is a JSON error;
* :class:`NotAStreamError`: a 200 whose body is JSON (or HTML) but no error,
  e.g. a non-streamed ``chat.completion``;
* :class:`TransportError`: the server could not be reached, timed out, or the
  connection broke mid-body (the client's exception is ``__cause__``);
* the decoder's errors while the stream is read.

httpx and aiohttp are imported only when used; a missing one raises
:class:`~streamspec._extras.MissingExtraError` (an :class:`ImportError`) that
names the extra to install: ``streamspec[http]`` or ``streamspec[aiohttp]``.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    AsyncExitStack,
    ExitStack,
)
from contextlib import asynccontextmanager as _asynccontextmanager
from contextlib import contextmanager as _contextmanager
from typing import Any, Generic, Literal, TypeVar, overload

import msgspec

from ._extras import require
from .decoder import ChunkDecoder, error_object
from .errors import Error, StreamError
from .iterate import aiterate, iterate
from .sse import DEFAULT_MAX_EVENT_SIZE
from .types.common import ErrorObject
from .types.stream import CreateChatCompletionStreamResponse

__all__ = [
    "MAX_ERROR_BODY",
    "AsyncEventStream",
    "EventStream",
    "HTTPStatusError",
    "NotAStreamError",
    "TransportError",
    "aconnect_stream",
    "connect_stream",
    "parse_error_body",
]

T = TypeVar("T")

MAX_ERROR_BODY = 64 * 1024
"""Bytes of an error body read and kept (the rest is not read)."""

_MESSAGE_LIMIT = 500
_decode_json = msgspec.json.Decoder().decode
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_HIDDEN = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_SSE_START = (b"data:", b"event:", b"id:", b"retry:", b":")


# -- error bodies -------------------------------------------------------------------------------


def _one_line(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _html_text(body: bytes) -> str:
    """The gist of an HTML page: its ``<title>``, else its visible text."""
    match = _TITLE.search(body)
    if match is not None:
        title = _one_line(html.unescape(match.group(1).decode("utf-8", "replace")))
        if title:
            return title
    text = _HIDDEN.sub(" ", body.decode("utf-8", "replace"))
    return _one_line(html.unescape(_TAG.sub(" ", text)))


def _looks_like_html(body: bytes, content_type: str) -> bool:
    if "html" in content_type:
        return True
    head = body.lstrip()[:15].lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _detail_message(detail: Any) -> str:
    """FastAPI's ``detail``: a string, or a list of ``{"loc": [...], "msg": "..."}`` items."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict) and isinstance(item.get("msg"), str):
                loc = item.get("loc")
                where = ".".join(map(str, loc)) if isinstance(loc, list) and loc else ""
                parts.append(f"{where}: {item['msg']}" if where else item["msg"])
            else:
                parts.append(str(item))
        return "; ".join(parts)
    if isinstance(detail, dict):
        message = detail.get("message", detail.get("msg"))
        if isinstance(message, str):
            return message
    return _one_line(msgspec.json.encode(detail).decode())


def _error_from_json(value: Any) -> ErrorObject | None:
    """The error a decoded JSON body reports, or None if it reports none."""
    if isinstance(value, list) and len(value) == 1:  # Gemini wraps its error in a list
        value = value[0]
    if isinstance(value, str):
        return ErrorObject(message=value) if value else None
    if not isinstance(value, dict):
        return None
    error = value.get("error")
    if error not in (None, "", False, 0, {}):
        found = error_object(error, value.get("error_type"))
        if found.type is None and isinstance(error, dict) and isinstance(error.get("status"), str):
            found.type = error["status"]  # Google's {"code": 400, "status": "INVALID_ARGUMENT"}
        return found
    if value.get("object") == "error" or isinstance(value.get("message"), str):
        # vLLM's flat error object ({"object": "error", "message", "type", "code"}), and others.
        return error_object(value)
    if "detail" in value and value["detail"] not in (None, ""):
        return ErrorObject(message=_detail_message(value["detail"]))
    return None


def parse_error_body(
    body: bytes | str,
    *,
    status: int | None = None,
    reason: str = "",
    content_type: str = "",
) -> ErrorObject:
    """The :class:`~streamspec.ErrorObject` an HTTP error body reports, whatever its shape.

    Understands OpenAI's ``{"error": {...}}`` (also with a string ``error`` and
    a sibling ``error_type``, as TGI sends), vLLM's flat object with an integer
    ``code``, ``{"detail": ...}`` (FastAPI, a string or validation items),
    ``{"message": ...}``, a bare JSON string, an HTML page (its title) and
    plain text. ``status`` and ``reason`` describe the response when the body
    says nothing (an empty body: ``"HTTP 503 Service Unavailable"``).
    """
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    fallback = f"HTTP {status} {reason}".strip() if status is not None else ""
    found: ErrorObject | None = None
    try:
        value = _decode_json(data)
    except msgspec.DecodeError:
        if _looks_like_html(data, content_type):
            text = _html_text(data)
        else:
            text = _one_line(data.decode("utf-8", "replace"))
        if text:
            found = ErrorObject(message=text)
    else:
        found = _error_from_json(value)
        if found is None and data.strip():
            found = ErrorObject(message=_one_line(data.decode("utf-8", "replace")))
    if found is None:
        return ErrorObject(message=fallback or "(empty body)")
    if not found.message:
        found.message = fallback or "(no message)"
    return found


# -- errors -------------------------------------------------------------------------------------


class HTTPStatusError(StreamError):
    """The server answered with a status outside 2xx.

    ``status_code`` and ``reason`` are the status; ``headers`` the response
    headers (lower-case names; repeated headers joined with ``", "``);
    ``error`` the server's :class:`~streamspec.ErrorObject`
    (:func:`parse_error_body`); ``body`` the first :data:`MAX_ERROR_BODY`
    bytes of the body (``body_truncated`` says whether there was more);
    ``url`` the request's URL. ``retry_after`` is the ``Retry-After`` header
    in seconds, when it is a number.
    """

    def __init__(
        self,
        status_code: int,
        error: ErrorObject,
        *,
        reason: str = "",
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        body_truncated: bool = False,
        url: str = "",
    ) -> None:
        super().__init__(error, body)
        self.status_code = status_code
        self.reason = reason
        self.headers: dict[str, str] = dict(headers or {})
        self.body = body
        self.body_truncated = body_truncated
        self.url = url
        parts = [f"HTTP {status_code}{' ' + reason if reason else ''}: {error.message}"]
        if isinstance(error.type, str) and error.type:
            parts.append(f"type={error.type}")
        code = error.code
        if isinstance(code, (str, int)) and not isinstance(code, bool) and code != status_code:
            parts.append(f"code={code}")
        self.message = " ".join(parts)
        self.args = (self.message,)

    @property
    def retry_after(self) -> float | None:
        value = self.headers.get("retry-after", "")
        try:
            seconds = float(value)
        except ValueError:
            return None
        return seconds if seconds >= 0 else None


class NotAStreamError(Error):
    """A 2xx response whose body is not an event stream (a JSON document, an HTML page).

    ``status_code``, ``content_type`` and ``body`` (at most
    ``max_event_size`` bytes) describe it: typically a non-streamed
    ``chat.completion`` from a server that ignored ``"stream": true``.
    """

    def __init__(self, status_code: int, content_type: str, body: bytes, url: str = "") -> None:
        what = content_type or "no content type"
        super().__init__(
            f"expected an event stream, got {what} (HTTP {status_code}):"
            f" {_one_line(body.decode('utf-8', 'replace'), 200) or '(empty body)'}"
        )
        self.status_code = status_code
        self.content_type = content_type
        self.body = body
        self.url = url


TransportKind = Literal["connect", "timeout", "broken", "other"]


class TransportError(Error):
    """The request failed below HTTP: ``kind`` says how.

    ``"connect"``: the server could not be reached (refused, DNS, TLS);
    ``"timeout"``: no answer or no byte in time; ``"broken"``: the connection
    closed in the middle of the body; ``"other"``: anything else the client
    raised (an invalid URL, for instance). ``url`` is the request's URL; the
    client library's exception is ``__cause__``.
    """

    def __init__(self, kind: TransportKind, url: str, detail: str) -> None:
        lead = {
            "connect": f"cannot connect to {url}",
            "timeout": f"timed out talking to {url}",
            "broken": f"the connection to {url} broke",
            "other": f"request to {url} failed",
        }[kind]
        super().__init__(f"{lead}: {_one_line(detail) or 'no details'}")
        self.kind = kind
        self.url = url


# -- shared response checks ---------------------------------------------------------------------


def _headers(items: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in items:
        key = str(name).lower()
        out[key] = f"{out[key]}, {value}" if key in out else str(value)
    return out


def _request_headers(given: Any) -> dict[str, str]:
    """The caller's headers plus ``Accept: text/event-stream`` unless they chose one."""
    merged = dict(given.items() if hasattr(given, "items") else (given or ()))
    if not any(str(name).lower() == "accept" for name in merged):
        merged["Accept"] = "text/event-stream"
    return merged


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def _sniff(media: str) -> bool:
    """Whether a 2xx body of this media type must be read whole and looked at first."""
    return _is_json(media) or media == "text/html"


def _looks_like_sse(body: bytes) -> bool:
    return body.lstrip(b"\xef\xbb\xbf\r\n ").startswith(_SSE_START)


def _starts_as_sse(parts: list[bytes]) -> tuple[bool, bool]:
    """(still undecided, starts like an event stream) for the first reads of a body."""
    head = b"".join(parts).lstrip(b"\xef\xbb\xbf\r\n ")
    if len(head) < 6 and any(field.startswith(head) for field in _SSE_START):
        return True, False  # too short to tell
    return False, head.startswith(_SSE_START)


def _classify(status: int, content_type: str, body: bytes, complete: bool, url: str) -> None:
    """Raise for a 2xx body that is JSON or HTML rather than a stream; return to stream it.

    A body that turns out to be SSE after all (a mislabelled stream), or one
    larger than was read, is streamed.
    """
    if not complete or _looks_like_sse(body):
        return
    try:
        value = _decode_json(body)
    except msgspec.DecodeError:
        if _looks_like_html(body, content_type):
            raise NotAStreamError(status, content_type, body, url) from None
        return
    found = _error_from_json(value)
    if found is not None:
        if not found.message:
            found.message = "(no message)"
        raise StreamError(found, body)
    raise NotAStreamError(status, content_type, body, url)


def _status_error(
    status: int, reason: str, headers: dict[str, str], body: bytes, ended: bool, url: str
) -> HTTPStatusError:
    """The error for a non-2xx response whose body began with ``body`` (``ended``: all of it)."""
    more = not ended or len(body) > MAX_ERROR_BODY
    body = body[:MAX_ERROR_BODY]
    content_type = headers.get("content-type", "")
    error = parse_error_body(body, status=status, reason=reason, content_type=content_type)
    return HTTPStatusError(
        status,
        error,
        reason=reason,
        headers=headers,
        body=body,
        body_truncated=more,
        url=url,
    )


# -- streams ------------------------------------------------------------------------------------


class EventStream(Generic[T]):
    """An open streaming response (httpx sync): iterate it for chunks of ``T``.

    ``status_code``, ``headers`` (lower-case names) and ``response`` (the
    ``httpx.Response``) describe it; ``decoder`` is the :class:`ChunkDecoder`
    that iteration feeds. Read the body once, either way:

    * ``for chunk in stream`` (or ``iter_chunks()``): decoded chunks until
      ``[DONE]``, with the decoder's end-of-stream rules;
    * ``iter_bytes()``: the body's reads exactly as they arrive (after any
      content decoding), for a relay or a meter that feeds ``decoder`` itself.
    """

    def __init__(
        self,
        response: Any,
        decoder: ChunkDecoder[T],
        reads: Iterator[bytes],
        headers: dict[str, str],
        url: str,
    ) -> None:
        self.response = response
        self.decoder = decoder
        self.url = url
        self.status_code: int = response.status_code
        self.headers = headers
        self._reads: Iterator[bytes] | None = reads

    def iter_bytes(self) -> Iterator[bytes]:
        """The body's reads as they arrive; a broken connection raises :class:`TransportError`."""
        reads, self._reads = self._reads, None
        if reads is None:
            raise RuntimeError("the stream's body was already read")
        return reads

    def iter_chunks(self) -> Iterator[T]:
        """Decoded chunks until ``[DONE]`` or the end of the body."""
        return iterate(self.decoder, self.iter_bytes())

    def __iter__(self) -> Iterator[T]:
        return self.iter_chunks()


class AsyncEventStream(Generic[T]):
    """An open streaming response (httpx async or aiohttp): ``async for`` gives chunks of ``T``.

    The same as :class:`EventStream`, asynchronously: ``aiter_chunks()`` (or
    ``async for chunk in stream``), or ``aiter_bytes()`` to read the raw body
    and feed ``decoder`` yourself. ``response`` is the ``httpx.Response`` or
    ``aiohttp.ClientResponse``.
    """

    def __init__(
        self,
        response: Any,
        decoder: ChunkDecoder[T],
        reads: AsyncIterator[bytes],
        status_code: int,
        headers: dict[str, str],
        url: str,
    ) -> None:
        self.response = response
        self.decoder = decoder
        self.url = url
        self.status_code = status_code
        self.headers = headers
        self._reads: AsyncIterator[bytes] | None = reads

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body's reads as they arrive; a broken connection raises :class:`TransportError`."""
        reads, self._reads = self._reads, None
        if reads is None:
            raise RuntimeError("the stream's body was already read")
        return reads

    def aiter_chunks(self) -> AsyncIterator[T]:
        """Decoded chunks until ``[DONE]`` or the end of the body."""
        return aiterate(self.decoder, self.aiter_bytes())

    def __aiter__(self) -> AsyncIterator[T]:
        return self.aiter_chunks()


# -- httpx --------------------------------------------------------------------------------------


def _httpx() -> Any:
    return require("httpx", "http", "streamspec.http with an httpx client")


def _httpx_failure(httpx: Any, exc: Exception, url: str) -> TransportError:
    kind: TransportKind
    if isinstance(exc, httpx.TimeoutException):
        kind = "timeout"
    elif isinstance(exc, httpx.ConnectError):
        kind = "connect"
    elif isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        kind = "broken"
    else:
        kind = "other"
    return TransportError(kind, url, str(exc) or type(exc).__name__)


def _httpx_errors(httpx: Any) -> tuple[type[Exception], ...]:
    return (httpx.TransportError, httpx.InvalidURL, httpx.UnsupportedProtocol)


def _read_sync(
    httpx: Any, reads: Iterator[bytes], limit: int, url: str, sniff: bool = False
) -> tuple[bytes, bool]:
    """The body's first reads, until more than ``limit`` bytes or the end; whether it ended.

    With ``sniff``, reading stops as soon as the body starts like an event
    stream (it is then streamed without waiting for the rest).
    """
    parts: list[bytes] = []
    size = 0
    try:
        for data in reads:
            parts.append(data)
            size += len(data)
            if size > limit:
                return b"".join(parts), False
            if sniff:
                sniff, stream = _starts_as_sse(parts)
                if stream:
                    return b"".join(parts), False
    except _httpx_errors(httpx) as exc:
        raise _httpx_failure(httpx, exc, url) from exc
    return b"".join(parts), True


def _chain(prefix: bytes, reads: Iterator[bytes], httpx: Any, url: str) -> Iterator[bytes]:
    if prefix:
        yield prefix
    try:
        yield from reads
    except _httpx_errors(httpx) as exc:
        raise _httpx_failure(httpx, exc, url) from exc


@overload
def connect_stream(
    client: Any,
    method: str,
    url: str,
    *,
    type: type[CreateChatCompletionStreamResponse] = ...,
    max_event_size: int = ...,
    require_done: bool = ...,
    **request_kwargs: Any,
) -> AbstractContextManager[EventStream[CreateChatCompletionStreamResponse]]: ...


@overload
def connect_stream(
    client: Any,
    method: str,
    url: str,
    *,
    type: type[T],
    max_event_size: int = ...,
    require_done: bool = ...,
    **request_kwargs: Any,
) -> AbstractContextManager[EventStream[T]]: ...


def connect_stream(
    client: Any,
    method: str,
    url: str,
    *,
    type: Any = CreateChatCompletionStreamResponse,
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    require_done: bool = False,
    **request_kwargs: Any,
) -> AbstractContextManager[EventStream[Any]]:
    """Send a request with an ``httpx.Client``; a context manager giving an :class:`EventStream`.

    ``request_kwargs`` go to ``client.stream()`` (``json=``, ``headers=``,
    ``timeout=``...); ``Accept: text/event-stream`` is added unless the
    headers name an ``Accept``. Raises :class:`HTTPStatusError`,
    :class:`~streamspec.StreamError`, :class:`NotAStreamError` or
    :class:`TransportError` (see the module docstring) before yielding.
    Leaving the block closes the response.
    """
    return _connect(client, method, url, type, max_event_size, require_done, request_kwargs)


@_contextmanager
def _connect(
    client: Any,
    method: str,
    url: str,
    type: Any,
    max_event_size: int,
    require_done: bool,
    kwargs: dict[str, Any],
) -> Iterator[EventStream[Any]]:
    httpx = _httpx()
    kwargs["headers"] = _request_headers(kwargs.get("headers"))
    decoder = ChunkDecoder(type, max_event_size=max_event_size, require_done=require_done)
    with ExitStack() as stack:
        try:
            response = stack.enter_context(client.stream(method, url, **kwargs))
        except _httpx_errors(httpx) as exc:
            raise _httpx_failure(httpx, exc, url) from exc
        status: int = response.status_code
        headers = _headers(response.headers.multi_items())
        reads = response.iter_bytes()
        prefix = b""
        if not 200 <= status < 300:
            body, ended = _read_sync(httpx, reads, MAX_ERROR_BODY, url)
            raise _status_error(status, response.reason_phrase, headers, body, ended, url)
        content_type = headers.get("content-type", "")
        if _sniff(_media_type(content_type)):
            prefix, ended = _read_sync(httpx, reads, max_event_size, url, sniff=True)
            _classify(status, content_type, prefix, ended, url)
        yield EventStream(response, decoder, _chain(prefix, reads, httpx, url), headers, url)


# -- async: httpx.AsyncClient and aiohttp.ClientSession -----------------------------------------


def _is_aiohttp(client: Any) -> bool:
    return any(cls.__module__.split(".")[0] == "aiohttp" for cls in client.__class__.__mro__)


@overload
def aconnect_stream(
    client: Any,
    method: str,
    url: str,
    *,
    type: type[CreateChatCompletionStreamResponse] = ...,
    max_event_size: int = ...,
    require_done: bool = ...,
    **request_kwargs: Any,
) -> AbstractAsyncContextManager[AsyncEventStream[CreateChatCompletionStreamResponse]]: ...


@overload
def aconnect_stream(
    client: Any,
    method: str,
    url: str,
    *,
    type: type[T],
    max_event_size: int = ...,
    require_done: bool = ...,
    **request_kwargs: Any,
) -> AbstractAsyncContextManager[AsyncEventStream[T]]: ...


def aconnect_stream(
    client: Any,
    method: str,
    url: str,
    *,
    type: Any = CreateChatCompletionStreamResponse,
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    require_done: bool = False,
    **request_kwargs: Any,
) -> AbstractAsyncContextManager[AsyncEventStream[Any]]:
    """Send a request with an ``httpx.AsyncClient`` or an ``aiohttp.ClientSession``.

    An async context manager giving an :class:`AsyncEventStream`; otherwise
    the same as :func:`connect_stream`. ``request_kwargs`` go to
    ``client.stream()`` (httpx) or ``session.request()`` (aiohttp).
    """
    if _is_aiohttp(client):
        return _aconnect_aiohttp(
            client, method, url, type, max_event_size, require_done, request_kwargs
        )
    return _aconnect_httpx(client, method, url, type, max_event_size, require_done, request_kwargs)


async def _aread(
    reads: AsyncIterator[bytes],
    limit: int,
    errors: Any,
    failure: Any,
    url: str,
    sniff: bool = False,
) -> tuple[bytes, bool]:
    """The async twin of :func:`_read_sync`."""
    parts: list[bytes] = []
    size = 0
    try:
        async for data in reads:
            parts.append(data)
            size += len(data)
            if size > limit:
                return b"".join(parts), False
            if sniff:
                sniff, stream = _starts_as_sse(parts)
                if stream:
                    return b"".join(parts), False
    except errors as exc:
        raise failure(exc, url) from exc
    return b"".join(parts), True


async def _achain(
    prefix: bytes, reads: AsyncIterator[bytes], errors: Any, failure: Any, url: str
) -> AsyncIterator[bytes]:
    if prefix:
        yield prefix
    try:
        async for data in reads:
            yield data
    except errors as exc:
        raise failure(exc, url) from exc


@_asynccontextmanager
async def _aconnect_httpx(
    client: Any,
    method: str,
    url: str,
    type: Any,
    max_event_size: int,
    require_done: bool,
    kwargs: dict[str, Any],
) -> AsyncIterator[AsyncEventStream[Any]]:
    httpx = _httpx()
    errors = _httpx_errors(httpx)

    def failure(exc: Exception, url: str) -> TransportError:
        return _httpx_failure(httpx, exc, url)

    kwargs["headers"] = _request_headers(kwargs.get("headers"))
    decoder = ChunkDecoder(type, max_event_size=max_event_size, require_done=require_done)
    async with AsyncExitStack() as stack:
        try:
            response = await stack.enter_async_context(client.stream(method, url, **kwargs))
        except errors as exc:
            raise failure(exc, url) from exc
        status: int = response.status_code
        headers = _headers(response.headers.multi_items())
        reads = response.aiter_bytes()
        prefix = b""
        if not 200 <= status < 300:
            body, ended = await _aread(reads, MAX_ERROR_BODY, errors, failure, url)
            raise _status_error(status, response.reason_phrase, headers, body, ended, url)
        content_type = headers.get("content-type", "")
        if _sniff(_media_type(content_type)):
            prefix, ended = await _aread(reads, max_event_size, errors, failure, url, sniff=True)
            _classify(status, content_type, prefix, ended, url)
        chained = _achain(prefix, reads, errors, failure, url)
        yield AsyncEventStream(response, decoder, chained, status, headers, url)


def _aiohttp() -> Any:
    return require("aiohttp", "aiohttp", "streamspec.http with an aiohttp session")


def _aiohttp_failure(aiohttp: Any, exc: BaseException, url: str) -> TransportError:
    kind: TransportKind
    if isinstance(exc, (TimeoutError, aiohttp.ServerTimeoutError)):
        kind = "timeout"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        kind = "connect"
    elif isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
        kind = "broken"
    else:
        kind = "other"
    detail = str(exc) or type(exc).__name__
    return TransportError(kind, url, detail)


@_asynccontextmanager
async def _aconnect_aiohttp(
    session: Any,
    method: str,
    url: str,
    type: Any,
    max_event_size: int,
    require_done: bool,
    kwargs: dict[str, Any],
) -> AsyncIterator[AsyncEventStream[Any]]:
    import asyncio

    aiohttp = _aiohttp()
    errors = (aiohttp.ClientError, asyncio.TimeoutError)

    def failure(exc: Exception, url: str) -> TransportError:
        return _aiohttp_failure(aiohttp, exc, url)

    kwargs["headers"] = _request_headers(kwargs.get("headers"))
    decoder = ChunkDecoder(type, max_event_size=max_event_size, require_done=require_done)
    async with AsyncExitStack() as stack:
        try:
            response = await stack.enter_async_context(session.request(method, url, **kwargs))
        except errors as exc:
            raise failure(exc, url) from exc
        status: int = response.status
        headers = _headers(response.headers.items())
        reads = response.content.iter_any()
        prefix = b""
        if not 200 <= status < 300:
            body, ended = await _aread(reads, MAX_ERROR_BODY, errors, failure, url)
            raise _status_error(status, response.reason or "", headers, body, ended, url)
        content_type = headers.get("content-type", "")
        if _sniff(_media_type(content_type)):
            prefix, ended = await _aread(reads, max_event_size, errors, failure, url, sniff=True)
            _classify(status, content_type, prefix, ended, url)
        chained = _achain(prefix, reads, errors, failure, url)
        yield AsyncEventStream(response, decoder, chained, status, headers, url)
