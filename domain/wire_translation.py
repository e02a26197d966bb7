"""Plain text chat across wire formats (spec §13, in-call fallback): a call made in one
provider's format, whole or streamed, served by a route choice that speaks the other. Only
what both formats say alike is translated: text messages, a system prompt, ``max_tokens``,
``temperature``, ``top_p`` and stop sequences, and an answer's text, stop reason and usage;
a call with anything else (tools, images, other content blocks) is not translated, and that
fallback is skipped."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from domain.llm_usage import answer_usage, reported_count
from domain.proxy import WireFormat

SHARED_OPTIONS = ("temperature", "top_p")
_OPENAI_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}
_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens"}


def _text(content: Any) -> str | None:
    """A message's content as plain text: a string, or text blocks only."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        for b in content
    ):
        return "".join(b["text"] for b in content)
    return None


def _messages(messages: Any) -> list[tuple[str, str]] | None:
    """(role, text) pairs, or None when a message is not plain text chat."""
    if not isinstance(messages, list):
        return None
    pairs = []
    for message in messages:
        if not isinstance(message, dict) or set(message) - {"role", "content", "name"}:
            return None
        role, text = message.get("role"), _text(message.get("content"))
        if role not in ("system", "developer", "user", "assistant") or text is None:
            return None
        pairs.append((str(role), text))
    return pairs


CROSSING_FIELDS = frozenset({"model", "messages", "max_tokens", "max_completion_tokens",
                             "stream", "stop", "stop_sequences", "system", "metadata",
                             *SHARED_OPTIONS})  # fmt: skip
"""The fields of a call either format can carry; an OpenAI call may add ``stream_options``."""


def plain_text_chat(body: Mapping[str, Any], source: WireFormat) -> list[tuple[str, str]] | None:
    """A ``source`` call's (role, text) messages when the other format can carry the call:
    only crossing fields, text messages, and an Anthropic ``system`` prompt as text. None:
    not plain text chat."""
    own = {"stream_options"} if source is WireFormat.OPENAI else set()
    if set(body) - CROSSING_FIELDS - own:
        return None
    if source is WireFormat.ANTHROPIC and "system" in body and _text(body["system"]) is None:
        return None
    return _messages(body.get("messages"))


