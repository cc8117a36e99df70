"""The exact check of one payload: its decoded JSON walked key by key.

A payload that a probe (:mod:`streamspec.check._probes`) rejects is decoded
with msgspec to plain Python objects and walked here, so that every problem
and note has its exact path: ``$.choices[1].delta.tool_calls[0].function.name``.
:class:`Walk` also holds the stream-wide state (the first ``id`` and
``created``, the tool call indexes seen) that the typed checks of probed
chunks share.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from msgspec import UNSET

from ..decoder import error_object
from ._spec import (
    CHOICE_KEYS,
    CHUNK_KEYS,
    COMPLETION_CHOICE_KEYS,
    COMPLETION_CHUNK_KEYS,
    COMPLETION_DETAILS_KEYS,
    COMPLETION_FINISH_REASONS,
    COMPLETION_LOGPROBS_KEYS,
    DELTA_KEYS,
    FINISH_REASONS,
    FUNCTION_KEYS,
    LOGPROBS_KEYS,
    PROMPT_DETAILS_KEYS,
    SERVICE_TIERS,
    TOKEN_LOGPROB_KEYS,
    TOOL_CALL_KEYS,
    TOP_LOGPROB_KEYS,
    USAGE_KEYS,
)

__all__ = ["Walk", "describe", "describe_error_event", "show", "validation"]

MAX_TRACKED = 4096
"""Bound on the choice and tool call indexes remembered in all (hostile streams count up)."""

_decode_raw = msgspec.json.Decoder().decode
_MSGSPEC_PATH = re.compile(r"^(?P<message>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")


def _json_kind(value: Any) -> str:
    """The JSON name of a decoded value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _key(key: str) -> str:
    """A key as a path shows it: cut to 100 characters (a hostile key may be megabytes)."""
    return key if len(key) <= 100 else key[:97] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def show(value: Any) -> str:
    """A decoded value as it looks in JSON (``""``, ``null``, ``"eos"``), cut to 80 characters."""
    try:
        text = msgspec.json.encode(value).decode()
    except (RecursionError, TypeError, ValueError, OverflowError):
        text = f"({_json_kind(value)})"
    return text if len(text) <= 80 else text[:77] + "..."


def _one_of(values: tuple[str, ...]) -> str:
    """``one of "a", "b" or null``: an enum that may also be null."""
    return "one of " + ", ".join(show(v) for v in values) + " or null"


def validation(exc: msgspec.ValidationError) -> tuple[str, str]:
    """msgspec's message and JSON path; a missing field's path names the field."""
    match = _MSGSPEC_PATH.match(str(exc))
    assert match is not None  # the pattern matches any string
    message = match["message"]
    path = match["path"] or "$"
    missing = _MISSING.match(message)
    if missing:
        path += "." + missing["field"]
    return message, path


def describe(error: Any) -> str:
    """``message type=... code=...`` of an :class:`streamspec.ErrorObject`."""
    parts = [error.message or "(no message)"]
    if isinstance(error.type, str):
        parts.append(f"type={error.type}")
    if isinstance(error.code, (str, int)):
        parts.append(f"code={error.code}")
    return " ".join(parts)


def describe_error_event(data: str) -> str:
    """The message of an ``event: error`` payload: an envelope, an error object, or text."""
    try:
        raw = _decode_raw(data)
    except (msgspec.DecodeError, RecursionError):
        return data.strip()[:300] or "(no message)"
    if isinstance(raw, dict) and raw.get("error"):
        return describe(error_object(raw["error"], raw.get("error_type")))
    return describe(error_object(raw))


