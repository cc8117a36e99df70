"""``streamspec bench``: time decoding against other libraries (see :mod:`streamspec.bench`)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(commands: Any, with_bench: bool = True) -> None:
    """Register ``bench``; its options need the bench module, imported only when it runs."""
    bench = commands.add_parser(
        "bench",
        help="time decoding against other libraries",
        description="Time streamspec decoding a synthetic stream, next to its peers.",
    )
    if with_bench:
        from .. import bench as bench_module

        bench_module.add_arguments(bench)
    bench.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import bench

    return bench.run(args)
