"""OpenAI-compatible request parsing and response bodies of the mocker (no I/O).

Token counts (there is no tokenizer):

* input tokens — an explicit integer ``input_length`` (top level or in ``nvext``) when given;
  otherwise the whitespace-separated words of the prompt (``/v1/completions``: ``prompt``, a
  string, a list of strings, or a list of token ids = its length; chat: the text of every
  message's ``content``), at least 1;
* output tokens — ``max_tokens`` (or ``max_completion_tokens``); without either, the request's
  own length is ``default_osl`` (the server's ``--default-osl``: the profile's OSL, else
  :data:`DEFAULT_OSL`), as a model that stops at its end-of-sequence rather than at a cap. The
  mocker always makes exactly that many (as with ``ignore_eos``), each the word ``"tok "``.
* choices — ``n`` (1 … :data:`MAX_CHOICES`, default 1) choices of that many tokens each; usage
  counts ``n × osl`` completion tokens (as OpenAI's API does).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "DEFAULT_OSL",
    "MAX_CHOICES",
    "ApiError",
    "Completion",
    "Endpoint",
    "error_body",
    "final_body",
    "parse_request",
    "stream_chunk",
    "usage_chunk",
]

Endpoint = Literal["chat", "completion"]
#: Output tokens of a request without ``max_tokens`` when the profile records no OSL (the
#: default ``--osl`` of ``plan run``).
DEFAULT_OSL = 150
#: Largest ``n`` accepted (OpenAI's limit).
MAX_CHOICES = 128
TOKEN_TEXT = "tok "


class ApiError(Exception):
    """An OpenAI-style error: HTTP ``status``, a one-line message, the offending ``param``."""

    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


def error_body(e: ApiError) -> dict[str, Any]:
    kind = "invalid_request_error" if e.status < 500 else "server_error"
    return {"error": {"message": e.message, "type": kind, "param": e.param, "code": e.code}}


@dataclass(frozen=True)
class Completion:
    """A parsed request: what to generate and how to answer."""

    endpoint: Endpoint
    model: str
    isl: int
    osl: int
    stream: bool
    include_usage: bool
    id: str
    created: int
    n: int = 1


def _int_field(body: dict[str, Any], key: str, minimum: int) -> int | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ApiError(400, f"'{key}' must be an integer >= {minimum}, got {v!r}", key)
    return v


def _words(text: Any, param: str) -> int:
    if isinstance(text, str):
        return len(text.split())
    if isinstance(text, list):
        if all(isinstance(t, int) and not isinstance(t, bool) for t in text):
            return len(text)  # token ids
        n = 0
        for i, part in enumerate(text):
            if isinstance(part, str):
                n += len(part.split())
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                n += len(part["text"].split())
            elif isinstance(part, dict) and part.get("type") != "text":
                continue  # images, audio: no text tokens
            else:
                raise ApiError(400, f"'{param}[{i}]' must be a string or a text part", param)
        return n
    raise ApiError(400, f"'{param}' must be a string or a list, got {type(text).__name__}", param)


def parse_request(
    body: Any, endpoint: Endpoint, served_model: str, default_osl: int = DEFAULT_OSL
) -> Completion:
    """Validate a request body; :class:`ApiError` (400, or 404 for another model) otherwise.
    ``default_osl``: the output tokens of a request without ``max_tokens``."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "'model' is required and must be a non-empty string", "model")
    if model != served_model:
        raise ApiError(
            404, f"model '{model}' not found; this server serves '{served_model}'", "model",
            "model_not_found",
        )  # fmt: skip
    if endpoint == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "'messages' must be a non-empty list", "messages")
        words = 0
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or not isinstance(m.get("role"), str):
                raise ApiError(400, f"'messages[{i}]' must be an object with a 'role'", "messages")
            content = m.get("content")
            if content is not None:
                words += _words(content, f"messages[{i}].content")
    else:
        if "prompt" not in body:
            raise ApiError(400, "'prompt' is required", "prompt")
        words = _words(body["prompt"], "prompt")
    nvext = body.get("nvext")
    if nvext is not None and not isinstance(nvext, dict):
        raise ApiError(400, "'nvext' must be an object", "nvext")
    explicit = _int_field(body, "input_length", 0)
    if explicit is None and nvext is not None:
        explicit = _int_field(nvext, "input_length", 0)
    isl = explicit if explicit is not None else max(1, words)
    osl = _int_field(body, "max_tokens", 1)
    if osl is None:
        osl = _int_field(body, "max_completion_tokens", 1)
    n = _int_field(body, "n", 1)
    if n is not None and n > MAX_CHOICES:
        raise ApiError(400, f"'n' must be at most {MAX_CHOICES}, got {n}", "n")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, f"'stream' must be a boolean, got {stream!r}", "stream")
    opts = body.get("stream_options")
    if opts is not None and not isinstance(opts, dict):
        raise ApiError(400, "'stream_options' must be an object", "stream_options")
    include_usage = bool(opts and opts.get("include_usage"))
    for key in ("ignore_eos",):
        if key in body and not isinstance(body[key], bool):
            raise ApiError(400, f"'{key}' must be a boolean, got {body[key]!r}", key)
    prefix = "chatcmpl" if endpoint == "chat" else "cmpl"
    return Completion(
        endpoint=endpoint,
        model=model,
        isl=isl,
        osl=osl if osl is not None else default_osl,
        stream=stream,
        include_usage=include_usage,
        id=f"{prefix}-{uuid.uuid4().hex}",
        created=int(time.time()),
        n=1 if n is None else n,
    )


