"""Billing over HTTP: checkout through Stripe's adapter (localstripe, and an unreachable
Stripe), and signed webhooks applied once."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from entrypoints.bootstrap import Services, build_services
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.http.conftest import (
    PROBE_TIMEOUT_S,
    TEST_PASSWORD_HASHER,
    Customer,
    http_environ,
    sign_up,
    stripe_event,
    stripe_signature,
)
from tests.support.provider_stub import ProviderStub
from tests.support.recording_server import Recorder, recording_server

pytestmark = pytest.mark.http

WEBHOOK = "/api/v1/billing/webhook"


async def post_event(client: AsyncTestClient[Any], payload: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return await client.post(WEBHOOK, content=payload, headers=headers)


def completed_checkout(event_id: str, tenant_id: str, tier: str = "premium") -> bytes:
    return stripe_event(
        event_id,
        "checkout.session.completed",
        {
            "id": f"cs_{event_id}",
            "object": "checkout.session",
            "mode": "subscription",
            "payment_status": "paid",
            "customer": f"cus_{event_id}",
            "subscription": f"sub_{event_id}",
            "client_reference_id": tenant_id,
            "metadata": {"tenant_id": tenant_id, "tier": tier},
        },
    )


async def test_a_signed_checkout_completion_activates_the_tenant_once(
    client: AsyncTestClient[Any], customer: Customer, services: Services
) -> None:
    payload = completed_checkout("evt_1", customer.tenant_id)
    first = await post_event(client, payload, stripe_signature(payload))
    assert first.status_code == 200, first.text
    assert first.json() == {"received": True}
    tenant = (await client.get("/api/v1/tenant", headers=customer.headers)).json()
    assert tenant["status"] == "active"
    assert tenant["tier"] == "premium"
    await services.tenants.change_tier(customer.tenant_id, "starter")
    again = await post_event(client, payload, stripe_signature(payload))
    assert again.status_code == 200
    assert again.json() == {"received": True}
    tenant = (await client.get("/api/v1/tenant", headers=customer.headers)).json()
    assert tenant["tier"] == "starter"


@pytest.mark.parametrize("signature", [None, "t=1,v1=deadbeef", "garbage", "stale", "wrong"])
async def test_a_webhook_without_a_valid_signature_is_refused_and_changes_nothing(
    client: AsyncTestClient[Any], customer: Customer, signature: str | None
) -> None:
    payload = completed_checkout("evt_bad", customer.tenant_id)
    if signature == "stale":
        signature = stripe_signature(payload, at=int(time.time()) - 3600)
    elif signature == "wrong":
        signature = stripe_signature(payload, secret="whsec_someone_else")
    response = await post_event(client, payload, signature)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    tenant = (await client.get("/api/v1/tenant", headers=customer.headers)).json()
    assert tenant["status"] == "incomplete"


async def test_an_event_type_not_handled_is_acknowledged(client: AsyncTestClient[Any]) -> None:
    payload = stripe_event("evt_other", "customer.created", {"id": "cus_1"})
    response = await post_event(client, payload, stripe_signature(payload))
    assert response.status_code == 200
    assert response.json() == {"received": True}


async def test_checkout_with_stripe_unreachable_is_a_payment_provider_error(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    response = await client.post(
        "/api/v1/billing/checkout", json={"tier": "starter"}, headers=customer.headers
    )
    assert response.status_code == 502
    assert response.json()["code"] == "payment_provider_error"
    assert "sk_test" not in response.text


async def test_checkout_of_an_unknown_tier_names_the_field(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    response = await client.post(
        "/api/v1/billing/checkout", json={"tier": "platinum"}, headers=customer.headers
    )
    assert response.status_code == 422
    assert response.json()["field"] == "tier"


@pytest.fixture
def stripe_api() -> Iterator[Recorder]:
    """A stand-in Stripe API for Checkout Sessions, which localstripe does not implement."""
    with recording_server() as recorder:
        recorder.response = lambda request: {
            "id": "cs_test_recorded",
            "object": "checkout.session",
            "url": "https://checkout.stripe.com/c/pay/cs_test_recorded",
        }
        yield recorder


@pytest.fixture
async def stripe_client(
    tmp_path: Path, sqlite_template: Path, provider_stub: ProviderStub, stripe_api: Recorder
) -> AsyncIterator[AsyncTestClient[Any]]:
    environ = http_environ(
        tmp_path, sqlite_template, provider_stub, TIERKEEPER_STRIPE_API_BASE=stripe_api.url
    )
    services = await build_services(
        Settings.from_environ(environ),
        probe_timeout_s=PROBE_TIMEOUT_S,
        password_hasher=TEST_PASSWORD_HASHER,
    )
    try:
        async with AsyncTestClient(create_app(services)) as client:
            yield client
    finally:
        await services.close()


@pytest.mark.parametrize(
    ("tier", "price"), [("premium", "price_premium_test"), ("plus", "price_premium_test")]
)
async def test_checkout_answers_a_stripe_checkout_url_for_the_tiers_price(
    stripe_client: AsyncTestClient[Any], stripe_api: Recorder, tier: str, price: str
) -> None:
    customer = await sign_up(stripe_client)
    response = await stripe_client.post(
        "/api/v1/billing/checkout", json={"tier": tier}, headers=customer.headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "checkout_url": "https://checkout.stripe.com/c/pay/cs_test_recorded",
        "session_id": "cs_test_recorded",
    }
    sent = stripe_api.requests[-1]
    assert sent.path == "/v1/checkout/sessions"
    form = sent.form()
    assert form["client_reference_id"] == customer.tenant_id
    assert form["mode"] == "subscription"
    assert price in form.values()


async def test_billing_endpoints_without_stripe_configured_answer_503(
    tmp_path: Path, sqlite_template: Path, provider_stub: ProviderStub
) -> None:
    environ = http_environ(tmp_path, sqlite_template, provider_stub)
    for name in ("TIERKEEPER_STRIPE_API_KEY", "TIERKEEPER_STRIPE_WEBHOOK_SECRET"):
        environ.pop(name)
    services = await build_services(
        Settings.from_environ(environ), password_hasher=TEST_PASSWORD_HASHER
    )
    try:
        async with AsyncTestClient(create_app(services)) as client:
            customer = await sign_up(client)
            checkout = await client.post(
                "/api/v1/billing/checkout", json={"tier": "starter"}, headers=customer.headers
            )
            assert checkout.status_code == 503
            assert checkout.json()["code"] == "billing_not_configured"
            webhook = await post_event(client, b"{}", "t=1,v1=00")
            assert webhook.status_code == 503
    finally:
        await services.close()
