"""Billing on Stripe, as far as a machine without Stripe can go: the subscription life cycle
runs in localstripe, whose own signed webhooks are delivered to the parser and the Billing use
case; event types localstripe does not send are built from its real objects and signed here
the way Stripe signs them; the Checkout Session (which localstripe lacks) is checked by the
request the gateway sends."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
import stripe

from adapters.billing.stripe_gateway import StripeBillingGateway, build_stripe_client
from adapters.billing.webhooks import StripeWebhookParser, parse_stripe_event
from domain.billing import EventKind, PriceBook, build_price_book
from domain.catalog import build_catalog
from domain.errors import InvalidSignature, PaymentProviderError
from domain.ids import TenantId, TierId
from domain.secrets import Secret
from domain.tenants import SubscriptionStatus, Tenant, may_use_service
from domain.use_cases.billing import Billing, EventResult
from tests.fakes import (
    InMemoryPaidInvoiceRepository,
    InMemoryProcessedEventRepository,
    InMemorySubscriptionRepository,
)
from tests.support.localstripe import (  # noqa: F401  (fixtures)
    LocalStripe,
    localstripe,
    localstripe_server,
)
from tests.support.recording_server import RecordedRequest, Recorder, recording_server
from tests.unit.conftest import World, catalog_data

pytestmark = pytest.mark.integration

WEBHOOK_SECRET = "whsec_tierkeeper_test_secret"
PRICES = {
    "starter": "price_tk_starter",
    "premium": "price_tk_premium",
    "byok": "price_tk_byok",
    "basic": "price_tk_basic_2023",
    "plus": "price_tk_plus_2023",
}
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000341"  # attaches, then every charge is declined


def sign(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header as Stripe computes it: HMAC-SHA256 of ``"{t}.{body}"``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event_json(
    event_type: str, obj: dict[str, Any], event_id: str, created: int | None = None
) -> str:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(time.time()) if created is None else created,
            "livemode": False,
            "data": {"object": obj},
        }
    )


@attrs.define
class Shop:
    """localstripe with tierkeeper's products and prices, a webhook receiver it posts to, and
    the Billing use case over in-memory storage with the real parser in front."""

    stripe_: LocalStripe
    receiver: Recorder
    world: World
    book: PriceBook
    events: InMemoryProcessedEventRepository = attrs.Factory(InMemoryProcessedEventRepository)
    parser: StripeWebhookParser = attrs.Factory(lambda: StripeWebhookParser(Secret(WEBHOOK_SECRET)))
    handled: set[str] = attrs.Factory(set)
    subscriptions: InMemorySubscriptionRepository = attrs.Factory(
        lambda self: self.world.subscriptions, takes_self=True
    )
    invoices: InMemoryPaidInvoiceRepository = attrs.Factory(InMemoryPaidInvoiceRepository)

    @property
    def client(self) -> stripe.StripeClient:
        return self.stripe_.client()

    @property
    def billing(self) -> Billing:
        w = self.world
        return Billing(w.catalog, self.book, w.tenant_repo, self.events, _NoCheckout(),
                       w.configs, w.clock, "http://127.0.0.1:8000",
                       subscriptions=self.subscriptions, invoices=self.invoices,
                       unit_of_work=w.unit_of_work)  # fmt: skip

    def create_prices(self) -> None:
        product = self.client.v1.products.create(params={"name": "tierkeeper"})
        for tier, price_id in PRICES.items():
            cents = self.world.catalog.tier(tier).price.amount_cents
            self.client.v1.plans.create(
                params={"id": price_id, "product": product.id, "amount": cents,
                        "currency": "usd", "interval": "month"}
            )  # fmt: skip

    def customer(self, tenant_id: str, card: str = GOOD_CARD) -> str:
        customer = self.client.v1.customers.create(
            params={"email": f"{tenant_id}@example.com", "metadata": {"tenant_id": tenant_id}}
        )
        self.use_card(customer.id, card)
        return customer.id

    def use_card(self, customer_id: str, number: str) -> None:
        method = self.client.v1.payment_methods.create(
            params={"type": "card",
                    "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
        )  # fmt: skip
        self.client.v1.payment_methods.attach(method.id, params={"customer": customer_id})
        self.client.v1.customers.update(
            customer_id, params={"invoice_settings": {"default_payment_method": method.id}}
        )

    def subscribe(self, tenant_id: str, customer_id: str, tier: str) -> str:
        subscription = self.client.v1.subscriptions.create(
            params={"customer": customer_id, "items": [{"plan": PRICES[tier]}],
                    "metadata": {"tenant_id": tenant_id}}
        )  # fmt: skip
        return subscription.id

    def deliveries(self, customer_id: str, *types: str) -> list[RecordedRequest]:
        """Wait until localstripe has posted an event of each type about this customer, then
        return every delivery about the customer not handled yet, in arrival order."""

        def about(request: RecordedRequest) -> bool:
            obj = request.json()["data"]["object"]
            return customer_id in (obj.get("customer"), obj.get("id"))

        def arrived(requests: list[RecordedRequest]) -> bool:
            seen = {r.json()["type"] for r in requests if about(r) and r.json()["id"]
                    not in self.handled}  # fmt: skip
            return set(types) <= seen

        requests = self.receiver.wait_for(arrived)
        return [r for r in requests if about(r) and r.json()["id"] not in self.handled]

    async def deliver(self, request: RecordedRequest) -> EventResult | None:
        """What the webhook endpoint does with one POST: verify, parse, handle."""
        event = self.parser.parse(request.body, request.headers.get("Stripe-Signature"))
        self.handled.add(request.json()["id"])
        return None if event is None else await self.billing.handle_event(event)

    async def deliver_all(self, customer_id: str, *types: str) -> list[EventResult]:
        results = [await self.deliver(r) for r in self.deliveries(customer_id, *types)]
        return [r for r in results if r is not None]

    async def deliver_signed(self, event_type: str, obj: Any, event_id: str) -> EventResult:
        """An event localstripe does not send, built from its real object and signed here."""
        body = event_json(event_type, obj.to_dict() if hasattr(obj, "to_dict") else obj,
                          event_id)  # fmt: skip
        event = self.parser.parse(body.encode(), sign(body))
        assert event is not None
        return await self.billing.handle_event(event)

    async def tenant(self, tenant_id: str = "t-1") -> Tenant:
        tenant = await self.world.tenant_repo.get(TenantId(tenant_id))
        assert tenant is not None
        return tenant


class _NoCheckout:
    async def create_checkout(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("checkout is tested against the recording server")


@pytest.fixture
def receiver() -> Iterator[Recorder]:
    with recording_server() as recorder:
        yield recorder


@pytest.fixture
def world() -> World:
    return World(build_catalog(catalog_data()))


@pytest.fixture
async def shop(localstripe: LocalStripe, receiver: Recorder, world: World) -> Shop:  # noqa: F811
    catalog = world.catalog
    await world.add_tenant("t-1", status=SubscriptionStatus.INCOMPLETE)
    localstripe.send_webhooks_to(f"{receiver.url}/api/v1/billing/webhook", WEBHOOK_SECRET)
    shop = Shop(localstripe, receiver, world, build_price_book(catalog, _price_pairs()))
    shop.create_prices()
    return shop


def _price_pairs() -> list[tuple[str, str]]:
    return [(price, tier) for tier, price in PRICES.items()]


# --- subscription life cycle through localstripe ------------------------------------------


async def test_a_new_subscription_activates_the_tenant_on_its_tier(shop: Shop) -> None:
    customer = shop.customer("t-1")
    subscription = shop.subscribe("t-1", customer, "premium")
    results = await shop.deliver_all(
        customer, "customer.subscription.created", "invoice.payment_succeeded"
    )
    assert "applied" in {r.outcome for r in results}
    tenant = await shop.tenant()
    assert tenant.tier == "premium"
    assert tenant.status is SubscriptionStatus.ACTIVE
    assert (tenant.stripe_customer_id, tenant.stripe_subscription_id) == (customer, subscription)
    live = shop.client.v1.subscriptions.retrieve(subscription)
    anchor = live.billing_cycle_anchor or live.current_period_start
    assert tenant.billing_anchor_day == datetime.fromtimestamp(anchor, UTC).day
    config = shop.world.writer.written[TenantId("t-1")]
    assert config.route.refs()[0] == shop.world.catalog.tier("premium").primary_model


async def test_a_legacy_price_id_gives_the_current_tier(shop: Shop) -> None:
    customer = shop.customer("t-1")
    shop.subscribe("t-1", customer, "plus")
    await shop.deliver_all(customer, "customer.subscription.created")
    assert (await shop.tenant()).tier == "premium"


async def test_a_legacy_basic_price_id_gives_starter(shop: Shop) -> None:
    await shop.world.add_tenant("t-2", tier="premium", status=SubscriptionStatus.INCOMPLETE)
    customer = shop.customer("t-2")
    shop.subscribe("t-2", customer, "basic")
    await shop.deliver_all(customer, "customer.subscription.created")
    assert (await shop.tenant("t-2")).tier == "starter"


async def test_a_plan_change_moves_the_tenant_to_the_new_tier(shop: Shop) -> None:
    customer = shop.customer("t-1")
    subscription = shop.subscribe("t-1", customer, "starter")
    await shop.deliver_all(customer, "customer.subscription.created")
    item = shop.client.v1.subscriptions.retrieve(subscription)["items"].data[0]
    changed = shop.client.v1.subscriptions.update(
        subscription, params={"items": [{"id": item.id, "plan": PRICES["byok"]}]}
    )
    assert changed.plan.id == PRICES["byok"]
    # Stripe stamps events in whole seconds; the change comes after the creation
    await asyncio.sleep(1.1)
    result = await shop.deliver_signed("customer.subscription.updated", changed, "evt_change")
    assert result.outcome == "applied"
    tenant = await shop.tenant()
    assert tenant.tier == "byok"
    written = shop.world.writer.written[TenantId("t-1")]
    assert written.tool_policy.name == shop.world.catalog.tier("byok").tool_policy


async def test_cancelling_in_stripe_cancels_the_tenant(shop: Shop) -> None:
    customer = shop.customer("t-1")
    subscription = shop.subscribe("t-1", customer, "starter")
    await shop.deliver_all(customer, "customer.subscription.created")
    shop.client.v1.subscriptions.cancel(subscription)
    results = await shop.deliver_all(customer, "customer.subscription.deleted")
    # localstripe posts asynchronously: a late event of the subscription's creation may
    # arrive with the deletion (seen once in CI); each is applied, the deletion last
    assert results and {r.outcome for r in results} == {"applied"}
    tenant = await shop.tenant()
    assert tenant.status is SubscriptionStatus.CANCELED
    assert not may_use_service(tenant, datetime.now(UTC), shop.world.catalog.past_due_grace_days)


async def test_a_replayed_delivery_is_applied_once(shop: Shop) -> None:
    customer = shop.customer("t-1")
    subscription = shop.subscribe("t-1", customer, "starter")
    await shop.deliver_all(customer, "customer.subscription.created")
    shop.client.v1.subscriptions.cancel(subscription)
    (deleted,) = [r for r in shop.deliveries(customer, "customer.subscription.deleted")
                  if r.json()["type"] == "customer.subscription.deleted"]  # fmt: skip
    first = await shop.deliver(deleted)
    canceled = await shop.tenant()
    second = await shop.deliver(deleted)
    assert first is not None and second is not None
    assert (first.outcome, first.replayed) == ("applied", False)
    assert (second.outcome, second.replayed) == ("applied", True)
    assert await shop.tenant() == canceled
    assert list(shop.events.events).count(deleted.json()["id"]) == 1


async def test_a_failed_payment_then_recovery(shop: Shop) -> None:
    """The renewal is charged to a card that declines: past due, working through the grace
    period; the customer fixes the card and the invoice is paid: active again."""
    customer = shop.customer("t-1")
    subscription = shop.subscribe("t-1", customer, "starter")
    await shop.deliver_all(customer, "customer.subscription.created", "invoice.payment_succeeded")
    shop.use_card(customer, DECLINED_CARD)
    shop.client.v1.invoice_items.create(
        params={"customer": customer, "amount": shop.world.catalog.tier("starter").price
                .amount_cents, "currency": "usd"}
    )  # fmt: skip
    renewal = shop.client.v1.invoices.create(
        params={"customer": customer, "subscription": subscription}
    )
    declined = shop.client.v1.invoices.pay(renewal.id)
    assert declined.status == "open"
    await asyncio.sleep(1.1)
    failed = await shop.deliver_signed("invoice.payment_failed", declined, "evt_renewal_failed")
    assert failed.outcome == "applied"
    past_due = await shop.tenant()
    assert past_due.status is SubscriptionStatus.PAST_DUE
    assert past_due.past_due_since is not None
    grace = shop.world.catalog.past_due_grace_days
    assert may_use_service(past_due, past_due.past_due_since, grace)

    shop.use_card(customer, GOOD_CARD)
    assert shop.client.v1.invoices.pay(renewal.id).status == "paid"
    results = await shop.deliver_all(customer, "invoice.payment_succeeded")
    assert "applied" in {r.outcome for r in results}
    recovered = await shop.tenant()
    assert recovered.status is SubscriptionStatus.ACTIVE
    assert recovered.past_due_since is None


async def test_a_subscription_to_an_unconfigured_price_is_refused_and_recorded(
    shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    product = shop.client.v1.products.create(params={"name": "mystery"})
    shop.client.v1.plans.create(
        params={"id": "price_unconfigured", "product": product.id, "amount": 100,
                "currency": "usd", "interval": "month"}
    )  # fmt: skip
    customer = shop.customer("t-1")
    shop.client.v1.subscriptions.create(
        params={"customer": customer, "items": [{"plan": "price_unconfigured"}],
                "metadata": {"tenant_id": "t-1"}}
    )  # fmt: skip
    (created,) = [r for r in shop.deliveries(customer, "customer.subscription.created")
                  if r.json()["type"] == "customer.subscription.created"]  # fmt: skip
    result = await shop.deliver(created)
    assert result is not None and result.outcome == "unknown_price"
    assert shop.events.events[created.json()["id"]][1] == "unknown_price"
    tenant = await shop.tenant()
    assert (tenant.tier, tenant.status) == ("starter", SubscriptionStatus.INCOMPLETE)
    assert "price_unconfigured" in caplog.text


# --- locally signed events -------------------------------------------------------------------


async def test_an_older_update_after_the_deletion_does_not_revive_the_subscription(
    shop: Shop,
) -> None:
    customer = shop.customer("t-1")
    subscription_id = shop.subscribe("t-1", customer, "starter")
    await shop.deliver_all(customer, "customer.subscription.created")
    live = shop.client.v1.subscriptions.retrieve(subscription_id).to_dict()
    now = int(time.time()) + 5
    deleted = {**live, "status": "canceled", "ended_at": now}
    updated = {**live, "plan": {"id": PRICES["premium"]}, "items": {"data": [
        {"plan": {"id": PRICES["premium"]}}]}}  # fmt: skip
    for event_type, obj, event_id, created in (
        ("customer.subscription.deleted", deleted, "evt_del", now),
        ("customer.subscription.updated", updated, "evt_upd", now - 3),
    ):
        body = event_json(event_type, obj, event_id, created)
        event = parse_stripe_event(body, sign(body), Secret(WEBHOOK_SECRET))
        assert event is not None
        await shop.billing.handle_event(event)
    tenant = await shop.tenant()
    assert tenant.status is SubscriptionStatus.CANCELED
    assert tenant.tier == "starter"
    assert shop.events.events["evt_upd"][1] == "stale"


async def test_a_completed_checkout_links_the_customer_to_the_tenant(shop: Shop) -> None:
    customer = shop.customer("t-other")
    session = {
        "id": "cs_test_1", "object": "checkout.session", "mode": "subscription",
        "client_reference_id": "t-1", "customer": customer, "subscription": "sub_from_checkout",
        "payment_status": "paid", "status": "complete",
        "metadata": {"tenant_id": "t-1", "tier": "premium"},
    }  # fmt: skip
    result = await shop.deliver_signed("checkout.session.completed", session, "evt_checkout")
    assert result.tenant_id == "t-1"
    tenant = await shop.tenant()
    assert tenant.stripe_customer_id == customer
    assert tenant.stripe_subscription_id == "sub_from_checkout"
    assert (tenant.tier, tenant.status) == ("premium", SubscriptionStatus.ACTIVE)


async def test_an_invoice_in_the_current_api_shape_names_its_subscription(shop: Shop) -> None:
    invoice = {
        "id": "in_1", "object": "invoice", "customer": "cus_x", "status": "paid",
        "parent": {"type": "subscription_details", "subscription_details": {
            "subscription": "sub_x", "metadata": {"tenant_id": "t-1"}}},
    }  # fmt: skip
    body = event_json("invoice.paid", invoice, "evt_paid")
    event = parse_stripe_event(body, sign(body), Secret(WEBHOOK_SECRET))
    assert event is not None
    assert (event.kind, event.tenant_id, event.subscription_id, event.customer_id) == (
        EventKind.INVOICE_PAID, "t-1", "sub_x", "cus_x",
    )  # fmt: skip
    await shop.billing.handle_event(event)
    assert (await shop.tenant()).status is SubscriptionStatus.ACTIVE


def test_a_subscription_in_the_current_api_shape_names_its_price_and_period() -> None:
    start = int(datetime(2026, 1, 31, 10, tzinfo=UTC).timestamp())
    subscription = {
        "id": "sub_1", "object": "subscription", "customer": {"id": "cus_1"}, "status": "trialing",
        "metadata": {"tenant_id": "t-1"},
        "items": {"data": [{"price": {"id": PRICES["plus"]}, "current_period_start": start}]},
    }  # fmt: skip
    body = event_json("customer.subscription.updated", subscription, "evt_1")
    event = parse_stripe_event(body, sign(body), Secret(WEBHOOK_SECRET))
    assert event is not None
    assert (event.price_id, event.provider_status, event.customer_id) == (
        PRICES["plus"], "trialing", "cus_1",
    )  # fmt: skip
    assert event.billing_anchor == datetime(2026, 1, 31, 10, tzinfo=UTC)


def test_event_types_tierkeeper_does_not_act_on_parse_to_nothing() -> None:
    body = event_json("customer.created", {"id": "cus_1", "object": "customer"}, "evt_1")
    assert parse_stripe_event(body, sign(body), Secret(WEBHOOK_SECRET)) is None
    payment = {"id": "cs_1", "object": "checkout.session", "mode": "payment"}
    body = event_json("checkout.session.completed", payment, "evt_2")
    assert parse_stripe_event(body, sign(body), Secret(WEBHOOK_SECRET)) is None


# --- signatures ------------------------------------------------------------------------------


def _subscription_body() -> str:
    return event_json(
        "customer.subscription.updated",
        {"id": "sub_1", "customer": "cus_1", "status": "active", "metadata": {"tenant_id": "t-1"}},
        "evt_sig",
    )


@pytest.mark.parametrize(
    ("label", "header"),
    [
        ("wrong secret", lambda body: sign(body, secret="whsec_someone_else")),
        ("tampered body", lambda body: sign(body.replace("active", "canceled"))),
        ("no header", lambda body: None),
        ("garbage header", lambda body: "not-a-signature"),
        ("no v1 scheme", lambda body: sign(body).replace("v1=", "v0=")),
    ],
)
def test_a_bad_signature_is_refused(label: str, header: Any) -> None:
    body = _subscription_body()
    with pytest.raises(InvalidSignature) as raised:
        parse_stripe_event(body.encode(), header(body), Secret(WEBHOOK_SECRET))
    assert raised.value.code == "invalid_signature"


def test_a_stale_signature_is_refused_as_a_replay() -> None:
    body = _subscription_body()
    old = int(time.time()) - 301
    with pytest.raises(InvalidSignature, match="tolerance"):
        parse_stripe_event(body, sign(body, timestamp=old), Secret(WEBHOOK_SECRET))
    assert parse_stripe_event(body, sign(body, timestamp=old + 10), Secret(WEBHOOK_SECRET))


async def test_a_refused_signature_changes_nothing(shop: Shop) -> None:
    before = await shop.tenant()
    body = event_json(
        "customer.subscription.created",
        {"id": "sub_1", "customer": "cus_1", "status": "active", "metadata": {"tenant_id": "t-1"},
         "plan": {"id": PRICES["premium"]}},
        "evt_forged",
    )  # fmt: skip
    with pytest.raises(InvalidSignature):
        shop.parser.parse(body, sign(body, secret="whsec_forger"))
    assert await shop.tenant() == before
    assert shop.events.events == {}


async def test_localstripe_signatures_verify_with_the_parser(shop: Shop) -> None:
    """localstripe's own POSTs, signed with the secret it was given, pass verification."""
    customer = shop.customer("t-1")
    (created,) = [r for r in shop.deliveries(customer, "customer.created")
                  if r.json()["type"] == "customer.created"]  # fmt: skip
    assert created.headers["Stripe-Signature"].startswith("t=")
    assert shop.parser.parse(created.body, created.headers["Stripe-Signature"]) is None
    with pytest.raises(InvalidSignature):
        parse_stripe_event(created.body, created.headers["Stripe-Signature"], Secret("whsec_no"))


