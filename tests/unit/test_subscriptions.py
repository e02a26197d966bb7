"""The subscription life cycle: one live subscription per tenant, plan changes on it (an upgrade
at once, a downgrade at the period end), cancel and resume, the billing portal, paid invoices;
as rules and through the Billing use case over in-memory ports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from domain.billing import EventKind, Outcome, PriceBook, SubscriptionEvent, build_price_book
from domain.catalog import Catalog
from domain.errors import Conflict, PaymentProviderError, ValidationError
from domain.ids import TenantId, TierId
from domain.notifications import NotificationKind
from domain.subscription_records import PaidInvoice, Subscription
from domain.subscriptions import (
    ChangeKind,
    apply_lifecycle_event,
    billing_status,
    decide_plan_change,
    has_live_subscription,
    is_upgrade,
    paid_invoice,
    refuse_second_checkout,
)
from domain.tenants import SubscriptionStatus, Tenant, may_use_service
from domain.use_cases.billing import Billing
from domain.use_cases.notifications import Notifications
from tests.fakes import (
    FakeBillingGateway,
    InMemoryNotificationSettings,
    InMemoryOutbox,
    InMemoryPaidInvoiceRepository,
    InMemoryProcessedEventRepository,
    InMemorySubscriptionRepository,
)
from tests.unit.conftest import World, make_tenant

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
PERIOD_START = datetime(2026, 3, 1, tzinfo=UTC)
PERIOD_END = datetime(2026, 4, 1, tzinfo=UTC)
PRICES = (
    ("price_starter", "starter"),
    ("price_premium", "premium"),
    ("price_byok", "byok"),
    ("price_plus_2024", "plus"),
)


@pytest.fixture
def book(catalog: Catalog) -> PriceBook:
    return build_price_book(catalog, PRICES)


def subscribed(tier: str = "premium", **changes: Any) -> Tenant:
    fields: dict[str, Any] = {
        "stripe_customer_id": "cus_1",
        "stripe_subscription_id": "sub_1",
        "subscription_updated_at": T0 - timedelta(days=9),
    }
    return make_tenant(tier=tier, **(fields | changes))


def record(**changes: Any) -> Subscription:
    base = Subscription(TenantId("t-1"), "sub_1", PERIOD_START, PERIOD_END)
    return attrs.evolve(base, **changes)


def updated(price: str, at: datetime = T0, period_start: datetime = PERIOD_START,
            event_id: str = "evt_u", **fields: Any) -> SubscriptionEvent:  # fmt: skip
    return SubscriptionEvent(
        event_id, "customer.subscription.updated", EventKind.SUBSCRIPTION_UPDATED, at,
        customer_id="cus_1", subscription_id="sub_1", price_id=price, provider_status="active",
        tenant_id=TenantId("t-1"), current_period_start=period_start,
        current_period_end=period_start + timedelta(days=31), **fields,
    )  # fmt: skip


# --- one live subscription -----------------------------------------------------------------


def test_a_tenant_with_a_subscription_not_canceled_has_a_live_one() -> None:
    assert has_live_subscription(subscribed())
    assert has_live_subscription(subscribed(status=SubscriptionStatus.PAST_DUE))
    assert has_live_subscription(subscribed(status=SubscriptionStatus.INCOMPLETE))
    assert not has_live_subscription(subscribed(status=SubscriptionStatus.CANCELED))
    assert not has_live_subscription(make_tenant(stripe_customer_id="cus_1"))


def test_a_second_checkout_is_a_conflict_naming_the_change_plan_endpoint() -> None:
    with pytest.raises(Conflict) as raised:
        refuse_second_checkout(subscribed())
    assert raised.value.code == "conflict"
    assert "/api/v1/billing/change-plan" in raised.value.detail
    refuse_second_checkout(subscribed(status=SubscriptionStatus.CANCELED))


# --- plan change decisions -------------------------------------------------------------------


def test_a_dearer_tier_is_an_upgrade_and_a_cheaper_one_is_not(catalog: Catalog) -> None:
    assert is_upgrade(catalog, TierId("starter"), TierId("premium"))
    assert not is_upgrade(catalog, TierId("premium"), TierId("starter"))
    assert not is_upgrade(catalog, TierId("starter"), TierId("starter"))


def test_an_upgrade_applies_at_once_with_proration(catalog: Catalog, book: PriceBook) -> None:
    change = decide_plan_change(catalog, book, subscribed("starter"), record(), "premium")
    assert (change.kind, change.tier, change.price_id, change.prorate, change.applies_at) == (
        ChangeKind.UPGRADE, "premium", "price_premium", True, None,
    )  # fmt: skip


def test_a_downgrade_waits_for_the_period_end_without_proration(
    catalog: Catalog, book: PriceBook
) -> None:
    change = decide_plan_change(catalog, book, subscribed("premium"), record(), "starter")
    assert (change.kind, change.tier, change.price_id, change.prorate, change.applies_at) == (
        ChangeKind.DOWNGRADE, "starter", "price_starter", False, PERIOD_END,
    )  # fmt: skip


def test_a_legacy_tier_id_is_accepted(catalog: Catalog, book: PriceBook) -> None:
    change = decide_plan_change(catalog, book, subscribed("starter"), record(), "plus")
    assert (change.tier, change.price_id) == ("premium", "price_premium")


def test_asking_for_the_tier_in_force_drops_a_waiting_downgrade(
    catalog: Catalog, book: PriceBook
) -> None:
    waiting = record(pending_tier=TierId("starter"), pending_from=PERIOD_END)
    change = decide_plan_change(catalog, book, subscribed("premium"), waiting, "premium")
    assert (change.kind, change.price_id, change.prorate) == (
        ChangeKind.RETURN, "price_premium", False,
    )  # fmt: skip


def test_asking_for_the_tier_in_force_without_anything_waiting_is_a_conflict(
    catalog: Catalog, book: PriceBook
) -> None:
    with pytest.raises(Conflict, match="already on the Premium plan"):
        decide_plan_change(catalog, book, subscribed("premium"), record(), "premium")


def test_asking_again_for_the_waiting_tier_is_a_conflict(catalog: Catalog, book: PriceBook) -> None:
    waiting = record(pending_tier=TierId("starter"), pending_from=PERIOD_END)
    with pytest.raises(Conflict, match="already scheduled"):
        decide_plan_change(catalog, book, subscribed("premium"), waiting, "starter")


def test_a_plan_change_without_a_subscription_is_a_conflict_naming_checkout(
    catalog: Catalog, book: PriceBook
) -> None:
    with pytest.raises(Conflict) as raised:
        decide_plan_change(catalog, book, make_tenant(), None, "premium")
    assert "/api/v1/billing/checkout" in raised.value.detail
    canceled = subscribed(status=SubscriptionStatus.CANCELED)
    with pytest.raises(Conflict):
        decide_plan_change(catalog, book, canceled, record(), "starter")


def test_a_change_to_an_unpriced_or_unknown_tier_names_the_tier_field(catalog: Catalog) -> None:
    only_starter = build_price_book(catalog, [("price_starter", "starter")])
    with pytest.raises(ValidationError) as raised:
        decide_plan_change(catalog, only_starter, subscribed("starter"), record(), "premium")
    assert raised.value.field == "tier"
    with pytest.raises(ValidationError) as unknown:
        decide_plan_change(catalog, only_starter, subscribed("starter"), record(), "gold")
    assert unknown.value.field == "tier"


# --- events and a waiting downgrade ----------------------------------------------------------


def test_the_cheaper_price_inside_the_period_keeps_the_dearer_tier(
    catalog: Catalog, book: PriceBook
) -> None:
    waiting = record(pending_tier=TierId("starter"), pending_from=PERIOD_END)
    decided = apply_lifecycle_event(
        catalog, book, subscribed("premium"), waiting, updated("price_starter")
    )
    assert decided.decision.outcome is Outcome.APPLIED
    assert decided.decision.tenant.tier == "premium"
    assert not decided.decision.tier_changed
    assert decided.subscription is not None
    assert decided.subscription.pending_tier == "starter"


def test_the_renewal_applies_the_waiting_downgrade(catalog: Catalog, book: PriceBook) -> None:
    waiting = record(pending_tier=TierId("starter"), pending_from=PERIOD_END)
    renewal = updated("price_starter", at=PERIOD_END + timedelta(minutes=1),
                      period_start=PERIOD_END)  # fmt: skip
    decided = apply_lifecycle_event(catalog, book, subscribed("premium"), waiting, renewal)
    assert decided.decision.tenant.tier == "starter"
    assert decided.decision.tier_changed
    assert decided.subscription is not None
    assert decided.subscription.pending_tier is None
    assert decided.subscription.current_period_start == PERIOD_END


def test_an_event_with_the_old_price_keeps_the_downgrade_waiting(
    catalog: Catalog, book: PriceBook
) -> None:
    waiting = record(pending_tier=TierId("starter"), pending_from=PERIOD_END)
    decided = apply_lifecycle_event(
        catalog, book, subscribed("premium"), waiting, updated("price_premium")
    )
    assert decided.subscription is not None
    assert decided.subscription.pending_tier == "starter"


def test_a_price_changed_elsewhere_drops_what_waited(catalog: Catalog, book: PriceBook) -> None:
    waiting = record(pending_tier=TierId("starter"), pending_from=PERIOD_END)
    decided = apply_lifecycle_event(
        catalog, book, subscribed("premium"), waiting, updated("price_byok")
    )
    assert decided.decision.tenant.tier == "byok"
    assert decided.subscription is not None
    assert decided.subscription.pending_tier is None


def test_events_carry_the_period_and_the_cancel_flag_into_the_record(
    catalog: Catalog, book: PriceBook
) -> None:
    decided = apply_lifecycle_event(
        catalog, book, subscribed("premium"), None,
        updated("price_premium", cancel_at_period_end=True),
    )  # fmt: skip
    assert decided.subscription == Subscription(
        TenantId("t-1"), "sub_1", PERIOD_START, PERIOD_START + timedelta(days=31), True
    )


def test_the_end_of_the_subscription_cancels_and_refuses_admission(
    catalog: Catalog, book: PriceBook
) -> None:
    ending = record(cancel_at_period_end=True)
    deleted = SubscriptionEvent(
        "evt_d", "customer.subscription.deleted", EventKind.SUBSCRIPTION_DELETED, PERIOD_END,
        customer_id="cus_1", subscription_id="sub_1", price_id="price_premium",
        provider_status="canceled", tenant_id=TenantId("t-1"),
    )  # fmt: skip
    decided = apply_lifecycle_event(catalog, book, subscribed("premium"), ending, deleted)
    tenant = decided.decision.tenant
    assert tenant.status is SubscriptionStatus.CANCELED
    assert not may_use_service(tenant, PERIOD_END, catalog.past_due_grace_days)
    assert decided.subscription is not None
    assert not decided.subscription.cancel_at_period_end
    assert billing_status(tenant, decided.subscription).has_subscription is False


def test_a_refused_event_leaves_the_record_alone(catalog: Catalog, book: PriceBook) -> None:
    waiting = record(pending_tier=TierId("starter"), pending_from=PERIOD_END)
    decided = apply_lifecycle_event(
        catalog, book, subscribed("premium"), waiting, updated("price_unknown")
    )
    assert decided.decision.outcome is Outcome.UNKNOWN_PRICE
    assert decided.subscription is waiting


def test_the_status_shows_the_record_of_the_current_subscription_only() -> None:
    tenant = subscribed("premium")
    waiting = record(pending_tier=TierId("starter"), pending_from=PERIOD_END,
                     cancel_at_period_end=True)  # fmt: skip
    status = billing_status(tenant, waiting)
    assert (status.tier, status.pending_tier, status.current_period_end) == (
        "premium", "starter", PERIOD_END,
    )  # fmt: skip
    assert status.cancel_at_period_end and status.has_subscription
    other = billing_status(tenant, attrs.evolve(waiting, subscription_id="sub_old"))
    assert (other.pending_tier, other.current_period_end, other.cancel_at_period_end) == (
        None, None, False,
    )  # fmt: skip


# --- paid invoices ---------------------------------------------------------------------------


def invoice_event(kind: EventKind = EventKind.INVOICE_PAID, **fields: Any) -> SubscriptionEvent:
    values: dict[str, Any] = {"invoice_id": "in_1", "amount_paid_cents": 2500, "currency": "usd"}
    return SubscriptionEvent("evt_i", "invoice.paid", kind, T0, customer_id="cus_1",
                             subscription_id="sub_1", **(values | fields))  # fmt: skip


def test_a_paid_invoice_is_revenue_at_its_amount() -> None:
    assert paid_invoice(subscribed(), invoice_event()) == PaidInvoice(
        "in_1", TenantId("t-1"), 2500, "usd", T0
    )


def test_a_failed_or_incomplete_invoice_event_is_no_revenue() -> None:
    assert paid_invoice(subscribed(), invoice_event(EventKind.INVOICE_PAYMENT_FAILED)) is None
    assert paid_invoice(subscribed(), invoice_event(invoice_id=None)) is None
    assert paid_invoice(subscribed(), invoice_event(amount_paid_cents=None)) is None
    assert paid_invoice(subscribed(), invoice_event(currency=None)) is None


# --- the use case ----------------------------------------------------------------------------


@attrs.define
class Life:
    world: World
    book: PriceBook
    gateway: FakeBillingGateway = attrs.Factory(FakeBillingGateway)
    events: InMemoryProcessedEventRepository = attrs.Factory(InMemoryProcessedEventRepository)
    subscriptions: InMemorySubscriptionRepository = attrs.Factory(
        lambda self: self.world.subscriptions, takes_self=True
    )
    invoices: InMemoryPaidInvoiceRepository = attrs.Factory(InMemoryPaidInvoiceRepository)
    outbox: InMemoryOutbox = attrs.Factory(lambda self: self.world.outbox, takes_self=True)
    """The world's: the unit of work and the notifications use case write to the same one."""

    @property
    def billing(self) -> Billing:
        w = self.world
        notifications = Notifications(
            w.catalog, self.outbox, InMemoryNotificationSettings(), w.tenant_repo,
            w.credential_repo, w.key_store, w.clock,
        )  # fmt: skip
        return Billing(w.catalog, self.book, w.tenant_repo, self.events, self.gateway, w.configs,
                       w.clock, "https://tk.example", subscriptions=self.subscriptions,
                       invoices=self.invoices, notifications=notifications,
                       unit_of_work=w.unit_of_work)  # fmt: skip

    async def tenant(self) -> Tenant:
        tenant = await self.world.tenant_repo.get(TenantId("t-1"))
        assert tenant is not None
        return tenant

    async def subscribe(self, tier: str) -> str:
        """What a paid checkout leads to: the provider's subscription, and its event."""
        tenant = await self.tenant()
        assert tenant.stripe_customer_id is not None
        snapshot = self.gateway.subscribe(dict((t, p) for p, t in PRICES)[tier],
                                          PERIOD_START, PERIOD_END)  # fmt: skip
        created = SubscriptionEvent(
            f"evt_{snapshot.subscription_id}", "customer.subscription.created",
            EventKind.SUBSCRIPTION_CREATED, T0, customer_id=tenant.stripe_customer_id,
            subscription_id=snapshot.subscription_id, price_id=snapshot.price_id,
            provider_status="active", tenant_id=tenant.id, current_period_start=PERIOD_START,
            current_period_end=PERIOD_END,
        )  # fmt: skip
        result = await self.billing.handle_event(created)
        assert result.outcome == "applied"
        return snapshot.subscription_id


