"""Plain text chat across wire formats, event by event and field by field: what each
translated call, answer and stream says exactly, and what is left untranslated."""

from __future__ import annotations

import json
from typing import Any

import pytest

from domain.proxy import WireFormat
from domain.wire_translation import (
    StreamTranslator,
    translate_answer,
    translate_request,
)
from tests.unit.test_wire_translation import ANTHROPIC_STREAM, OPENAI_STREAM

OPENAI, ANTHROPIC = WireFormat.OPENAI, WireFormat.ANTHROPIC
USER = {"role": "user", "content": "hi"}


def sse(stream: bytes) -> list[tuple[str | None, Any]]:
    """(event name, parsed data) of each server-sent event; every event must be well formed:
    an optional ``event:`` line, then one ``data: `` line, then a blank line."""
    assert stream.endswith(b"\n\n")
    events: list[tuple[str | None, Any]] = []
    for raw in stream[:-2].split(b"\n\n"):
        lines = raw.decode().split("\n")
        name = lines.pop(0).removeprefix("event: ") if lines[0].startswith("event: ") else None
        [data] = lines
        assert data.startswith("data: ")
        payload = data.removeprefix("data: ")
        events.append((name, payload if payload == "[DONE]" else json.loads(payload)))
    return events


def anthropic_start(model: str) -> list[tuple[str | None, Any]]:
    message: dict[str, Any] = {
        "id": "msg_proxy", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }  # fmt: skip
    return [
        ("message_start", {"type": "message_start", "message": message}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
    ]  # fmt: skip


def anthropic_text(text: str) -> tuple[str | None, Any]:
    return ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                    "delta": {"type": "text_delta", "text": text}})  # fmt: skip


def anthropic_end(stop: str, usage: dict[str, int]) -> list[tuple[str | None, Any]]:
    return [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta",
                           "delta": {"stop_reason": stop, "stop_sequence": None},
                           "usage": usage}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip


