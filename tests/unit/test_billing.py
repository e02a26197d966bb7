"""Billing rules and the billing use case: price book, provider statuses, subscription events
applied once and in order, checkout through the gateway port, and model cost."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest

from domain.billing import (
    EventKind,
    Outcome,
    PriceBook,
    SubscriptionEvent,
    anchor_day,
    apply_event,
    build_price_book,
    model_cost_usd,
    record_cost_usd,
    subscription_status,
    usd_to_cents,
)
from domain.catalog import Catalog
from domain.errors import NotFound, ValidationError
from domain.ids import MessageId, TenantId, TierId
from domain.metering import Credential, UsageRecord
from domain.openclaw_model import TenantConfig
from domain.tenants import SubscriptionStatus, Tenant, may_use_service
from domain.use_cases.billing import Billing
from tests.fakes import (
    FakeBillingGateway,
    InMemoryConfigWriter,
    InMemoryPaidInvoiceRepository,
    InMemoryProcessedEventRepository,
    InMemorySubscriptionRepository,
)
from tests.unit.conftest import World, make_tenant

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
PRICES = (
    ("price_starter", "starter"),
    ("price_premium", "premium"),
    ("price_byok", "byok"),
    ("price_basic_2024", "basic"),
    ("price_plus_2024", "plus"),
)


@pytest.fixture
def book(catalog: Catalog) -> PriceBook:
    return build_price_book(catalog, PRICES)


def event(
    kind: EventKind = EventKind.SUBSCRIPTION_UPDATED,
    at: datetime = T0,
    event_id: str = "evt_1",
    **fields: Any,
) -> SubscriptionEvent:
    defaults: dict[str, Any] = {
        "customer_id": "cus_1",
        "subscription_id": "sub_1",
        "tenant_id": TenantId("t-1"),
    }
    if kind in (EventKind.SUBSCRIPTION_CREATED, EventKind.SUBSCRIPTION_UPDATED):
        defaults |= {"price_id": "price_starter", "provider_status": "active"}
    return SubscriptionEvent(event_id, f"stripe.{kind.value}", kind, at, **(defaults | fields))


def subscribed(tier: str = "starter", at: datetime = T0, **changes: Any) -> Tenant:
    """A tenant whose subscription sub_1 was last changed at ``at``."""
    fields: dict[str, Any] = {
        "stripe_customer_id": "cus_1",
        "stripe_subscription_id": "sub_1",
        "subscription_updated_at": at,
    }
    return make_tenant(tier=tier, **(fields | changes))


# --- price book ----------------------------------------------------------------------------


def test_each_configured_price_sells_its_tier(book: PriceBook) -> None:
    assert book.tier_for("price_starter") == "starter"
    assert book.tier_for("price_premium") == "premium"
    assert book.tier_for("price_byok") == "byok"


def test_legacy_price_ids_sell_the_current_tiers(book: PriceBook) -> None:
    assert book.tier_for("price_basic_2024") == "starter"
    assert book.tier_for("price_plus_2024") == "premium"


def test_checkout_sells_the_first_price_named_for_a_tier_not_the_legacy_one(
    book: PriceBook,
) -> None:
    assert book.price_for(TierId("starter")) == "price_starter"
    assert book.price_for(TierId("premium")) == "price_premium"


def test_an_unknown_price_or_none_sells_no_tier(book: PriceBook) -> None:
    assert book.tier_for("price_nobody_configured") is None
    assert book.tier_for(None) is None


def test_a_tier_without_a_price_is_not_for_sale(catalog: Catalog) -> None:
    assert build_price_book(catalog, [("price_s", "starter")]).price_for(TierId("byok")) is None


def test_one_price_for_two_tiers_is_refused(catalog: Catalog) -> None:
    with pytest.raises(ValidationError) as raised:
        build_price_book(catalog, [("price_x", "starter"), ("price_x", "premium")])
    assert raised.value.field == "price"
    assert "'price_x'" in raised.value.detail
    assert "'starter'" in raised.value.detail and "'premium'" in raised.value.detail


def test_a_price_for_an_unknown_tier_is_refused(catalog: Catalog) -> None:
    with pytest.raises(ValidationError) as raised:
        build_price_book(catalog, [("price_x", "gold")])
    assert raised.value.field == "tier"


def test_an_empty_price_id_is_refused(catalog: Catalog) -> None:
    with pytest.raises(ValidationError) as raised:
        build_price_book(catalog, [("  ", "starter")])
    assert raised.value.field == "price"
    assert "empty price id" in raised.value.detail
    assert "starter" in raised.value.detail


# --- statuses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "ours"),
    [
        ("active", SubscriptionStatus.ACTIVE),
        ("trialing", SubscriptionStatus.ACTIVE),
        ("past_due", SubscriptionStatus.PAST_DUE),
        ("unpaid", SubscriptionStatus.INCOMPLETE),
        ("canceled", SubscriptionStatus.CANCELED),
        ("incomplete_expired", SubscriptionStatus.CANCELED),
        ("incomplete", SubscriptionStatus.INCOMPLETE),
        ("paused", SubscriptionStatus.INCOMPLETE),
        ("something_new", None),
        (None, None),
    ],
)
def test_provider_statuses_map_onto_ours(
    provider: str | None, ours: SubscriptionStatus | None
) -> None:
    assert subscription_status(provider) is ours


# --- subscription events -------------------------------------------------------------------


def test_a_subscription_created_event_grants_its_tier_and_links_the_subscription(
    catalog: Catalog, book: PriceBook
) -> None:
    tenant = make_tenant(status=SubscriptionStatus.INCOMPLETE)
    decided = apply_event(
        catalog, book, tenant, event(EventKind.SUBSCRIPTION_CREATED, price_id="price_premium")
    )
    assert decided.outcome is Outcome.APPLIED
    assert decided.tier_changed
    assert decided.tenant.tier == "premium"
    assert decided.tenant.status is SubscriptionStatus.ACTIVE
    assert decided.tenant.stripe_customer_id == "cus_1"
    assert decided.tenant.stripe_subscription_id == "sub_1"
    assert decided.tenant.subscription_updated_at == T0


def test_a_legacy_price_on_a_subscription_gives_the_current_tier(
    catalog: Catalog, book: PriceBook
) -> None:
    decided = apply_event(
        catalog, book, subscribed(), event(price_id="price_plus_2024", at=T0 + timedelta(hours=1))
    )
    assert decided.tenant.tier == "premium"
    assert decided.tier_changed


def test_the_same_price_again_is_no_tier_change(catalog: Catalog, book: PriceBook) -> None:
    decided = apply_event(catalog, book, subscribed(), event(at=T0 + timedelta(hours=1)))
    assert decided.outcome is Outcome.APPLIED
    assert not decided.tier_changed
    assert decided.tenant.subscription_updated_at == T0 + timedelta(hours=1)


def test_an_unknown_price_is_refused_and_changes_nothing(catalog: Catalog, book: PriceBook) -> None:
    tenant = subscribed()
    decided = apply_event(
        catalog, book, tenant, event(price_id="price_typo", provider_status="canceled",
                                     at=T0 + timedelta(hours=1))
    )  # fmt: skip
    assert decided.outcome is Outcome.UNKNOWN_PRICE
    assert decided.tenant == tenant
    assert not decided.tier_changed


def test_a_downgrade_drops_a_model_choice_the_new_tier_cannot_serve(
    catalog: Catalog, book: PriceBook
) -> None:
    premium = catalog.tier("premium")
    tenant = subscribed("premium", model_preference=premium.selectable_models[-1])
    decided = apply_event(catalog, book, tenant, event(at=T0 + timedelta(days=1)))
    assert decided.tenant.tier == "starter"
    assert decided.tenant.model_preference is None


def test_deleted_cancels_the_subscription(catalog: Catalog, book: PriceBook) -> None:
    decided = apply_event(
        catalog, book, subscribed(),
        event(EventKind.SUBSCRIPTION_DELETED, provider_status="canceled", price_id="price_starter",
              at=T0 + timedelta(days=1)),
    )  # fmt: skip
    assert decided.tenant.status is SubscriptionStatus.CANCELED
    assert decided.tenant.tier == "starter"


def test_an_older_updated_after_deleted_does_not_revive_the_subscription(
    catalog: Catalog, book: PriceBook
) -> None:
    deleted = event(EventKind.SUBSCRIPTION_DELETED, at=T0 + timedelta(minutes=5), event_id="e2")
    late_update = event(price_id="price_premium", at=T0 + timedelta(minutes=1), event_id="e1")
    after_delete = apply_event(catalog, book, subscribed(), deleted).tenant
    decided = apply_event(catalog, book, after_delete, late_update)
    assert decided.outcome is Outcome.STALE
    assert decided.tenant.status is SubscriptionStatus.CANCELED
    assert decided.tenant.tier == "starter"


def test_out_of_order_updates_keep_the_newest_tier(catalog: Catalog, book: PriceBook) -> None:
    newer = event(price_id="price_premium", at=T0 + timedelta(minutes=10), event_id="e2")
    older = event(price_id="price_byok", at=T0 + timedelta(minutes=5), event_id="e1")
    tenant = apply_event(catalog, book, subscribed(), newer).tenant
    decided = apply_event(catalog, book, tenant, older)
    assert decided.outcome is Outcome.STALE
    assert decided.tenant.tier == "premium"


def test_at_the_same_instant_a_created_does_not_undo_a_cancellation(
    catalog: Catalog, book: PriceBook
) -> None:
    canceled = subscribed(status=SubscriptionStatus.CANCELED)
    decided = apply_event(catalog, book, canceled, event(EventKind.SUBSCRIPTION_CREATED))
    assert decided.outcome is Outcome.STALE
    assert decided.tenant == canceled


def test_at_the_same_instant_an_update_that_moves_forward_applies(
    catalog: Catalog, book: PriceBook
) -> None:
    tenant = subscribed(status=SubscriptionStatus.INCOMPLETE)
    decided = apply_event(catalog, book, tenant, event())
    assert decided.outcome is Outcome.APPLIED
    assert decided.tenant.status is SubscriptionStatus.ACTIVE


def test_a_new_subscription_replaces_a_canceled_one(catalog: Catalog, book: PriceBook) -> None:
    canceled = subscribed(status=SubscriptionStatus.CANCELED)
    decided = apply_event(
        catalog, book, canceled,
        event(EventKind.SUBSCRIPTION_CREATED, subscription_id="sub_2", price_id="price_premium",
              at=T0 + timedelta(days=2)),
    )  # fmt: skip
    assert decided.tenant.stripe_subscription_id == "sub_2"
    assert decided.tenant.status is SubscriptionStatus.ACTIVE
    assert decided.tenant.tier == "premium"


def test_a_new_subscription_in_the_second_of_the_cancellation_applies(
    catalog: Catalog, book: PriceBook
) -> None:
    canceled = subscribed(status=SubscriptionStatus.CANCELED)
    decided = apply_event(
        catalog, book, canceled, event(EventKind.SUBSCRIPTION_CREATED, subscription_id="sub_2")
    )
    assert decided.outcome is Outcome.APPLIED
    assert decided.tenant.status is SubscriptionStatus.ACTIVE


def test_a_subscription_event_without_a_price_keeps_the_tier(
    catalog: Catalog, book: PriceBook
) -> None:
    decided = apply_event(
        catalog, book, subscribed("premium"),
        event(price_id=None, provider_status="past_due", at=T0 + timedelta(hours=1)),
    )  # fmt: skip
    assert (decided.tenant.tier, decided.tier_changed) == ("premium", False)
    assert decided.tenant.status is SubscriptionStatus.PAST_DUE


def test_an_invoice_that_names_no_subscription_applies_to_the_current_one(
    catalog: Catalog, book: PriceBook
) -> None:
    decided = apply_event(
        catalog, book, subscribed(),
        event(EventKind.INVOICE_PAYMENT_FAILED, subscription_id=None, at=T0 + timedelta(days=1)),
    )  # fmt: skip
    assert decided.tenant.status is SubscriptionStatus.PAST_DUE
    assert decided.tenant.stripe_subscription_id == "sub_1"


def test_deleting_a_replaced_subscription_leaves_the_current_one(
    catalog: Catalog, book: PriceBook
) -> None:
    tenant = subscribed(stripe_subscription_id="sub_2")
    decided = apply_event(
        catalog, book, tenant,
        event(EventKind.SUBSCRIPTION_DELETED, subscription_id="sub_1", at=T0 + timedelta(days=1)),
    )  # fmt: skip
    assert decided.outcome is Outcome.OTHER_SUBSCRIPTION
    assert decided.tenant.status is SubscriptionStatus.ACTIVE


def test_a_past_due_subscription_starts_the_grace_clock_at_the_event(
    catalog: Catalog, book: PriceBook
) -> None:
    at = T0 + timedelta(days=30)
    decided = apply_event(catalog, book, subscribed(), event(provider_status="past_due", at=at))
    assert decided.tenant.status is SubscriptionStatus.PAST_DUE
    assert decided.tenant.past_due_since == at


def test_an_unpaid_subscription_admits_nothing_until_an_invoice_is_paid(
    catalog: Catalog, book: PriceBook
) -> None:
    """Stripe marks a subscription unpaid when it stops retrying after the grace period."""
    at = T0 + timedelta(days=45)
    past_due = attrs.evolve(subscribed(), status=SubscriptionStatus.PAST_DUE,
                            past_due_since=T0 + timedelta(days=30))  # fmt: skip
    decided = apply_event(catalog, book, past_due, event(provider_status="unpaid", at=at))
    assert decided.tenant.status is SubscriptionStatus.INCOMPLETE
    assert not may_use_service(decided.tenant, at, catalog.past_due_grace_days)
    paid = event(EventKind.INVOICE_PAID, at=at + timedelta(hours=1), event_id="evt_paid")
    revived = apply_event(catalog, book, decided.tenant, paid)
    assert revived.tenant.status is SubscriptionStatus.ACTIVE


def test_at_the_same_instant_a_move_between_equal_ranks_applies(
    catalog: Catalog, book: PriceBook
) -> None:
    decided = apply_event(catalog, book, subscribed(), event(EventKind.INVOICE_PAYMENT_FAILED))
    assert decided.outcome is Outcome.APPLIED
    assert decided.tenant.status is SubscriptionStatus.PAST_DUE


def test_an_unknown_provider_status_leaves_the_status(catalog: Catalog, book: PriceBook) -> None:
    decided = apply_event(
        catalog, book, subscribed(), event(provider_status="mystery", at=T0 + timedelta(hours=1))
    )
    assert decided.tenant.status is SubscriptionStatus.ACTIVE


def test_the_billing_anchor_day_follows_the_subscription_in_the_tenant_zone(
    catalog: Catalog, book: PriceBook
) -> None:
    tenant = make_tenant(timezone="Pacific/Auckland", anchor=1)
    anchor = datetime(2026, 3, 30, 13, 0, tzinfo=UTC)  # already the 31st in Auckland
    decided = apply_event(catalog, book, tenant, event(billing_anchor=anchor))
    assert decided.tenant.billing_anchor_day == 31
    assert anchor_day(anchor, "UTC") == 30


def test_deletion_keeps_the_anchor_day(catalog: Catalog, book: PriceBook) -> None:
    tenant = subscribed(billing_anchor_day=12)
    decided = apply_event(
        catalog, book, tenant,
        event(EventKind.SUBSCRIPTION_DELETED, billing_anchor=datetime(2026, 3, 20, tzinfo=UTC),
              at=T0 + timedelta(days=1)),
    )  # fmt: skip
    assert decided.tenant.billing_anchor_day == 12


# --- invoices --------------------------------------------------------------------------------


def test_a_failed_payment_makes_the_subscription_past_due_and_starts_the_grace_clock(
    catalog: Catalog, book: PriceBook
) -> None:
    failed_at = T0 + timedelta(days=30)
    decided = apply_event(
        catalog, book, subscribed(), event(EventKind.INVOICE_PAYMENT_FAILED, at=failed_at)
    )
    tenant = decided.tenant
    assert tenant.status is SubscriptionStatus.PAST_DUE
    assert tenant.past_due_since == failed_at
    grace = catalog.past_due_grace_days
    assert may_use_service(tenant, failed_at + timedelta(days=grace) - timedelta(seconds=1), grace)
    assert not may_use_service(tenant, failed_at + timedelta(days=grace), grace)


def test_a_second_failed_payment_keeps_the_grace_clock(catalog: Catalog, book: PriceBook) -> None:
    first = T0 + timedelta(days=30)
    tenant = apply_event(
        catalog, book, subscribed(), event(EventKind.INVOICE_PAYMENT_FAILED, at=first)
    ).tenant
    again = apply_event(
        catalog, book, tenant,
        event(EventKind.INVOICE_PAYMENT_FAILED, at=first + timedelta(days=1), event_id="e2"),
    )  # fmt: skip
    assert again.tenant.past_due_since == first


def test_a_paid_invoice_recovers_a_past_due_subscription(catalog: Catalog, book: PriceBook) -> None:
    failed_at = T0 + timedelta(days=30)
    past_due = apply_event(
        catalog, book, subscribed(), event(EventKind.INVOICE_PAYMENT_FAILED, at=failed_at)
    ).tenant
    decided = apply_event(
        catalog, book, past_due,
        event(EventKind.INVOICE_PAID, at=failed_at + timedelta(days=1), event_id="e2"),
    )  # fmt: skip
    assert decided.tenant.status is SubscriptionStatus.ACTIVE
    assert decided.tenant.past_due_since is None


def test_a_paid_first_invoice_activates_an_incomplete_subscription(
    catalog: Catalog, book: PriceBook
) -> None:
    tenant = make_tenant(status=SubscriptionStatus.INCOMPLETE)
    decided = apply_event(catalog, book, tenant, event(EventKind.INVOICE_PAID))
    assert decided.tenant.status is SubscriptionStatus.ACTIVE
    assert decided.tenant.stripe_customer_id == "cus_1"
    assert decided.tenant.stripe_subscription_id == "sub_1"
    assert decided.tenant.subscription_updated_at == T0


def test_an_invoice_keeps_the_customer_already_linked(catalog: Catalog, book: PriceBook) -> None:
    decided = apply_event(
        catalog, book, subscribed(),
        event(EventKind.INVOICE_PAID, customer_id="cus_other", at=T0 + timedelta(hours=1)),
    )  # fmt: skip
    assert decided.tenant.stripe_customer_id == "cus_1"
    assert decided.tenant.subscription_updated_at == T0 + timedelta(hours=1)


def test_a_failed_first_payment_grants_no_grace(catalog: Catalog, book: PriceBook) -> None:
    tenant = make_tenant(status=SubscriptionStatus.INCOMPLETE)
    decided = apply_event(catalog, book, tenant, event(EventKind.INVOICE_PAYMENT_FAILED))
    assert decided.tenant.status is SubscriptionStatus.INCOMPLETE
    assert decided.tenant.past_due_since is None


def test_a_paid_invoice_does_not_revive_a_canceled_subscription(
    catalog: Catalog, book: PriceBook
) -> None:
    tenant = subscribed(status=SubscriptionStatus.CANCELED)
    decided = apply_event(
        catalog, book, tenant, event(EventKind.INVOICE_PAID, at=T0 + timedelta(hours=1))
    )
    assert decided.tenant.status is SubscriptionStatus.CANCELED


def test_a_late_failed_payment_does_not_undo_a_later_recovery(
    catalog: Catalog, book: PriceBook
) -> None:
    tenant = subscribed(at=T0 + timedelta(days=31))
    decided = apply_event(
        catalog, book, tenant, event(EventKind.INVOICE_PAYMENT_FAILED, at=T0 + timedelta(days=30))
    )
    assert decided.outcome is Outcome.STALE
    assert decided.tenant.status is SubscriptionStatus.ACTIVE


def test_an_invoice_of_a_replaced_subscription_changes_nothing(
    catalog: Catalog, book: PriceBook
) -> None:
    tenant = subscribed(stripe_subscription_id="sub_2")
    decided = apply_event(
        catalog, book, tenant,
        event(EventKind.INVOICE_PAYMENT_FAILED, subscription_id="sub_1",
              at=T0 + timedelta(days=1)),
    )  # fmt: skip
    assert decided.outcome is Outcome.OTHER_SUBSCRIPTION
    assert decided.tenant == tenant


# --- checkout completed ---------------------------------------------------------------------


def test_a_paid_checkout_links_the_customer_and_grants_the_tier_sold(
    catalog: Catalog, book: PriceBook
) -> None:
    tenant = make_tenant(status=SubscriptionStatus.INCOMPLETE)
    decided = apply_event(
        catalog, book, tenant,
        event(EventKind.CHECKOUT_COMPLETED, tier_hint="plus", provider_status="active"),
    )  # fmt: skip
    assert decided.outcome is Outcome.APPLIED
    assert decided.tenant.stripe_customer_id == "cus_1"
    assert decided.tenant.stripe_subscription_id == "sub_1"
    assert decided.tenant.tier == "premium"
    assert decided.tier_changed
    assert decided.tenant.status is SubscriptionStatus.ACTIVE
    assert decided.tenant.subscription_updated_at is None


def test_an_unpaid_checkout_only_links_the_customer(catalog: Catalog, book: PriceBook) -> None:
    tenant = make_tenant(status=SubscriptionStatus.INCOMPLETE)
    decided = apply_event(
        catalog, book, tenant, event(EventKind.CHECKOUT_COMPLETED, tier_hint="gold")
    )
    assert decided.tenant.stripe_customer_id == "cus_1"
    assert decided.tenant.tier == "starter"
    assert decided.tenant.status is SubscriptionStatus.INCOMPLETE
    assert decided.tier_changed is False


def test_a_checkout_after_subscription_events_defers_to_them(
    catalog: Catalog, book: PriceBook
) -> None:
    tenant = subscribed("premium", stripe_customer_id=None, status=SubscriptionStatus.PAST_DUE,
                        past_due_since=T0)  # fmt: skip
    decided = apply_event(
        catalog, book, tenant,
        event(EventKind.CHECKOUT_COMPLETED, subscription_id="sub_old", tier_hint="starter",
              provider_status="active", at=T0 + timedelta(hours=1)),
    )  # fmt: skip
    assert decided.tenant.stripe_customer_id == "cus_1"
    assert decided.tenant.stripe_subscription_id == "sub_1"
    assert decided.tenant.tier == "premium"
    assert decided.tenant.status is SubscriptionStatus.PAST_DUE
    assert decided.tier_changed is False


# --- money ----------------------------------------------------------------------------------


def test_model_cost_is_tokens_at_the_catalog_rates(catalog: Catalog) -> None:
    model = catalog.models[0]
    rates = model.rates
    expected = (
        rates.usd_per_mtok_input * 2_000_000
        + rates.usd_per_mtok_output * 1_000_000
        + rates.usd_per_mtok_cache_read * 500_000
    ) / Decimal(1_000_000)
    assert model_cost_usd(rates, 2_000_000, 1_000_000, 500_000) == expected
    assert model_cost_usd(rates, 0, 0, 0) == 0


def test_usd_round_to_whole_cents_half_up() -> None:
    assert usd_to_cents(Decimal("0.004")) == 0
    assert usd_to_cents(Decimal("0.005")) == 1
    assert usd_to_cents(Decimal("12.345")) == 1235
    assert usd_to_cents(Decimal(7)) == 700


def usage(model: str, credential: Credential, tokens: int = 1_000_000) -> UsageRecord:
    return UsageRecord(TenantId("t-1"), MessageId("m"), model, credential, tokens, tokens, 0,
                       tokens, T0)  # fmt: skip


def test_own_key_tokens_cost_the_platform_nothing(catalog: Catalog) -> None:
    model = catalog.models[0].ref
    assert record_cost_usd(catalog, usage(model, Credential.TENANT)) == 0
    assert record_cost_usd(catalog, usage("openai/gpt-4.1", Credential.TENANT)) == 0


def test_platform_tokens_cost_the_catalog_rates(catalog: Catalog) -> None:
    model = catalog.models[0]
    rates = model.rates
    cost = record_cost_usd(catalog, usage(model.ref, Credential.PLATFORM))
    assert cost == rates.usd_per_mtok_input + rates.usd_per_mtok_output


def test_a_platform_model_missing_from_the_catalog_has_no_price(catalog: Catalog) -> None:
    assert record_cost_usd(catalog, usage("retired/model", Credential.PLATFORM)) is None


# --- the use case ----------------------------------------------------------------------------


@attrs.define
class BillingWorld:
    world: World
    book: PriceBook
    gateway: FakeBillingGateway = attrs.Factory(FakeBillingGateway)
    events: InMemoryProcessedEventRepository = attrs.Factory(InMemoryProcessedEventRepository)
    public_url: str = "https://tk.example/"
    subscriptions: InMemorySubscriptionRepository = attrs.Factory(
        lambda self: self.world.subscriptions, takes_self=True
    )
    invoices: InMemoryPaidInvoiceRepository = attrs.Factory(InMemoryPaidInvoiceRepository)

    @property
    def billing(self) -> Billing:
        w = self.world
        return Billing(w.catalog, self.book, w.tenant_repo, self.events, self.gateway, w.configs,
                       w.clock, self.public_url, subscriptions=self.subscriptions,
                       invoices=self.invoices, unit_of_work=w.unit_of_work)  # fmt: skip

    async def tenant(self, tenant_id: str = "t-1") -> Tenant:
        tenant = await self.world.tenant_repo.get(TenantId(tenant_id))
        assert tenant is not None
        return tenant


@pytest.fixture
async def bw(world: World, book: PriceBook) -> BillingWorld:
    await world.add_tenant("t-1", status=SubscriptionStatus.INCOMPLETE)
    return BillingWorld(world, book)


async def test_checkout_sells_the_tier_at_its_price_and_returns_to_the_plan_page(
    bw: BillingWorld,
) -> None:
    session = await bw.billing.checkout(TenantId("t-1"), "Premium")
    assert session.url.startswith("https://checkout.example/")
    assert bw.gateway.sessions == [
        {"tenant": "t-1", "price": "price_premium", "tier": "premium", "customer": "cus_fake_1"}
    ]


async def test_checkout_accepts_a_legacy_tier_id(bw: BillingWorld) -> None:
    await bw.billing.checkout(TenantId("t-1"), "basic")
    assert bw.gateway.sessions[0]["price"] == "price_starter"
    assert bw.gateway.sessions[0]["tier"] == "starter"


@pytest.mark.parametrize(
    ("public_url", "base"),
    [("https://tk.example/", "https://tk.example"),
     ("https://example.com/tierkeeperX//", "https://example.com/tierkeeperX")],
)  # fmt: skip
async def test_checkout_urls_come_from_the_public_url(
    bw: BillingWorld, public_url: str, base: str
) -> None:
    """Only trailing slashes are dropped from the public URL before the plan page's path."""
    bw.public_url = public_url
    seen: list[tuple[str, str]] = []

    class Recording(FakeBillingGateway):
        async def create_checkout(self, tenant: Tenant, price_id: str, tier: str,
                                  success_url: str, cancel_url: str) -> Any:  # fmt: skip
            seen.append((success_url, cancel_url))
            return await super().create_checkout(tenant, price_id, tier, success_url, cancel_url)

    bw.gateway = Recording()
    await bw.billing.checkout(TenantId("t-1"), "starter")
    assert seen == [(
        f"{base}/plan?checkout=success&session_id={{CHECKOUT_SESSION_ID}}",
        f"{base}/plan?checkout=canceled",
    )]  # fmt: skip


