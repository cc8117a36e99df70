"""The OpenAI specification of streamed chunks, as key sets and enums, per level of a chunk."""

from __future__ import annotations

__all__ = [
    "CHOICE_KEYS",
    "CHUNK_KEYS",
    "COMPLETION_CHOICE_KEYS",
    "COMPLETION_CHUNK_KEYS",
    "COMPLETION_DETAILS_KEYS",
    "COMPLETION_FINISH_REASONS",
    "COMPLETION_LOGPROBS_KEYS",
    "DELTA_KEYS",
    "FINISH_REASONS",
    "FUNCTION_KEYS",
    "LOGPROBS_KEYS",
    "PROMPT_DETAILS_KEYS",
    "SERVICE_TIERS",
    "TOKEN_LOGPROB_KEYS",
    "TOOL_CALL_KEYS",
    "TOP_LOGPROB_KEYS",
    "USAGE_KEYS",
]

# chat.completion.chunk
CHUNK_KEYS = frozenset(
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
CHOICE_KEYS = frozenset({"index", "delta", "finish_reason", "logprobs"})
DELTA_KEYS = frozenset({"role", "content", "refusal", "tool_calls", "function_call"})
TOOL_CALL_KEYS = frozenset({"index", "id", "type", "function"})
FUNCTION_KEYS = frozenset({"name", "arguments"})
USAGE_KEYS = frozenset(
    {
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "prompt_tokens_details",
        "completion_tokens_details",
    }
)
PROMPT_DETAILS_KEYS = frozenset({"audio_tokens", "cached_tokens"})
COMPLETION_DETAILS_KEYS = frozenset(
    {
        "accepted_prediction_tokens",
        "audio_tokens",
        "reasoning_tokens",
        "rejected_prediction_tokens",
    }
)
LOGPROBS_KEYS = frozenset({"content", "refusal"})
TOKEN_LOGPROB_KEYS = frozenset({"token", "logprob", "bytes", "top_logprobs"})
TOP_LOGPROB_KEYS = frozenset({"token", "logprob", "bytes"})
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "function_call")
SERVICE_TIERS = ("auto", "default", "flex", "scale", "priority")

# text_completion (legacy /v1/completions)
COMPLETION_CHUNK_KEYS = frozenset(
    {"id", "object", "created", "model", "choices", "system_fingerprint", "usage"}
)
COMPLETION_CHOICE_KEYS = frozenset({"text", "index", "logprobs", "finish_reason"})
COMPLETION_LOGPROBS_KEYS = frozenset({"tokens", "token_logprobs", "top_logprobs", "text_offset"})
COMPLETION_FINISH_REASONS = ("stop", "length", "content_filter")
