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
* A value the type's own code refuses (a ``__post_init__`` that raises) does
  not fit either, and is dropped by the same rule.

Each dropped or converted value gives one :class:`SalvageNote`: where the
value was (``path``), what was left out (``dropped``: the value itself, or the
element or field enclosing it) and msgspec's reason, in the order of the
payload. Paths are JSON paths into the payload as it arrived
(``$.choices[0].delta.content[0].thinking``), with the indexes of the original
lists. A subtree dropped whole gives one note (its first reason), not one per
value inside it.

The rule works for any msgspec type: the default chunk type, the legacy
:class:`~streamspec.CreateCompletionResponse` and slim projections alike.
Fields typed :class:`msgspec.Raw` or ``Any`` always fit. The salvaged value is
the type decoding the JSON that remains, so it is exactly what a server
sending only the fitting fields would have produced.

:func:`salvage` is the same step for one payload, outside a decoder: a strict
checker lists with it each value the decoder drops. Invalid JSON, and a payload
nested deeper than msgspec decodes, are not salvaged.
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

_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_UNION_TYPES: tuple[Any, ...] = (Union, types.UnionType)
_LISTS = frozenset({list, tuple, set, frozenset, Sequence, MutableSequence})
_MAPS = frozenset({dict, Mapping, MutableMapping})


_decode_json = msgspec.json.Decoder().decode
_encode_json = msgspec.json.Encoder().encode


def _new_decoder(tp: Any) -> Callable[[bytes | str], Any]:
    return msgspec.json.Decoder(tp).decode


_cached_decoder = lru_cache(maxsize=256)(_new_decoder)


def _decoder(tp: Any) -> Callable[[bytes | str], Any]:
    """A JSON decoder for ``tp``, made once per type (an unhashable annotation: each time)."""
    try:
        return _cached_decoder(tp)
    except TypeError:  # Annotated metadata that cannot be hashed
        return _new_decoder(tp)


class _Misfit:
    """Why a value does not fit: where (absolute JSON path) and msgspec's reason."""

    __slots__ = ("path", "reason")

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason


def _member(path: str, key: str) -> str:
    return f"{path}.{key}" if _NAME.match(key) else f"{path}[{msgspec.json.encode(key).decode()}]"


def _split(exc: Exception) -> tuple[str, str]:
    """msgspec's message and the path it names relative to ``$`` (``".choices[0]"``; ``""``)."""
    text = str(exc)
    reason, at, where = text.rpartition(" - at `$")
    if at and where.endswith("`") and "`" not in where[:-1]:
        return reason, where[:-1]
    return text, ""


def _misfit(path: str, exc: Exception) -> _Misfit:
    """A misfit from msgspec's error for the value at ``path`` (its path is relative)."""
    if not isinstance(exc, msgspec.ValidationError):  # raised by a type's own code
        return _Misfit(path, f"{type(exc).__name__}: {exc}")
    reason, where = _split(exc)
    where = path + where
    missing = _MISSING.match(reason)
    if missing:
        where = _member(where, missing["field"])
        reason = f"missing required field `{missing['field']}`"
    return _Misfit(where, reason)


