"""The LLM proxy's smaller rules at their edges: a call's reservation against the budget,
virtual key shapes and their lookup, upstream addresses, and usage read from odd events."""

from __future__ import annotations

import json

import attrs

from domain.call_reservations import evaluate_call_reservation
from domain.catalog import AuthStyle, Catalog
from domain.ids import ModelRef, TenantId
from domain.llm_usage import MAX_LINE_BYTES, StreamUsageReader, anthropic_usage
from domain.metering import Counters, Credential, RefusalReason, Refused, TokenUsage
from domain.proxy import WireFormat, proxy_base_url, upstream_for, upstream_url
from domain.routing import ModelChoice
from domain.use_cases.virtual_keys import VirtualKeys
from domain.virtual_keys import (
    MAX_PRESENTED_LENGTH,
    VIRTUAL_KEY_PREFIX,
    looks_like_virtual_key,
    new_virtual_key,
)
from tests.fakes import FakeKeyStore, FixedClock, InMemoryVirtualKeyRepository
from tests.unit.test_metering_rules import PERIOD, request

T = TenantId("t-1")
USAGE_LINE = b'data: {"usage": {"prompt_tokens": 5, "completion_tokens": 2}}'


def test_a_call_holds_its_reservation_while_it_fits_the_budget_exactly() -> None:
    call = request(budget=1_000, reserve=100)
    assert evaluate_call_reservation(Counters(0, 800, 100), call) == 100
    assert evaluate_call_reservation(Counters(0, 0, 0), request(budget=None, reserve=9)) == 9


def test_a_call_beyond_the_budget_is_refused_until_the_period_resets() -> None:
    refused = evaluate_call_reservation(Counters(0, 801, 100), request(budget=1_000, reserve=100))
    assert refused == Refused(RefusalReason.TOKEN_BUDGET_EXHAUSTED, PERIOD.resets_at)
    alone = evaluate_call_reservation(Counters(0, 0, 0), request(budget=1_000, reserve=1_001))
    assert alone == Refused(RefusalReason.TOKEN_BUDGET_EXHAUSTED, PERIOD.resets_at)


def test_an_optional_call_reservation_beyond_the_budget_holds_nothing() -> None:
    optional = attrs.evolve(request(budget=1_000, reserve=100), reservation_optional=True)
    assert evaluate_call_reservation(Counters(0, 950, 0), optional) == 0


def test_a_virtual_key_is_the_prefix_and_43_url_safe_characters() -> None:
    key = new_virtual_key().reveal()
    assert key.startswith(VIRTUAL_KEY_PREFIX) and len(key) == len(VIRTUAL_KEY_PREFIX) + 43


def test_a_presented_key_up_to_the_length_limit_is_worth_a_lookup() -> None:
    longest = VIRTUAL_KEY_PREFIX + "a" * (MAX_PRESENTED_LENGTH - len(VIRTUAL_KEY_PREFIX))
    assert looks_like_virtual_key(longest)
    assert not looks_like_virtual_key(longest + "a")


async def test_a_new_virtual_key_is_stored_with_the_time_it_was_made() -> None:
    repository, clock = InMemoryVirtualKeyRepository(), FixedClock()
    await VirtualKeys(repository, FakeKeyStore(), clock).current(T)
    assert repository.keys[T].created_at == clock.now()


async def test_a_key_no_longer_found_is_forgotten_once_its_trust_expires() -> None:
    repository, clock = InMemoryVirtualKeyRepository(), FixedClock()
    keys = VirtualKeys(repository, FakeKeyStore(), clock)
    key = (await keys.current(T)).reveal()
    assert await keys.tenant_for(key) == T
    repository.keys.clear()
    clock.advance(seconds=6)
    assert await keys.tenant_for(key) is None
    await keys.current(T)  # a new key for the tenant: the old one must stay unknown
    assert await keys.tenant_for(key) is None


def test_a_base_url_keeps_its_own_path_and_loses_only_trailing_slashes() -> None:
    assert proxy_base_url("https://tk.example/API-X//", "openai-completions") == (
        "https://tk.example/API-X/v1"
    )
    assert upstream_url("https://gw.example/proxy-X/", "openai-completions") == (
        "https://gw.example/proxy-X/chat/completions"
    )
    assert upstream_url("/local/v1/", "anthropic-messages") == "/local/v1/v1/messages"


def test_platform_upstreams_add_no_headers_and_byok_ones_keep_their_auth_style(
    catalog: Catalog,
) -> None:
    kimi = upstream_for(catalog, ModelChoice(ModelRef("moonshot/kimi-k2.5"), Credential.PLATFORM))
    assert kimi is not None and kimi.extra_headers == ()
    own = ModelChoice(ModelRef("byok-anthropic/claude-opus-4-6"), Credential.TENANT)
    anthropic = upstream_for(catalog, own)
    assert anthropic is not None and anthropic.auth_style is AuthStyle.X_API_KEY


def test_anthropic_usage_without_earlier_events_starts_from_zero() -> None:
    assert anthropic_usage({"output_tokens": 3}) == TokenUsage(0, 3, 0)
    assert anthropic_usage({"input_tokens": 4}) == TokenUsage(4, 0, 0)


def test_cache_writes_alone_replace_the_earlier_input_count() -> None:
    earlier = TokenUsage(10, 2, 1)
    assert anthropic_usage({"cache_creation_input_tokens": 4}, earlier) == TokenUsage(4, 2, 1)


def test_only_data_lines_are_read_for_usage_with_or_without_a_space() -> None:
    reader = StreamUsageReader(WireFormat.OPENAI)
    reader.feed(b'extra{"usage": {"prompt_tokens": 9, "completion_tokens": 9}}\n')
    assert reader.usage is None
    reader.feed(b'data:{"usage": {"prompt_tokens": 3, "completion_tokens": 1}}\n')
    assert reader.usage == TokenUsage(3, 1, 0)


def test_a_line_at_the_length_limit_is_still_read() -> None:
    pad = MAX_LINE_BYTES - len(USAGE_LINE) - len(b', "pad": ""')
    line = USAGE_LINE[:-1] + b', "pad": "' + b"x" * pad + b'"}'
    assert len(line) == MAX_LINE_BYTES
    reader = StreamUsageReader(WireFormat.OPENAI)
    reader.feed(line)
    reader.feed(b"\n")
    assert reader.usage == TokenUsage(5, 2, 0)
    assert json.loads(line[5:])["usage"]["prompt_tokens"] == 5


def test_after_an_overlong_line_is_dropped_reading_resumes_with_what_follows() -> None:
    reader = StreamUsageReader(WireFormat.OPENAI)
    reader.feed(b"x" * (MAX_LINE_BYTES + 1))
    reader.feed(USAGE_LINE + b"\n")
    assert reader.finish() == TokenUsage(5, 2, 0)
