"""The legacy text completions API: the four prompt forms, mixed prompts, responses.

``prompt`` is a string, a list of strings, a list of token ids (0 to 2**32 - 1) or a
list of token-id lists; a list mixing those kinds is rejected with a
:class:`msgspec.ValidationError` naming ``prompt``. Responses are lenient.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from msgspec import UNSET

import streamspec
from documents import (
    COMPLETIONS,
    MANIFEST,
    check_invalid,
    document_names,
    invalid_documents,
    read_document,
)
from streamspec import (
    ChatCompletionStreamOptions,
    Choice,
    Completion,
    CompletionTokensDetails,
    CompletionUsage,
    CreateCompletionRequest,
    CreateCompletionResponse,
    Logprobs,
    PromptTokensDetails,
)

INVALID_TYPES = {"CreateCompletionRequest", "CreateCompletionResponse"}
MAX_TOKEN_ID = 4_294_967_295

decode_request = msgspec.json.Decoder(CreateCompletionRequest).decode
decode_response = msgspec.json.Decoder(CreateCompletionResponse).decode


def request_doc(name: str) -> tuple[dict[str, Any], CreateCompletionRequest]:
    return read_document(COMPLETIONS / name, decode_request)


def response_doc(name: str) -> tuple[dict[str, Any], CreateCompletionResponse]:
    return read_document(COMPLETIONS / name, decode_response)


def with_prompt(prompt: Any) -> bytes:
    return msgspec.json.encode({"model": "davinci-002", "prompt": prompt})


# --- requests ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("request_prompt_string.json", "string"),
        ("request_prompt_empty_string.json", "string"),
        ("request_prompt_string_list.json", "string list"),
        ("request_prompt_token_ids.json", "token ids"),
        ("request_prompt_token_id_lists.json", "token-id lists"),
        ("request_full_options.json", "string"),
    ],
)
def test_prompt_forms_from_documents(name: str, kind: str) -> None:
    doc, req = request_doc(name)
    assert type(req) is CreateCompletionRequest
    assert req.model == doc["model"]
    assert req.prompt == doc["prompt"]
    prompt = req.prompt
    if kind == "string":
        assert isinstance(prompt, str)
    else:
        assert isinstance(prompt, list)
        assert prompt
        if kind == "string list":
            assert all(type(item) is str for item in prompt)
        elif kind == "token ids":
            assert all(type(item) is int for item in prompt)
        else:
            assert all(type(item) is list for item in prompt)
            assert all(type(t) is int for item in prompt for t in item)


@pytest.mark.parametrize(
    "prompt",
    [
        "",
        "Once upon a time",
        [],
        ["a"],
        ["Bonjour", "Hallo", "\u3053\u3093\u306b\u3061\u306f"],
        [0],
        [MAX_TOKEN_ID],
        [50256, 0, 1],
        [[]],
        [[0, MAX_TOKEN_ID], [], [42]],
    ],
)
def test_valid_prompts(prompt: Any) -> None:
    req = decode_request(with_prompt(prompt))
    assert req.prompt == prompt
    assert json.loads(msgspec.json.encode(req))["prompt"] == prompt


MIXED_PROMPTS = [
    ["a", 1],
    [1, "a"],
    [[1, 2], 3],
    [3, [1, 2]],
    ["a", [1]],
    [[1], "a"],
    ["a", "b", 3],
    [1, 2, 3, [4]],
    [[], 0],
]


@pytest.mark.parametrize("prompt", MIXED_PROMPTS)
def test_mixed_prompt_lists_are_rejected(prompt: Any) -> None:
    with pytest.raises(msgspec.ValidationError, match="`prompt`"):
        decode_request(with_prompt(prompt))


@pytest.mark.parametrize("prompt", MIXED_PROMPTS)
def test_mixed_prompt_in_a_batch_names_its_position(prompt: Any) -> None:
    batch = [{"model": "m", "prompt": "ok"}, {"model": "m", "prompt": prompt}]
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.json.decode(msgspec.json.encode(batch), type=list[CreateCompletionRequest])
    assert "`prompt`" in str(info.value)
    assert str(info.value).endswith("- at `$[1]`")


@pytest.mark.parametrize(
    ("prompt", "path"),
    [
        ([-1], "$.prompt[0]"),
        ([1, MAX_TOKEN_ID + 1], "$.prompt[1]"),
        ([[7], [MAX_TOKEN_ID + 1]], "$.prompt[1][0]"),
        ([[1.5]], "$.prompt[0][0]"),
        ([["a"]], "$.prompt[0][0]"),
        ([None], "$.prompt[0]"),
        ({"text": "hi"}, "$.prompt"),
        (42, "$.prompt"),
        (None, "$.prompt"),
    ],
)
def test_bad_prompt_values_name_the_path(prompt: Any, path: str) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        decode_request(with_prompt(prompt))
    assert str(info.value).endswith(f"- at `{path}`")


def test_full_options() -> None:
    doc, req = request_doc("request_full_options.json")
    assert req.suffix == doc["suffix"]
    assert (req.n, req.best_of, req.logprobs) == (2, 3, 5)
    assert req.stream is True
    assert req.stream_options == ChatCompletionStreamOptions(include_usage=True)
    assert req.stop == "\n\n\n"
    assert req.logit_bias == {"50256": -100.0}
    assert req.echo is False
    assert req.seed == 1234
    assert req.user == "ide-plugin-7f3a"
    assert req.top_p == 1.0


def test_absent_and_null_options() -> None:
    _, req = request_doc("request_prompt_token_ids.json")
    assert req.max_tokens == 0
    assert req.echo is True
    assert req.suffix is UNSET
    assert req.stop is UNSET
    req = decode_request(b'{"model": "m", "prompt": "x", "suffix": null, "best_of": null}')
    assert (req.suffix, req.best_of, req.echo) == (None, None, UNSET)
    assert json.loads(msgspec.json.encode(req)) == {
        "model": "m",
        "prompt": "x",
        "suffix": None,
        "best_of": None,
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("best_of", 21),
        ("best_of", -1),
        ("logprobs", 6),
        ("n", 0),
        ("temperature", 2.01),
        ("top_p", -0.5),
        ("presence_penalty", 2.5),
        ("stop", ["1", "2", "3", "4", "5"]),
    ],
)
def test_out_of_range_options(field: str, value: Any) -> None:
    doc = msgspec.json.encode({"model": "m", "prompt": "x", field: value})
    with pytest.raises(msgspec.ValidationError) as info:
        decode_request(doc)
    assert str(info.value).endswith(f"- at `$.{field}`")


# --- responses -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", document_names(COMPLETIONS, "response_*.json"))
def test_response_document_decodes(name: str) -> None:
    doc, resp = response_doc(name)
    assert type(resp) is CreateCompletionResponse
    assert [type(c) for c in resp.choices] == [Choice] * len(doc["choices"])
    for wire, choice in zip(doc["choices"], resp.choices, strict=True):
        assert (choice.text, choice.index) == (wire["text"], wire["index"])
        assert choice.finish_reason == wire.get("finish_reason", UNSET)
    assert (resp.id, resp.object, resp.model) == (doc["id"], "text_completion", doc["model"])


def test_response_logprobs() -> None:
    doc, resp = response_doc("response_logprobs.json")
    (choice,) = resp.choices
    logprobs = choice.logprobs
    assert type(logprobs) is Logprobs
    wire = doc["choices"][0]["logprobs"]
    assert logprobs.tokens == wire["tokens"]
    assert logprobs.token_logprobs == wire["token_logprobs"]
    assert isinstance(logprobs.token_logprobs, list)
    assert logprobs.token_logprobs[0] is None
    assert logprobs.top_logprobs == wire["top_logprobs"]
    assert isinstance(logprobs.top_logprobs, list)
    assert logprobs.top_logprobs[0] is None
    assert logprobs.text_offset == [0, 4, 7, 9, 14]
    assert "".join(logprobs.tokens) == choice.text
    assert choice.finish_reason == "length"
    assert resp.usage == CompletionUsage(prompt_tokens=5, completion_tokens=0, total_tokens=5)
    assert resp.system_fingerprint is UNSET


def test_response_n2_with_usage_details() -> None:
    _, resp = response_doc("response_n2.json")
    assert [c.index for c in resp.choices] == [0, 1]
    assert [c.finish_reason for c in resp.choices] == ["stop", "length"]
    assert [c.logprobs for c in resp.choices] == [None, None]
    assert resp.system_fingerprint is None
    assert isinstance(resp.usage, CompletionUsage)
    assert resp.usage.prompt_tokens_details == PromptTokensDetails(cached_tokens=0, audio_tokens=0)
    assert isinstance(resp.usage.completion_tokens_details, CompletionTokensDetails)
    assert resp.usage.completion_tokens_details.reasoning_tokens == 0


def test_streamed_legacy_chunk() -> None:
    _, resp = response_doc("response_stream_chunk.json")
    assert resp.usage is UNSET
    assert resp.choices[0].finish_reason is None
    assert resp.choices[0].text == " return"


def test_vllm_extensions_ignored() -> None:
    _, resp = response_doc("response_vllm.json")
    assert not hasattr(resp.choices[0], "stop_reason")
    assert isinstance(resp.usage, CompletionUsage)
    assert resp.usage.prompt_tokens_details is None
    assert resp.usage.completion_tokens_details is UNSET


@pytest.mark.parametrize("reason", ["eos", "abort", "tool_calls", ""])
def test_open_finish_reason(reason: str) -> None:
    doc = {"choices": [{"text": "", "index": 0, "finish_reason": reason}]}
    resp = decode_response(msgspec.json.encode(doc))
    assert resp.choices[0].finish_reason == reason
    assert resp.id is UNSET


def test_completion_alias() -> None:
    assert Completion is CreateCompletionResponse
    assert streamspec.Completion is CreateCompletionResponse


# --- invalid documents ---------------------------------------------------------------------


@pytest.mark.parametrize("name", invalid_documents(INVALID_TYPES))
def test_invalid_completion_document_names_its_path(name: str) -> None:
    check_invalid(name)


def test_every_mixed_prompt_document_names_prompt() -> None:
    mixed = [n for n in MANIFEST if n.startswith("legacy_prompt_mixed_")]
    assert len(mixed) == 3
    for name in mixed:
        assert MANIFEST[name]["message"] == "`prompt`"
