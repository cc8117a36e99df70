"""The gateway's two hooks: ``on_request`` (admit, reject, route) and ``on_complete`` (account).

``on_request(request: GatewayRequest)`` runs before anything goes upstream. It
may be a plain function or a coroutine function, and may:

* return None: the request goes on as it is;
* return an :class:`Admission`: its ``context`` is carried by the
  :class:`~streamspec.gateway.GatewayRecord`, its ``model`` (if set) is the
  model sent upstream, its ``api_key`` (if set) the upstream credential;
* return any other object: that object is the record's ``context``;
* raise :class:`Rejection` (status 401, 403, 429... and a message): the
  client gets an OpenAI-shaped error with that status, the record says
  ``error`` / ``rejected``.

``on_complete(record)`` receives every record, once; plain or coroutine
function. A plain function runs in a worker thread (so a slow one never
stalls the event loop) unless ``hooks_in_thread=False`` is given to
:func:`~streamspec.gateway.create_app`. An exception raised by either hook is
logged once with its traceback; the record is still delivered (an
``on_request`` failure becomes a 500 for the client and an ``error`` /
``hook_failed`` record).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio.to_thread
import msgspec
from starlette.requests import Request

from .record import GatewayRecord

__all__ = [
    "Admission",
    "GatewayRequest",
    "OnComplete",
    "OnRequest",
    "Rejection",
    "call_hook",
]


class GatewayRequest(msgspec.Struct, kw_only=True):
    """A client request as ``on_request`` sees it.

    * ``endpoint``: ``"chat.completions"``, ``"completions"`` or ``"models"``
      (``GET /v1/models``: only admission and ``api_key`` apply).
    * ``model``: the requested ``model`` (None if absent or not a string);
      ``stream``: whether a stream was asked for.
    * ``api_key``: the bearer token of the client's ``Authorization`` header.
    * ``headers``: the request headers (lower-case names).
    * ``body``: the raw JSON body.
    * ``http``: the Starlette request itself (client address, URL...).
    """

    endpoint: str
    model: str | None
    stream: bool
    api_key: str | None
    headers: Mapping[str, str]
    body: bytes
    http: Request


class Admission(msgspec.Struct, kw_only=True):
    """What ``on_request`` may return to admit a request with settings of its own.

    ``context`` goes into the record; ``model`` replaces the model sent
    upstream; ``api_key`` replaces the upstream credential for this request.
    """

    context: Any = None
    model: str | None = None
    api_key: str | None = None


class Rejection(Exception):
    """Raised by ``on_request`` to refuse a request with an OpenAI-shaped error.

    ``Rejection(401, "Invalid API key", code="invalid_api_key")`` gives the
    client ``401 {"error": {"message": "Invalid API key", "type":
    "invalid_request_error", "param": null, "code": "invalid_api_key"}}``.
    ``headers`` are added to the response (``retry-after`` for a 429).
    ``context`` goes into the record.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        context: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or _default_type(status)
        self.code = code
        self.headers = dict(headers or {})
        self.context = context


def _default_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 429:
        return "rate_limit_error"
    return "invalid_request_error"


OnRequest = Callable[[GatewayRequest], Any]
"""``on_request``: returns None, an :class:`Admission`, a context object, or an awaitable of one."""

OnComplete = Callable[[GatewayRecord], "Awaitable[None] | None"]
"""``on_complete``: called once per request with its record."""


async def call_hook(hook: Callable[[Any], Any], argument: Any, in_thread: bool) -> Any:
    """Call a sync or async hook; a sync one in a worker thread when ``in_thread``."""
    if inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(
        getattr(hook, "__call__", None)  # noqa: B004 - an object with an async __call__
    ):
        return await hook(argument)
    if in_thread:
        result = await anyio.to_thread.run_sync(hook, argument)
    else:
        result = hook(argument)
    if inspect.isawaitable(result):
        result = await result
    return result
