"""An OpenAI-compatible gateway that relays streams byte for byte and accounts for every request.

Requires the ``gateway`` extra (starlette, uvicorn, httpx, anyio)::

    from streamspec.gateway import create_app

    app = create_app("http://vllm:8000/v1", on_complete=print)
    # uvicorn.run(app, port=8080); clients use base_url="http://localhost:8080/v1"

or, from a shell, ``streamspec serve http://vllm:8000/v1 --port 8080``.

Modules, by concept:

* :mod:`~streamspec.gateway.app`: :func:`create_app`, the routes, admission,
  non-streamed responses;
* :mod:`~streamspec.gateway.relay`: the streamed response (pass-through of each
  read, decoding and accounting on the side, the endings);
* :mod:`~streamspec.gateway.edit` and :mod:`~streamspec.gateway.splice`: the
  byte-level edits of relayed chunks (usage the client did not ask for, the
  model it sees);
* :mod:`~streamspec.gateway.upstream`: the body sent upstream, the headers
  relayed back, upstream error bodies;
* :mod:`~streamspec.gateway.hooks`: ``on_request`` / ``on_complete``;
* :mod:`~streamspec.gateway.record`: :class:`GatewayRecord`;
* :mod:`~streamspec.gateway.settings`: limits and timeouts;
* :mod:`~streamspec.gateway.metrics`: Prometheus metrics (extra ``prometheus``).
"""

from __future__ import annotations

from . import _extra  # noqa: F401  (first: a missing dependency names the extra)
from .app import create_app
from .hooks import Admission, GatewayRequest, Rejection
from .record import ErrorKind, GatewayRecord, GatewayStatus
from .settings import GatewaySettings

__all__ = [
    "Admission",
    "ErrorKind",
    "GatewayRecord",
    "GatewayRequest",
    "GatewaySettings",
    "GatewayStatus",
    "Rejection",
    "create_app",
]
