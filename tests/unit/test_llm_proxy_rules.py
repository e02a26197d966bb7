"""The LLM proxy's rules: which upstreams serve a call and in which order, what an
upstream's status means, and the usage read from answers and streams."""

from __future__ import annotations

import hashlib
import json

import pytest

from domain.catalog import AuthStyle, Catalog
from domain.ids import ModelRef
from domain.llm_usage import StreamUsageReader, answer_usage, anthropic_usage, openai_usage
from domain.metering import Credential, TokenUsage
from domain.proxy import (
    CallPlans,
    Upstream,
    Verdict,
    WireFormat,
    call_plan,
    judge_upstream_status,
    proxied_api,
    proxy_base_url,
    upstream_for,
    wire_of_api,
)
from domain.routing import ModelChoice, Route
from domain.virtual_keys import looks_like_virtual_key, new_virtual_key, virtual_key_hash

pytestmark = pytest.mark.unit

PLATFORM = Credential.PLATFORM
TENANT = Credential.TENANT


def choice(ref: str, credential: Credential = PLATFORM) -> ModelChoice:
    return ModelChoice(ModelRef(ref), credential)


def models(plan: tuple[Upstream, ...]) -> list[str]:
    return [u.choice.ref for u in plan]


def test_the_proxy_speaks_openai_to_openai_style_and_gemini_and_anthropic_to_messages() -> None:
    assert wire_of_api("openai-completions") is WireFormat.OPENAI
    assert wire_of_api("google-generative-ai") is WireFormat.OPENAI
    assert wire_of_api("anthropic-messages") is WireFormat.ANTHROPIC
    assert wire_of_api("ollama") is None
    assert proxied_api("google-generative-ai") == "openai-completions"
    assert proxied_api("anthropic-messages") == "anthropic-messages"


def test_proxy_mode_base_urls_follow_each_clients_habit() -> None:
    """OpenAI clients append /chat/completions to a /v1 base; Anthropic clients add /v1."""
    assert proxy_base_url("http://tk:8000/", "openai-completions") == "http://tk:8000/v1"
    assert proxy_base_url("http://tk:8000", "google-generative-ai") == "http://tk:8000/v1"
    assert proxy_base_url("http://tk:8000/", "anthropic-messages") == "http://tk:8000"


def test_each_route_choice_maps_to_its_providers_endpoint_and_auth(catalog: Catalog) -> None:
    kimi = upstream_for(catalog, choice("moonshot/kimi-k2.5"))
    assert kimi is not None
    assert (kimi.provider_id, kimi.model_id, kimi.wire) == ("moonshot", "kimi-k2.5",
                                                            WireFormat.OPENAI)  # fmt: skip
    assert kimi.url == "https://api.moonshot.ai/v1/chat/completions"
    assert kimi.auth_style is AuthStyle.BEARER
    sonnet = upstream_for(catalog, choice("anthropic/claude-sonnet-4-6"))
    assert sonnet is not None
    assert sonnet.url == "https://api.anthropic.com/v1/messages"
    assert sonnet.auth_style is AuthStyle.X_API_KEY
    own = upstream_for(catalog, choice("byok-anthropic/claude-opus-4-6", TENANT))
    assert own is not None
    assert (own.provider_id, own.model_id) == ("anthropic", "claude-opus-4-6")
    assert own.extra_headers == (("anthropic-version", "2023-06-01"),)
    gemini = upstream_for(catalog, choice("byok-google/gemini-2.5-pro", TENANT))
    assert gemini is not None
    assert gemini.url == "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions"
    assert (gemini.wire, gemini.auth_style) == (WireFormat.OPENAI, AuthStyle.BEARER)
    assert upstream_for(catalog, choice("byok-nobody/x", TENANT)) is None