@pytest.fixture
async def life(world: World, book: PriceBook) -> Life:
    world.clock.instant = T0
    await world.add_tenant("t-1", status=SubscriptionStatus.INCOMPLETE)
    return Life(world, book)


async def test_the_first_checkout_makes_the_tenant_a_customer_once(life: Life) -> None:
    await life.billing.checkout(TenantId("t-1"), "starter", "t-1@example.com")
    await life.billing.checkout(TenantId("t-1"), "premium", "t-1@example.com")
    assert list(life.gateway.customers.values()) == [
        {"tenant_id": "t-1", "email": "t-1@example.com"}
    ]
    assert [s["customer"] for s in life.gateway.sessions] == ["cus_fake_1", "cus_fake_1"]
    assert (await life.tenant()).stripe_customer_id == "cus_fake_1"


async def test_a_checkout_with_a_live_subscription_is_refused_before_the_provider(
    life: Life,
) -> None:
    await life.billing.checkout(TenantId("t-1"), "starter")
    await life.subscribe("starter")
    with pytest.raises(Conflict, match="change-plan"):
        await life.billing.checkout(TenantId("t-1"), "premium")
    assert len(life.gateway.sessions) == 1
    assert len(life.gateway.subscriptions) == 1


async def test_an_upgrade_changes_the_price_and_the_tier_at_once(life: Life) -> None:
    await life.billing.checkout(TenantId("t-1"), "starter")
    subscription = await life.subscribe("starter")
    status = await life.billing.change_plan(TenantId("t-1"), "premium")
    assert life.gateway.changes == [(subscription, "price_premium", True)]
    assert (status.tier, status.pending_tier, status.current_period_end) == (
        "premium", None, PERIOD_END,
    )  # fmt: skip
    assert (await life.tenant()).tier == "premium"
    written = life.world.writer.written[TenantId("t-1")]
    assert written.route.refs()[0] == life.world.catalog.tier("premium").primary_model