def openai_chunk(model: str, delta: dict[str, Any], finish: str | None) -> tuple[None, Any]:
    return (None, {"id": "chatcmpl-proxy", "object": "chat.completion.chunk", "created": 0,
                   "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})  # fmt: skip


def test_an_openai_stream_becomes_exactly_these_anthropic_events() -> None:
    translator = StreamTranslator(OPENAI, ANTHROPIC, "kimi-k2.5")
    out = translator.feed(OPENAI_STREAM) + translator.finish()
    usage = {"output_tokens": 11, "input_tokens": 23, "cache_read_input_tokens": 5}
    assert sse(out) == [*anthropic_start("kimi-k2.5"), anthropic_text("hel"),
                        anthropic_text("lo"), *anthropic_end("max_tokens", usage)]  # fmt: skip


def test_an_anthropic_stream_becomes_exactly_these_openai_chunks() -> None:
    translator = StreamTranslator(ANTHROPIC, OPENAI, "sonnet", include_usage=True)
    out = translator.feed(ANTHROPIC_STREAM) + translator.finish()
    usage = {"prompt_tokens": 28, "completion_tokens": 11, "total_tokens": 39,
             "prompt_tokens_details": {"cached_tokens": 5}}  # fmt: skip
    assert sse(out) == [
        openai_chunk("sonnet", {"role": "assistant", "content": ""}, None),
        openai_chunk("sonnet", {"content": "hel"}, None),
        openai_chunk("sonnet", {"content": "lo"}, None),
        openai_chunk("sonnet", {}, "stop"),
        (None, {"id": "chatcmpl-proxy", "object": "chat.completion.chunk", "created": 0,
                "model": "sonnet", "choices": [], "usage": usage}),
        (None, "[DONE]"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("stop", "finish"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
     ("refusal", "stop")],
)  # fmt: skip
def test_an_anthropic_stop_reason_becomes_the_openai_finish_reason(stop: str, finish: str) -> None:
    events = (
        b'data: {"type": "message_delta", "delta": {"stop_reason": "' + stop.encode() + b'"}}'
        b'\n\ndata: {"type": "message_stop"}\n\n'
    )
    translator = StreamTranslator(ANTHROPIC, OPENAI, "m")
    assert sse(translator.feed(events) + translator.finish())[-2] == openai_chunk("m", {}, finish)


@pytest.mark.parametrize(
    ("finish", "stop"), [("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "end_turn")]
)
def test_an_openai_finish_reason_becomes_the_anthropic_stop_reason(finish: str, stop: str) -> None:
    events = b'data: {"choices": [{"delta": {}, "finish_reason": "' + finish.encode() + b'"}]}\n\n'
    translator = StreamTranslator(OPENAI, ANTHROPIC, "m")
    out = sse(translator.feed(events) + translator.finish())
    assert out[-2][1]["delta"] == {"stop_reason": stop, "stop_sequence": None}


def test_a_stream_that_never_said_why_it_stopped_ends_plainly() -> None:
    to_anthropic = StreamTranslator(OPENAI, ANTHROPIC, "m")
    out = to_anthropic.feed(b'data: {"choices": [{"delta": {"content": "x"}}]}\n\n')
    assert sse(out + to_anthropic.finish()) == [
        *anthropic_start("m"), anthropic_text("x"), *anthropic_end("end_turn",
                                                                   {"output_tokens": 0})
    ]  # fmt: skip
    to_openai = StreamTranslator(ANTHROPIC, OPENAI, "m", include_usage=True)
    assert sse(to_openai.finish()) == [
        openai_chunk("m", {"role": "assistant", "content": ""}, None),
        openai_chunk("m", {}, "stop"),
        (None, "[DONE]"),
    ]  # no usage reported: no usage chunk, even when asked


def test_crlf_line_ends_and_events_without_data_are_understood() -> None:
    events = (
        b": keep-alive\r\n\r\n"
        b'event: content_block_delta\r\ndata: {"type": "content_block_delta",'
        b' "delta": {"text": "a"}}\r\n\r\n'
    )
    translator = StreamTranslator(ANTHROPIC, OPENAI, "m")
    assert sse(translator.feed(events)) == [
        openai_chunk("m", {"role": "assistant", "content": ""}, None),
        openai_chunk("m", {"content": "a"}, None),
    ]


def test_an_event_split_over_several_data_lines_is_read_whole() -> None:
    translator = StreamTranslator(ANTHROPIC, OPENAI, "m")
    out = translator.feed(b'data: {"type": "content_block_delta",\ndata:  "delta": {"text": "b"}}'
                          b"\n\n")  # fmt: skip
    assert sse(out)[1:] == [openai_chunk("m", {"content": "b"}, None)]


def test_events_that_are_not_json_objects_are_skipped_and_start_nothing() -> None:
    translator = StreamTranslator(ANTHROPIC, OPENAI, "m")
    assert translator.feed(b"data: {not json\n\ndata: [1, 2]\n\ndata: \xff\xfe\n\n") == b""
    assert translator.feed(b'data: {"type": "ping"}\n\n') == sse_bytes(
        openai_chunk("m", {"role": "assistant", "content": ""}, None)
    )


def sse_bytes(event: tuple[str | None, Any]) -> bytes:
    name, data = event
    head = f"event: {name}\n" if name else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {payload}\n\n".encode()


def test_done_after_the_end_adds_nothing_and_a_missing_end_is_added_once() -> None:
    translator = StreamTranslator(ANTHROPIC, OPENAI, "m")
    ended = translator.feed(b'data: {"type": "message_stop"}\n\n')
    assert sse(ended)[-1] == (None, "[DONE]")
    assert translator.feed(b"data: [DONE]\n\n") == b""
    assert translator.finish() == b""
    cut = StreamTranslator(OPENAI, ANTHROPIC, "m")
    assert sse(cut.feed(b"data: [DONE]\n\n"))[-1] == ("message_stop", {"type": "message_stop"})
    assert cut.finish() == b""


def test_a_last_event_without_its_blank_line_is_translated_at_the_end() -> None:
    translator = StreamTranslator(OPENAI, ANTHROPIC, "m")
    assert translator.feed(b'data: {"choices": [{"delta": {"content": "z"}}]}') == b""
    end = anthropic_end("end_turn", {"output_tokens": 0})
    assert sse(translator.finish()) == [*anthropic_start("m"), anthropic_text("z"), *end]


def test_openai_choices_that_carry_no_text_send_no_text_event() -> None:
    translator = StreamTranslator(OPENAI, ANTHROPIC, "m")
    chunk = (b'data: {"choices": ["odd", {"delta": "odd"}, {"delta": {"content": ""}},'
             b' {"delta": {"content": 5}}]}\n\n')  # fmt: skip
    assert sse(translator.feed(chunk)) == anthropic_start("m")


def test_openai_stream_usage_with_odd_counts_counts_them_as_zero() -> None:
    usage = (b'data: {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": -3,'
             b' "prompt_tokens_details": {"cached_tokens": "4"}}}\n\n')  # fmt: skip
    translator = StreamTranslator(OPENAI, ANTHROPIC, "m")
    out = sse(translator.feed(usage) + translator.finish())
    assert out[-2][1]["usage"] == {"output_tokens": 0, "input_tokens": 10,
                                   "cache_read_input_tokens": 0}  # fmt: skip
    no_details = b'data: {"choices": [], "usage": {"prompt_tokens": 8, "completion_tokens": 2}}\n\n'
    translator = StreamTranslator(OPENAI, ANTHROPIC, "m")
    out = sse(translator.feed(no_details) + translator.finish())
    assert out[-2][1]["usage"] == {"output_tokens": 2, "input_tokens": 8,
                                   "cache_read_input_tokens": 0}  # fmt: skip


def test_anthropic_stream_usage_keeps_whole_counts_only() -> None:
    events = (
        b'data: {"type": "message_start", "message": {"usage": {"input_tokens": 7,'
        b' "output_tokens": -1, "service_tier": "standard"}}}\n\n'
        b'data: {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 4}}\n\n'
        b'data: {"type": "content_block_delta", "delta": "odd"}\n\n'
        b'data: {"type": "message_start", "message": "odd"}\n\n'
    )
    translator = StreamTranslator(ANTHROPIC, OPENAI, "m", include_usage=True)
    out = sse(translator.feed(events) + translator.finish())
    assert out[-2][1]["usage"] == {"prompt_tokens": 7, "completion_tokens": 4,
                                   "total_tokens": 11,
                                   "prompt_tokens_details": {"cached_tokens": 0}}  # fmt: skip
    assert [e for e in out if e[1] != "[DONE]" and e[1]["choices"]
            and e[1]["choices"][0]["delta"].get("content")] == []  # fmt: skip


def test_an_openai_answer_becomes_exactly_this_anthropic_message() -> None:
    answer = {"id": "abc", "choices": [{"message": {"content": "hello"},
                                        "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 28, "completion_tokens": 11,
                        "prompt_tokens_details": {"cached_tokens": 5}}}  # fmt: skip
    translated = translate_answer(json.dumps(answer).encode(), OPENAI, ANTHROPIC, "kimi")
    assert translated is not None
    assert json.loads(translated) == {
        "id": "msg_abc", "type": "message", "role": "assistant", "model": "kimi",
        "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 23, "output_tokens": 11, "cache_read_input_tokens": 5},
    }  # fmt: skip


def test_an_anthropic_answer_becomes_exactly_this_openai_completion() -> None:
    answer = {"id": "m1", "content": [{"type": "text", "text": "hey"}],
              "stop_reason": "max_tokens",
              "usage": {"input_tokens": 20, "output_tokens": 5,
                        "cache_read_input_tokens": 3}}  # fmt: skip
    translated = translate_answer(json.dumps(answer).encode(), ANTHROPIC, OPENAI, "mini")
    assert translated is not None
    assert json.loads(translated) == {
        "id": "chatcmpl-m1", "object": "chat.completion", "created": 0, "model": "mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hey"},
                     "finish_reason": "length"}],
        "usage": {"prompt_tokens": 23, "completion_tokens": 5, "total_tokens": 28,
                  "prompt_tokens_details": {"cached_tokens": 3}},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("source", "answer", "reason"),
    [
        (ANTHROPIC, {"content": "x", "usage": {}}, "stop"),
        (ANTHROPIC, {"content": "x", "stop_reason": "stop_sequence", "usage": {}}, "stop"),
        (OPENAI, {"choices": [{"message": {"content": "x"}}], "usage": {}}, "end_turn"),
        (OPENAI, {"choices": [{"message": {"content": "x"}, "finish_reason": "length"}],
                  "usage": {}}, "max_tokens"),
    ],
)  # fmt: skip
def test_an_answers_stop_reason_is_named_in_the_other_format(
    source: WireFormat, answer: dict[str, Any], reason: str
) -> None:
    target = ANTHROPIC if source is OPENAI else OPENAI
    translated = translate_answer(json.dumps(answer).encode(), source, target, "m")
    assert translated is not None
    document = json.loads(translated)
    named = document["stop_reason"] if source is OPENAI else document["choices"][0][
        "finish_reason"]  # fmt: skip
    assert named == reason
    assert document["id"] in ("msg_", "chatcmpl-")


@pytest.mark.parametrize(
    "answer",
    [b"[1]", b"\xff", b'{"choices": [], "usage": {}}', b'{"choices": ["x"], "usage": {}}',
     b'{"choices": [{"message": "x"}], "usage": {}}'],
)  # fmt: skip
def test_an_openai_answer_without_a_message_is_not_translated(answer: bytes) -> None:
    assert translate_answer(answer, OPENAI, ANTHROPIC, "m") is None


def test_an_openai_call_with_every_shared_option_keeps_them() -> None:
    body = {"model": "m", "max_completion_tokens": 5, "metadata": {"a": 1}, "top_p": 0.9,
            "temperature": 0.1, "stream": True, "stream_options": {"include_usage": True},
            "stop": ["A", "B"],
            "messages": [{"role": "developer", "content": "one"},
                         {"role": "system", "content": "two", "name": "sys"}, USER]}  # fmt: skip
    assert translate_request(body, OPENAI, ANTHROPIC, 99) == {
        "messages": [USER], "max_tokens": 99, "temperature": 0.1, "top_p": 0.9,
        "stream": True, "system": "one\n\ntwo", "stop_sequences": ["A", "B"],
    }  # fmt: skip


def test_an_openai_call_without_a_system_prompt_or_stops_has_none() -> None:
    body = {"model": "m", "messages": [USER], "stop": []}
    assert translate_request(body, OPENAI, ANTHROPIC, 9) == {"messages": [USER], "max_tokens": 9}


def test_stream_options_belong_to_openai_calls_only() -> None:
    body = {"model": "m", "messages": [USER], "stream_options": {}}
    assert translate_request(body, ANTHROPIC, OPENAI, 9) is None


def test_an_anthropic_call_keeps_its_stream_and_shared_options() -> None:
    body = {"model": "m", "messages": [USER], "stream": True, "top_p": 0.5,
            "system": "be kind", "stop_sequences": ["X"]}  # fmt: skip
    assert translate_request(body, ANTHROPIC, OPENAI, 7) == {
        "messages": [{"role": "system", "content": "be kind"}, USER], "max_tokens": 7,
        "top_p": 0.5, "stream": True, "stop": ["X"],
    }  # fmt: skip


def test_an_empty_or_missing_system_prompt_adds_no_system_message() -> None:
    for extra in ({"system": ""}, {}):
        body = {"model": "m", "messages": [USER], **extra}
        assert translate_request(body, ANTHROPIC, OPENAI, 7) == {
            "messages": [USER], "max_tokens": 7
        }  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [
        {"messages": [USER], "system": [{"type": "image"}]},
        {"messages": "hi"},
        {},
        {"messages": ["hi"]},
        {"messages": [{"role": "user", "content": "hi", "extra": 1}]},
        {"messages": [{"role": "tool", "content": "hi"}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]},
        {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
        {"messages": [{"role": "user", "content": ["hi"]}]},
        {"messages": [{"role": "user", "content": 3}]},
        {"messages": [{"role": "user"}]},
    ],
)
def test_a_call_that_is_not_plain_text_chat_is_not_translated(body: dict[str, Any]) -> None:
    assert translate_request(body, ANTHROPIC, OPENAI, 7) is None


def test_a_message_of_several_text_blocks_becomes_one_text() -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                      {"type": "text", "text": "b"}]}]}  # fmt: skip
    assert translate_request(body, ANTHROPIC, OPENAI, 1) == {
        "messages": [{"role": "user", "content": "ab"}], "max_tokens": 1
    }  # fmt: skip


