"""The pages' words for people and the values they lay out: error copy per provider, key
test results, meters that know when the agent refuses, the upgrade a paused customer is
offered, model weights, the rejected-key banner, the history chart."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest

from domain.byok import ProbeOutcome, ProbeResult
from domain.catalog import Catalog
from domain.errors import DomainError, ValidationError
from domain.usage_history import HistoryRow
from entrypoints.http.pages import views, wording
from entrypoints.http.pages.chart import day_chart, nice_ceiling


def test_key_shape_words_name_the_prefix_and_where_to_get_a_key(catalog: Catalog) -> None:
    groq = catalog.byok_provider("groq")
    assert wording.key_shape_words(groq) == (
        "Groq keys start with gsk_ — create one at console.groq.com/keys."
    )
    for provider in catalog.byok_providers:
        assert provider.key_url.startswith("https://"), provider.id
        words = wording.error_words(
            ValidationError(f"api_key does not look like a {provider.name} key", field="api_key"),
            provider,
        )
        assert words.startswith(f"{provider.name} keys start with {provider.key_prefix}")
        assert "api_key" not in words


def test_every_api_code_a_page_can_meet_has_words_and_unknown_codes_get_the_generic_one() -> None:
    codes = (
        "unauthorized", "conflict", "too_many_attempts", "payment_provider_error",
        "billing_not_configured", "key_store_unavailable", "message_cap_reached",
        "token_budget_exhausted", "subscription_inactive", "byok_key_invalid",
    )  # fmt: skip
    for code in codes:
        words = wording.error_words(DomainError("developer text (ENV_VAR)", code=code))
        assert words != wording.GENERIC and "ENV_VAR" not in words and "_" not in words, code
    assert wording.error_words(DomainError("x", code="something_new")) == wording.GENERIC


def test_probe_results_read_as_sentences_with_the_next_step(catalog: Catalog) -> None:
    google = catalog.byok_provider("google")

    def words(result: ProbeResult, detail: str = "") -> str:
        return wording.probe_words(google, ProbeOutcome(result, detail, 42))

    assert words(ProbeResult.VALID) == f"Connection works (42 ms): {google.name} accepted the key."
    assert "rejected this key" in words(ProbeResult.INVALID_KEY)
    assert "aistudio.google.com/app/apikey" in words(ProbeResult.INVALID_KEY)
    assert "error 500" in words(ProbeResult.UNREACHABLE, "Google answered HTTP 500")
    assert "did not answer in time" in words(
        ProbeResult.UNREACHABLE, "Google did not answer within 5 s"
    )
    assert "could not reach" in words(
        ProbeResult.UNREACHABLE, "Google could not be reached (ConnectError)"
    )
    limited = words(ProbeResult.RATE_LIMITED)
    assert limited.count("Try again") == 1
    by_result = wording.probe_words_by_result(google)
    assert "{ms}" in by_result["valid"]


def meter(used: int, limit: int | None, reserved: int = 0, headroom: int = 1) -> views.Meter:
    return views.Meter(
        "tokens", "Tokens", used, limit, "tokens", "later", "later", reserved, headroom
    )


def test_a_meter_refuses_when_what_is_left_cannot_hold_one_more_message() -> None:
    assert meter(30, 50).level == "ok" and meter(49, 50).level == "warn"
    assert not meter(49, 50).refusing()
    assert meter(50, 50).refusing() and meter(50, 50).level == "full"
    almost = meter(1_990_000, 2_000_000, headroom=16_000)
    assert almost.refusing() and almost.percent == 100 and almost.left() == 10_000
    held = meter(1_900_000, 2_000_000, reserved=32_000, headroom=16_000)
    assert not held.refusing() and held.level == "warn" and held.left() == 68_000
    assert held.percent == 97
    assert meter(0, None).level == "ok" and not meter(10**9, None).refusing()
    assert meter(1, 1_000_000).percent_label == "<1%"
    assert meter(999_999, 1_000_000, headroom=1).percent == 99


def test_a_paused_customer_is_offered_the_cheapest_plan_with_more_room(catalog: Catalog) -> None:
    starter, premium = catalog.tier("starter"), catalog.tier("premium")
    messages = views.Meter("messages", "Messages", 50, 50, "messages", "at midnight", "x")
    paused = views.paused_state(catalog, starter, [messages])
    assert paused is not None and paused.until == "at midnight"
    assert paused.upgrade == views.Upgrade(
        "premium", f"Upgrade to {premium.name} ({premium.messages_per_day:,} messages a day)"
    )
    assert (
        views.paused_state(catalog, premium, [attrs.evolve(messages, limit=200, used=200)])
        is not None
    )
    assert views.upgrade_for(catalog, premium, "messages") is None
    fallback = views.Meter("fallback", "Fallback", 10, 10, "tokens", "x", "x")
    assert views.paused_state(catalog, catalog.tier("byok"), [fallback]) is None


def test_a_model_that_weighs_more_says_how_much_faster_it_spends_the_budget(
    catalog: Catalog,
) -> None:
    premium = catalog.tier("premium")
    opus = next(m for m in premium.selectable_models if m != premium.primary_model)
    assert catalog.model(opus).budget_weight == Decimal("1.67")
    assert views.weight_note(catalog, opus) == "uses your token budget 1.67× faster"
    assert views.weight_note(catalog, premium.primary_model or "") == ""
    assert views.model_choice_label(catalog, opus).endswith("(uses your token budget 1.67× faster)")
    assert any("1.67× faster" in fact for fact in views.pricing_facts(catalog))


@pytest.mark.parametrize(("value", "ceiling"), [(0, 1), (1, 1), (3, 5), (7, 10), (2001, 5000)])
def test_the_chart_axis_rounds_up_to_a_readable_top(value: int, ceiling: int) -> None:
    assert nice_ceiling(value) == ceiling


def test_the_chart_has_one_bar_per_day_stacked_by_key_and_a_summary() -> None:
    rows = [HistoryRow("2026-12-01", 2, 300, 100), HistoryRow("2026-12-02", 0, 0, 0)]
    chart = day_chart(rows)
    assert len(chart.bars) == 2
    first = chart.bars[0]
    assert first.platform_height == pytest.approx(3 * first.own_height)
    assert first.own_y + first.own_height == pytest.approx(first.platform_y)
    assert chart.bars[1].platform_height == 0
    assert chart.ticks[-1].label == "500"
    assert "400 tokens over 2 days" in chart.summary and "2026-12-01" in chart.summary