# --- checkout session, at the HTTP layer -----------------------------------------------------


def _session_answer(request: RecordedRequest) -> dict[str, Any]:
    if request.path == "/v1/customers":
        return {"id": "cus_new_for_t42", "object": "customer"}
    return {
        "id": "cs_test_a1b2c3", "object": "checkout.session", "mode": "subscription",
        "url": "https://checkout.stripe.com/c/pay/cs_test_a1b2c3",
        "client_reference_id": request.form().get("client_reference_id"),
    }  # fmt: skip


@pytest.fixture
def stripe_api() -> Iterator[Recorder]:
    with recording_server() as recorder:
        recorder.response = _session_answer
        yield recorder


def _gateway(recorder: Recorder, key: str = "sk_test_gateway") -> StripeBillingGateway:
    return StripeBillingGateway(build_stripe_client(Secret(key), recorder.url,
                                                    max_network_retries=0))  # fmt: skip


async def test_checkout_sends_a_subscription_session_for_the_tenant(
    stripe_api: Recorder, world: World
) -> None:
    tenant = await world.add_tenant("t-42", status=SubscriptionStatus.INCOMPLETE)
    session = await _gateway(stripe_api).create_checkout(
        tenant, PRICES["premium"], "premium",
        "http://127.0.0.1:8000/plan?checkout=success&session_id={CHECKOUT_SESSION_ID}",
        "http://127.0.0.1:8000/plan?checkout=canceled",
    )  # fmt: skip
    assert (session.session_id, session.url) == (
        "cs_test_a1b2c3", "https://checkout.stripe.com/c/pay/cs_test_a1b2c3",
    )  # fmt: skip
    (request,) = stripe_api.requests
    assert (request.method, request.path) == ("POST", "/v1/checkout/sessions")
    assert request.headers["Authorization"] == "Bearer sk_test_gateway"
    form = request.form()
    assert form == {
        "mode": "subscription",
        "client_reference_id": "t-42",
        "line_items[0][price]": PRICES["premium"],
        "line_items[0][quantity]": "1",
        "metadata[tenant_id]": "t-42",
        "metadata[tier]": "premium",
        "subscription_data[metadata][tenant_id]": "t-42",
        "subscription_data[metadata][tier]": "premium",
        "success_url": "http://127.0.0.1:8000/plan?checkout=success&session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://127.0.0.1:8000/plan?checkout=canceled",
    }