async def test_a_downgrade_shows_as_pending_and_keeps_the_tier(life: Life) -> None:
    await life.billing.checkout(TenantId("t-1"), "premium")
    subscription = await life.subscribe("premium")
    status = await life.billing.change_plan(TenantId("t-1"), "starter")
    assert life.gateway.changes == [(subscription, "price_starter", False)]
    assert (status.tier, status.pending_tier) == ("premium", "starter")
    assert (await life.tenant()).tier == "premium"
    again = await life.billing.change_plan(TenantId("t-1"), "premium")
    assert life.gateway.changes[-1] == (subscription, "price_premium", False)
    assert (again.tier, again.pending_tier) == ("premium", None)


async def test_an_upgrade_a_downgrade_and_a_cancellation_each_notify_the_customer(
    life: Life,
) -> None:
    await life.billing.checkout(TenantId("t-1"), "starter")
    await life.subscribe("starter")
    before = len(life.outbox.notes)
    await life.billing.change_plan(TenantId("t-1"), "premium")
    await life.billing.change_plan(TenantId("t-1"), "starter")
    await life.billing.cancel(TenantId("t-1"))
    new = life.outbox.notes[before:]
    assert [note.facts.kind for note in new] == [
        NotificationKind.PLAN_CHANGED,
        NotificationKind.PLAN_CHANGED,
        NotificationKind.CANCELLATION_SCHEDULED,
    ]
    assert new[0].facts.detail == {"from_tier": "starter", "to_tier": "premium"}
    assert new[1].facts.detail is not None and new[1].facts.detail["to_tier"] == "starter"
    assert "applies_at" in new[1].facts.detail
    assert new[2].facts.window_key == PERIOD_END.isoformat()