async def test_checkout_for_an_unpriced_tier_is_refused(world: World, catalog: Catalog) -> None:
    await world.add_tenant("t-1")
    bw = BillingWorld(world, build_price_book(catalog, [("price_s", "starter")]))
    with pytest.raises(ValidationError) as raised:
        await bw.billing.checkout(TenantId("t-1"), "byok")
    assert raised.value.field == "tier"
    assert "'byok' is not for sale" in raised.value.detail
    assert bw.gateway.sessions == []


async def test_checkout_for_an_unknown_tenant_is_not_found(bw: BillingWorld) -> None:
    with pytest.raises(NotFound, match="'nobody'"):
        await bw.billing.checkout(TenantId("nobody"), "starter")


async def test_an_event_is_applied_saved_and_remembered(bw: BillingWorld) -> None:
    result = await bw.billing.handle_event(event(EventKind.SUBSCRIPTION_CREATED))
    assert (result.outcome, result.replayed, result.tenant_id) == ("applied", False, "t-1")
    tenant = await bw.tenant()
    assert tenant.status is SubscriptionStatus.ACTIVE
    assert result.tenant == tenant
    assert bw.events.events["evt_1"] == (
        "stripe.subscription_created", "applied", bw.world.clock.now(),
    )  # fmt: skip