async def test_checkout_reuses_the_tenants_stripe_customer(
    stripe_api: Recorder, world: World
) -> None:
    tenant = await world.add_tenant("t-42", stripe_customer_id="cus_existing")
    await _gateway(stripe_api).create_checkout(tenant, "price_x", "starter", "http://s", "http://c")
    assert stripe_api.requests[0].form()["customer"] == "cus_existing"


async def test_checkout_through_the_use_case_sells_the_configured_price(
    stripe_api: Recorder, world: World
) -> None:
    await world.add_tenant("t-42")
    book = build_price_book(world.catalog, _price_pairs())
    billing = Billing(world.catalog, book, world.tenant_repo, InMemoryProcessedEventRepository(),
                      _gateway(stripe_api), world.configs, world.clock,
                      "https://tierkeeper.example", subscriptions=world.subscriptions,
                      invoices=InMemoryPaidInvoiceRepository(),
                      unit_of_work=world.unit_of_work)  # fmt: skip
    await billing.checkout(TenantId("t-42"), "basic", "owner@example.com")
    customer, session = stripe_api.requests
    assert customer.path == "/v1/customers"
    assert customer.form() == {"metadata[tenant_id]": "t-42", "email": "owner@example.com"}
    form = session.form()
    assert form["customer"] == "cus_new_for_t42"
    assert form["line_items[0][price]"] == book.price_for(TierId("starter")) == PRICES["starter"]
    assert form["metadata[tier]"] == "starter"
    assert form["success_url"].startswith("https://tierkeeper.example/plan?checkout=success")


