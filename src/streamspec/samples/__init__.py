"""Sample streams that ship with streamspec.

* :func:`sample_stream` reads a bundled capture-like stream by name.
* :func:`synthetic_stream` builds a realistic OpenAI stream of any length,
  deterministically, for benchmarks: each event looks like OpenAI's
  (``id``, ``object``, ``created``, ``model``, ``service_tier``,
  ``system_fingerprint``, one choice, ``usage: null``, ``obfuscation``),
  with multi-byte text, about 320 bytes per event.
"""

from __future__ import annotations

import json
import random
from importlib import resources
from typing import Literal

__all__ = ["SAMPLE_NAMES", "sample_stream", "synthetic_stream"]

SAMPLE_NAMES = ("openai_text",)

StreamKind = Literal["text", "tools", "logprobs", "n4"]

_WORDS = (
    " the", " stream", " decoder", " reads", " every", " token", " as", " it", " arrives",
    ",", " and", " café", " naïve", " 東京", " 🚀", " 👩‍💻", " déjà", " vu", ".", " Überall",
    " données", " 数据", " flows", " fast", " through", " the", " gateway", "\n", " 🇫🇷", " ok",
)  # fmt: skip


def sample_stream(name: str = "openai_text") -> bytes:
    """Return the bytes of a bundled sample stream (see :data:`SAMPLE_NAMES`)."""
    if name not in SAMPLE_NAMES:
        raise ValueError(f"unknown sample {name!r}; choose one of {', '.join(SAMPLE_NAMES)}")
    return resources.files(__name__).joinpath(f"{name}.sse").read_bytes()


def _obfuscation(rng: random.Random) -> str:
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(rng.choice(letters) for _ in range(rng.randint(4, 14)))


def synthetic_stream(
    tokens: int = 2000, kind: StreamKind = "text", *, seed: int = 7, usage: bool = True
) -> bytes:
    """Build a realistic OpenAI ``chat.completion.chunk`` stream of ``tokens`` content events.

    ``kind`` picks the shape: plain ``text``; ``tools`` (three parallel tool
    calls whose argument JSON is split in small fragments); ``logprobs``
    (``top_logprobs=5`` on every token); ``n4`` (four choices interleaved, one
    per chunk). The stream ends with a usage chunk (``choices: []``) when
    ``usage`` is true, then ``data: [DONE]``.
    """
    rng = random.Random(seed)
    head = {
        "id": "chatcmpl-CJq7Xl7pQ2fYzW1mN8kR4tU6vB0aE",
        "object": "chat.completion.chunk",
        "created": 1758037512,
        "model": "gpt-4o-2024-08-06",
        "service_tier": "default",
        "system_fingerprint": "fp_f33640a400",
    }
    events: list[bytes] = []

    def emit(choices: list[dict[str, object]], **extra: object) -> None:
        chunk: dict[str, object] = {**head, "choices": choices, **extra}
        if "usage" not in chunk:
            chunk["usage"] = None
        chunk["obfuscation"] = _obfuscation(rng)
        events.append(
            b"data: "
            + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")).encode()
            + b"\n\n"
        )

    def choice(
        index: int, delta: dict[str, object], finish: str | None = None, logprobs: object = None
    ) -> dict[str, object]:
        return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}

    n = 4 if kind == "n4" else 1
    for i in range(n):
        emit([choice(i, {"role": "assistant", "content": "", "refusal": None})])
    if kind == "tools":
        names = ("get_weather", "search_flights", "lookup_user")
        per_call = max(tokens // len(names), 1)
        for call, name in enumerate(names):
            emit(
                [
                    choice(
                        0,
                        {
                            "tool_calls": [
                                {
                                    "index": call,
                                    "id": f"call_{call}xK8mP2qRv",
                                    "type": "function",
                                    "function": {"name": name, "arguments": ""},
                                }
                            ]
                        },
                    )
                ]
            )
            args = json.dumps(
                {
                    "query": "".join(rng.choice(_WORDS) for _ in range(per_call)),
                    "limit": 5,
                    "unit": "celsius",
                },
                ensure_ascii=False,
            )
            step = max(len(args) // per_call, 1)
            for start in range(0, len(args), step):
                emit(
                    [
                        choice(
                            0,
                            {
                                "tool_calls": [
                                    {
                                        "index": call,
                                        "function": {"arguments": args[start : start + step]},
                                    }
                                ]
                            },
                        )
                    ]
                )
        emit([choice(0, {}, "tool_calls")])
    else:
        for t in range(tokens):
            word = rng.choice(_WORDS)
            index = t % n
            logprobs = None
            if kind == "logprobs":

                def entry(tok: str) -> dict[str, object]:
                    return {
                        "token": tok,
                        "logprob": round(-rng.random() * 5, 6),
                        "bytes": list(tok.encode()),
                    }

                logprobs = {
                    "content": [
                        {
                            **entry(word),
                            "top_logprobs": [entry(rng.choice(_WORDS)) for _ in range(5)],
                        }
                    ],
                    "refusal": None,
                }
            emit([choice(index, {"content": word}, logprobs=logprobs)])
        for i in range(n):
            emit([choice(i, {}, "stop")])
    if usage:
        emit(
            [],
            usage={
                "prompt_tokens": 31,
                "completion_tokens": tokens,
                "total_tokens": tokens + 31,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
        )
    events.append(b"data: [DONE]\n\n")
    return b"".join(events)
