"""Reading the token usage a provider reports, from a whole answer or from a stream as it
passes through (spec §13: the proxy settles what the provider reported, not what a caller
says).

- OpenAI: ``usage.prompt_tokens`` (cached tokens included, reported apart in
  ``prompt_tokens_details.cached_tokens``) and ``usage.completion_tokens``; a stream carries
  them in its last chunk when ``stream_options.include_usage`` is set.
- Anthropic: ``usage.input_tokens`` (plus ``cache_creation_input_tokens``),
  ``cache_read_input_tokens`` and ``output_tokens``; a stream reports input in
  ``message_start`` and the running output count in each ``message_delta``.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from domain.metering import TokenUsage
from domain.proxy import WireFormat

MAX_LINE_BYTES = 1 << 20
"""A stream line longer than this is not a usage event and is not kept whole."""


NO_TOKENS = TokenUsage(0, 0)
"""What a call that used nothing settles: its reservation is released."""


def reported_count(value: Any) -> int:
    """A token count as a provider reported it: a negative or non-integer one counts 0."""
    return max(value, 0) if isinstance(value, int) else 0


def openai_usage(usage: Any) -> TokenUsage | None:
    """Cached prompt tokens are cache reads; the rest of the prompt is input."""
    if not isinstance(usage, dict):
        return None
    details = usage.get("prompt_tokens_details")
    cached = reported_count(details.get("cached_tokens")) if isinstance(details, dict) else 0
    prompt = reported_count(usage.get("prompt_tokens"))
    return TokenUsage(
        input_tokens=max(0, prompt - cached),
        output_tokens=reported_count(usage.get("completion_tokens")),
        cache_read_tokens=min(cached, prompt),
    )


def anthropic_usage(usage: Any, previous: TokenUsage | None = None) -> TokenUsage | None:
    """Cache writes are input; a field the event leaves out keeps its earlier value."""
    if not isinstance(usage, dict):
        return previous
    base = previous or NO_TOKENS
    has_input = "input_tokens" in usage or "cache_creation_input_tokens" in usage
    input_tokens = (
        reported_count(usage.get("input_tokens"))
        + reported_count(usage.get("cache_creation_input_tokens"))
        if has_input
        else base.input_tokens
    )
    return TokenUsage(
        input_tokens=input_tokens,
        output_tokens=reported_count(usage["output_tokens"])
        if "output_tokens" in usage
        else base.output_tokens,
        cache_read_tokens=reported_count(usage["cache_read_input_tokens"])
        if "cache_read_input_tokens" in usage
        else base.cache_read_tokens,
    )


def answer_usage(wire: WireFormat, body: bytes) -> TokenUsage | None:
    """The usage of a whole (non-streamed) answer; None when it reports none."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict):
        return None
    if wire is WireFormat.OPENAI:
        return openai_usage(document.get("usage"))
    return anthropic_usage(document.get("usage"))


@attrs.define
class StreamUsageReader:
    """Fed the bytes of a server-sent-event stream as they pass, it keeps the usage the
    stream has reported so far (None until it reports any). Only ``data:`` lines that
    mention usage are parsed, so the text of the answer costs a byte search, not a parse."""

    wire: WireFormat
    usage: TokenUsage | None = None
    _partial: bytes = b""

    def feed(self, chunk: bytes) -> None:
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > MAX_LINE_BYTES:
            self._partial = b""
        for line in lines:
            self._line(line)

    def finish(self) -> TokenUsage | None:
        """The usage reported by the whole stream (a last line without newline included)."""
        self._line(self._partial)
        return self.usage

    def _line(self, line: bytes) -> None:
        if not line.startswith(b"data:") or b'"usage"' not in line:
            return
        try:
            event = json.loads(line[5:])
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(event, dict):
            return
        if self.wire is WireFormat.OPENAI:
            reported = openai_usage(event.get("usage"))
            if reported is not None:
                self.usage = reported
            return
        message = event.get("message")
        usage = message.get("usage") if isinstance(message, dict) else event.get("usage")
        self.usage = anthropic_usage(usage, self.usage)