class Walk:
    """The key-by-key check of decoded payloads, and the stream-wide state.

    Subclasses define :meth:`violation` (a strict problem at a path of the
    current event) and :meth:`note` (an extension key at a path).
    """

    def __init__(self) -> None:
        self.first_id: str | None = None
        self.first_created: int | None = None
        self.tool_calls: dict[int, set[int]] = {}  # choice index -> tool call indexes seen
        self.tracked = 0  # entries in tool_calls and its sets, at most MAX_TRACKED

    def violation(self, path: str, message: str) -> None:
        raise NotImplementedError

    def note(self, path: str) -> None:
        raise NotImplementedError

    # -- stream-wide rules, shared with the typed checks ------------------------------------------

    def same_id(self, chunk_id: str) -> None:
        if self.first_id is None:
            self.first_id = chunk_id
        elif chunk_id != self.first_id:
            self.violation(
                "$.id", f"`id` changed from {show(self.first_id)} to {show(chunk_id)} mid-stream"
            )
            self.first_id = chunk_id

    def same_created(self, created: int) -> None:
        if self.first_created is None:
            self.first_created = created
        elif created != self.first_created:
            self.violation(
                "$.created", f"`created` changed from {self.first_created} to {created} mid-stream"
            )
            self.first_created = created

    def empty_choices(self, has_choices: bool, has_usage: bool) -> None:
        """``choices: []`` only on the usage chunk."""
        if not has_choices and not has_usage:
            self.violation(
                "$.choices", "`choices` is empty on a chunk without usage (only the usage chunk)"
            )

    def usage_with_choices(self, has_choices: bool, usage_set: bool) -> None:
        """``usage`` (not null) only on a chunk without choices."""
        if usage_set and has_choices:
            self.violation(
                "$.usage",
                "`usage` on a chunk with choices (the spec sends it on a last chunk with"
                " `choices: []`, null elsewhere)",
            )

    def seen_calls(self, choice_index: int | None) -> set[int]:
        key = -1 if choice_index is None else choice_index
        seen = self.tool_calls.get(key)
        if seen is None:
            seen = set()
            if self.tracked < MAX_TRACKED:
                self.tracked += 1
                self.tool_calls[key] = seen
        return seen

    def new_call(self, index: int, path: str, seen: set[int]) -> bool:
        """Whether tool call ``index`` starts a call (first time seen); checks its number.

        Past :data:`MAX_TRACKED` remembered indexes, new ones are not checked.
        """
        if index in seen or self.tracked >= MAX_TRACKED:
            return False
        if index != len(seen):
            self.violation(
                f"{path}.index",
                f"new tool call has `index` {index}, expected {len(seen)}"
                " (indexes count calls from 0)",
            )
        self.tracked += 1
        seen.add(index)
        return True

    def typed_tool_call(self, call: Any, path: str, seen: set[int]) -> None:
        """The stream-wide rules of a tool call fragment that a strict probe decoded."""
        index = call.index
        first = False
        if index is UNSET:
            self.violation(f"{path}.index", "tool call fragment without `index`")
        else:
            first = self.new_call(index, path, seen)
        if not first:
            return
        if call.id is UNSET:
            self.violation(f"{path}.id", "`id` is missing")
        elif call.id == "":
            self.violation(f"{path}.id", "`id` is empty")
        if call.type is UNSET:
            self.violation(f"{path}.type", "`type` is missing on the first fragment of a call")
        function = call.function
        if function is UNSET:
            self.violation(
                f"{path}.function", "`function` is missing on the first fragment of a call"
            )
        elif function.name is UNSET:
            self.violation(f"{path}.function.name", "`name` is missing")
        elif function.name == "":
            self.violation(f"{path}.function.name", "`name` is empty")

    # -- the walk ---------------------------------------------------------------------------------

    def _created(self, raw: dict[str, Any]) -> None:
        created: Any = raw.get("created")
        if "created" not in raw:
            self.violation("$.created", "`created` is missing")
        elif self._expect(created, ("integer",), "$.created", "created"):
            if created <= 0:
                self.violation("$.created", f"`created` is {created}, expected a Unix timestamp")
            else:
                self.same_created(created)

    def _extensions(self, obj: dict[str, Any], known: frozenset[str], path: str) -> None:
        for key in obj:
            if key not in known:
                self.note(f"{path}.{_key(key)}")

    def _expect(self, value: Any, kinds: tuple[str, ...], path: str, name: str) -> bool:
        kind = _json_kind(value)
        if kind in kinds or (kind == "integer" and "number" in kinds):
            return True
        self.violation(path, f"`{name}` is {kind}, expected {' or '.join(kinds)}")
        return False

    def _required_string(self, obj: dict[str, Any], key: str, path: str) -> Any:
        value = obj.get(key)
        if key not in obj:
            self.violation(f"{path}.{key}", f"`{key}` is missing")
        elif self._expect(value, ("string",), f"{path}.{key}", key) and value == "":
            self.violation(f"{path}.{key}", f"`{key}` is empty")
        return value

    def _members(
        self, raw: dict[str, Any], keys: frozenset[str], kind: str, reported: bool
    ) -> None:
        """What every chunk kind shares: its known members (unknown ones are noted),
        a non-empty ``id`` that stays the same, ``object`` equal to ``kind``,
        ``created`` and a non-empty ``model``; ``reported`` allows ``error``."""
        for key in raw:
            if key not in keys and not (key == "error" and reported):
                self.note(f"$.{_key(key)}")
        chunk_id = self._required_string(raw, "id", "$")
        if isinstance(chunk_id, str) and chunk_id:
            self.same_id(chunk_id)
        obj = raw.get("object")
        if "object" not in raw:
            self.violation("$.object", "`object` is missing")
        elif obj != kind:
            self.violation("$.object", f'`object` is {show(obj)}, expected "{kind}"')
        self._created(raw)
        self._required_string(raw, "model", "$")

    def _chunk(self, raw: dict[str, Any], reported: bool = False) -> None:
        """A ``chat.completion.chunk``; ``reported``: its ``error`` member reports an error."""
        self._members(raw, CHUNK_KEYS, "chat.completion.chunk", reported)
        tier = raw.get("service_tier")
        if tier is not None and tier not in SERVICE_TIERS:
            self.violation(
                "$.service_tier",
                f"`service_tier` is {show(tier)}, expected {_one_of(SERVICE_TIERS)}",
            )
        if "system_fingerprint" in raw:
            self._expect(
                raw["system_fingerprint"],
                ("string", "null"),
                "$.system_fingerprint",
                "system_fingerprint",
            )
        self._choices_and_usage(raw, self._choice)

    def _choices_and_usage(self, raw: dict[str, Any], check: Any) -> None:
        usage = raw.get("usage")
        choices: Any = raw.get("choices")
        if "choices" not in raw:
            self.violation("$.choices", "`choices` is missing")
        elif self._expect(choices, ("array",), "$.choices", "choices"):
            self.empty_choices(bool(choices), bool(usage))
            for i, choice in enumerate(choices):
                check(choice, f"$.choices[{i}]")
            self.usage_with_choices(bool(choices), usage is not None)
        if usage is not None:
            self._usage(usage, "$.usage")

    def _choice(self, choice: Any, path: str) -> None:
        if not self._expect(choice, ("object",), path, "choice"):
            return
        self._extensions(choice, CHOICE_KEYS, path)
        index = choice.get("index")
        if "index" not in choice:
            self.violation(f"{path}.index", "`index` is missing")
        else:
            self._expect(index, ("integer",), f"{path}.index", "index")
        if "delta" not in choice:
            self.violation(f"{path}.delta", "`delta` is missing")
        else:
            self._delta(choice["delta"], f"{path}.delta", index if _is_int(index) else None)
        if "finish_reason" not in choice:
            self.violation(
                f"{path}.finish_reason", "`finish_reason` is missing (null until the last chunk)"
            )
        else:
            reason = choice["finish_reason"]
            if reason is not None and reason not in FINISH_REASONS:
                self.violation(
                    f"{path}.finish_reason",
                    f"`finish_reason` is {show(reason)}, expected {_one_of(FINISH_REASONS)}",
                )
        if "logprobs" in choice and choice["logprobs"] is not None:
            self._logprobs(choice["logprobs"], f"{path}.logprobs")

    def _delta(self, delta: Any, path: str, choice_index: int | None) -> None:
        if not self._expect(delta, ("object",), path, "delta"):
            return
        self._extensions(delta, DELTA_KEYS, path)
        if "role" in delta and delta["role"] != "assistant":
            self.violation(f"{path}.role", f'`role` is {show(delta["role"])}, expected "assistant"')
        for key in ("content", "refusal"):
            if key in delta:
                self._expect(delta[key], ("string", "null"), f"{path}.{key}", key)
        if "function_call" in delta and self._expect(
            delta["function_call"], ("object",), f"{path}.function_call", "function_call"
        ):
            self._function(delta["function_call"], f"{path}.function_call", first=False)
        if "tool_calls" in delta and self._expect(
            delta["tool_calls"], ("array",), f"{path}.tool_calls", "tool_calls"
        ):
            seen = self.seen_calls(choice_index)
            for i, call in enumerate(delta["tool_calls"]):
                self._tool_call(call, f"{path}.tool_calls[{i}]", seen)

    def _tool_call(self, call: Any, path: str, seen: set[int]) -> None:
        if not self._expect(call, ("object",), path, "tool call"):
            return
        self._extensions(call, TOOL_CALL_KEYS, path)
        index = call.get("index")
        first = False
        if "index" not in call:
            self.violation(f"{path}.index", "tool call fragment without `index`")
        elif self._expect(index, ("integer",), f"{path}.index", "index"):
            first = self.new_call(index, path, seen)
        if first:
            self._required_string(call, "id", path)
            if "type" not in call:
                self.violation(f"{path}.type", "`type` is missing on the first fragment of a call")
        elif "id" in call:
            self._expect(call["id"], ("string",), f"{path}.id", "id")
        if "type" in call and call["type"] != "function":
            self.violation(f"{path}.type", f'`type` is {show(call["type"])}, expected "function"')
        function = call.get("function")
        if "function" not in call:
            if first:
                self.violation(
                    f"{path}.function", "`function` is missing on the first fragment of a call"
                )
        elif self._expect(function, ("object",), f"{path}.function", "function"):
            self._function(function, f"{path}.function", first=first)

    def _function(self, function: dict[str, Any], path: str, *, first: bool) -> None:
        self._extensions(function, FUNCTION_KEYS, path)
        if first:
            self._required_string(function, "name", path)
        elif "name" in function:
            self._expect(function["name"], ("string",), f"{path}.name", "name")
        if "arguments" in function:
            self._expect(function["arguments"], ("string",), f"{path}.arguments", "arguments")

    def _usage(self, usage: Any, path: str) -> None:
        if not self._expect(usage, ("object", "null"), path, "usage"):
            return
        self._extensions(usage, USAGE_KEYS, path)
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            if key not in usage:
                self.violation(f"{path}.{key}", f"`{key}` is missing")
            else:
                self._expect(usage[key], ("integer",), f"{path}.{key}", key)
        for key, known in (
            ("prompt_tokens_details", PROMPT_DETAILS_KEYS),
            ("completion_tokens_details", COMPLETION_DETAILS_KEYS),
        ):
            if key in usage and self._expect(usage[key], ("object",), f"{path}.{key}", key):
                details = usage[key]
                self._extensions(details, known, f"{path}.{key}")
                for name in known & details.keys():
                    self._expect(details[name], ("integer",), f"{path}.{key}.{name}", name)

    def _logprobs(self, logprobs: Any, path: str) -> None:
        if not self._expect(logprobs, ("object",), path, "logprobs"):
            return
        self._extensions(logprobs, LOGPROBS_KEYS, path)
        for key in ("content", "refusal"):
            if key not in logprobs:
                self.violation(f"{path}.{key}", f"`{key}` is missing")
            elif self._expect(logprobs[key], ("array", "null"), f"{path}.{key}", key):
                for i, entry in enumerate(logprobs[key] or ()):
                    self._token_logprob(entry, f"{path}.{key}[{i}]", top=True)

    def _token_logprob(self, entry: Any, path: str, *, top: bool) -> None:
        if not self._expect(entry, ("object",), path, "logprob"):
            return
        self._extensions(entry, TOKEN_LOGPROB_KEYS if top else TOP_LOGPROB_KEYS, path)
        for key, kinds in (("token", ("string",)), ("logprob", ("number",))):
            if key not in entry:
                self.violation(f"{path}.{key}", f"`{key}` is missing")
            else:
                self._expect(entry[key], kinds, f"{path}.{key}", key)
        if "bytes" not in entry:
            self.violation(f"{path}.bytes", "`bytes` is missing (an array of integers or null)")
        elif self._expect(entry["bytes"], ("array", "null"), f"{path}.bytes", "bytes") and any(
            not _is_int(b) for b in entry["bytes"] or ()
        ):
            self.violation(f"{path}.bytes", "`bytes` holds values that are not integers")
        if top:
            if "top_logprobs" not in entry:
                self.violation(f"{path}.top_logprobs", "`top_logprobs` is missing")
            elif self._expect(
                entry["top_logprobs"], ("array",), f"{path}.top_logprobs", "top_logprobs"
            ):
                for i, alternative in enumerate(entry["top_logprobs"]):
                    self._token_logprob(alternative, f"{path}.top_logprobs[{i}]", top=False)

    # -- legacy completions (text_completion) ------------------------------------------------------

    def _completion_chunk(self, raw: dict[str, Any], reported: bool = False) -> None:
        """A legacy ``text_completion`` chunk; ``reported`` as for :meth:`_chunk`."""
        self._members(raw, COMPLETION_CHUNK_KEYS, "text_completion", reported)
        if "system_fingerprint" in raw:
            self._expect(
                raw["system_fingerprint"],
                ("string", "null"),
                "$.system_fingerprint",
                "system_fingerprint",
            )
        self._choices_and_usage(raw, self._completion_choice)

    def _completion_choice(self, choice: Any, path: str) -> None:
        if not self._expect(choice, ("object",), path, "choice"):
            return
        self._extensions(choice, COMPLETION_CHOICE_KEYS, path)
        for key, kinds in (("text", ("string",)), ("index", ("integer",))):
            if key not in choice:
                self.violation(f"{path}.{key}", f"`{key}` is missing")
            else:
                self._expect(choice[key], kinds, f"{path}.{key}", key)
        if "finish_reason" not in choice:
            self.violation(
                f"{path}.finish_reason", "`finish_reason` is missing (null until the last chunk)"
            )
        else:
            reason = choice["finish_reason"]
            if reason is not None and reason not in COMPLETION_FINISH_REASONS:
                self.violation(
                    f"{path}.finish_reason",
                    f"`finish_reason` is {show(reason)},"
                    f" expected {_one_of(COMPLETION_FINISH_REASONS)}",
                )
        if "logprobs" not in choice:
            self.violation(f"{path}.logprobs", "`logprobs` is missing (null when not requested)")
        elif self._expect(choice["logprobs"], ("object", "null"), f"{path}.logprobs", "logprobs"):
            logprobs = choice["logprobs"]
            if logprobs is not None:
                self._completion_logprobs(logprobs, f"{path}.logprobs")

    def _completion_logprobs(self, logprobs: dict[str, Any], path: str) -> None:
        self._extensions(logprobs, COMPLETION_LOGPROBS_KEYS, path)
        element = {
            "tokens": ("string",),
            "token_logprobs": ("number", "null"),
            "top_logprobs": ("object", "null"),
            "text_offset": ("integer",),
        }
        for key, kinds in element.items():
            nullable = ("array", "null") if key == "top_logprobs" else ("array",)
            if key not in logprobs:
                self.violation(f"{path}.{key}", f"`{key}` is missing")
            elif self._expect(logprobs[key], nullable, f"{path}.{key}", key):
                for i, value in enumerate(logprobs[key] or ()):
                    if not self._expect(value, kinds, f"{path}.{key}[{i}]", key):
                        break