async def test_cancel_then_resume_before_the_end(life: Life) -> None:
    await life.billing.checkout(TenantId("t-1"), "starter")
    subscription = await life.subscribe("starter")
    canceled = await life.billing.cancel(TenantId("t-1"))
    assert canceled.cancel_at_period_end and canceled.current_period_end == PERIOD_END
    assert canceled.status is SubscriptionStatus.ACTIVE
    assert life.gateway.subscriptions[subscription].cancel_at_period_end
    with pytest.raises(Conflict, match="already ends"):
        await life.billing.cancel(TenantId("t-1"))
    resumed = await life.billing.resume(TenantId("t-1"))
    assert not resumed.cancel_at_period_end
    assert not life.gateway.subscriptions[subscription].cancel_at_period_end
    with pytest.raises(Conflict, match="nothing to resume"):
        await life.billing.resume(TenantId("t-1"))


async def test_without_a_subscription_change_cancel_and_resume_are_conflicts(life: Life) -> None:
    for action in (
        life.billing.cancel(TenantId("t-1")),
        life.billing.resume(TenantId("t-1")),
        life.billing.change_plan(TenantId("t-1"), "premium"),
    ):
        with pytest.raises(Conflict, match="checkout"):
            await action
    assert life.gateway.changes == []


async def test_the_portal_opens_for_the_tenants_customer_and_returns_to_the_plan_page(
    life: Life,
) -> None:
    with pytest.raises(Conflict, match="no billing account"):
        await life.billing.portal(TenantId("t-1"))
    await life.billing.checkout(TenantId("t-1"), "starter")
    url = await life.billing.portal(TenantId("t-1"))
    assert url == "https://billing.example/session/1"
    assert life.gateway.portals == [("cus_fake_1", "https://tk.example/settings")]


