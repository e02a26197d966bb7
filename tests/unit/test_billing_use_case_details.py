"""The Billing use case in detail: the record the provider's webhook finds while a change is
asked, a record built when none was kept, who each notification is for and when none is
due, a waiting downgrade across a cancellation, the portal's return address, the audit time."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest

from domain.audit import AuditAction
from domain.billing import EventKind, SubscriptionEvent, build_price_book
from domain.catalog import Catalog
from domain.errors import Conflict, PaymentProviderError
from domain.ids import TenantId
from domain.notifications import Channel, NotificationKind
from domain.subscription_records import Subscription, SubscriptionSnapshot
from domain.tenants import SubscriptionStatus
from tests.fakes import FakeBillingGateway, InMemoryAuditLog, InMemorySubscriptionRepository
from tests.unit.conftest import World
from tests.unit.test_subscriptions import PERIOD_END, PERIOD_START, PRICES, T0, Life

T = TenantId("t-1")


@pytest.fixture
async def life(world: World, catalog: Catalog) -> Life:
    world.clock.instant = T0
    await world.add_tenant("t-1", status=SubscriptionStatus.INCOMPLETE)
    return Life(world, build_price_book(catalog, PRICES))


@attrs.define
class WatchingGateway(FakeBillingGateway):
    """Notes the stored record at the moment the provider is asked for a new price."""

    watched: InMemorySubscriptionRepository | None = None
    seen: list[Subscription | None] = attrs.Factory(list)

    async def change_price(
        self, subscription_id: str, price_id: str, prorate: bool
    ) -> SubscriptionSnapshot:
        assert self.watched is not None
        self.seen.append(await self.watched.get(T))
        return await super().change_price(subscription_id, price_id, prorate)


async def subscribed(life: Life, tier: str) -> str:
    await life.billing.checkout(T, tier)
    return await life.subscribe(tier)


def kinds(life: Life) -> list[NotificationKind]:
    return [note.facts.kind for note in life.outbox.notes]


async def test_the_status_shows_the_period_of_the_kept_record(life: Life) -> None:
    await subscribed(life, "starter")
    status = await life.billing.status(T)
    assert (status.current_period_end, status.has_subscription) == (PERIOD_END, True)


async def test_while_the_provider_is_asked_the_downgrade_already_waits_in_the_record(
    life: Life,
) -> None:
    life.gateway = WatchingGateway(watched=life.subscriptions)
    subscription = await subscribed(life, "premium")
    await life.billing.change_plan(T, "starter")
    assert life.gateway.seen == [
        Subscription(T, subscription, PERIOD_START, PERIOD_END, False, "starter", PERIOD_END)
    ]


async def test_a_change_with_no_kept_record_builds_one_for_the_tenant(life: Life) -> None:
    subscription = await subscribed(life, "premium")
    life.subscriptions.rows.clear()
    status = await life.billing.change_plan(T, "starter")
    assert status.pending_tier == "starter"
    assert await life.subscriptions.get(T) == Subscription(
        T, subscription, PERIOD_START, PERIOD_END, False, "starter", PERIOD_END
    )


@pytest.mark.parametrize(("tier", "asked"), [("starter", "premium"), ("premium", "starter")])
async def test_a_refused_change_with_no_kept_record_leaves_an_empty_one(
    life: Life, tier: str, asked: str
) -> None:
    """Also for a downgrade, whose waiting record was stored before the provider refused."""
    subscription = await subscribed(life, tier)
    life.subscriptions.rows.clear()
    life.gateway.subscriptions.clear()
    with pytest.raises(PaymentProviderError):
        await life.billing.change_plan(T, asked)
    assert life.subscriptions.rows == {T: Subscription(T, subscription)}


async def test_a_return_to_the_tier_in_force_notifies_nobody(life: Life) -> None:
    await subscribed(life, "premium")
    await life.billing.change_plan(T, "starter")
    await life.billing.change_plan(T, "premium")
    assert kinds(life).count(NotificationKind.PLAN_CHANGED) == 1
    changed = next(n for n in life.outbox.notes if n.facts.kind is NotificationKind.PLAN_CHANGED)
    assert changed.facts.tenant_id == T


async def test_a_cancellation_notifies_the_tenant_once_and_a_resume_not_at_all(
    life: Life,
) -> None:
    await subscribed(life, "starter")
    await life.billing.cancel(T)
    resumed = await life.billing.resume(T)
    assert resumed.cancel_at_period_end is False
    scheduled = [
        n for n in life.outbox.notes if n.facts.kind is NotificationKind.CANCELLATION_SCHEDULED
    ]
    assert [n.facts.tenant_id for n in scheduled] == [T]


async def test_a_cancellation_keeps_the_waiting_downgrade(life: Life) -> None:
    await subscribed(life, "premium")
    await life.billing.change_plan(T, "starter")
    status = await life.billing.cancel(T)
    assert (status.cancel_at_period_end, status.pending_tier) == (True, "starter")


@pytest.mark.parametrize(
    ("public_url", "base"),
    [("https://tk.example/", "https://tk.example"),
     ("https://example.com/tierkeeperX//", "https://example.com/tierkeeperX")],
)  # fmt: skip
async def test_the_portal_returns_to_the_settings_page_with_only_trailing_slashes_dropped(
    life: Life, public_url: str, base: str
) -> None:
    await life.billing.checkout(T, "starter")
    billing = attrs.evolve(life.billing, public_url=public_url)
    await billing.portal(T)
    assert life.gateway.portals == [("cus_fake_1", f"{base}/settings")]


async def test_a_portal_without_a_billing_account_is_refused_in_words(life: Life) -> None:
    with pytest.raises(Conflict) as raised:
        await life.billing.portal(T)
    assert raised.value.detail == "there is no billing account yet: choose a plan first"


async def test_a_tier_change_from_the_provider_is_audited_at_the_time_it_is_applied(
    life: Life,
) -> None:
    await life.billing.checkout(T, "starter")
    audit = InMemoryAuditLog()
    billing = attrs.evolve(life.billing, audit=audit)
    tenant = await life.tenant()
    assert tenant.stripe_customer_id is not None
    life.world.clock.advance(minutes=3)
    event = SubscriptionEvent(
        "evt_1", "customer.subscription.created", EventKind.SUBSCRIPTION_CREATED, T0,
        customer_id=tenant.stripe_customer_id, subscription_id="sub_x", price_id="price_premium",
        provider_status="active", tenant_id=T, current_period_start=PERIOD_START,
        current_period_end=PERIOD_END,
    )  # fmt: skip
    await billing.handle_event(event)
    actions = {entry.action: entry.at for entry in audit.recorded}
    assert actions[AuditAction.TIER_CHANGED] == life.world.clock.now()


async def test_without_notifications_a_cancel_and_a_resume_still_work(life: Life) -> None:
    await subscribed(life, "starter")
    quiet = attrs.evolve(life.billing, notifications=None)
    assert (await quiet.cancel(T)).cancel_at_period_end is True
    assert (await quiet.resume(T)).cancel_at_period_end is False
    assert NotificationKind.CANCELLATION_SCHEDULED not in kinds(life)


async def test_a_billing_notice_is_stored_at_the_clock_for_mail_and_webhook(life: Life) -> None:
    await subscribed(life, "premium")
    life.world.clock.instant = T0 + timedelta(hours=5)
    await life.billing.change_plan(T, "starter")
    (index, note) = next(
        (i, n) for i, n in enumerate(life.outbox.notes)
        if n.facts.kind is NotificationKind.PLAN_CHANGED
    )  # fmt: skip
    assert note.created_at == T0 + timedelta(hours=5)
    assert [d.channel for d in life.outbox.deliveries_ if d.note_key == index] == [
        Channel.EMAIL,
        Channel.WEBHOOK,
    ]


async def test_a_subscription_event_that_activates_the_tenant_writes_its_welcome(
    life: Life,
) -> None:
    await subscribed(life, "starter")
    assert kinds(life) == [NotificationKind.WELCOME]


async def test_an_event_that_changes_no_record_writes_none(life: Life) -> None:
    @attrs.define
    class CountingSaves(InMemorySubscriptionRepository):
        saves: int = 0

        async def save(self, subscription: Subscription) -> None:
            self.saves += 1
            await super().save(subscription)

    subscription_id = await subscribed(life, "starter")
    counting = CountingSaves(dict(life.subscriptions.rows))
    life.world.subscriptions = life.subscriptions = counting
    stored = counting.rows[T]
    tenant = await life.tenant()
    again = SubscriptionEvent(
        "evt_again", "customer.subscription.updated", EventKind.SUBSCRIPTION_UPDATED, T0,
        customer_id=tenant.stripe_customer_id, subscription_id=subscription_id,
        price_id="price_starter", provider_status="active", tenant_id=T,
        current_period_start=PERIOD_START, current_period_end=PERIOD_END,
    )  # fmt: skip
    assert (await life.billing.handle_event(again)).outcome == "applied"
    assert (counting.rows[T], counting.saves) == (stored, 0)