def test_a_call_in_the_same_format_is_passed_as_a_copy() -> None:
    body = {"model": "m", "messages": [USER], "tools": []}
    copied = translate_request(body, ANTHROPIC, ANTHROPIC, 1)
    assert copied == body and copied is not body


def test_a_data_line_without_a_space_after_the_colon_is_read() -> None:
    translator = StreamTranslator(ANTHROPIC, OPENAI, "m")
    assert sse(translator.feed(b'data:{"type":"message_stop"}\n\n'))[-1] == (None, "[DONE]")


def test_a_stream_that_ends_at_once_still_starts_properly() -> None:
    translator = StreamTranslator(ANTHROPIC, OPENAI, "m")
    assert sse(translator.feed(b'data: {"type": "message_stop"}\n\n')) == [
        openai_chunk("m", {"role": "assistant", "content": ""}, None),
        openai_chunk("m", {}, "stop"),
        (None, "[DONE]"),
    ]


def test_text_after_an_odd_choice_is_still_passed_on() -> None:
    translator = StreamTranslator(OPENAI, ANTHROPIC, "m")
    chunk = b'data: {"choices": ["odd", {"delta": {"content": "x"}}]}\n\n'
    assert sse(translator.feed(chunk)) == [*anthropic_start("m"), anthropic_text("x")]


