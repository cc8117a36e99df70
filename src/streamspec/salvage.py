"""Salvage: keep every field that fits of a chunk the lenient type rejects.

Servers change shapes: one month a nested value is a list where it was a
string, the next a count is ``12.0``. A chunk whose payload is valid JSON but
does not match the type raises :class:`msgspec.ValidationError`; dropping the
whole chunk would lose its tokens. :class:`streamspec.ChunkDecoder` instead
runs the salvage step on such a payload (and only then, so it costs nothing
while chunks fit) and returns the chunk with what did not fit left out.

The rule, applied along the type from the top-level object down:

* A value that fits its field is kept as it is.
* A number with an integral value (``12.0``) in an integer field reads as that
  integer (``12``); the note says ``"converted"``.
* A value that does not fit is dropped at the smallest enclosing place that
  can lose it:

  - an optional field (one with a default) is left out, so it reads as its
    default: :data:`msgspec.UNSET` for most fields of the lenient types, an
    empty ``delta``, no ``choices``;
  - an element of a list of objects (choices, tool call fragments, content
    blocks, logprob entries) is dropped from its list; an entry of a map is
    dropped from its map;
  - a required field (a choice's ``index``, a legacy choice's ``text``) or an
    element of a list of plain values (token ids, the parallel arrays of
    legacy ``logprobs``, where dropping one would shift the others) cannot be
    lost alone: what encloses it is dropped instead, by the same rule one
    level up.

  If nothing encloses it (the top-level object itself does not fit, or a
  required top-level field does not), the payload is not salvaged: the
  decoder raises :class:`streamspec.MalformedEventError` as before.

Each dropped or converted value gives one :class:`SalvageNote`: where the
value was (``path``), what was left out (``dropped``: the value itself, or the
element or field enclosing it) and msgspec's reason. Paths are JSON paths into
the payload as it arrived (``$.choices[0].delta.content[0].thinking``), with
the indexes of the original lists.

The rule works for any msgspec type: the default chunk type, the legacy
:class:`~streamspec.CreateCompletionResponse` and slim projections alike.
Fields typed :class:`msgspec.Raw` or ``Any`` always fit. The salvaged value is
the type decoding the JSON that remains, so it is exactly what a server
sending only the fitting fields would have produced.

:func:`salvage` is the same step for one payload, outside a decoder (strict
checking lists with it what the decoder drops).
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Mapping, MutableMapping, MutableSequence, Sequence
from functools import lru_cache
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, overload

import msgspec

from .types.stream import CreateChatCompletionStreamResponse

__all__ = ["UNSALVAGED", "SalvageAction", "SalvageLog", "SalvageNote", "salvage"]

T = TypeVar("T")

SalvageAction = Literal["dropped", "converted"]
"""What salvage did with a value: left it out, or read ``12.0`` as ``12``."""


class SalvageNote(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """One value the salvage step dropped or converted.

    ``event`` and ``offset`` locate the event (as in :class:`streamspec.Error`;
    None outside a decoder). ``path`` is the JSON path of the value that did
    not fit (for a missing required field, where it would be); ``dropped`` the
    path of what was left out: ``path`` itself for an optional field, or the
    list element or field enclosing it (equal to ``path`` for a conversion).
    ``reason`` is msgspec's message, e.g. ``"Expected `str`, got `array`"``.
    """

    event: int | None = None
    offset: int | None = None
    path: str
    dropped: str
    action: SalvageAction = "dropped"
    reason: str

    def __str__(self) -> str:
        where = "" if self.event is None else f"event {self.event} (byte {self.offset}): "
        if self.action == "converted":
            return f"{where}{self.path} converted: {self.reason}"
        inside = "" if self.dropped == self.path else f" (dropped {self.dropped})"
        return f"{where}{self.path}: {self.reason}{inside}"


class _Unsalvaged:
    """The result of :meth:`SalvageLog.recover` when the payload could not be salvaged."""

    def __repr__(self) -> str:
        return "UNSALVAGED"


UNSALVAGED: Any = _Unsalvaged()
"""Returned by :meth:`SalvageLog.recover` for a payload that cannot be salvaged."""


# -- the walk -------------------------------------------------------------------------------------

_AT = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<where>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_UNION_TYPES: tuple[Any, ...] = (Union, types.UnionType)
_LISTS = frozenset({list, tuple, set, frozenset, Sequence, MutableSequence})
_MAPS = frozenset({dict, Mapping, MutableMapping})


_decode_json = msgspec.json.Decoder().decode
_encode_json = msgspec.json.Encoder().encode


@lru_cache(maxsize=256)
def _decoder(tp: Any) -> Callable[[bytes | str], Any]:
    return msgspec.json.Decoder(tp).decode


class _Misfit:
    """Why a value does not fit: where (absolute JSON path) and msgspec's reason."""

    __slots__ = ("path", "reason")

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason


def _member(path: str, key: str) -> str:
    return f"{path}.{key}" if _NAME.match(key) else f"{path}[{msgspec.json.encode(key).decode()}]"


def _misfit(path: str, exc: msgspec.ValidationError) -> _Misfit:
    """A misfit from msgspec's error for the value at ``path`` (its path is relative)."""
    match = _AT.match(str(exc))
    assert match is not None  # the pattern matches any string
    reason = match["reason"]
    where = path + (match["where"] or "")
    missing = _MISSING.match(reason)
    if missing:
        where = _member(where, missing["field"])
        reason = f"missing required field `{missing['field']}`"
    return _Misfit(where, reason)


def _fits(value: Any, tp: Any) -> msgspec.ValidationError | None:
    """msgspec's error if ``value`` (plain JSON data) does not decode as ``tp``, else None.

    The value is encoded and decoded again, so "fits" means exactly what
    decoding it from the wire would do (``Raw`` fields, string keys and all).
    """
    try:
        _decoder(tp)(_encode_json(value))
    except msgspec.ValidationError as exc:
        return exc
    return None


def _members(tp: Any) -> list[Any]:
    """The alternatives of a type: the members of a union, ``Annotated`` unwrapped."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _members(get_args(tp)[0])
    if origin in _UNION_TYPES:
        return [m for arg in get_args(tp) for m in _members(arg)]
    return [tp]


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _holds_objects(tp: Any) -> bool:
    """Whether a list of ``tp`` is a list of objects (its elements may be dropped one by one)."""
    return any(_is_struct(m) or get_origin(m) in _MAPS or m in _MAPS for m in _members(tp))


@lru_cache(maxsize=256)
def _fields(cls: type[msgspec.Struct]) -> tuple[msgspec.structs.FieldInfo, ...]:
    return msgspec.structs.fields(cls)


def _pick_struct(value: dict[str, Any], structs: list[Any]) -> Any:
    """The struct a JSON object decodes as among union members (by tag when tagged)."""
    if len(structs) == 1:
        return structs[0]
    for cls in structs:
        config = cls.__struct_config__
        if config.tag_field is not None and value.get(config.tag_field) == config.tag:
            return cls
    return None


class _Walk:
    """The salvage walk. Each method appends its notes to ``notes`` only when the value
    it was given fits in the end: a subtree dropped whole gives one note, not its own."""

    def fit(self, value: Any, tp: Any, path: str, notes: list[Any]) -> Any:
        """``value`` if it fits ``tp``, else what fits of it, else a :class:`_Misfit`."""
        error = _fits(value, tp)
        if error is None:
            return value
        members = _members(tp)
        if any(m is Any or m is msgspec.Raw or m is object for m in members):
            return value
        if isinstance(value, dict):
            structs = [m for m in members if _is_struct(m) and not m.__struct_config__.array_like]
            if structs:
                cls = _pick_struct(value, structs)
                if cls is not None:
                    return self.fit_struct(value, cls, path, notes)
            for m in members:
                origin = get_origin(m)
                if origin in _MAPS:
                    return self.fit_map(value, m, get_args(m)[1], path, notes)
        elif isinstance(value, list):
            for m in members:
                origin = get_origin(m)
                args = get_args(m)
                if origin in _LISTS and (
                    origin is not tuple or (len(args) == 2 and args[1] is ...)
                ):
                    return self.fit_list(value, m, args[0] if args else Any, path, notes)
        elif isinstance(value, float) and value.is_integer() and int in members:
            number = int(value)
            if _fits(number, tp) is None:
                notes.append((path, path, "converted", f"{value!r} read as {number}"))
                return number
        return _misfit(path, error)

    def fit_struct(self, value: dict[str, Any], cls: Any, path: str, notes: list[Any]) -> Any:
        local: list[Any] = []
        cleaned = dict(value)
        config = cls.__struct_config__
        known = set()
        for field in _fields(cls):
            key = field.encode_name
            known.add(key)
            where = _member(path, key)
            if key not in value:
                if field.required:
                    return _Misfit(where, f"missing required field `{key}`")
                continue
            got = self.fit(value[key], field.type, where, local)
            if got.__class__ is _Misfit:
                if field.required:
                    return got
                del cleaned[key]
                local.append((got.path, where, "dropped", got.reason))
            elif got is not value[key]:
                cleaned[key] = got
        if config.forbid_unknown_fields:
            for key in value:
                if key not in known and key != config.tag_field:
                    del cleaned[key]
                    where = _member(path, key)
                    local.append((where, where, "dropped", f"unknown field `{key}`"))
        error = _fits(cleaned, cls)
        if error is not None:
            return _misfit(path, error)
        notes += local
        return cleaned

    def fit_list(self, value: list[Any], tp: Any, item: Any, path: str, notes: list[Any]) -> Any:
        local: list[Any] = []
        cleaned: list[Any] = []
        droppable = _holds_objects(item)
        for position, element in enumerate(value):
            where = f"{path}[{position}]"
            got = self.fit(element, item, where, local)
            if got.__class__ is _Misfit:
                if not droppable:
                    return got
                local.append((got.path, where, "dropped", got.reason))
            else:
                cleaned.append(got)
        error = _fits(cleaned, tp)
        if error is not None:
            return _misfit(path, error)
        notes += local
        return cleaned

    def fit_map(
        self, value: dict[str, Any], tp: Any, item: Any, path: str, notes: list[Any]
    ) -> Any:
        local: list[Any] = []
        cleaned: dict[str, Any] = {}
        for key, element in value.items():
            where = _member(path, key)
            got = self.fit(element, item, where, local)
            if got.__class__ is _Misfit:
                local.append((got.path, where, "dropped", got.reason))
            else:
                cleaned[key] = got
        error = _fits(cleaned, tp)
        if error is not None:
            return _misfit(path, error)
        notes += local
        return cleaned


def _salvage(
    data: bytes | str, decode: Callable[[bytes | str], Any], tp: Any
) -> tuple[Any, list[tuple[str, str, SalvageAction, str]]] | None:
    """What fits of ``data`` decoded with ``decode``, and the notes; None if nothing can be kept.

    Raises :class:`msgspec.DecodeError` if ``data`` is not JSON.
    """
    raw = _decode_json(data)
    notes: list[tuple[str, str, SalvageAction, str]] = []
    try:
        cleaned = _Walk().fit(raw, tp, "$", notes)
    except RecursionError:  # a recursive type and a deeply nested payload
        return None
    if cleaned.__class__ is _Misfit:
        return None
    try:
        value = decode(_encode_json(cleaned))
    except msgspec.DecodeError:  # convert() and the JSON decoder disagree: keep the error
        return None
    return value, notes


@overload
def salvage(
    data: bytes | str,
    *,
    event: int | None = ...,
    offset: int | None = ...,
) -> tuple[CreateChatCompletionStreamResponse, list[SalvageNote]]: ...


@overload
def salvage(
    data: bytes | str,
    type: type[T],
    *,
    event: int | None = ...,
    offset: int | None = ...,
) -> tuple[T, list[SalvageNote]]: ...


def salvage(
    data: bytes | str,
    type: Any = CreateChatCompletionStreamResponse,
    *,
    event: int | None = None,
    offset: int | None = None,
) -> tuple[Any, list[SalvageNote]]:
    """Decode one payload as ``type`` the way :class:`streamspec.ChunkDecoder` does.

    Returns the value and the notes of what salvage dropped or converted (an
    empty list when the payload fits). ``event`` and ``offset`` are copied
    into the notes. Raises :class:`msgspec.DecodeError` when ``data`` is not
    JSON and :class:`msgspec.ValidationError` (msgspec's own, naming the first
    path that does not fit) when nothing of it can be kept; see
    :mod:`streamspec.salvage` for the rule.
    """
    decode = _decoder(type)
    try:
        return decode(data), []
    except msgspec.ValidationError as exc:
        found = _salvage(data, decode, type)
        if found is None:
            raise exc from None
    value, notes = found
    return value, [
        SalvageNote(
            event=event, offset=offset, path=path, dropped=dropped, action=action, reason=reason
        )
        for path, dropped, action, reason in notes
    ]


class SalvageLog:
    """What a decoder's salvage step did over a stream: :attr:`ChunkDecoder.salvaged`.

    * ``events``: events salvaged (decoded with some value dropped or converted).
    * ``values``: notes made, one per value dropped or converted.
    * ``notes``: the first ``limit`` notes (default 64): memory stays bounded
      however long the stream; ``values`` keeps counting past it.
    * ``enabled``: False when the decoder was made with ``salvage=False``.

    ``on_salvage``, when given, is called with every note as it is made (all
    of them, not only the first ``limit``), before the chunk is returned; it
    must not raise.
    """

    __slots__ = ("_decode", "_type", "enabled", "events", "limit", "notes", "on_salvage", "values")

    def __init__(
        self,
        type: Any,
        decode: Callable[[bytes | str], Any],
        *,
        enabled: bool = True,
        on_salvage: Callable[[SalvageNote], object] | None = None,
        limit: int = 64,
    ) -> None:
        self._type = type
        self._decode = decode
        self.enabled = enabled
        self.on_salvage = on_salvage
        self.limit = limit
        self.events = 0
        self.values = 0
        self.notes: list[SalvageNote] = []

    def __bool__(self) -> bool:
        """True once some event was salvaged."""
        return self.events > 0

    def __repr__(self) -> str:
        return f"<SalvageLog events={self.events} values={self.values}>"

    def recover(self, payload: str | bytes, exc: Exception, event: int, offset: int) -> Any:
        """The salvaged chunk of a payload the type rejected with ``exc``, or :data:`UNSALVAGED`.

        Only a :class:`msgspec.ValidationError` (valid JSON, wrong shape) is
        salvaged; invalid JSON is not.
        """
        if not self.enabled or not isinstance(exc, msgspec.ValidationError):
            return UNSALVAGED
        try:
            found = _salvage(payload, self._decode, self._type)
        except msgspec.DecodeError:
            return UNSALVAGED
        if found is None:
            return UNSALVAGED
        value, notes = found
        self.events += 1
        self.values += len(notes)
        room = self.limit - len(self.notes)
        callback = self.on_salvage
        for position, (path, dropped, action, reason) in enumerate(notes):
            if position >= room and callback is None:
                break
            note = SalvageNote(
                event=event, offset=offset, path=path, dropped=dropped, action=action, reason=reason
            )
            if position < room:
                self.notes.append(note)
            if callback is not None:
                callback(note)
        return value