def _usage(c: Completion, made: int) -> dict[str, int]:
    return {"prompt_tokens": c.isl, "completion_tokens": made, "total_tokens": c.isl + made}


def stream_chunk(c: Completion, index: int, choice_index: int = 0) -> dict[str, Any]:
    """The SSE chunk carrying token ``index`` (0-based) of choice ``choice_index``; a choice's
    last token has finish_reason length."""
    finish = "length" if index == c.osl - 1 else None
    if c.endpoint == "chat":
        delta: dict[str, Any] = {"content": TOKEN_TEXT}
        if index == 0:
            delta = {"role": "assistant", "content": TOKEN_TEXT}
        choice: dict[str, Any] = {"index": choice_index, "delta": delta, "finish_reason": finish}
        obj = "chat.completion.chunk"
    else:
        choice = {
            "index": choice_index, "text": TOKEN_TEXT, "logprobs": None, "finish_reason": finish,
        }  # fmt: skip
        obj = "text_completion"
    return {"id": c.id, "object": obj, "created": c.created, "model": c.model, "choices": [choice]}


def usage_chunk(c: Completion) -> dict[str, Any]:
    """The final chunk of ``stream_options.include_usage``: no choices, the usage."""
    obj = "chat.completion.chunk" if c.endpoint == "chat" else "text_completion"
    return {
        "id": c.id,
        "object": obj,
        "created": c.created,
        "model": c.model,
        "choices": [],
        "usage": _usage(c, c.n * c.osl),
    }


def final_body(c: Completion) -> dict[str, Any]:
    """The non-streaming response: ``n`` choices of ``osl`` tokens."""
    text = TOKEN_TEXT * c.osl
    choices: list[dict[str, Any]] = []
    for i in range(c.n):
        if c.endpoint == "chat":
            choices.append({
                "index": i,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "length",
            })  # fmt: skip
        else:
            choices.append({"index": i, "text": text, "logprobs": None, "finish_reason": "length"})
    return {
        "id": c.id,
        "object": "chat.completion" if c.endpoint == "chat" else "text_completion",
        "created": c.created,
        "model": c.model,
        "choices": choices,
        "usage": _usage(c, c.n * c.osl),
    }
