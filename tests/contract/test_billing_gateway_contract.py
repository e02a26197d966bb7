"""The ``BillingGateway`` contract: the fake and the Stripe adapter (against localstripe, behind
the recording front that answers the sessions localstripe lacks) make customers, change a
subscription's price, set and clear cancel-at-period-end, and open portal sessions alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from adapters.billing.stripe_gateway import StripeBillingGateway, build_stripe_client
from domain.errors import PaymentProviderError
from domain.ids import TenantId, TierId
from domain.tenants import SubscriptionStatus, Tenant
from tests.fakes import FakeBillingGateway
from tests.support.localstripe import (  # noqa: F401  (fixtures)
    API_KEY,
    LocalStripe,
    localstripe,
    localstripe_server,
)
from tests.support.stripe_shim import stripe_shim

pytestmark = pytest.mark.contract

PRICES = ("price_contract_a", "price_contract_b")
TENANT = Tenant(TenantId("t-c"), TierId("starter"), SubscriptionStatus.INCOMPLETE, "UTC", 1,
                datetime(2026, 3, 1, tzinfo=UTC))  # fmt: skip


@attrs.frozen
class Provider:
    gateway: Any
    subscribe: Any
    """(customer id, price id) -> subscription id: what a completed checkout leaves."""
    checkouts: Any
    """() -> what each checkout asked the provider for: (tenant id, price, tier, customer)."""


def _fake() -> Provider:
    fake = FakeBillingGateway()
    start = datetime(2026, 3, 1, tzinfo=UTC)

    def subscribe(customer: str, price: str) -> str:
        return fake.subscribe(price, start, start + timedelta(days=31)).subscription_id

    def checkouts() -> list[tuple[str, str, str, str | None]]:
        return [(s["tenant"], s["price"], s["tier"], s.get("customer")) for s in fake.sessions]

    return Provider(fake, subscribe, checkouts)


@pytest.fixture(params=("fake", "stripe"))
def provider(request: pytest.FixtureRequest) -> Iterator[Provider]:
    if request.param == "fake":
        yield _fake()
        return
    ls: LocalStripe = request.getfixturevalue("localstripe")
    client = ls.client()
    product = client.v1.products.create(params={"name": "contract"})
    for price in PRICES:
        client.v1.plans.create(params={"id": price, "product": product.id, "amount": 500,
                                       "currency": "usd", "interval": "month"})  # fmt: skip

    def subscribe(customer: str, price: str) -> str:
        card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
        method = client.v1.payment_methods.create(params={"type": "card", "card": card})
        client.v1.payment_methods.attach(method.id, params={"customer": customer})
        client.v1.customers.update(
            customer, params={"invoice_settings": {"default_payment_method": method.id}}
        )
        created = client.v1.subscriptions.create(
            params={"customer": customer, "items": [{"plan": price}]}
        )
        return str(created.id)

    with stripe_shim(ls.url) as shim:

        def checkouts() -> list[tuple[str, str, str, str | None]]:
            sent = [r.form() for r in shim.requests if r.path == "/v1/checkout/sessions"]
            return [(f["client_reference_id"], f["line_items[0][price]"], f["metadata[tier]"],
                     f.get("customer")) for f in sent]  # fmt: skip

        gateway = StripeBillingGateway(build_stripe_client(API_KEY, shim.url,
                                                           max_network_retries=0))  # fmt: skip
        yield Provider(gateway, subscribe, checkouts)


async def test_a_checkout_sells_the_price_to_the_tenant(provider: Provider) -> None:
    urls = ("https://tk.example/billing/success", "https://tk.example/billing/cancel")
    first = await provider.gateway.create_checkout(TENANT, PRICES[0], "starter", *urls)
    customer = await provider.gateway.create_customer(TENANT, None)
    returning = attrs.evolve(TENANT, stripe_customer_id=customer)
    second = await provider.gateway.create_checkout(returning, PRICES[1], "premium", *urls)
    assert first.session_id.startswith("cs_") and second.session_id.startswith("cs_")
    assert first.session_id != second.session_id
    assert first.url.startswith("https://") and first.session_id in first.url
    assert provider.checkouts() == [
        (TENANT.id, PRICES[0], "starter", None),
        (TENANT.id, PRICES[1], "premium", customer),
    ]


async def test_a_customer_is_made_for_the_tenant(provider: Provider) -> None:
    first = await provider.gateway.create_customer(TENANT, "a@example.com")
    second = await provider.gateway.create_customer(TENANT, None)
    assert first.startswith("cus_") and second.startswith("cus_") and first != second


async def test_a_price_change_is_on_the_same_subscription(provider: Provider) -> None:
    customer = await provider.gateway.create_customer(TENANT, None)
    subscription = provider.subscribe(customer, PRICES[0])
    for prorate in (True, False):
        changed = await provider.gateway.change_price(subscription, PRICES[1], prorate)
        assert (changed.subscription_id, changed.price_id) == (subscription, PRICES[1])
        assert changed.provider_status == "active"
        assert changed.current_period_end is not None
        assert changed.current_period_start is not None
        assert changed.current_period_end > changed.current_period_start
        back = await provider.gateway.change_price(subscription, PRICES[0], prorate)
        assert back.price_id == PRICES[0]


async def test_cancel_at_period_end_is_set_and_cleared(provider: Provider) -> None:
    customer = await provider.gateway.create_customer(TENANT, None)
    subscription = provider.subscribe(customer, PRICES[0])
    ending = await provider.gateway.set_cancel_at_period_end(subscription, True)
    assert (ending.subscription_id, ending.cancel_at_period_end) == (subscription, True)
    assert ending.provider_status == "active"
    resumed = await provider.gateway.set_cancel_at_period_end(subscription, False)
    assert resumed.cancel_at_period_end is False


async def test_an_unknown_subscription_is_a_payment_provider_error(provider: Provider) -> None:
    with pytest.raises(PaymentProviderError):
        await provider.gateway.change_price("sub_unknown", PRICES[0], True)
    with pytest.raises(PaymentProviderError):
        await provider.gateway.set_cancel_at_period_end("sub_unknown", True)


async def test_a_portal_session_has_a_url(provider: Provider) -> None:
    customer = await provider.gateway.create_customer(TENANT, None)
    url = await provider.gateway.create_portal_session(customer, "https://tk.example/settings")
    assert url.startswith("https://")