_STEP = re.compile(r"^(?:\.(?P<key>[^.\[]+)|\[(?P<index>\d+)\])")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`$")


def _first_step(exc: Exception) -> str | int | None:
    """The first step of the path msgspec's error names: a key, an index, or None (here)."""
    if not isinstance(exc, msgspec.ValidationError):
        return None
    step = _STEP.match(_split(exc)[1])
    if step is None:
        return None
    return step["key"] if step["key"] is not None else int(step["index"])


def _fits(value: Any, tp: Any) -> Exception | None:
    """The error if ``value`` (plain JSON data) does not decode as ``tp``, else None.

    The value is encoded and decoded again, so "fits" means exactly what
    decoding it from the wire would do (``Raw`` fields, string keys and all).
    Any exception counts: msgspec's, or one a type's ``__post_init__`` raised.
    """
    try:
        _decoder(tp)(_encode_json(value))
    except Exception as exc:  # whatever the type raises, the value does not fit
        return exc
    return None


def _members(tp: Any) -> tuple[Any, ...]:
    """The alternatives of a type: the members of a union, ``Annotated`` unwrapped."""
    try:
        return _cached_members(tp)
    except TypeError:  # Annotated metadata that cannot be hashed
        return _find_members(tp)


def _find_members(tp: Any) -> tuple[Any, ...]:
    origin = get_origin(tp)
    if origin is Annotated:
        return _members(get_args(tp)[0])
    if origin in _UNION_TYPES:
        return tuple(m for arg in get_args(tp) for m in _members(arg))
    return (tp,)


_cached_members = lru_cache(maxsize=512)(_find_members)


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _holds_objects(tp: Any) -> bool:
    """Whether a list of ``tp`` is a list of objects (its elements may be dropped one by one)."""
    return any(_is_struct(m) or get_origin(m) in _MAPS or m in _MAPS for m in _members(tp))


@lru_cache(maxsize=256)
def _fields(cls: type[msgspec.Struct]) -> dict[str, msgspec.structs.FieldInfo]:
    """A struct's fields by the name they have on the wire."""
    return {field.encode_name: field for field in msgspec.structs.fields(cls)}


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

    def fit(
        self, value: Any, tp: Any, path: str, notes: list[Any], error: Exception | None = None
    ) -> Any:
        """``value`` if it fits ``tp``, else what fits of it, else a :class:`_Misfit`.

        ``error``, when given, is what decoding ``value`` as ``tp`` raised (the
        decoder's own failure, for the whole payload): it is not decoded again.
        """
        if error is None:
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
                    return self.fit_struct(value, cls, path, notes, error)
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
                    return self.fit_list(value, m, args[0] if args else Any, path, notes, error)
        elif isinstance(value, float) and value.is_integer() and int in members:
            number = int(value)
            if _fits(number, tp) is None:
                notes.append((path, path, "converted", f"{value!r} read as {number}"))
                return number
        return _misfit(path, error)

    def fit_struct(
        self, value: dict[str, Any], cls: Any, path: str, notes: list[Any], error: Exception | None
    ) -> Any:
        """What fits of a JSON object for struct ``cls``; ``error`` is why it does not fit.

        msgspec names the first member that does not fit (in payload order), so
        the members before it need no check: each member msgspec names is fitted
        (or dropped) and the rest decoded again, until nothing is left to name.
        Anything unexpected falls back to trying every member.
        """
        fields = _fields(cls)
        config = cls.__struct_config__
        cleaned = dict(value)
        local: list[Any] = []
        seen: set[str] = set()
        while error is not None:
            if not isinstance(error, msgspec.ValidationError):  # a type's own exception:
                return self.scan_struct(value, cls, path, notes)  # it names no path
            step = _first_step(error)
            if step is None:  # about the object itself: a missing field, an unknown one...
                reason = _split(error)[0]
                missing = _MISSING.match(reason)
                if missing:
                    key = missing["field"]
                    return _Misfit(_member(path, key), f"missing required field `{key}`")
                unknown = _UNKNOWN.match(reason)
                key = unknown["field"] if unknown else ""
                if not (config.forbid_unknown_fields and key in cleaned and key not in seen):
                    return _misfit(path, error)
                seen.add(key)
                del cleaned[key]
                where = _member(path, key)
                local.append((where, where, "dropped", f"unknown field `{key}`"))
            elif isinstance(step, str) and step in fields and step in cleaned and step not in seen:
                seen.add(step)
                field = fields[step]
                where = _member(path, step)
                got = self.fit(cleaned[step], field.type, where, local)
                if got.__class__ is _Misfit:
                    if field.required:
                        return got
                    del cleaned[step]
                    local.append((got.path, where, "dropped", got.reason))
                else:
                    cleaned[step] = got
            else:
                return self.scan_struct(value, cls, path, notes)
            error = _fits(cleaned, cls)
        notes += local
        return cleaned

    def fit_list(
        self,
        value: list[Any],
        tp: Any,
        item: Any,
        path: str,
        notes: list[Any],
        error: Exception | None,
    ) -> Any:
        """What fits of a JSON array for ``tp`` (items ``item``); guided like :meth:`fit_struct`."""
        droppable = _holds_objects(item)
        cleaned = list(value)
        positions = list(range(len(value)))  # where each element of cleaned was in value
        local: list[Any] = []
        seen: set[int] = set()
        while error is not None:
            if not isinstance(error, msgspec.ValidationError):
                return self.scan_list(value, tp, item, path, notes)
            step = _first_step(error)
            if step is None:  # about the array itself (a length constraint)
                return _misfit(path, error)
            if not isinstance(step, int) or step >= len(cleaned) or positions[step] in seen:
                return self.scan_list(value, tp, item, path, notes)
            index = step
            position = positions[index]
            seen.add(position)
            where = f"{path}[{position}]"
            got = self.fit(cleaned[index], item, where, local)
            if got.__class__ is _Misfit:
                if not droppable:
                    return got
                del cleaned[index], positions[index]
                local.append((got.path, where, "dropped", got.reason))
            else:
                cleaned[index] = got
            error = _fits(cleaned, tp)
        notes += local
        return cleaned

    def scan_struct(self, value: dict[str, Any], cls: Any, path: str, notes: list[Any]) -> Any:
        """:meth:`fit_struct` without msgspec's guidance: every member is tried."""
        local: list[Any] = []
        cleaned = dict(value)
        config = cls.__struct_config__
        fields = _fields(cls)
        for key, item in value.items():  # in payload order, so notes are too
            where = _member(path, key)
            field = fields.get(key)
            if field is None:
                if config.forbid_unknown_fields and key != config.tag_field:
                    del cleaned[key]
                    local.append((where, where, "dropped", f"unknown field `{key}`"))
                continue
            got = self.fit(item, field.type, where, local)
            if got.__class__ is _Misfit:
                if field.required:
                    return got
                del cleaned[key]
                local.append((got.path, where, "dropped", got.reason))
            elif got is not item:
                cleaned[key] = got
        for key, field in fields.items():
            if field.required and key not in value:
                return _Misfit(_member(path, key), f"missing required field `{key}`")
        error = _fits(cleaned, cls)
        if error is not None:
            return _misfit(path, error)
        notes += local
        return cleaned

    def scan_list(self, value: list[Any], tp: Any, item: Any, path: str, notes: list[Any]) -> Any:
        """:meth:`fit_list` without msgspec's guidance: every element is tried."""
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
    data: bytes | str, decode: Callable[[bytes | str], Any], tp: Any, error: Exception
) -> tuple[Any, list[tuple[str, str, SalvageAction, str]]] | None:
    """What fits of ``data`` decoded with ``decode``, and the notes; None if nothing can be kept.

    ``error`` is what ``decode(data)`` raised. Raises :class:`msgspec.DecodeError`
    if ``data`` is not JSON.
    """
    try:
        raw = _decode_json(data)
    except RecursionError:  # nested deeper than msgspec decodes: nothing to walk
        return None
    notes: list[tuple[str, str, SalvageAction, str]] = []
    try:
        cleaned = _Walk().fit(raw, tp, "$", notes, error)
    except Exception:  # a recursive type nested too deep, an unhashable annotation...
        return None  # the payload keeps the error it had: salvage never raises
    if cleaned.__class__ is _Misfit:
        return None
    try:
        value = decode(_encode_json(cleaned))
    except Exception:  # the type refuses what fits its parts: keep the error
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
    JSON, and what decoding raised (msgspec's :class:`msgspec.ValidationError`
    naming the first path that does not fit, or the type's own exception) when
    nothing of it can be kept; see :mod:`streamspec.salvage` for the rule.
    """
    decode = _decoder(type)
    try:
        return decode(data), []
    except Exception as exc:
        if isinstance(exc, msgspec.DecodeError) and not isinstance(exc, msgspec.ValidationError):
            raise  # not JSON
        found = _salvage(data, decode, type, exc)
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

        ``exc`` is what decoding raised: a :class:`msgspec.ValidationError`
        (valid JSON, wrong shape) or an exception of the type's own code.
        Invalid JSON (any other :class:`msgspec.DecodeError`) is not salvaged.
        """
        if not self.enabled or (
            isinstance(exc, msgspec.DecodeError) and not isinstance(exc, msgspec.ValidationError)
        ):
            return UNSALVAGED
        try:
            found = _salvage(payload, self._decode, self._type, exc)
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