async def test_a_provider_failure_during_a_change_changes_nothing(life: Life) -> None:
    await life.billing.checkout(TenantId("t-1"), "starter")
    await life.subscribe("starter")
    before = (await life.tenant(), await life.subscriptions.get(TenantId("t-1")))
    life.gateway.subscriptions.clear()
    with pytest.raises(PaymentProviderError):
        await life.billing.change_plan(TenantId("t-1"), "premium")
    assert (await life.tenant(), await life.subscriptions.get(TenantId("t-1"))) == before


async def test_a_paid_invoice_is_kept_once_whichever_event_reports_it(life: Life) -> None:
    await life.billing.checkout(TenantId("t-1"), "starter")
    await life.subscribe("starter")
    for event_id, event_type in (("evt_p1", "invoice.paid"),
                                 ("evt_p2", "invoice.payment_succeeded")):  # fmt: skip
        paid = SubscriptionEvent(
            event_id, event_type, EventKind.INVOICE_PAID, T0 + timedelta(seconds=1),
            customer_id="cus_fake_1", subscription_id="sub_fake_1", invoice_id="in_1",
            amount_paid_cents=700, currency="usd",
        )  # fmt: skip
        await life.billing.handle_event(paid)
    assert list(life.invoices.invoices.values()) == [
        PaidInvoice("in_1", TenantId("t-1"), 700, "usd", T0 + timedelta(seconds=1))
    ]


