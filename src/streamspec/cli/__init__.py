"""The ``streamspec`` command: decode, check and benchmark chat completion streams.

::

    streamspec decode [PATH | - | URL]   print the text of choice 0 as it arrives (chat or legacy)
    streamspec check PATH | - | URL      list what is malformed (or off-spec) in a stream
    streamspec bench                     time decoding: peers, then every read shape
    streamspec serve UPSTREAM_URL        run the accounting gateway (extra gateway)

Each command is a module of this package with ``add_parser(commands)`` and
``run(args) -> int``: a thin layer over the library (``decode``, ``check``,
``bench``...); ``_common`` holds what they share, ``_server`` the server options of
``decode`` and ``check``.

``decode`` reads a file, standard input (``-``), or an OpenAI-compatible
server (a base URL such as ``http://localhost:8000/v1``, with ``--model`` and
``--prompt`` or ``--request``, sent through :func:`streamspec.http.connect_stream`);
with no argument it decodes a bundled sample. It reads chat completion chunks
and legacy ``text_completion`` chunks: for a file the first chunk tells which
(``--kind chat|completions`` forces one); for a URL ``--kind completions`` or a
URL ending in ``/completions`` asks ``/v1/completions`` with ``--prompt`` as the
prompt. Text goes to standard output as each chunk arrives (flushed); a summary
goes to standard error: what the stream said (finish reason, chunks,
characters, usage) and, for a live server only, how fast it came (timing from
:class:`streamspec.metrics.StreamMeter`)::

    $ streamspec decode http://localhost:8000/v1 --model qwen3 --prompt "Say thanks"
    Voici trois façons de dire « merci » : ...
    -- finish_reason stop | 53 chunks | 170 content chars | usage 31 prompt + 49 completion = 80
    -- first chunk 114.6 ms | first token 167.3 ms | inter-chunk p50 20.7 / p90 23.0 / p99 87.7
       / max 101.1 ms | 48.1 tokens/s (from usage)

``--json`` prints each chunk as one JSON line instead, ``--final`` the
accumulated response (``chat.completion``, or ``text_completion`` for a legacy
stream). While a server is slow to answer, a status line on stderr (a terminal
only) shows what is awaited and for how long.

Failures print one line on standard error, ``streamspec: <what happened>``,
and set the exit status: 1 for a stream that failed (server error, malformed
event, truncated stream, HTTP error, unreachable server), 2 for bad usage (a
missing or unreadable file, a malformed URL, an invalid request file), 130
when interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import bench, check, decode, load, report, serve
from ._common import PROG, Failure, error

__all__ = ["main"]


def _parser(with_bench: bool) -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Decode, check and benchmark OpenAI-style chat completion streams.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    decode.add_parser(commands)
    check.add_parser(commands)
    bench.add_parser(commands, with_bench)
    load.add_parser(commands)
    report.add_parser(commands)
    serve.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``streamspec`` command line; return the exit status."""
    args_list = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = _parser(with_bench=args_list[:1] == ["bench"])
        try:
            args = parser.parse_args(args_list)
        except SystemExit as exc:  # --help, --version, or a usage error already printed
            return exc.code if isinstance(exc.code, int) else 2
        code: int = args.func(args)
        return code
    except Failure as exc:
        error(exc.message)
        return exc.code
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (`streamspec decode | head`): stop quietly.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except Exception as exc:
        if os.environ.get("STREAMSPEC_DEBUG"):
            raise
        error(f"internal error: {type(exc).__name__}: {exc} (set STREAMSPEC_DEBUG=1 for details)")
        return 1
