"""``streamspec serve UPSTREAM_URL``: run the gateway (:mod:`streamspec.gateway`) on uvicorn.

Every flag has an environment variable (``STREAMSPEC_GATEWAY_<FLAG>``, for
example ``STREAMSPEC_GATEWAY_PORT=8080``); a flag given wins. The upstream
credential is read from the environment variable ``--api-key-env`` names
(never from the command line, where ``ps`` would show it). ``--model-map``
is a JSON file ``{"requested": "upstream", ...}``.

One log line per request goes to standard error (logger
``streamspec.gateway.access``)::

    endpoint=chat.completions status=complete http=200 upstream_http=200 model=gpt-4o
    upstream_model=qwen3 stream=true prompt_tokens=31 completion_tokens=49 total_tokens=80
    chunks=53 duration_ms=1170.4 ttft_ms=114.6
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from ._common import fail

__all__ = ["add_parser", "run"]

_ENV = "STREAMSPEC_GATEWAY_"


def _env(name: str, default: Any) -> Any:
    return os.environ.get(_ENV + name.upper().replace("-", "_"), default)


def add_parser(commands: Any) -> None:
    """Register ``serve`` on the command parser's subparsers."""
    serve = commands.add_parser(
        "serve",
        help="run the accounting gateway in front of an OpenAI-compatible server",
        description=(
            "Serve an OpenAI-compatible gateway on uvicorn in front of UPSTREAM_URL (a base URL"
            " such as http://localhost:8000/v1). Flags default to STREAMSPEC_GATEWAY_<FLAG>"
            " environment variables. Needs the gateway extra."
        ),
    )
    serve.add_argument(
        "upstream", metavar="UPSTREAM_URL", nargs="?", default=_env("upstream", None)
    )
    serve.add_argument("--host", default=_env("host", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(_env("port", 8080)))
    serve.add_argument(
        "--api-key-env",
        default=_env("api-key-env", None),
        metavar="VAR",
        help="environment variable holding the upstream API key (default: forward the client's)",
    )
    serve.add_argument("--model-map", default=_env("model-map", None), metavar="FILE",
                       help='JSON file {"requested model": "upstream model", ...}')  # fmt: skip
    serve.add_argument("--max-body", type=int, default=int(_env("max-body", 32 << 20)),
                       metavar="BYTES", help="largest request body (default 32 MiB)")  # fmt: skip
    serve.add_argument("--max-event-size", type=int,
                       default=int(_env("max-event-size", 8 << 20)), metavar="BYTES")  # fmt: skip
    serve.add_argument("--read-timeout", type=float, default=float(_env("read-timeout", 60)))
    serve.add_argument("--idle-timeout", type=float, default=float(_env("idle-timeout", 30)))
    serve.add_argument("--total-timeout", type=float, default=float(_env("total-timeout", 900)))
    serve.add_argument(
        "--metrics",
        action="store_true",
        default=_env("metrics", "") not in ("", "0", "false"),
        help="serve Prometheus metrics on /metrics (needs the prometheus extra)",
    )
    serve.add_argument("--log-level", default=_env("log-level", "info"))
    serve.set_defaults(func=run)


def build_app(args: argparse.Namespace) -> Any:
    """The gateway app the flags describe (the part of ``run`` before serving)."""
    if not args.upstream:
        fail("serve needs UPSTREAM_URL (or STREAMSPEC_GATEWAY_UPSTREAM)", 2)
    try:
        from ..gateway import create_app
    except ImportError as exc:
        fail(str(exc), 2)
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            fail(f"the environment variable {args.api_key_env} is not set", 2)
    model_map = None
    if args.model_map:
        try:
            with open(args.model_map, encoding="utf-8") as file:
                model_map = json.load(file)
        except (OSError, ValueError) as exc:
            fail(f"cannot read the model map {args.model_map}: {exc}", 2)
        if not isinstance(model_map, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in model_map.items()
        ):
            fail(f"{args.model_map}: expected a JSON object of model names", 2)
    try:
        return create_app(
            args.upstream,
            api_key=api_key,
            model_map=model_map,
            max_body_size=args.max_body,
            max_event_size=args.max_event_size,
            read_timeout=args.read_timeout,
            idle_timeout=args.idle_timeout,
            total_timeout=args.total_timeout,
            metrics=args.metrics,
        )
    except ImportError as exc:
        fail(str(exc), 2)


def run(args: argparse.Namespace) -> int:
    app = build_app(args)
    import uvicorn

    level = str(args.log_level).upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    gateway_logger = logging.getLogger("streamspec.gateway")
    gateway_logger.addHandler(handler)
    gateway_logger.setLevel(level)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower(),
                access_log=False)  # fmt: skip
    return 0