def test_an_anthropic_delta_whose_text_is_not_a_string_sends_nothing() -> None:
    translator = StreamTranslator(ANTHROPIC, OPENAI, "m")
    events = b'data: {"type": "content_block_delta", "delta": {"text": 5}}\n\n'
    assert sse(translator.feed(events)) == [
        openai_chunk("m", {"role": "assistant", "content": ""}, None)
    ]


def test_an_empty_prompt_counts_no_input_tokens() -> None:
    usage = b'data: {"choices": [], "usage": {"prompt_tokens": 0, "completion_tokens": 2}}\n\n'
    translator = StreamTranslator(OPENAI, ANTHROPIC, "m")
    out = sse(translator.feed(usage) + translator.finish())
    assert out[-2][1]["usage"] == {"output_tokens": 2, "input_tokens": 0,
                                   "cache_read_input_tokens": 0}  # fmt: skip


def test_a_usage_chunk_counts_what_the_stream_left_out_as_zero() -> None:
    only_output = b'data: {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 4}}\n\n'
    translator = StreamTranslator(ANTHROPIC, OPENAI, "m", include_usage=True)
    out = sse(translator.feed(only_output) + translator.finish())
    assert out[-2][1]["usage"] == {"prompt_tokens": 0, "completion_tokens": 4,
                                   "total_tokens": 4,
                                   "prompt_tokens_details": {"cached_tokens": 0}}  # fmt: skip
    only_input = b'data: {"type": "message_start", "message": {"usage": {"input_tokens": 6}}}\n\n'
    translator = StreamTranslator(ANTHROPIC, OPENAI, "m", include_usage=True)
    out = sse(translator.feed(only_input) + translator.finish())
    assert out[-2][1]["usage"] == {"prompt_tokens": 6, "completion_tokens": 0,
                                   "total_tokens": 6,
                                   "prompt_tokens_details": {"cached_tokens": 0}}  # fmt: skip
