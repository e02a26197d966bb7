"""Account deletion cancels the subscription at once on a real Stripe API (localstripe), and
the ``SubscriptionCanceler`` contract holds for the Stripe adapter and the fake alike."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from adapters.billing.cancel import StripeSubscriptionCanceler
from domain.secrets import Secret
from domain.tenants import SubscriptionStatus
from tests.fakes import FakeSubscriptionCanceler, InMemoryAuthTokenRepository
from tests.support.localstripe import (  # noqa: F401  (fixtures)
    LocalStripe,
    localstripe,
    localstripe_server,
)
from tests.unit.conftest import World, catalog_data

pytestmark = pytest.mark.integration

PASSWORD = Secret("ten chars!")


def live_subscription(stripe_: LocalStripe, price_id: str = "price_tk_cancel") -> str:
    client = stripe_.client()
    product = client.v1.products.create(params={"name": "tierkeeper"})
    client.v1.plans.create(
        params={"id": price_id, "product": product.id, "amount": 700, "currency": "usd",
                "interval": "month"}
    )  # fmt: skip
    customer = client.v1.customers.create(params={"email": "owner@example.com"})
    method = client.v1.payment_methods.create(
        params={"type": "card",
                "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031,
                         "cvc": "123"}}
    )  # fmt: skip
    client.v1.payment_methods.attach(method.id, params={"customer": customer.id})
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": method.id}}
    )
    subscription = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"plan": price_id}]}
    )
    assert subscription.status == "active"
    return str(subscription.id)


@pytest.fixture(params=["fake", "stripe"])
def canceler(request: pytest.FixtureRequest) -> tuple[Any, Any]:
    """The port and a way to read a subscription's status back from where it lives."""
    if request.param == "fake":
        fake = FakeSubscriptionCanceler()
        return fake, lambda sub: "canceled" if sub in fake.canceled else "active"
    stripe_: LocalStripe = request.getfixturevalue("localstripe")
    client = stripe_.client()
    return StripeSubscriptionCanceler(
        client
    ), lambda sub: client.v1.subscriptions.retrieve(sub).status


async def test_a_canceled_subscription_is_canceled_at_once(
    canceler: tuple[Any, Any], request: pytest.FixtureRequest
) -> None:
    port, status_of = canceler
    if isinstance(port, FakeSubscriptionCanceler):
        subscription = "sub_fake_1"
    else:
        subscription = live_subscription(request.getfixturevalue("localstripe"))
    await port.cancel_now(subscription)
    assert status_of(subscription) == "canceled"


async def test_cancelling_an_unknown_subscription_is_not_an_error(
    canceler: tuple[Any, Any],
) -> None:
    port, _ = canceler
    await port.cancel_now("sub_does_not_exist")


async def test_deleting_an_account_cancels_its_stripe_subscription(
    localstripe: LocalStripe,  # noqa: F811
) -> None:
    from domain.catalog import build_catalog

    world = World(build_catalog(catalog_data()))
    tokens = InMemoryAuthTokenRepository()
    accounts = world.accounts(tokens)
    signed = await accounts.signup("owner@example.com", PASSWORD)
    subscription = live_subscription(localstripe, "price_tk_delete")
    tenant = await world.tenant_repo.get(signed.tenant.id)
    assert tenant is not None
    await world.tenant_repo.save(
        attrs.evolve(tenant, status=SubscriptionStatus.ACTIVE, stripe_subscription_id=subscription)
    )
    changes = attrs.evolve(
        world.account_changes(tokens),
        canceler=StripeSubscriptionCanceler(localstripe.client()),
    )
    await changes.delete_account(await accounts.customer(signed.token.reveal()), PASSWORD)
    assert localstripe.client().v1.subscriptions.retrieve(subscription).status == "canceled"
    assert await world.tenant_repo.user(signed.user.id) is None