async def test_a_replayed_event_changes_nothing(bw: BillingWorld) -> None:
    failed = event(EventKind.INVOICE_PAYMENT_FAILED, event_id="evt_fail", at=T0 + timedelta(1))
    await bw.billing.handle_event(event(EventKind.SUBSCRIPTION_CREATED))
    await bw.billing.handle_event(failed)
    await bw.billing.handle_event(event(EventKind.INVOICE_PAID, event_id="evt_paid",
                                        at=T0 + timedelta(2)))  # fmt: skip
    before = await bw.tenant()
    again = await bw.billing.handle_event(attrs.evolve(failed, occurred_at=T0 + timedelta(3)))
    assert (again.outcome, again.replayed, again.tenant_id) == ("applied", True, "t-1")
    assert await bw.tenant() == before


async def test_a_tier_change_rewrites_the_tenant_config(bw: BillingWorld) -> None:
    await bw.billing.handle_event(event(EventKind.SUBSCRIPTION_CREATED, price_id="price_premium"))
    written = bw.world.writer.written[TenantId("t-1")]
    assert written.route.refs()[0] == bw.world.catalog.tier("premium").primary_model


async def test_a_status_change_alone_writes_no_config(bw: BillingWorld) -> None:
    await bw.billing.handle_event(event(EventKind.INVOICE_PAID))
    assert bw.world.writer.writes == 0


