"""The subscription life cycle against localstripe, through tierkeeper's real Stripe adapter:
checkout, upgrade, downgrade, cancel and resume in several orders leave exactly one customer
and one live subscription per tenant; the tier follows the subscription's price through the
signed webhooks localstripe sends (and, for the updates it does not announce, events signed
here from its real objects); a second checkout is a conflict that reaches Stripe not at all.

localstripe sits behind ``tests.support.stripe_shim``: it records each request as sent (the
proration flags are asserted there), answers Checkout and Billing Portal sessions, which
localstripe lacks, and drops the ``proration_behavior`` flag localstripe cannot parse."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
import stripe

from adapters.billing.stripe_gateway import StripeBillingGateway, build_stripe_client
from adapters.billing.webhooks import StripeWebhookParser
from domain.billing import PriceBook, build_price_book
from domain.catalog import build_catalog
from domain.errors import Conflict
from domain.ids import MessageId, TenantId, TierId
from domain.metering import RefusalReason, Refused
from domain.secrets import Secret
from domain.tenants import SubscriptionStatus, Tenant
from domain.use_cases.billing import Billing, EventResult
from domain.use_cases.reports import UsageReport
from tests.fakes import (
    InMemoryPaidInvoiceRepository,
    InMemoryProcessedEventRepository,
    InMemorySubscriptionRepository,
)
from tests.integration.test_stripe import GOOD_CARD, PRICES, WEBHOOK_SECRET, event_json, sign
from tests.support.localstripe import (  # noqa: F401  (fixtures)
    API_KEY,
    LocalStripe,
    localstripe,
    localstripe_server,
)
from tests.support.recording_server import RecordedRequest, Recorder, recording_server
from tests.support.stripe_shim import stripe_shim
from tests.unit.conftest import World, catalog_data

pytestmark = pytest.mark.integration

TENANT = TenantId("t-1")


@attrs.define
class Life:
    """One tenant's billing: the Billing use case over in-memory storage, its real Stripe
    adapter talking to localstripe (through the shim), and localstripe's webhooks."""

    ls: LocalStripe
    shim: Recorder
    receiver: Recorder
    world: World
    book: PriceBook
    events: InMemoryProcessedEventRepository = attrs.Factory(InMemoryProcessedEventRepository)
    subscriptions: InMemorySubscriptionRepository = attrs.Factory(
        lambda self: self.world.subscriptions, takes_self=True
    )
    invoices: InMemoryPaidInvoiceRepository = attrs.Factory(InMemoryPaidInvoiceRepository)
    parser: StripeWebhookParser = attrs.Factory(lambda: StripeWebhookParser(Secret(WEBHOOK_SECRET)))
    handled: set[str] = attrs.Factory(set)
    signed: int = 0

    @property
    def client(self) -> stripe.StripeClient:
        return self.ls.client()

    @property
    def billing(self) -> Billing:
        gateway = StripeBillingGateway(build_stripe_client(API_KEY, self.shim.url,
                                                           max_network_retries=0))  # fmt: skip
        w = self.world
        return Billing(w.catalog, self.book, w.tenant_repo, self.events, gateway, w.configs,
                       w.clock, "http://127.0.0.1:8000", subscriptions=self.subscriptions,
                       invoices=self.invoices, unit_of_work=w.unit_of_work)  # fmt: skip

    async def tenant(self) -> Tenant:
        tenant = await self.world.tenant_repo.get(TENANT)
        assert tenant is not None
        return tenant

    # --- what Stripe sends ---------------------------------------------------------------

    async def deliver_sent(self, customer_id: str, *types: str) -> list[EventResult]:
        """Wait for localstripe's own signed POSTs of these types about the customer, and
        hand each one not handled yet to the webhook parser and the use case."""

        def about(request: RecordedRequest) -> bool:
            obj = request.json()["data"]["object"]
            return customer_id in (obj.get("customer"), obj.get("id"))

        def arrived(requests: list[RecordedRequest]) -> bool:
            seen = {r.json()["type"] for r in requests
                    if about(r) and r.json()["id"] not in self.handled}  # fmt: skip
            return set(types) <= seen

        results = []
        for request in self.receiver.wait_for(arrived):
            if not about(request) or request.json()["id"] in self.handled:
                continue
            self.handled.add(request.json()["id"])
            event = self.parser.parse(request.body, request.headers.get("Stripe-Signature"))
            if event is not None:
                results.append(await self.billing.handle_event(event))
        return results

    async def deliver_signed(self, event_type: str, obj: dict[str, Any]) -> EventResult:
        """An event localstripe does not send, built from its real object, signed as Stripe
        signs, through the same parser."""
        self.signed += 1
        body = event_json(event_type, obj, f"evt_signed_{self.signed}")
        event = self.parser.parse(body.encode(), sign(body))
        assert event is not None
        return await self.billing.handle_event(event)

    async def announce_update(self, subscription_id: str, **changes: Any) -> EventResult:
        live = self.client.v1.subscriptions.retrieve(subscription_id).to_dict()
        return await self.deliver_signed("customer.subscription.updated", live | changes)

    # --- the customer's side ---------------------------------------------------------------

    async def checkout_and_pay(self, tier: str) -> str:
        """Checkout through tierkeeper, then what Stripe's hosted page does once the card is
        accepted: the subscription on the session's customer, with the tenant in metadata."""
        session = await self.billing.checkout(TENANT, tier, "t-1@example.com")
        tenant = await self.tenant()
        customer = tenant.stripe_customer_id
        assert customer is not None
        form = self.shim.requests[-1].form()
        assert form["customer"] == customer
        self.use_card(customer)
        subscription = self.client.v1.subscriptions.create(
            params={"customer": customer, "items": [{"plan": form["line_items[0][price]"]}],
                    "metadata": {"tenant_id": TENANT, "tier": form["metadata[tier]"]}}
        )  # fmt: skip
        await self.deliver_signed("checkout.session.completed", {
            "id": session.session_id, "object": "checkout.session", "mode": "subscription",
            "client_reference_id": TENANT, "customer": customer,
            "subscription": subscription.id, "payment_status": "paid",
            "metadata": {"tenant_id": TENANT, "tier": form["metadata[tier]"]},
        })  # fmt: skip
        await self.deliver_sent(customer, "customer.subscription.created",
                                "invoice.payment_succeeded")  # fmt: skip
        return str(subscription.id)

    def use_card(self, customer_id: str) -> None:
        method = self.client.v1.payment_methods.create(
            params={"type": "card",
                    "card": {"number": GOOD_CARD, "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
        )  # fmt: skip
        self.client.v1.payment_methods.attach(method.id, params={"customer": customer_id})
        self.client.v1.customers.update(
            customer_id, params={"invoice_settings": {"default_payment_method": method.id}}
        )

    def live_subscriptions(self, customer_id: str) -> list[Any]:
        listed = self.client.v1.subscriptions.list(params={"customer": customer_id})
        return [s for s in listed.data if s.status != "canceled"]

    def customers_of_tenant(self) -> list[str]:
        listed = self.client.v1.customers.list(params={"limit": 100})
        return [c.id for c in listed.data
                if (c.to_dict().get("metadata") or {}).get("tenant_id") == TENANT]  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[Recorder]:
    with recording_server() as recorder:
        yield recorder


@pytest.fixture
def shim(localstripe: LocalStripe) -> Iterator[Recorder]:  # noqa: F811
    with stripe_shim(localstripe.url) as recorder:
        yield recorder


@pytest.fixture
async def life(localstripe: LocalStripe, shim: Recorder, receiver: Recorder) -> Life:  # noqa: F811
    world = World(build_catalog(catalog_data()))
    world.clock.instant = datetime.now(UTC)
    await world.add_tenant("t-1", status=SubscriptionStatus.INCOMPLETE)
    localstripe.send_webhooks_to(f"{receiver.url}/api/v1/billing/webhook", WEBHOOK_SECRET)
    book = build_price_book(world.catalog, [(p, t) for t, p in PRICES.items()])
    life = Life(localstripe, shim, receiver, world, book)
    product = life.client.v1.products.create(params={"name": "tierkeeper"})
    for tier, price_id in PRICES.items():
        cents = world.catalog.tier(tier).price.amount_cents
        life.client.v1.plans.create(
            params={"id": price_id, "product": product.id, "amount": cents,
                    "currency": "usd", "interval": "month"}
        )  # fmt: skip
    return life


@attrs.define
class Expected:
    """What the tenant should have after each step, kept by the test independently."""

    tier: str | None = None
    pending: str | None = None
    ending: bool = False
    subscription: str | None = None


async def run_step(life: Life, expected: Expected, step: str) -> None:
    action, _, tier = step.partition(":")
    if action == "checkout" and expected.subscription is None:
        expected.subscription = await life.checkout_and_pay(tier)
        expected.tier = tier
        return
    if action == "checkout":
        sent = len(life.shim.requests)
        with pytest.raises(Conflict, match="change-plan"):
            await life.billing.checkout(TENANT, tier)
        assert len(life.shim.requests) == sent, "a refused checkout asks Stripe nothing"
        return
    assert expected.subscription is not None
    if action in ("upgrade", "downgrade", "return"):
        status = await life.billing.change_plan(TENANT, tier)
        update = life.shim.requests[-1]
        assert update.path == f"/v1/subscriptions/{expected.subscription}"
        form = update.form()
        assert form["items[0][plan]"] == PRICES[tier]
        flag = "always_invoice" if action == "upgrade" else "none"
        assert form["proration_behavior"] == flag
        if action == "downgrade":
            expected.pending = tier
        else:
            expected.tier, expected.pending = tier, None
        assert (status.tier, status.pending_tier) == (expected.tier, expected.pending)
    elif action in ("cancel", "resume"):
        status = await (life.billing.cancel if action == "cancel" else life.billing.resume)(TENANT)
        expected.ending = action == "cancel"
        assert life.shim.requests[-1].form() == {"cancel_at_period_end": str(expected.ending)
                                                  .lower()}  # fmt: skip
        assert status.cancel_at_period_end is expected.ending
    result = await life.announce_update(expected.subscription)
    assert result.outcome == "applied"


SEQUENCES = [
    ["checkout:starter", "upgrade:premium", "downgrade:starter", "cancel", "resume",
     "checkout:premium"],
    ["checkout:byok", "checkout:starter", "upgrade:premium", "cancel", "downgrade:starter",
     "resume", "return:premium", "checkout:byok"],
    ["checkout:premium", "downgrade:byok", "cancel", "resume", "return:premium",
     "downgrade:starter"],
]  # fmt: skip


@pytest.mark.parametrize("steps", SEQUENCES, ids=["-".join(s) for s in SEQUENCES])
async def test_any_sequence_leaves_one_customer_and_one_subscription_whose_price_sets_the_tier(
    life: Life, steps: list[str]
) -> None:
    expected = Expected()
    for step in steps:
        await run_step(life, expected, step)
        tenant = await life.tenant()
        assert tenant.stripe_customer_id is not None
        assert life.customers_of_tenant() == [tenant.stripe_customer_id], step
        (live,) = life.live_subscriptions(tenant.stripe_customer_id)
        assert live.id == tenant.stripe_subscription_id == expected.subscription, step
        assert live.plan.id == PRICES[expected.pending or expected.tier or ""], step
        assert bool(live.cancel_at_period_end) is expected.ending, step
        assert (tenant.tier, tenant.status) == (expected.tier, SubscriptionStatus.ACTIVE), step
        status = await life.billing.status(TENANT)
        assert (status.tier, status.pending_tier, status.cancel_at_period_end) == (
            expected.tier, expected.pending, expected.ending,
        ), step  # fmt: skip
        assert status.has_subscription


async def test_a_downgrade_takes_effect_when_the_period_renews(life: Life) -> None:
    subscription = await life.checkout_and_pay("premium")
    await life.billing.change_plan(TENANT, "starter")
    await life.announce_update(subscription)
    assert (await life.tenant()).tier == "premium"
    record = await life.subscriptions.get(TENANT)
    assert record is not None and record.current_period_end is not None
    next_start = int(record.current_period_end.timestamp())
    next_end = int((record.current_period_end + timedelta(days=31)).timestamp())
    await asyncio.sleep(1.1)  # the renewal's event comes after the change's
    renewed = await life.announce_update(
        subscription, current_period_start=next_start, current_period_end=next_end
    )
    assert renewed.outcome == "applied"
    tenant = await life.tenant()
    assert tenant.tier == "starter"
    config = life.world.writer.written[TENANT]
    assert config.route.refs()[0] == life.world.catalog.tier("starter").primary_model
    status = await life.billing.status(TENANT)
    assert status.pending_tier is None


async def test_at_the_end_of_a_canceled_subscription_admission_answers_402(life: Life) -> None:
    subscription = await life.checkout_and_pay("starter")
    admitted = await life.world.metering.admit(TENANT, MessageId("m-before"))
    assert not isinstance(admitted.decision, Refused)
    await life.billing.cancel(TENANT)
    await life.announce_update(subscription)
    assert (await life.tenant()).status is SubscriptionStatus.ACTIVE
    tenant = await life.tenant()
    assert tenant.stripe_customer_id is not None
    life.client.v1.subscriptions.cancel(subscription)  # what Stripe does at the period end
    results = await life.deliver_sent(tenant.stripe_customer_id, "customer.subscription.deleted")
    assert "applied" in {r.outcome for r in results}
    ended = await life.tenant()
    assert ended.status is SubscriptionStatus.CANCELED
    refused = await life.world.metering.admit(TENANT, MessageId("m-after"))
    assert isinstance(refused.decision, Refused)
    assert refused.decision.reason is RefusalReason.SUBSCRIPTION_INACTIVE
    status = await life.billing.status(TENANT)
    assert (status.status, status.has_subscription) == (SubscriptionStatus.CANCELED, False)
    # a canceled tenant may subscribe again: a new subscription on the same customer
    again = await life.checkout_and_pay("premium")
    assert again != subscription
    assert [s.id for s in life.live_subscriptions(tenant.stripe_customer_id)] == [again]
    assert life.customers_of_tenant() == [tenant.stripe_customer_id]
    assert (await life.tenant()).tier == TierId("premium")


async def test_the_margin_report_counts_the_invoices_localstripe_reports_paid(life: Life) -> None:
    """Revenue is what the customer paid: the first invoice and the upgrade's invoice, as
    localstripe charged them and reported them in its signed ``invoice.payment_succeeded``."""
    subscription = await life.checkout_and_pay("starter")
    tenant = await life.tenant()
    assert tenant.stripe_customer_id is not None
    await life.billing.change_plan(TENANT, "premium")
    await life.announce_update(subscription)
    upgrade_invoice = life.client.v1.invoices.create(
        params={"customer": tenant.stripe_customer_id, "subscription": subscription}
    )
    life.client.v1.invoices.pay(upgrade_invoice.id)
    await life.deliver_sent(tenant.stripe_customer_id, "invoice.payment_succeeded")
    listed = life.client.v1.invoices.list(params={"customer": tenant.stripe_customer_id})
    paid = [i for i in listed.data if i.status == "paid" and i.amount_paid > 0]
    assert len(paid) == 2
    period = datetime.now(UTC).strftime("%Y-%m")
    report = await UsageReport(
        life.world.catalog, life.world.tenant_repo, life.world.ledger, life.invoices
    ).for_period(period)
    (row,) = report.tenants
    assert row.revenue_cents == sum(i.amount_paid for i in paid) == report.revenue_cents()
    assert not row.activated_without_payment