def test_a_call_starts_at_the_requested_model_and_falls_back_along_the_route_in_its_format(
    catalog: Catalog,
) -> None:
    byok = Route(choice("byok-openai/gpt-4.1", TENANT),
                 (choice("moonshot/kimi-k2.5"), choice("minimax/MiniMax-M2.1")))  # fmt: skip
    openai_plan = call_plan(catalog, byok, (), "gpt-4.1", WireFormat.OPENAI)
    assert models(openai_plan) == ["byok-openai/gpt-4.1", "moonshot/kimi-k2.5"]
    assert models(call_plan(catalog, byok, (), "kimi-k2.5", WireFormat.OPENAI)) == [
        "moonshot/kimi-k2.5"
    ]
    minimax = call_plan(catalog, byok, (), "MiniMax-M2.1", WireFormat.ANTHROPIC)
    assert models(minimax) == ["minimax/MiniMax-M2.1"]
    assert call_plan(catalog, byok, (), "gpt-4.1", WireFormat.ANTHROPIC) == ()
    assert call_plan(catalog, byok, (), "gpt-5", WireFormat.OPENAI) == ()


def test_call_plans_are_worked_out_once_within_and_across_wire_formats(
    catalog: Catalog,
) -> None:
    byok = Route(choice("byok-openai/gpt-4.1", TENANT),
                 (choice("moonshot/kimi-k2.5"), choice("minimax/MiniMax-M2.1")))  # fmt: skip
    plans = CallPlans()
    first = plans.plans(catalog, byok, (), "gpt-4.1", WireFormat.OPENAI)
    assert first == (
        call_plan(catalog, byok, (), "gpt-4.1", WireFormat.OPENAI),
        call_plan(catalog, byok, (), "gpt-4.1", WireFormat.OPENAI, True),
    )
    assert len(first[1]) == 3  # MiniMax speaks Messages: only across formats
    assert plans.plans(catalog, byok, (), "gpt-4.1", WireFormat.OPENAI) is first
    assert plans.plans(catalog, byok, (), "gpt-4.1", WireFormat.ANTHROPIC) == ((), ())


def test_a_selectable_model_outside_the_route_is_served_then_the_route_follows(
    catalog: Catalog,
) -> None:
    premium = Route(choice("anthropic/claude-sonnet-4-6"), (choice("moonshot/kimi-k2.5"),))
    selectable = (ModelRef("anthropic/claude-sonnet-4-6"), ModelRef("anthropic/claude-opus-4-6"))
    assert call_plan(catalog, premium, (), "claude-opus-4-6", WireFormat.ANTHROPIC) == ()
    plan = call_plan(catalog, premium, selectable, "claude-opus-4-6", WireFormat.ANTHROPIC)
    assert models(plan) == ["anthropic/claude-opus-4-6", "anthropic/claude-sonnet-4-6"]


def test_a_plain_text_call_falls_back_across_wire_formats_but_starts_in_its_own(
    catalog: Catalog,
) -> None:
    premium = Route(choice("anthropic/claude-sonnet-4-6"), (choice("moonshot/kimi-k2.5"),))
    sonnet = "claude-sonnet-4-6"
    own_wire = call_plan(catalog, premium, (), sonnet, WireFormat.ANTHROPIC)
    across = call_plan(catalog, premium, (), sonnet, WireFormat.ANTHROPIC, across_wires=True)
    assert models(own_wire) == ["anthropic/claude-sonnet-4-6"]
    assert models(across) == ["anthropic/claude-sonnet-4-6", "moonshot/kimi-k2.5"]
    # the requested model is always named in the caller's own format
    assert call_plan(catalog, premium, (), sonnet, WireFormat.OPENAI, across_wires=True) == ()


@pytest.mark.parametrize(
    ("status", "credential", "verdict"),
    [
        (200, TENANT, Verdict.ANSWER),
        (400, PLATFORM, Verdict.ANSWER),
        (404, TENANT, Verdict.ANSWER),
        (401, TENANT, Verdict.KEY_REJECTED),
        (403, TENANT, Verdict.KEY_REJECTED),
        (401, PLATFORM, Verdict.TRY_NEXT),
        (403, PLATFORM, Verdict.TRY_NEXT),
        (429, TENANT, Verdict.TRY_NEXT),
        (429, PLATFORM, Verdict.TRY_NEXT),
        (500, PLATFORM, Verdict.TRY_NEXT),
        (503, TENANT, Verdict.TRY_NEXT),
        (499, PLATFORM, Verdict.ANSWER),
    ],
)
def test_an_upstream_status_decides_between_answer_key_rejected_and_next(
    status: int, credential: Credential, verdict: Verdict
) -> None:
    assert judge_upstream_status(status, credential) is verdict