def translate_request(
    body: Mapping[str, Any], source: WireFormat, target: WireFormat, max_tokens: int
) -> dict[str, Any] | None:
    """``body`` (a call in ``source`` format) as a ``target`` call; ``max_tokens`` is what
    the call reserved (Anthropic requires it). None: not plain text chat."""
    if source is target:
        return dict(body)
    pairs = plain_text_chat(body, source)
    if pairs is None:
        return None
    options = {k: body[k] for k in (*SHARED_OPTIONS, "stream") if k in body}
    if target is WireFormat.ANTHROPIC:
        system = [text for role, text in pairs if role in ("system", "developer")]
        chat = [{"role": r, "content": t} for r, t in pairs if r in ("user", "assistant")]
        translated: dict[str, Any] = {"messages": chat, "max_tokens": max_tokens, **options}
        if system:
            translated["system"] = "\n\n".join(system)
        stop = body.get("stop")
        if stop:
            translated["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        return translated
    system_text = _text(body.get("system"))
    chat = [{"role": r, "content": t} for r, t in pairs]
    if system_text:
        chat.insert(0, {"role": "system", "content": system_text})
    translated = {"messages": chat, "max_tokens": max_tokens, **options}
    if body.get("stop_sequences"):
        translated["stop"] = list(body["stop_sequences"])
    return translated


def translate_answer(
    body: bytes, source: WireFormat, target: WireFormat, model: str
) -> bytes | None:
    """A successful whole answer of a ``source`` upstream in ``target`` format, naming
    ``model`` (the model that answered); None when it carries no plain text answer."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict):
        return None
    usage = answer_usage(source, body)
    if source is WireFormat.ANTHROPIC:
        text = _text(document.get("content"))
        reason = _OPENAI_FINISH.get(str(document.get("stop_reason")), "stop")
    else:
        choices = document.get("choices")
        first = choices[0] if isinstance(choices, list) and choices else None
        choice = first if isinstance(first, dict) else {}
        message = choice.get("message")
        text = _text(message.get("content")) if isinstance(message, dict) else None
        reason = _ANTHROPIC_STOP.get(str(choice.get("finish_reason")), "end_turn")
    if text is None or usage is None:
        return None
    if target is WireFormat.OPENAI:
        prompt = usage.input_tokens + usage.cache_read_tokens
        translated: dict[str, Any] = {
            "id": f"chatcmpl-{document.get('id', '')}",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": usage.output_tokens,
                "total_tokens": prompt + usage.output_tokens,
                "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
            },
        }
    else:
        translated = {
            "id": f"msg_{document.get('id', '')}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cache_read_input_tokens": usage.cache_read_tokens,
            },
        }
    return json.dumps(translated).encode()


def _sse(data: Mapping[str, Any] | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


@attrs.define
class StreamTranslator:
    """Fed a ``source`` stream's bytes as they arrive, it answers the same stream in
    ``target`` events: the text as it comes, then the stop reason and the usage. The usage
    is also read for settlement from the source bytes themselves (``StreamUsageReader``)."""

    source: WireFormat
    target: WireFormat
    model: str
    include_usage: bool = False
    """An OpenAI caller asked for the usage chunk (``stream_options.include_usage``)."""
    _partial: bytes = b""
    _started: bool = False
    _finished: bool = False
    _stop: str | None = None
    _usage: dict[str, int] = attrs.Factory(dict)

    def feed(self, chunk: bytes) -> bytes:
        data = (self._partial + chunk).replace(b"\r\n", b"\n")
        *events, self._partial = data.split(b"\n\n")
        return b"".join(self._event(event) for event in events)

    def finish(self) -> bytes:
        """The end of the stream in the target format, if the source never ended it."""
        tail = self._event(self._partial)
        return tail + (b"" if self._finished else self._end())

    def _event(self, raw: bytes) -> bytes:
        lines = [line[5:].strip() for line in raw.split(b"\n") if line.startswith(b"data:")]
        if not lines:
            return b""
        payload = b"\n".join(lines)
        if payload == b"[DONE]":
            return b"" if self._finished else self._end()
        try:
            event = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return b""
        if not isinstance(event, dict):
            return b""
        if self.source is WireFormat.OPENAI:
            return self._from_openai(event)
        return self._from_anthropic(event)

    def _from_openai(self, event: Mapping[str, Any]) -> bytes:
        out = self._start()
        usage = event.get("usage")
        if isinstance(usage, dict):
            details = usage.get("prompt_tokens_details")
            cached = details.get("cached_tokens") if isinstance(details, dict) else 0
            cache = reported_count(cached)
            self._usage = {
                "input_tokens": max(0, reported_count(usage.get("prompt_tokens")) - cache),
                "output_tokens": reported_count(usage.get("completion_tokens")),
                "cache_read_input_tokens": cache,
            }
        for choice in event.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            text = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(text, str) and text:
                out += self._text(text)
            if choice.get("finish_reason"):
                self._stop = _ANTHROPIC_STOP.get(str(choice["finish_reason"]))
        return out

    def _from_anthropic(self, event: Mapping[str, Any]) -> bytes:
        kind = event.get("type")
        out = self._start()
        if kind == "message_start" and isinstance(event.get("message"), dict):
            usage = event["message"].get("usage")
            if isinstance(usage, dict):
                self._usage = {k: reported_count(v) for k, v in usage.items() if isinstance(v, int)}
        elif kind == "content_block_delta" and isinstance(event.get("delta"), dict):
            text = event["delta"].get("text")
            if isinstance(text, str) and text:
                out += self._text(text)
        elif kind == "message_delta":
            delta, usage = event.get("delta"), event.get("usage")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                self._stop = _OPENAI_FINISH.get(str(delta["stop_reason"]))
            if isinstance(usage, dict):
                self._usage |= {
                    k: reported_count(v) for k, v in usage.items() if isinstance(v, int)
                }
        elif kind == "message_stop":
            out += self._end()
        return out

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        if self.target is WireFormat.OPENAI:
            return self._openai_chunk({"role": "assistant", "content": ""}, None)
        message: dict[str, Any] = {
            "id": "msg_proxy", "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }  # fmt: skip
        return _sse({"type": "message_start", "message": message}, "message_start") + _sse(
            {"type": "content_block_start", "index": 0,
             "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        )  # fmt: skip

    def _text(self, text: str) -> bytes:
        if self.target is WireFormat.OPENAI:
            return self._openai_chunk({"content": text}, None)
        delta = {"type": "text_delta", "text": text}
        return _sse({"type": "content_block_delta", "index": 0, "delta": delta},
                    "content_block_delta")  # fmt: skip

    def _end(self) -> bytes:
        self._finished = True
        out = self._start()
        if self.target is WireFormat.ANTHROPIC:
            delta = {"stop_reason": self._stop or "end_turn", "stop_sequence": None}
            counted = {"output_tokens": 0, **self._usage}
            return (out + _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
                    + _sse({"type": "message_delta", "delta": delta, "usage": counted},
                           "message_delta")
                    + _sse({"type": "message_stop"}, "message_stop"))  # fmt: skip
        out += self._openai_chunk({}, self._stop or "stop")
        if self.include_usage and self._usage:
            inp = self._usage.get("input_tokens", 0)
            cache = self._usage.get("cache_read_input_tokens", 0)
            output = self._usage.get("output_tokens", 0)
            usage: dict[str, Any] = {"prompt_tokens": inp + cache, "completion_tokens": output,
                     "total_tokens": inp + cache + output,
                     "prompt_tokens_details": {"cached_tokens": cache}}  # fmt: skip
            out += _sse(self._openai_base() | {"choices": [], "usage": usage})
        return out + _sse("[DONE]")

    def _openai_base(self) -> dict[str, Any]:
        return {"id": "chatcmpl-proxy", "object": "chat.completion.chunk", "created": 0,
                "model": self.model}  # fmt: skip

    def _openai_chunk(self, delta: Mapping[str, Any], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": dict(delta), "finish_reason": finish}
        return _sse(self._openai_base() | {"choices": [choice]})
