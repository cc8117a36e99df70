"""``python -m streamspec``: the ``streamspec`` command (see :mod:`streamspec.cli`)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