def test_openai_usage_counts_cached_prompt_tokens_as_cache_reads() -> None:
    usage = {"prompt_tokens": 30, "completion_tokens": 7,
             "prompt_tokens_details": {"cached_tokens": 12}}  # fmt: skip
    assert openai_usage(usage) == TokenUsage(18, 7, 12)
    assert openai_usage({"prompt_tokens": 5, "completion_tokens": 2}) == TokenUsage(5, 2, 0)
    assert openai_usage(None) is None
    assert openai_usage({"prompt_tokens": -3, "completion_tokens": "x"}) == TokenUsage(0, 0, 0)


def test_a_count_reported_as_zero_stays_zero() -> None:
    assert openai_usage({"prompt_tokens": 0, "completion_tokens": 0}) == TokenUsage(0, 0, 0)
    assert anthropic_usage({"input_tokens": 0, "output_tokens": 0}) == TokenUsage(0, 0, 0)


def test_anthropic_usage_counts_cache_writes_as_input_and_keeps_earlier_fields() -> None:
    start = anthropic_usage({"input_tokens": 20, "cache_creation_input_tokens": 4,
                             "cache_read_input_tokens": 6, "output_tokens": 1})  # fmt: skip
    assert start == TokenUsage(24, 1, 6)
    assert anthropic_usage({"output_tokens": 40}, start) == TokenUsage(24, 40, 6)
    assert anthropic_usage(None, start) == start


def test_a_whole_answers_usage_is_read_per_format() -> None:
    openai_body = json.dumps({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}).encode()
    assert answer_usage(WireFormat.OPENAI, openai_body) == TokenUsage(3, 4, 0)
    anthropic_body = json.dumps({"usage": {"input_tokens": 3, "output_tokens": 4}}).encode()
    assert answer_usage(WireFormat.ANTHROPIC, anthropic_body) == TokenUsage(3, 4, 0)
    assert answer_usage(WireFormat.OPENAI, b"not json") is None
    assert answer_usage(WireFormat.OPENAI, b"[1]") is None


def test_a_stream_reader_finds_usage_events_split_across_chunks() -> None:
    stream = (
        b'event: message_start\ndata: {"type":"message_start","message":{"usage":'
        b'{"input_tokens":9,"output_tokens":1}}}\n\n'
        b'data: {"type":"content_block_delta","delta":{"text":"\\"usage\\""}}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":33}}\n\n'
    )
    reader = StreamUsageReader(WireFormat.ANTHROPIC)
    for i in range(0, len(stream), 7):
        reader.feed(stream[i : i + 7])
    assert reader.finish() == TokenUsage(9, 33, 0)


def test_an_openai_stream_reports_usage_only_in_its_usage_chunk() -> None:
    reader = StreamUsageReader(WireFormat.OPENAI)
    reader.feed(b'data: {"choices":[{"delta":{"content":"hi"}}],"usage":null}\n\n')
    assert reader.usage is None
    reader.feed(b'data: {"choices":[],"usage":{"prompt_tokens":8,"completion_tokens":2}}')
    assert reader.usage is None  # the line is not complete yet
    assert reader.finish() == TokenUsage(8, 2, 0)
    reader.feed(b"data: [DONE]\n\n")
    assert reader.finish() == TokenUsage(8, 2, 0)


def test_virtual_keys_are_random_prefixed_and_stored_as_their_sha256() -> None:
    key = new_virtual_key()
    assert key.reveal().startswith("tkv_")
    assert len(key.reveal()) == 4 + 43
    assert new_virtual_key() != key
    assert virtual_key_hash(key) == hashlib.sha256(key.reveal().encode()).hexdigest()
    assert "tkv_" not in repr(key)
    assert looks_like_virtual_key(key.reveal()) is True
    assert looks_like_virtual_key("sk-live-123") is False
    assert looks_like_virtual_key("tkv_" + "x" * 300) is False
