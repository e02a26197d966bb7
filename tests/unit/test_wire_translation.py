"""Plain text chat across wire formats (``domain/wire_translation.py``): whole calls and
answers, OpenAI Chat Completions ↔ Anthropic Messages, and what is not translated."""

from __future__ import annotations

import json

from domain.llm_usage import answer_usage
from domain.metering import TokenUsage
from domain.proxy import WireFormat
from domain.wire_translation import StreamTranslator, translate_answer, translate_request

OPENAI, ANTHROPIC = WireFormat.OPENAI, WireFormat.ANTHROPIC


def test_an_openai_call_becomes_an_anthropic_call_with_its_system_prompt_and_reservation() -> None:
    body = {
        "model": "gpt-4.1",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "again"},
        ],
        "temperature": 0.2,
        "stop": "END",
    }
    assert translate_request(body, OPENAI, ANTHROPIC, 700) == {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "again"},
        ],
        "max_tokens": 700,
        "temperature": 0.2,
        "system": "be brief",
        "stop_sequences": ["END"],
    }


def test_an_anthropic_call_becomes_an_openai_call() -> None:
    body = {
        "model": "claude-sonnet-4-6",
        "system": [{"type": "text", "text": "be brief"}],
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 300,
        "stop_sequences": ["END"],
    }
    assert translate_request(body, ANTHROPIC, OPENAI, 300) == {
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "max_tokens": 300,
        "stop": ["END"],
    }


def test_tools_and_images_are_not_translated_and_a_stream_stays_a_stream() -> None:
    user = {"role": "user", "content": "hi"}
    tools = {"model": "m", "messages": [user], "tools": [{"type": "function"}]}
    image = {"model": "m", "messages": [{"role": "user", "content": [{"type": "image"}]}]}
    stream = {"model": "m", "messages": [user], "stream": True}
    tool_reply = {"model": "m", "messages": [{"role": "tool", "content": "x"}]}
    for body in (tools, image, tool_reply):
        assert translate_request(body, OPENAI, ANTHROPIC, 10) is None
    assert translate_request(stream, OPENAI, OPENAI, 10) == stream
    assert translate_request(stream, OPENAI, ANTHROPIC, 10) == {
        "messages": [user],
        "max_tokens": 10,
        "stream": True,
    }


def test_an_openai_answer_becomes_an_anthropic_message_with_the_same_usage() -> None:
    answer = {
        "id": "abc",
        "choices": [
            {"message": {"role": "assistant", "content": "hello"}, "finish_reason": "length"}
        ],
        "usage": {"prompt_tokens": 28, "completion_tokens": 11,
                  "prompt_tokens_details": {"cached_tokens": 5}},
    }  # fmt: skip
    raw = json.dumps(answer).encode()
    translated = translate_answer(raw, OPENAI, ANTHROPIC, "kimi-k2.5")
    assert translated is not None
    message = json.loads(translated)
    assert message["type"] == "message" and message["model"] == "kimi-k2.5"
    assert message["content"] == [{"type": "text", "text": "hello"}]
    assert message["stop_reason"] == "max_tokens"
    assert answer_usage(ANTHROPIC, translated) == answer_usage(OPENAI, raw) == TokenUsage(23, 11, 5)


