"""Imported first by :mod:`streamspec.gateway`: a missing dependency names the extra to install."""

from __future__ import annotations

from .._extras import require

__all__: list[str] = []

for _module in ("anyio", "httpx", "starlette"):
    require(_module, "gateway", "streamspec.gateway")
