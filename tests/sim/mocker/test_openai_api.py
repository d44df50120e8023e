"""Request parsing of the mocker: token counts and OpenAI-style validation errors."""

from __future__ import annotations

from typing import Any

import pytest

from dynamo_plan.sim.mocker.openai_api import (
    DEFAULT_OSL,
    MAX_CHOICES,
    ApiError,
    final_body,
    parse_request,
    stream_chunk,
    usage_chunk,
)

M = "m"


def chat(**kw: Any) -> dict[str, Any]:
    return {"model": M, "messages": [{"role": "user", "content": "a b  c"}], **kw}


@pytest.mark.parametrize(
    ("body", "endpoint", "isl", "osl"),
    [
        (chat(), "chat", 3, DEFAULT_OSL),
        (chat(max_tokens=7), "chat", 3, 7),
        (chat(max_completion_tokens=9), "chat", 3, 9),
        (chat(input_length=500, ignore_eos=True), "chat", 500, DEFAULT_OSL),
        (chat(nvext={"input_length": 42}), "chat", 42, DEFAULT_OSL),
        (
            {
                "model": M,
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": [{"type": "text", "text": "x y z"}]},
                    {"role": "assistant", "content": None},
                ],
            },
            "chat",
            5,
            DEFAULT_OSL,
        ),
        ({"model": M, "prompt": "one two", "max_tokens": 3}, "completion", 2, 3),
        ({"model": M, "prompt": ["a b", "c"]}, "completion", 3, DEFAULT_OSL),
        ({"model": M, "prompt": [5, 6, 7, 8]}, "completion", 4, DEFAULT_OSL),
        ({"model": M, "prompt": ""}, "completion", 1, DEFAULT_OSL),
    ],
)
def test_token_counts(body: dict[str, Any], endpoint: Any, isl: int, osl: int) -> None:
    c = parse_request(body, endpoint, M)
    assert (c.isl, c.osl) == (isl, osl)
    assert final_body(c)["usage"] == {
        "prompt_tokens": isl,
        "completion_tokens": osl,
        "total_tokens": isl + osl,
    }


@pytest.mark.parametrize(
    ("body", "endpoint", "status", "param"),
    [
        ([1, 2], "chat", 400, None),
        ({"messages": []}, "chat", 400, "model"),
        (chat(model="other"), "chat", 404, "model"),
        ({"model": M}, "chat", 400, "messages"),
        ({"model": M, "messages": ["hi"]}, "chat", 400, "messages"),
        (chat(max_tokens=0), "chat", 400, "max_tokens"),
        (chat(max_tokens=2.5), "chat", 400, "max_tokens"),
        (chat(input_length=-1), "chat", 400, "input_length"),
        (chat(nvext={"input_length": "10"}), "chat", 400, "input_length"),
        (chat(stream="yes"), "chat", 400, "stream"),
        (chat(n=0), "chat", 400, "n"),
        (chat(n=True), "chat", 400, "n"),
        (chat(n=MAX_CHOICES + 1), "chat", 400, "n"),
        ({"model": M}, "completion", 400, "prompt"),
        ({"model": M, "prompt": 12}, "completion", 400, "prompt"),
    ],
)
def test_invalid_requests(body: Any, endpoint: Any, status: int, param: str | None) -> None:
    with pytest.raises(ApiError) as e:
        parse_request(body, endpoint, M)
    assert e.value.status == status
    assert e.value.param == param


def test_chunks() -> None:
    c = parse_request(chat(max_tokens=3, stream=True), "chat", M)
    chunks = [stream_chunk(c, i) for i in range(3)]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [ch["choices"][0]["finish_reason"] for ch in chunks] == [None, None, "length"]
    assert usage_chunk(c)["choices"] == []
    assert usage_chunk(c)["usage"]["completion_tokens"] == 3


def test_without_max_tokens_the_request_has_the_default_osl_not_16() -> None:
    assert DEFAULT_OSL != 16
    assert parse_request(chat(), "chat", M, default_osl=321).osl == 321
    assert parse_request(chat(max_tokens=5), "chat", M, default_osl=321).osl == 5
    c = parse_request({"model": M, "prompt": "x"}, "completion", M, default_osl=77)
    assert c.osl == 77 and final_body(c)["choices"][0]["text"] == "tok " * 77


@pytest.mark.parametrize("endpoint", ["chat", "completion"])
def test_n_choices(endpoint: Any) -> None:
    body = chat(max_tokens=4, n=3) if endpoint == "chat" else {"model": M, "prompt": "a b",
                                                                 "max_tokens": 4, "n": 3}  # fmt: skip
    c = parse_request(body, endpoint, M)
    assert c.n == 3
    final = final_body(c)
    assert [ch["index"] for ch in final["choices"]] == [0, 1, 2]
    assert all(ch["finish_reason"] == "length" for ch in final["choices"])
    assert final["usage"]["completion_tokens"] == 12
    assert usage_chunk(c)["usage"]["completion_tokens"] == 12
    assert [stream_chunk(c, 3, i)["choices"][0]["index"] for i in range(3)] == [0, 1, 2]
    assert parse_request(chat(), "chat", M).n == 1
