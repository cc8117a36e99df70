"""The JSON documents under ``fixtures/documents`` and the checks the schema tests share.

Valid documents sit in one folder per kind (``requests``, ``responses``, ``chunks``,
``completions``); the invalid ones sit in ``invalid``, where ``MANIFEST.json`` gives
for each file the type it must fail to decode as, the JSON path the error names
(``$`` for the top-level object) and, optionally, text the error message contains.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

import streamspec

T = TypeVar("T")

DOCUMENTS = Path(__file__).resolve().parent.parent / "fixtures" / "documents"
REQUESTS = DOCUMENTS / "requests"
RESPONSES = DOCUMENTS / "responses"
CHUNKS = DOCUMENTS / "chunks"
COMPLETIONS = DOCUMENTS / "completions"
INVALID = DOCUMENTS / "invalid"
MANIFEST: dict[str, dict[str, str]] = json.loads(
    (INVALID / "MANIFEST.json").read_text(encoding="utf-8")
)


def document_names(folder: Path, pattern: str = "*.json") -> list[str]:
    """The sorted file names in ``folder`` that match ``pattern``."""
    return sorted(p.name for p in folder.glob(pattern))


def read_document(path: Path, decode: Callable[[bytes], T]) -> tuple[dict[str, Any], T]:
    """The document at ``path`` as plain JSON and as decoded by ``decode``."""
    raw = path.read_bytes()
    return json.loads(raw), decode(raw)


def encoded(obj: Any) -> Any:
    """``obj`` encoded by msgspec, read back as plain JSON."""
    return json.loads(msgspec.json.encode(obj))


def invalid_documents(types: Collection[str]) -> list[str]:
    """The sorted names of the invalid documents whose manifest type is in ``types``."""
    return sorted(n for n, e in MANIFEST.items() if e["type"] in types)


def check_invalid(name: str) -> None:
    """Decoding the invalid document ``name`` raises a ValidationError naming its path.

    When the manifest entry has a ``message``, the error text must contain it too.
    """
    entry = MANIFEST[name]
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.json.decode((INVALID / name).read_bytes(), type=getattr(streamspec, entry["type"]))
    text = str(info.value)
    if entry["path"] == "$":
        # msgspec names no path for an error in the top-level object.
        assert " - at `" not in text, text
    else:
        suffix = f" - at `{entry['path']}`"
        assert text.endswith(suffix), f"{text!r} does not end with {suffix!r}"
    if "message" in entry:
        assert entry["message"] in text, f"{entry['message']!r} not in {text!r}"