async def test_a_downgrades_webhook_arriving_before_the_answer_keeps_the_tier(
    life: Life,
) -> None:
    """Stripe may deliver the change's event before its API call has answered."""
    await life.billing.checkout(TenantId("t-1"), "premium")
    subscription = await life.subscribe("premium")
    billing = life.billing

    class EarlyWebhook(FakeBillingGateway):
        async def change_price(self, subscription_id: str, price_id: str,
                               prorate: bool) -> Any:  # fmt: skip
            changed = await super().change_price(subscription_id, price_id, prorate)
            await billing.handle_event(updated_event(subscription_id, price_id))
            return changed

    early = EarlyWebhook(subscriptions=dict(life.gateway.subscriptions))
    life.gateway = early
    status = await life.billing.change_plan(TenantId("t-1"), "starter")
    assert (status.tier, status.pending_tier) == ("premium", "starter")
    assert (await life.tenant()).tier == "premium"
    assert early.changes == [(subscription, "price_starter", False)]


async def test_a_refused_downgrade_leaves_nothing_waiting(life: Life) -> None:
    await life.billing.checkout(TenantId("t-1"), "premium")
    await life.subscribe("premium")
    before = await life.subscriptions.get(TenantId("t-1"))
    life.gateway.subscriptions.clear()
    with pytest.raises(PaymentProviderError):
        await life.billing.change_plan(TenantId("t-1"), "starter")
    assert await life.subscriptions.get(TenantId("t-1")) == before
    assert (await life.billing.status(TenantId("t-1"))).pending_tier is None


def updated_event(subscription_id: str, price_id: str) -> SubscriptionEvent:
    return SubscriptionEvent(
        f"evt_early_{price_id}", "customer.subscription.updated",
        EventKind.SUBSCRIPTION_UPDATED, T0 + timedelta(seconds=5), customer_id="cus_fake_1",
        subscription_id=subscription_id, price_id=price_id, provider_status="active",
        tenant_id=TenantId("t-1"), current_period_start=PERIOD_START,
        current_period_end=PERIOD_END,
    )  # fmt: skip
