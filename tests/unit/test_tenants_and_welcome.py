"""Subscription gating, tier changes, model choice and the welcome message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.catalog import Catalog
from domain.errors import ValidationError
from domain.routing import decide_route
from domain.tenants import SubscriptionStatus, choose_model, may_use_service, with_status, with_tier
from domain.welcome import format_price, welcome_message
from tests.unit.conftest import make_tenant

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "allowed"),
    [(SubscriptionStatus.ACTIVE, True), (SubscriptionStatus.INCOMPLETE, False),
     (SubscriptionStatus.CANCELED, False)],
)  # fmt: skip
def test_only_active_subscriptions_work(status: SubscriptionStatus, allowed: bool) -> None:
    assert may_use_service(make_tenant(status=status), NOW, 3) is allowed


def test_past_due_works_within_the_grace_period_only() -> None:
    tenant = make_tenant(status=SubscriptionStatus.PAST_DUE, past_due_since=NOW - timedelta(days=3))
    assert may_use_service(tenant, NOW - timedelta(seconds=1), 3)
    assert not may_use_service(tenant, NOW, 3)
    assert not may_use_service(make_tenant(status=SubscriptionStatus.PAST_DUE), NOW, 3)


def test_entering_past_due_starts_the_grace_clock_once() -> None:
    first = with_status(make_tenant(), SubscriptionStatus.PAST_DUE, NOW)
    assert first.past_due_since == NOW
    again = with_status(first, SubscriptionStatus.PAST_DUE, NOW + timedelta(days=1))
    assert again.past_due_since == NOW
    recovered = with_status(again, SubscriptionStatus.ACTIVE, NOW + timedelta(days=2))
    assert (recovered.status, recovered.past_due_since) == (SubscriptionStatus.ACTIVE, None)


def test_entering_past_due_ignores_a_grace_clock_left_from_an_earlier_state() -> None:
    """A row loaded with a stale ``past_due_since`` must not shorten the new grace period."""
    stale = make_tenant(status=SubscriptionStatus.CANCELED, past_due_since=NOW - timedelta(30))
    assert with_status(stale, SubscriptionStatus.PAST_DUE, NOW).past_due_since == NOW


def test_a_tier_change_drops_a_preference_the_new_tier_cannot_serve(catalog: Catalog) -> None:
    opus = make_tenant(tier="premium", model_preference="anthropic/claude-opus-4-6")
    assert with_tier(opus, catalog.tier("starter")).model_preference is None
    assert with_tier(opus, catalog.tier("plus")).model_preference == "anthropic/claude-opus-4-6"
    assert with_tier(opus, catalog.tier("basic")).tier == "starter"


def test_premium_tenants_choose_among_selectable_models(catalog: Catalog) -> None:
    premium = make_tenant(tier="premium")
    chosen = choose_model(catalog, premium, "anthropic/claude-opus-4-6")
    assert chosen.model_preference == "anthropic/claude-opus-4-6"
    assert choose_model(catalog, chosen, None).model_preference is None
    with pytest.raises(ValidationError) as raised:
        choose_model(catalog, make_tenant(tier="starter"), "anthropic/claude-opus-4-6")
    assert raised.value.field == "model_preference"
    assert raised.value.detail == (
        "model 'anthropic/claude-opus-4-6' is not selectable on the Starter tier (allowed: none)"
    )


def test_a_refused_model_choice_lists_the_tiers_selectable_models(catalog: Catalog) -> None:
    with pytest.raises(ValidationError) as raised:
        choose_model(catalog, make_tenant(tier="premium"), "moonshot/kimi-k2.5")
    assert raised.value.detail == (
        "model 'moonshot/kimi-k2.5' is not selectable on the Premium tier "
        "(allowed: anthropic/claude-sonnet-4-6, anthropic/claude-opus-4-6)"
    )


def test_prices_are_formatted_from_cents() -> None:
    assert format_price(700, "usd") == "$7.00"
    assert format_price(2505, "USD") == "$25.05"
    assert format_price(600, "eur") == "EUR 6.00"


def test_the_welcome_message_comes_from_the_catalog(catalog: Catalog) -> None:
    starter = make_tenant(tier="starter")
    text = welcome_message(catalog, starter, decide_route(catalog, starter, None))
    assert text == (
        "Welcome to your agent on the Starter plan. Your agent answers with Kimi K2.5. "
        "You can send up to 50 messages a day. Your plan includes 500,000 tokens per billing "
        "month."
    )
    byok = make_tenant(tier="byok")
    text = welcome_message(catalog, byok, decide_route(catalog, byok, None))
    assert "Bring Your Own Key" in text and "no platform limit" in text and "200" in text
