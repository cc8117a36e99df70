"""What ``decode`` and ``check`` share when their source is an OpenAI-compatible server.

A base URL (``http://localhost:8000/v1``) names the server; the command POSTs
a streaming request to ``/chat/completions`` or, for legacy streams,
``/completions`` (a URL that already ends in an endpoint is kept), with the
usual options: ``--model``, ``--request FILE.json``, ``--api-key`` (default
``$OPENAI_API_KEY``) and ``--timeout``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import msgspec

from ._common import fail, read_all

__all__ = ["add_server_options", "endpoint", "headers", "load_request", "timeout"]


def add_server_options(group: Any, request_help: str) -> None:
    """Add ``--model``, ``--request``, ``--api-key`` and ``--timeout`` to an argument group."""
    group.add_argument("--model", help="the model to ask for")
    group.add_argument("--request", metavar="FILE.json", help=request_help)
    group.add_argument("--api-key", metavar="KEY", help="bearer token (default: $OPENAI_API_KEY)")
    group.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="give up after SECONDS without a byte from the server (default 300)",
    )


def endpoint(base: str, kind: str | None) -> str:
    """``http://host/v1`` -> ``.../v1/chat/completions``, or ``.../v1/completions`` for legacy.

    A URL that already names an endpoint is kept.
    """
    base = base.rstrip("/")
    if base.endswith("/completions"):
        return base
    return base + ("/completions" if kind == "completions" else "/chat/completions")


def load_request(path: str) -> dict[str, Any]:
    """The JSON object of a ``--request`` file (``-``: standard input)."""
    try:
        loaded = msgspec.json.decode(read_all(path))
    except msgspec.DecodeError as exc:
        fail(f"invalid request {path}: {exc}", 2)
    if not isinstance(loaded, dict):
        fail(f"invalid request {path}: expected a JSON object", 2)
    return loaded


def headers(args: argparse.Namespace, **extra: str) -> dict[str, str]:
    """The request headers: ``extra``, and the bearer token of ``--api-key`` or the environment."""
    key = args.api_key or os.environ.get("OPENAI_API_KEY")
    return {**extra, "Authorization": f"Bearer {key}"} if key else dict(extra)


def timeout(httpx: Any, args: argparse.Namespace) -> Any:
    """``--timeout`` for every read; connecting gets at most 30 s of it."""
    return httpx.Timeout(args.timeout, connect=min(args.timeout, 30.0))