async def test_a_stripe_refusal_is_a_payment_provider_error_without_the_key(
    stripe_api: Recorder, world: World
) -> None:
    stripe_api.status = 400
    stripe_api.response = lambda request: {"error": {
        "type": "invalid_request_error", "code": "resource_missing",
        "param": "line_items[0][price]", "message": "No such price: 'price_gone'"}}  # fmt: skip
    tenant = await world.add_tenant("t-42")
    with pytest.raises(PaymentProviderError) as raised:
        await _gateway(stripe_api, "sk_test_do_not_leak").create_checkout(
            tenant, "price_gone", "starter", "http://s", "http://c"
        )
    assert raised.value.code == "payment_provider_error"
    assert "resource_missing" in raised.value.detail
    assert "No such price" in raised.value.detail
    assert "sk_test_do_not_leak" not in raised.value.detail


async def test_a_stripe_without_checkout_is_a_payment_provider_error(
    localstripe: LocalStripe,  # noqa: F811
    world: World,
) -> None:
    """localstripe has no Checkout Sessions: the 404 it answers is reported, not raised raw."""
    tenant = await world.add_tenant("t-42")
    gateway = StripeBillingGateway(localstripe.client())
    with pytest.raises(PaymentProviderError, match="HTTP 404"):
        await gateway.create_checkout(tenant, PRICES["starter"], "starter", "http://s", "http://c")


async def test_an_unreachable_stripe_is_a_payment_provider_error(world: World) -> None:
    with recording_server() as closed:
        url = closed.url
    tenant = await world.add_tenant("t-42")
    gateway = StripeBillingGateway(build_stripe_client(Secret("sk_test_x"), url,
                                                       max_network_retries=0))  # fmt: skip
    with pytest.raises(PaymentProviderError):
        await gateway.create_checkout(tenant, "price_x", "starter", "http://s", "http://c")


def test_a_signed_payload_that_is_not_an_event_is_refused() -> None:
    body = "{not json"
    with pytest.raises(InvalidSignature, match="not a JSON event"):
        parse_stripe_event(body, sign(body), Secret(WEBHOOK_SECRET))


async def test_a_session_without_a_url_is_a_payment_provider_error(
    stripe_api: Recorder, world: World
) -> None:
    stripe_api.response = lambda request: {"id": "cs_test_nourl", "object": "checkout.session"}
    tenant = await world.add_tenant("t-42")
    with pytest.raises(PaymentProviderError, match="without URL"):
        await _gateway(stripe_api).create_checkout(
            tenant, "price_x", "starter", "http://s", "http://c"
        )