def test_an_anthropic_answer_becomes_an_openai_completion_with_the_same_usage() -> None:
    answer = {
        "id": "msg_1",
        "type": "message",
        "content": [{"type": "text", "text": "hel"}, {"type": "text", "text": "lo"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 23, "output_tokens": 11, "cache_read_input_tokens": 5},
    }
    raw = json.dumps(answer).encode()
    translated = translate_answer(raw, ANTHROPIC, OPENAI, "claude-sonnet-4-6")
    assert translated is not None
    completion = json.loads(translated)
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"] == {"role": "assistant", "content": "hello"}
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert answer_usage(OPENAI, translated) == answer_usage(ANTHROPIC, raw) == TokenUsage(23, 11, 5)


def test_an_answer_without_plain_text_or_usage_is_not_translated() -> None:
    tool_use = {"content": [{"type": "tool_use"}], "usage": {"input_tokens": 1}}
    no_usage = {"choices": [{"message": {"content": "hi"}}]}
    assert translate_answer(json.dumps(tool_use).encode(), ANTHROPIC, OPENAI, "m") is None
    assert translate_answer(json.dumps(no_usage).encode(), OPENAI, ANTHROPIC, "m") is None
    assert translate_answer(b"not json", OPENAI, ANTHROPIC, "m") is None


def _events(stream: bytes) -> list[dict[str, object] | str]:
    """The ``data:`` payloads of a server-sent-event stream, parsed."""
    found: list[dict[str, object] | str] = []
    for event in stream.split(b"\n\n"):
        for line in event.split(b"\n"):
            if line.startswith(b"data: "):
                payload = line[6:].decode()
                found.append(payload if payload == "[DONE]" else json.loads(payload))
    return found


OPENAI_STREAM = (
    b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"hel"}}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":28,"completion_tokens":11,'
    b'"prompt_tokens_details":{"cached_tokens":5}}}\n\n'
    b"data: [DONE]\n\n"
)
ANTHROPIC_STREAM = (
    b'event: message_start\ndata: {"type":"message_start","message":{"usage":'
    b'{"input_tokens":23,"output_tokens":1,"cache_read_input_tokens":5}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"hel"}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"lo"}}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
    b'"usage":{"output_tokens":11}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


def _translate_in_pieces(translator: StreamTranslator, stream: bytes, size: int) -> bytes:
    out = b"".join(translator.feed(stream[i : i + size]) for i in range(0, len(stream), size))
    return out + translator.finish()


def test_an_openai_stream_becomes_anthropic_events_whatever_the_chunk_boundaries() -> None:
    for size in (1, 7, len(OPENAI_STREAM)):
        out = _translate_in_pieces(
            StreamTranslator(OPENAI, ANTHROPIC, "kimi-k2.5"), OPENAI_STREAM, size
        )
        events = _events(out)
        kinds = [e["type"] for e in events if isinstance(e, dict)]
        assert kinds == ["message_start", "content_block_start", "content_block_delta",
                         "content_block_delta", "content_block_stop", "message_delta",
                         "message_stop"]  # fmt: skip
        texts = [e["delta"]["text"] for e in events if isinstance(e, dict)
                 and e["type"] == "content_block_delta"]  # fmt: skip
        assert texts == ["hel", "lo"]
        (delta,) = [e for e in events if isinstance(e, dict) and e["type"] == "message_delta"]
        assert delta["delta"] == {"stop_reason": "max_tokens", "stop_sequence": None}
        assert delta["usage"] == {"input_tokens": 23, "output_tokens": 11,
                                  "cache_read_input_tokens": 5}  # fmt: skip


def test_an_anthropic_stream_becomes_openai_chunks_with_the_usage_chunk_when_asked() -> None:
    for asked in (True, False):
        out = _translate_in_pieces(
            StreamTranslator(ANTHROPIC, OPENAI, "claude-sonnet-4-6", asked), ANTHROPIC_STREAM, 5
        )
        events = _events(out)
        assert events[-1] == "[DONE]"
        chunks = [e for e in events if isinstance(e, dict)]
        texts = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
        assert texts == ["", "hel", "lo", None]
        assert chunks[-1 - asked]["choices"][0]["finish_reason"] == "stop"
        usage = [c["usage"] for c in chunks if "usage" in c]
        expected = {"prompt_tokens": 28, "completion_tokens": 11, "total_tokens": 39,
                    "prompt_tokens_details": {"cached_tokens": 5}}  # fmt: skip
        assert usage == ([expected] if asked else [])


def test_a_stream_cut_short_is_still_ended_in_the_target_format() -> None:
    cut = OPENAI_STREAM[: OPENAI_STREAM.index(b'data: {"choices":[{"index":0,"delta":{}')]
    events = _events(_translate_in_pieces(StreamTranslator(OPENAI, ANTHROPIC, "m"), cut, 9))
    assert [e["type"] for e in events if isinstance(e, dict)][-1] == "message_stop"
