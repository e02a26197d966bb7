"""The subscription record's rules taken one by one: which record a plan change, a cancel or a
resume leaves, what a decision says when there is no record yet, and the words of a refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from domain.billing import EventKind, Outcome, PriceBook, SubscriptionEvent, build_price_book
from domain.catalog import Catalog
from domain.errors import Conflict, ValidationError
from domain.ids import TenantId, TierId
from domain.subscription_records import Subscription, SubscriptionSnapshot
from domain.subscriptions import (
    ChangeKind,
    PlanChange,
    apply_lifecycle_event,
    decide_plan_change,
    refuse_cancel,
    refuse_resume,
    refuse_second_checkout,
    subscription_after_change,
    subscription_after_snapshot,
    subscription_before_change,
)
from domain.tenants import Tenant
from tests.unit.conftest import make_tenant

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)
NEXT_END = datetime(2026, 5, 1, tzinfo=UTC)
DOWNGRADE = PlanChange(ChangeKind.DOWNGRADE, TierId("starter"), "price_starter", False, END)
UPGRADE = PlanChange(ChangeKind.UPGRADE, TierId("premium"), "price_premium", True, None)


@pytest.fixture
def book(catalog: Catalog) -> PriceBook:
    return build_price_book(catalog, (("price_starter", "starter"), ("price_premium", "premium")))


def subscribed(tier: str = "premium") -> Tenant:
    return make_tenant("t-7", tier=tier, stripe_customer_id="cus_1", stripe_subscription_id="sub_1")


def record(subscription_id: str = "sub_1", **changes: Any) -> Subscription:
    return attrs.evolve(Subscription(TenantId("t-7"), subscription_id, START, END), **changes)


def snapshot(subscription_id: str = "sub_1", **changes: Any) -> SubscriptionSnapshot:
    base = SubscriptionSnapshot(subscription_id, "price_starter", "active", END, NEXT_END, True)
    return attrs.evolve(base, **changes)


# --- decisions without a record --------------------------------------------------------------


def test_a_downgrade_without_a_record_waits_for_an_unknown_period_end(
    catalog: Catalog, book: PriceBook
) -> None:
    change = decide_plan_change(catalog, book, subscribed("premium"), None, "starter")
    assert (change.kind, change.tier, change.applies_at) == (ChangeKind.DOWNGRADE, "starter", None)


def test_asking_for_the_tier_in_force_without_a_record_is_a_conflict(
    catalog: Catalog, book: PriceBook
) -> None:
    with pytest.raises(Conflict, match="already on the Premium plan"):
        decide_plan_change(catalog, book, subscribed("premium"), None, "premium")


def test_a_return_names_the_tier_in_force(catalog: Catalog, book: PriceBook) -> None:
    waiting = record(pending_tier=TierId("starter"), pending_from=END)
    change = decide_plan_change(catalog, book, subscribed("premium"), waiting, "premium")
    assert (change.kind, change.tier) == (ChangeKind.RETURN, "premium")


def test_a_tier_without_a_price_is_refused_in_words_naming_it(catalog: Catalog) -> None:
    only_starter = build_price_book(catalog, (("price_starter", "starter"),))
    with pytest.raises(ValidationError) as raised:
        decide_plan_change(catalog, only_starter, subscribed("starter"), None, "premium")
    assert raised.value.field == "tier"
    assert raised.value.detail == "tier 'premium' is not for sale: no price is configured for it"


# --- the record while the provider is asked ---------------------------------------------------


def test_the_record_before_a_downgrade_keeps_the_known_period_and_waits() -> None:
    before = subscription_before_change(subscribed(), "sub_1", record(), DOWNGRADE)
    assert before == record(pending_tier=TierId("starter"), pending_from=END)


def test_the_record_before_a_change_of_another_subscription_starts_afresh() -> None:
    tenant = subscribed()
    before = subscription_before_change(tenant, "sub_2", record("sub_1"), DOWNGRADE)
    assert before == Subscription(
        tenant.id, "sub_2", pending_tier=TierId("starter"), pending_from=END
    )


def test_the_record_before_a_first_change_is_built_for_the_tenant() -> None:
    before = subscription_before_change(subscribed(), "sub_1", None, UPGRADE)
    assert before == Subscription(TenantId("t-7"), "sub_1")


def test_the_record_before_an_upgrade_drops_a_waiting_downgrade() -> None:
    waiting = record(pending_tier=TierId("starter"), pending_from=END)
    assert subscription_before_change(subscribed(), "sub_1", waiting, UPGRADE) == record()


# --- the record after the provider accepted ----------------------------------------------------


def test_after_a_downgrade_it_waits_from_the_period_end_the_provider_reports() -> None:
    after = subscription_after_change(subscribed(), DOWNGRADE, snapshot())
    assert after == Subscription(
        TenantId("t-7"), "sub_1", END, NEXT_END, True, TierId("starter"), NEXT_END
    )


def test_after_a_downgrade_without_a_reported_period_it_waits_from_the_decided_end() -> None:
    after = subscription_after_change(subscribed(), DOWNGRADE, snapshot(current_period_end=None))
    assert (after.pending_tier, after.pending_from) == ("starter", END)


def test_after_an_upgrade_nothing_waits() -> None:
    after = subscription_after_change(subscribed(), UPGRADE, snapshot())
    assert after == Subscription(TenantId("t-7"), "sub_1", END, NEXT_END, True)


def test_after_a_cancel_the_reported_period_and_flag_are_kept_with_the_waiting_downgrade() -> None:
    waiting = record(pending_tier=TierId("starter"), pending_from=END)
    after = subscription_after_snapshot(subscribed(), waiting, snapshot())
    assert after == Subscription(
        TenantId("t-7"), "sub_1", END, NEXT_END, True, TierId("starter"), END
    )


def test_a_downgrade_waiting_on_another_subscription_is_not_carried_over() -> None:
    waiting = record("sub_old", pending_tier=TierId("starter"), pending_from=END)
    after = subscription_after_snapshot(subscribed(), waiting, snapshot("sub_1"))
    assert (after.pending_tier, after.pending_from) == (None, None)
    assert after.tenant_id == "t-7"


# --- cancel and resume refusals ----------------------------------------------------------------


def test_resuming_a_subscription_not_set_to_end_is_refused_in_words() -> None:
    with pytest.raises(Conflict) as raised:
        refuse_resume(subscribed(), record())
    assert raised.value.detail == (
        "your subscription is not set to end, so there is nothing to resume"
    )


def test_cancelling_twice_is_refused_in_words() -> None:
    with pytest.raises(Conflict) as raised:
        refuse_cancel(subscribed(), record(cancel_at_period_end=True))
    assert raised.value.detail == "your subscription already ends at the end of the period"


# --- a waiting downgrade without a start --------------------------------------------------------


def test_a_waiting_downgrade_with_no_start_applies_with_the_next_cheaper_price(
    catalog: Catalog, book: PriceBook
) -> None:
    """A downgrade recorded without the period it waits for is due at the first event."""
    waiting = record(pending_tier=TierId("starter"), pending_from=None)
    event = SubscriptionEvent(
        "evt_1", "customer.subscription.updated", EventKind.SUBSCRIPTION_UPDATED, T0,
        customer_id="cus_1", subscription_id="sub_1", price_id="price_starter",
        provider_status="active", tenant_id=TenantId("t-7"), current_period_start=START,
        current_period_end=START + timedelta(days=31),
    )  # fmt: skip
    decided = apply_lifecycle_event(catalog, book, subscribed("premium"), waiting, event)
    assert decided.decision.outcome is Outcome.APPLIED
    assert decided.decision.tenant.tier == "starter"


# --- life-cycle events and the record -----------------------------------------------------------


def event(kind: EventKind = EventKind.SUBSCRIPTION_UPDATED, **fields: Any) -> SubscriptionEvent:
    base: dict[str, Any] = {
        "customer_id": "cus_1", "subscription_id": "sub_1", "price_id": "price_starter",
        "provider_status": "active", "tenant_id": TenantId("t-7"), "current_period_start": START,
        "current_period_end": END,
    }  # fmt: skip
    return SubscriptionEvent("evt_1", "customer.subscription.x", kind, T0, **(base | fields))


def test_an_event_naming_no_subscription_leaves_the_record_as_it_was(
    catalog: Catalog, book: PriceBook
) -> None:
    kept = record(pending_tier=TierId("starter"), pending_from=END)
    decided = apply_lifecycle_event(
        catalog, book, subscribed("premium"), kept, event(subscription_id=None)
    )
    assert decided.subscription == kept
    assert decided.decision.outcome is Outcome.APPLIED
    assert decided.decision.tenant.tier == "starter"


def test_an_event_without_a_price_keeps_the_downgrade_waiting(
    catalog: Catalog, book: PriceBook
) -> None:
    kept = record(pending_tier=TierId("starter"), pending_from=END)
    decided = apply_lifecycle_event(
        catalog, book, subscribed("premium"), kept, event(price_id=None)
    )
    assert decided.subscription is not None
    assert (decided.subscription.pending_tier, decided.subscription.pending_from) == (
        "starter", END,
    )  # fmt: skip


def test_the_cheaper_price_inside_the_period_keeps_the_chosen_model_too(
    catalog: Catalog, book: PriceBook
) -> None:
    tenant = attrs.evolve(subscribed("premium"), model_preference="anthropic/claude-opus-4-6")
    kept = record(pending_tier=TierId("starter"), pending_from=END)
    decided = apply_lifecycle_event(catalog, book, tenant, kept, event())
    assert decided.decision.tenant.tier == "premium"
    assert decided.decision.tenant.model_preference == "anthropic/claude-opus-4-6"
    assert decided.decision.tier_changed is False


def test_a_price_changed_elsewhere_drops_the_waiting_tier_and_its_start(
    catalog: Catalog, book: PriceBook
) -> None:
    tenant = subscribed("starter")
    kept = record(pending_tier=TierId("byok"), pending_from=END)
    decided = apply_lifecycle_event(catalog, book, tenant, kept, event(price_id="price_premium"))
    assert decided.subscription is not None
    assert (decided.subscription.pending_tier, decided.subscription.pending_from) == (None, None)


def test_an_event_of_a_new_subscription_starts_a_new_record(
    catalog: Catalog, book: PriceBook
) -> None:
    old = record("sub_old", pending_tier=TierId("starter"), pending_from=END)
    decided = apply_lifecycle_event(
        catalog, book, subscribed("premium"), old, event(subscription_id="sub_1")
    )
    assert decided.subscription == Subscription(TenantId("t-7"), "sub_1", START, END)


def test_the_end_of_a_subscription_clears_its_flag_and_what_waited(
    catalog: Catalog, book: PriceBook
) -> None:
    kept = record(pending_tier=TierId("starter"), pending_from=END)
    ended = event(EventKind.SUBSCRIPTION_DELETED, cancel_at_period_end=True,
                  provider_status="canceled")  # fmt: skip
    decided = apply_lifecycle_event(catalog, book, subscribed("premium"), kept, ended)
    assert decided.subscription == Subscription(TenantId("t-7"), "sub_1", START, END)


def test_the_end_of_a_subscription_at_the_tiers_own_price_clears_what_waited(
    catalog: Catalog, book: PriceBook
) -> None:
    kept = record(pending_tier=TierId("starter"), pending_from=END)
    ended = event(EventKind.SUBSCRIPTION_DELETED, price_id="price_premium",
                  provider_status="canceled")  # fmt: skip
    decided = apply_lifecycle_event(catalog, book, subscribed("premium"), kept, ended)
    assert decided.subscription == Subscription(TenantId("t-7"), "sub_1", START, END)


def test_a_second_checkout_is_refused_in_words() -> None:
    with pytest.raises(Conflict) as raised:
        refuse_second_checkout(subscribed())
    assert raised.value.detail == (
        "you already have a subscription; change its plan with "
        "POST /api/v1/billing/change-plan instead of starting a new checkout"
    )