async def test_an_unknown_price_is_stored_as_refused_and_logged(
    bw: BillingWorld, caplog: pytest.LogCaptureFixture
) -> None:
    result = await bw.billing.handle_event(event(price_id="price_typo"))
    assert result.outcome == "unknown_price"
    assert bw.events.events["evt_1"][1] == "unknown_price"
    assert (await bw.tenant()).status is SubscriptionStatus.INCOMPLETE
    (logged,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert logged.getMessage() == (
        "billing event evt_1 (stripe.subscription_updated) for tenant t-1 names price "
        "'price_typo', which sells no tier; not applied (configure TIERKEEPER_STRIPE_PRICE_*)"
    )


async def test_an_event_for_no_known_tenant_is_not_recorded_so_a_redelivery_can_apply_it(
    bw: BillingWorld, caplog: pytest.LogCaptureFixture
) -> None:
    early = event(EventKind.INVOICE_PAID, tenant_id=None, customer_id="cus_9")
    with caplog.at_level(logging.WARNING):
        result = await bw.billing.handle_event(early)
    message = caplog.records[-1].getMessage()
    for text in ("evt_1", "stripe.invoice_paid", "cus_9", "not recorded"):
        assert text in message
    assert (result.outcome, result.replayed, result.tenant_id) == ("unknown_tenant", False, None)
    assert bw.events.events == {}
    await bw.billing.handle_event(event(EventKind.CHECKOUT_COMPLETED, event_id="evt_co",
                                        customer_id="cus_9"))  # fmt: skip
    again = await bw.billing.handle_event(early)
    assert (again.outcome, again.tenant_id) == ("applied", "t-1")
    assert (await bw.tenant()).status is SubscriptionStatus.ACTIVE


async def test_the_warning_for_an_unknown_tenant_names_its_id_and_customer(
    bw: BillingWorld, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        await bw.billing.handle_event(
            event(EventKind.INVOICE_PAID, tenant_id=TenantId("ghost"), customer_id="cus_9")
        )
    (logged,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert logged.getMessage() == (
        "billing event evt_1 (stripe.invoice_paid) names no known tenant yet "
        "(tenant 'ghost', customer 'cus_9'); not recorded, so a redelivery can still apply it"
    )


async def test_events_without_a_tenant_id_find_the_tenant_by_customer(bw: BillingWorld) -> None:
    await bw.billing.handle_event(event(EventKind.CHECKOUT_COMPLETED, customer_id="cus_9"))
    result = await bw.billing.handle_event(
        event(EventKind.SUBSCRIPTION_CREATED, event_id="evt_2", tenant_id=None, customer_id="cus_9")
    )
    assert result.tenant_id == "t-1"
    assert (await bw.tenant()).status is SubscriptionStatus.ACTIVE


async def test_an_event_naming_neither_tenant_nor_customer_applies_to_nobody(
    bw: BillingWorld,
) -> None:
    result = await bw.billing.handle_event(event(tenant_id=None, customer_id=None))
    assert result.outcome == "unknown_tenant"
    assert (await bw.tenant()).status is SubscriptionStatus.INCOMPLETE


async def test_a_stale_tenant_id_falls_back_to_the_customer(bw: BillingWorld) -> None:
    await bw.billing.handle_event(event(EventKind.CHECKOUT_COMPLETED, customer_id="cus_9"))
    result = await bw.billing.handle_event(
        event(event_id="evt_2", tenant_id=TenantId("deleted-tenant"), customer_id="cus_9")
    )
    assert result.tenant_id == "t-1"


async def test_a_config_that_cannot_be_written_does_not_lose_the_event(
    bw: BillingWorld, caplog: pytest.LogCaptureFixture
) -> None:
    class FullDisk(InMemoryConfigWriter):
        async def write(self, config: TenantConfig) -> bool:
            raise OSError(28, "No space left on device")

    bw.world.writer = FullDisk()
    result = await bw.billing.handle_event(event(price_id="price_premium"))
    assert result.outcome == "applied"
    assert (await bw.tenant()).tier == "premium"
    (logged,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert logged.getMessage() == (
        "config for tenant t-1 not rewritten after tier change: [Errno 28] No space left on device"
    )


async def test_a_concurrent_duplicate_reports_the_first_outcome(bw: BillingWorld) -> None:
    """Another process recorded the event between our look-up and our record."""

    @attrs.define
    class Racing(InMemoryProcessedEventRepository):
        looked_up: int = 0

        async def outcome(self, event_id: str) -> str | None:
            self.looked_up += 1
            return None if self.looked_up == 1 else await super().outcome(event_id)

    racing = Racing()
    await racing.remember("evt_1", "stripe.subscription_created", "stale", T0)
    bw.events = racing
    result = await bw.billing.handle_event(event(EventKind.SUBSCRIPTION_CREATED))
    assert (result.outcome, result.replayed, result.tenant_id) == ("stale", True, "t-1")
