"""Check a chat completion stream: what breaks decoding, and (strictly) what is off-spec.

:func:`check_stream` reads a whole SSE stream and returns a :class:`CheckReport`.
Each :class:`Problem` names the event (counted from 0 among events that carry
data, as :class:`streamspec.ChunkDecoder` counts them), the byte offset where
that event starts, and a JSON path into the event's payload::

    Problem(event=4, offset=1203, path='$.choices[0].finish_reason', kind='spec',
            message='`finish_reason` is "", expected one of "stop", "length", "tool_calls",
            "content_filter", "function_call" or null')

Always reported (``kind``):

* ``"json"``: a payload that is not JSON.
* ``"type"``: a payload the decoder rejects (a wrong type, a required field
  missing), with the path msgspec gives.
* ``"server_error"``: an ``event: error`` event or an ``error`` member in a
  payload.
* ``"truncated"``: the stream ended inside an event, or without ``data: [DONE]``.
* ``"sse"``: an event over ``max_event_size``.

With ``strict=True``, also (``kind`` ``"sse"`` or ``"spec"``): every value
that departs from the OpenAI specification of ``chat.completion.chunk``
(``id`` missing or empty, ``object`` other than ``"chat.completion.chunk"``,
``created`` missing or 0, ``finish_reason`` outside its enum, ``role`` other
than ``"assistant"``, a tool call fragment without ``index``, usage counts
that are not integers...), and SSE framing a strict client would not read
the same way (an unknown field such as ``error:``, a final event without its
blank line, bytes after ``[DONE]``, invalid UTF-8).

Keys the specification does not define (``obfuscation``, ``x_groq``,
``reasoning_content``, ``usage.cost``...) are never problems: they are listed as
:class:`Note` entries, one per exact path, with the number of events that
carried them.

The payloads are decoded with msgspec to plain Python objects and walked, so
every path is exact: ``$.choices[1].delta.tool_calls[0].function.name``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

from .decoder import error_object
from .errors import EventTooLargeError
from .sse import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent, SSEParser
from .types.stream import CreateChatCompletionStreamResponse

__all__ = ["CheckReport", "Note", "Problem", "ProblemKind", "check_stream"]

ProblemKind = Literal["json", "type", "server_error", "truncated", "sse", "spec"]
"""What kind of problem: see :mod:`streamspec.check`. Only ``"sse"`` and
``"spec"`` problems depend on ``strict`` (except an oversized event, always ``"sse"``)."""


class Problem(msgspec.Struct, kw_only=True, frozen=True):
    """One problem found in the stream.

    ``event`` is the index of the data event (from 0); for a problem at the end
    of the stream, the index the next event would have had. ``offset`` is the
    byte offset in the stream where that event (or SSE line) starts. ``path``
    is a JSON path into the event's payload (``"$"`` for the whole payload,
    ``""`` for framing problems outside any payload).
    """

    event: int
    offset: int
    path: str
    kind: ProblemKind
    message: str


class Note(msgspec.Struct, kw_only=True, frozen=True):
    """An extension key (not in the specification) the stream carried.

    ``path`` is exact (``$.choices[0].delta.reasoning``); ``events`` counts the
    events that carried it; ``first_event`` is the first of them.
    """

    path: str
    events: int
    first_event: int


class CheckReport(msgspec.Struct, kw_only=True):
    """The result of :func:`check_stream`.

    ``ok`` is True when ``problems`` is empty. ``events`` counts data events
    (``[DONE]`` included), ``chunks`` the payloads that decode as chunks,
    ``done`` tells whether ``data: [DONE]`` arrived. Encodes to JSON with
    :func:`msgspec.json.encode`.
    """

    ok: bool
    strict: bool
    size: int
    events: int
    chunks: int
    done: bool
    problems: list[Problem]
    notes: list[Note]


# -- the specification, as key sets -------------------------------------------------------------

_CHUNK_KEYS = frozenset(
    {
        "id",
        "object",
        "created",
        "model",
        "choices",
        "service_tier",
        "system_fingerprint",
        "usage",
    }
)
_CHOICE_KEYS = frozenset({"index", "delta", "finish_reason", "logprobs"})
_DELTA_KEYS = frozenset({"role", "content", "refusal", "tool_calls", "function_call"})
_TOOL_CALL_KEYS = frozenset({"index", "id", "type", "function"})
_FUNCTION_KEYS = frozenset({"name", "arguments"})
_USAGE_KEYS = frozenset(
    {
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "prompt_tokens_details",
        "completion_tokens_details",
    }
)
_PROMPT_DETAILS_KEYS = frozenset({"audio_tokens", "cached_tokens"})
_COMPLETION_DETAILS_KEYS = frozenset(
    {
        "accepted_prediction_tokens",
        "audio_tokens",
        "reasoning_tokens",
        "rejected_prediction_tokens",
    }
)
_LOGPROBS_KEYS = frozenset({"content", "refusal"})
_TOKEN_LOGPROB_KEYS = frozenset({"token", "logprob", "bytes", "top_logprobs"})
_TOP_LOGPROB_KEYS = frozenset({"token", "logprob", "bytes"})

_FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "function_call")
_SERVICE_TIERS = ("auto", "default", "flex", "scale", "priority")
_SSE_FIELDS = frozenset({b"data", b"event", b"id", b"retry"})

_decode_raw = msgspec.json.Decoder().decode
_decode_chunk = msgspec.json.Decoder(CreateChatCompletionStreamResponse).decode
_MSGSPEC_PATH = re.compile(r"^(?P<message>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_LINE = re.compile(rb"([^\r\n]*)(\r\n|\r|\n)")
_BOM = b"\xef\xbb\xbf"
_READ = 1 << 16  # the stream is parsed in reads of this size


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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value: Any) -> str:
    """A decoded value as it looks in JSON: ``""``, ``null``, ``"eos"``."""
    return msgspec.json.encode(value).decode()


def _one_of(values: tuple[str, ...]) -> str:
    """``one of "a", "b" or null``: an enum that may also be null."""
    return "one of " + ", ".join(_show(v) for v in values) + " or null"


def _validation(exc: msgspec.ValidationError) -> tuple[str, str]:
    """msgspec's message and JSON path; a missing field's path names the field."""
    match = _MSGSPEC_PATH.match(str(exc))
    assert match is not None  # the pattern matches any string
    message = match["message"]
    path = match["path"] or "$"
    missing = _MISSING.match(message)
    if missing:
        path += "." + missing["field"]
    return message, path


class _Event:
    """What the checker knows about one data event."""

    __slots__ = ("data", "final", "index", "offset", "type")

    def __init__(self, event: ServerSentEvent, index: int, offset: int, final: bool) -> None:
        self.data = event.data
        self.type = event.event
        self.index = index
        self.offset = offset
        self.final = final  # completed only by the end of the stream (no blank line)


class _Checker:
    def __init__(self, data: bytes, strict: bool, max_event_size: int) -> None:
        self.data = data
        self.strict = strict
        self.max_event_size = max_event_size
        self.problems: list[Problem] = []
        self.spec: list[Problem] = []  # strict-only problems, merged at the end
        self.notes: dict[str, list[int]] = {}  # path -> [events, first event]
        self.event_notes: set[str] = set()
        self.events = 0
        self.chunks = 0
        self.done = False
        self.server_error = False
        self.truncated_at: int | None = None
        # Stream-wide state for strict checks.
        self.first_id: Any = None
        self.first_created: Any = None
        self.tool_calls: dict[int, set[int]] = {}  # choice index -> tool call indexes seen
        self.event: _Event | None = None

    # -- reporting -------------------------------------------------------------------------------

    def problem(self, kind: ProblemKind, path: str, message: str) -> None:
        event = self.event
        assert event is not None
        self.problems.append(
            Problem(event=event.index, offset=event.offset, path=path, kind=kind, message=message)
        )

    def violation(self, path: str, message: str) -> None:
        event = self.event
        assert event is not None
        self.spec.append(
            Problem(event=event.index, offset=event.offset, path=path, kind="spec", message=message)
        )

    def note(self, path: str) -> None:
        if path in self.event_notes:
            return
        self.event_notes.add(path)
        event = self.event
        assert event is not None
        entry = self.notes.get(path)
        if entry is None:
            self.notes[path] = [1, event.index]
        else:
            entry[0] += 1

    # -- the stream ------------------------------------------------------------------------------

    def run(self) -> CheckReport:
        parser = SSEParser(max_event_size=self.max_event_size)
        queued: list[_Event] = []
        data = self.data
        try:
            for start in range(0, len(data), _READ):
                events = parser.feed(data[start : start + _READ])
                queued += self._wrap(events, parser.event_offsets, final=False)
            if parser.pending:
                # As the decoder does at close(): the last event may lack its blank line.
                events = parser.feed(b"\n\n")
                queued += self._wrap(events, parser.event_offsets, final=True)
        except EventTooLargeError as exc:
            # The events before the oversized one, which the failed read did not return.
            offset = exc.offset or 0
            self.events = 0
            before = SSEParser(max_event_size=self.max_event_size)
            for event in self._wrap(before.feed(data[:offset]), before.event_offsets, False):
                if not self.done:
                    self._event(event)
            self.event = _Event(ServerSentEvent(), self.events, offset, False)
            self.problem(
                "sse", "", f"event exceeds max_event_size ({exc.size} > {exc.limit} bytes)"
            )
            return self._report()
        after_done: _Event | None = None
        for event in queued:
            if self.done:
                after_done = after_done or event
                continue
            self._event(event)
        end = _Event(ServerSentEvent(), len(queued), len(self.data), False)
        self.event = end
        if self.truncated_at is None and not self.done and not self.server_error:
            self.problem("truncated", "", "the stream ended without data: [DONE]")
        if self.strict:
            if after_done is not None:
                self.event = after_done
                self.spec.append(
                    Problem(
                        event=after_done.index,
                        offset=after_done.offset,
                        path="",
                        kind="sse",
                        message="events after data: [DONE] (clients stop reading at [DONE])",
                    )
                )
            self._framing()
        return self._report()

    def _wrap(self, events: list[ServerSentEvent], offsets: list[int], final: bool) -> list[_Event]:
        first = self.events
        self.events += len(events)
        return [_Event(e, first + i, offsets[i], final) for i, e in enumerate(events)]

    def _report(self) -> CheckReport:
        problems = self.problems
        if self.strict:
            seen = {(p.event, p.path) for p in problems}
            problems += [p for p in self.spec if (p.event, p.path) not in seen]
            problems.sort(key=lambda p: (p.event, p.offset))
        notes = [
            Note(path=path, events=count, first_event=first)
            for path, (count, first) in sorted(self.notes.items(), key=lambda kv: kv[1][1])
        ]
        return CheckReport(
            ok=not problems,
            strict=self.strict,
            size=len(self.data),
            events=self.events,
            chunks=self.chunks,
            done=self.done,
            problems=problems,
            notes=notes,
        )

    def _event(self, event: _Event) -> None:
        self.event = event
        self.event_notes = set()
        data = event.data
        if event.final and self.strict:
            self._line_problem(
                event.index,
                event.offset,
                "the last event lacks its blank line (spec-following parsers drop it)",
            )
        if event.type == "error":
            self.server_error = True
            self.problem("server_error", "", "server error: " + _describe_error(data))
            return
        if event.type is not None and event.type != "message":
            self.violation(
                "", f"`event: {event.type}`: chat completion streams are data-only events"
            )
        if data.strip() == "[DONE]":
            self.done = True
            return
        try:
            raw = _decode_raw(data)
        except msgspec.DecodeError as exc:
            self._malformed(event, "json", "$", f"invalid JSON: {exc}")
            return
        if isinstance(raw, dict):
            error = raw.get("error")
            if error is not None and error != "":
                self.server_error = True
                described = error_object(error, raw.get("error_type"))
                self.problem("server_error", "$.error", "server error: " + _describe(described))
                if "choices" not in raw:
                    return
        try:
            _decode_chunk(data)
        except msgspec.ValidationError as exc:
            message, path = _validation(exc)
            self._malformed(event, "type", path, message)
        else:
            self.chunks += 1
        if isinstance(raw, dict):
            self._chunk(raw)

    def _malformed(self, event: _Event, kind: ProblemKind, path: str, message: str) -> None:
        if event.final:
            # The decoder reads an unfinished last event as a truncated stream.
            self.truncated_at = event.offset
            self.spec = [p for p in self.spec if p.event != event.index or p.kind != "sse"]
            self.problem("truncated", path, f"the stream ended inside an event ({message})")
        else:
            self.problem(kind, path, message)

    def _framing(self) -> None:
        """Strict SSE checks that need the lines themselves.

        Lines are split as the SSE algorithm splits them (CRLF, LF or CR); a
        line belongs to the event its block dispatches, or to the next event
        when its block carries no data.
        """
        data = self.data
        bad_utf8 = -1
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            if self.truncated_at is None or exc.start < self.truncated_at:
                bad_utf8 = exc.start
        index = 0  # the index of the event the current block would dispatch
        has_data = False
        for match in _LINE.finditer(data, len(_BOM) if data.startswith(_BOM) else 0):
            line = match[1]
            if match.start() <= bad_utf8 < match.end():
                self._line_problem(index, match.start(), f"invalid UTF-8 at byte {bad_utf8}")
            if not line:
                index += has_data
                has_data = False
                continue
            if line[:1] == b":":
                continue
            name = line.split(b":", 1)[0]
            if name == b"data":
                has_data = True
            elif name not in _SSE_FIELDS:
                text = name.decode("utf-8", "replace")
                hint = " (old llama.cpp reports errors this way)" if name == b"error" else ""
                self._line_problem(
                    index,
                    match.start(),
                    f"unknown SSE field `{text}:`, ignored by spec-following clients{hint}",
                )

    def _line_problem(self, index: int, offset: int, message: str) -> None:
        self.spec.append(Problem(event=index, offset=offset, path="", kind="sse", message=message))

    # -- the payload -----------------------------------------------------------------------------

    def _extensions(self, obj: dict[str, Any], known: frozenset[str], path: str) -> None:
        for key in obj:
            if key not in known:
                self.note(f"{path}.{key}")

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

    def _chunk(self, raw: dict[str, Any]) -> None:
        for key in raw:
            if key not in _CHUNK_KEYS and not (key == "error" and raw[key] not in (None, "")):
                self.note(f"$.{key}")
        chunk_id = self._required_string(raw, "id", "$")
        if isinstance(chunk_id, str) and chunk_id:
            if self.first_id is None:
                self.first_id = chunk_id
            elif chunk_id != self.first_id:
                self.violation(
                    "$.id",
                    f"`id` changed from {_show(self.first_id)} to {_show(chunk_id)} mid-stream",
                )
                self.first_id = chunk_id
        if "object" not in raw:
            self.violation("$.object", "`object` is missing")
        elif raw["object"] != "chat.completion.chunk":
            self.violation(
                "$.object", f'`object` is {_show(raw["object"])}, expected "chat.completion.chunk"'
            )
        created: Any = raw.get("created")
        if "created" not in raw:
            self.violation("$.created", "`created` is missing")
        elif self._expect(created, ("integer",), "$.created", "created"):
            if created <= 0:
                self.violation("$.created", f"`created` is {created}, expected a Unix timestamp")
            elif self.first_created is None:
                self.first_created = created
            elif created != self.first_created:
                self.violation(
                    "$.created",
                    f"`created` changed from {self.first_created} to {created} mid-stream",
                )
                self.first_created = created
        self._required_string(raw, "model", "$")
        tier = raw.get("service_tier")
        if tier is not None and tier not in _SERVICE_TIERS:
            self.violation(
                "$.service_tier",
                f"`service_tier` is {_show(tier)}, expected {_one_of(_SERVICE_TIERS)}",
            )
        if "system_fingerprint" in raw:
            self._expect(
                raw["system_fingerprint"],
                ("string", "null"),
                "$.system_fingerprint",
                "system_fingerprint",
            )
        usage = raw.get("usage")
        choices: Any = raw.get("choices")
        if "choices" not in raw:
            self.violation("$.choices", "`choices` is missing")
        elif self._expect(choices, ("array",), "$.choices", "choices"):
            if not choices and not usage:
                self.violation(
                    "$.choices",
                    "`choices` is empty on a chunk without usage (only the usage chunk)",
                )
            for i, choice in enumerate(choices):
                self._choice(choice, f"$.choices[{i}]")
        if usage is not None:
            if choices:
                self.violation(
                    "$.usage",
                    "`usage` on a chunk with choices (the spec sends it on a last chunk with"
                    " `choices: []`, null elsewhere)",
                )
            self._usage(usage, "$.usage")

    def _choice(self, choice: Any, path: str) -> None:
        if not self._expect(choice, ("object",), path, "choice"):
            return
        self._extensions(choice, _CHOICE_KEYS, path)
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
            if reason is not None and reason not in _FINISH_REASONS:
                self.violation(
                    f"{path}.finish_reason",
                    f"`finish_reason` is {_show(reason)}, expected {_one_of(_FINISH_REASONS)}",
                )
        if "logprobs" in choice and choice["logprobs"] is not None:
            self._logprobs(choice["logprobs"], f"{path}.logprobs")

    def _delta(self, delta: Any, path: str, choice_index: int | None) -> None:
        if not self._expect(delta, ("object",), path, "delta"):
            return
        self._extensions(delta, _DELTA_KEYS, path)
        if "role" in delta and delta["role"] != "assistant":
            self.violation(
                f"{path}.role", f'`role` is {_show(delta["role"])}, expected "assistant"'
            )
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
            seen = self.tool_calls.setdefault(-1 if choice_index is None else choice_index, set())
            for i, call in enumerate(delta["tool_calls"]):
                self._tool_call(call, f"{path}.tool_calls[{i}]", seen)

    def _tool_call(self, call: Any, path: str, seen: set[int]) -> None:
        if not self._expect(call, ("object",), path, "tool call"):
            return
        self._extensions(call, _TOOL_CALL_KEYS, path)
        index = call.get("index")
        first = False
        if "index" not in call:
            self.violation(f"{path}.index", "tool call fragment without `index`")
        elif self._expect(index, ("integer",), f"{path}.index", "index") and index not in seen:
            first = True
            if index != len(seen):
                self.violation(
                    f"{path}.index",
                    f"new tool call has `index` {index}, expected {len(seen)}"
                    " (indexes count calls from 0)",
                )
            seen.add(index)
        if first:
            self._required_string(call, "id", path)
            if "type" not in call:
                self.violation(f"{path}.type", "`type` is missing on the first fragment of a call")
        elif "id" in call:
            self._expect(call["id"], ("string",), f"{path}.id", "id")
        if "type" in call and call["type"] != "function":
            self.violation(f"{path}.type", f'`type` is {_show(call["type"])}, expected "function"')
        function = call.get("function")
        if "function" not in call:
            if first:
                self.violation(
                    f"{path}.function", "`function` is missing on the first fragment of a call"
                )
        elif self._expect(function, ("object",), f"{path}.function", "function"):
            self._function(function, f"{path}.function", first=first)

    def _function(self, function: dict[str, Any], path: str, *, first: bool) -> None:
        self._extensions(function, _FUNCTION_KEYS, path)
        if first:
            self._required_string(function, "name", path)
        elif "name" in function:
            self._expect(function["name"], ("string",), f"{path}.name", "name")
        if "arguments" in function:
            self._expect(function["arguments"], ("string",), f"{path}.arguments", "arguments")

    def _usage(self, usage: Any, path: str) -> None:
        if not self._expect(usage, ("object", "null"), path, "usage"):
            return
        self._extensions(usage, _USAGE_KEYS, path)
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            if key not in usage:
                self.violation(f"{path}.{key}", f"`{key}` is missing")
            else:
                self._expect(usage[key], ("integer",), f"{path}.{key}", key)
        for key, known in (
            ("prompt_tokens_details", _PROMPT_DETAILS_KEYS),
            ("completion_tokens_details", _COMPLETION_DETAILS_KEYS),
        ):
            if key in usage and self._expect(usage[key], ("object",), f"{path}.{key}", key):
                details = usage[key]
                self._extensions(details, known, f"{path}.{key}")
                for name in known & details.keys():
                    self._expect(details[name], ("integer",), f"{path}.{key}.{name}", name)

    def _logprobs(self, logprobs: Any, path: str) -> None:
        if not self._expect(logprobs, ("object",), path, "logprobs"):
            return
        self._extensions(logprobs, _LOGPROBS_KEYS, path)
        for key in ("content", "refusal"):
            if key not in logprobs:
                self.violation(f"{path}.{key}", f"`{key}` is missing")
            elif self._expect(logprobs[key], ("array", "null"), f"{path}.{key}", key):
                for i, entry in enumerate(logprobs[key] or ()):
                    self._token_logprob(entry, f"{path}.{key}[{i}]", top=True)

    def _token_logprob(self, entry: Any, path: str, *, top: bool) -> None:
        if not self._expect(entry, ("object",), path, "logprob"):
            return
        self._extensions(entry, _TOKEN_LOGPROB_KEYS if top else _TOP_LOGPROB_KEYS, path)
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


def _describe(error: Any) -> str:
    parts = [error.message or "(no message)"]
    if isinstance(error.type, str):
        parts.append(f"type={error.type}")
    if isinstance(error.code, (str, int)):
        parts.append(f"code={error.code}")
    return " ".join(parts)


def _describe_error(data: str) -> str:
    """The message of an ``event: error`` payload: an envelope, an error object, or text."""
    try:
        raw = _decode_raw(data)
    except msgspec.DecodeError:
        return data.strip() or "(no message)"
    if isinstance(raw, dict) and raw.get("error") not in (None, ""):
        return _describe(error_object(raw["error"], raw.get("error_type")))
    return _describe(error_object(raw))


def check_stream(
    data: bytes, *, strict: bool = False, max_event_size: int = DEFAULT_MAX_EVENT_SIZE
) -> CheckReport:
    """Check a whole SSE chat completion stream; see :mod:`streamspec.check`.

    Without ``strict``, a stream that :class:`streamspec.ChunkDecoder` reads
    to ``[DONE]`` without an error has no problems. With ``strict``, values
    and framing outside the OpenAI specification are problems too.
    """
    return _Checker(data, strict, max_event_size).run()
