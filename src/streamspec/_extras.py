"""Optional dependencies: import them lazily, and say which extra to install when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that provides it.

    ``extra`` is the name to put in ``pip install 'streamspec[<extra>]'``.
    """

    def __init__(self, feature: str, module: str, extra: str) -> None:
        super().__init__(
            f"{feature} needs {module}, which is not installed: pip install 'streamspec[{extra}]'",
            name=module,
        )
        self.extra = extra


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module``; raise :class:`MissingExtraError` naming ``extra`` if it is missing.

    ``feature`` says what needs it, for the message (``"streamspec.http with httpx"``).
    A module that is installed but fails to import for another reason raises
    that error unchanged.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing and missing != module.split(".")[0]:
            # The module is there but one of its own dependencies is not.
            raise MissingExtraError(feature, missing, extra) from exc
        raise MissingExtraError(feature, module, extra) from exc
