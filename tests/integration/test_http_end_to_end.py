"""End to end through the HTTP API on the production adapters: PostgreSQL (embedded), Vault
transit (OpenBao), Stripe (localstripe for the subscription and its signed webhooks, a
recording stand-in for Checkout Sessions, which localstripe lacks), the provider stub, and
the pinned OpenClaw validator on the config written.

signup → checkout → Stripe's webhooks → BYOK PUT → test connection → admit/settle → config.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from adapters.sql.database import open_database, upgrade
from entrypoints.bootstrap import Services, build_services
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.http.conftest import (
    PROBE_TIMEOUT_S,
    TEST_PASSWORD_HASHER,
    catalog,
    key_for,
    provider_stub,
    sign_up,
)
from tests.support import postgres
from tests.support.localstripe import API_KEY, LocalStripe, localstripe, localstripe_server
from tests.support.openbao import OpenBaoServer
from tests.support.openclaw import OpenClawValidator, ensure_installed
from tests.support.provider_stub import ProviderStub
from tests.support.recording_server import RecordedRequest, Recorder, recording_server

pytestmark = [pytest.mark.integration, pytest.mark.http]

__all__ = ["catalog", "localstripe", "localstripe_server", "provider_stub"]

WEBHOOK_SECRET = "whsec_tierkeeper_e2e"
PRICES = {"starter": "price_e2e_starter", "premium": "price_e2e_premium", "byok": "price_e2e_byok"}
GOOD_CARD = "4242424242424242"


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres.fresh_database("http_e2e") as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="module")
def validator(tmp_path_factory: pytest.TempPathFactory) -> OpenClawValidator:
    return ensure_installed(scratch=tmp_path_factory.mktemp("openclaw-scratch"))


@pytest.fixture
def checkout_api() -> Iterator[Recorder]:
    with recording_server() as recorder:
        recorder.response = lambda request: {
            "id": "cs_e2e",
            "object": "checkout.session",
            "url": "https://checkout.stripe.com/c/pay/cs_e2e",
        }
        yield recorder


@pytest.fixture
def webhook_receiver() -> Iterator[Recorder]:
    with recording_server() as recorder:
        yield recorder


@pytest.fixture
def environ(
    tmp_path: Path,
    postgres_url: str,
    openbao: OpenBaoServer,
    provider_stub: ProviderStub,
    checkout_api: Recorder,
) -> dict[str, str]:
    return {
        "TIERKEEPER_VAR_DIR": str(tmp_path / "var"),
        "TIERKEEPER_DATABASE_URL": postgres_url,
        "TIERKEEPER_KEY_STORE": "vault",
        "TIERKEEPER_VAULT_ADDR": openbao.addr,
        "TIERKEEPER_VAULT_TOKEN": openbao.root_token,
        "TIERKEEPER_VAULT_TRANSIT_KEY": "tierkeeper-e2e",
        "TIERKEEPER_CONFIG_ROOT": str(tmp_path / "openclaw"),
        "TIERKEEPER_STRIPE_API_KEY": API_KEY.reveal(),
        "TIERKEEPER_STRIPE_API_BASE": checkout_api.url,
        "TIERKEEPER_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        **{f"TIERKEEPER_STRIPE_PRICE_{tier.upper()}": price for tier, price in PRICES.items()},
        **provider_stub.provider_env(),
    }


@pytest.fixture
async def client(
    environ: dict[str, str], service_token: dict[str, str]
) -> AsyncIterator[AsyncTestClient[Any]]:
    """The services are built by the app's lifespan, on the app's own event loop (the test
    client runs the app in a thread of its own; asyncpg pools belong to one loop)."""

    async def build(settings: Settings) -> Services:
        built = await build_services(
            settings, probe_timeout_s=PROBE_TIMEOUT_S, password_hasher=TEST_PASSWORD_HASHER
        )
        token = await built.accounts.create_service_token("gateway-e2e")
        service_token["Authorization"] = f"Bearer {token.reveal()}"
        return built

    app = create_app(settings=Settings.from_environ(environ), build=build)
    async with AsyncTestClient(app) as test_client:
        yield test_client


@pytest.fixture
def service_token() -> dict[str, str]:
    return {}


def subscribe_on_stripe(stripe: LocalStripe, tenant_id: str, tier: str) -> str:
    """What Stripe does when the customer completes the checkout: a customer with a card and
    a subscription to the tier's price, the tenant id in the metadata."""
    client = stripe.client()
    product = client.v1.products.create(params={"name": "tierkeeper"})
    for name, price in PRICES.items():
        client.v1.plans.create(
            params={"id": price, "product": product.id, "currency": "usd", "interval": "month",
                    "amount": 600 if name == "byok" else 700}
        )  # fmt: skip
    customer = client.v1.customers.create(
        params={"email": f"{tenant_id}@example.com", "metadata": {"tenant_id": tenant_id}}
    )
    method = client.v1.payment_methods.create(
        params={"type": "card",
                "card": {"number": GOOD_CARD, "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    )  # fmt: skip
    client.v1.payment_methods.attach(method.id, params={"customer": customer.id})
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": method.id}}
    )
    client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"plan": PRICES[tier]}],
                "metadata": {"tenant_id": tenant_id}}
    )  # fmt: skip
    return str(customer.id)


def deliveries_about(receiver: Recorder, customer_id: str) -> list[RecordedRequest]:
    def about(request: RecordedRequest) -> bool:
        obj = request.json()["data"]["object"]
        return customer_id in (obj.get("customer"), obj.get("id"))

    receiver.wait_for(
        lambda requests: any(
            about(r) and r.json()["type"] == "customer.subscription.created" for r in requests
        )
    )
    return [r for r in receiver.requests if about(r)]


async def test_a_customer_goes_from_signup_to_a_valid_byok_config(
    client: AsyncTestClient[Any],
    service_token: dict[str, str],
    postgres_url: str,
    localstripe: LocalStripe,
    webhook_receiver: Recorder,
    checkout_api: Recorder,
    validator: OpenClawValidator,
    tmp_path: Path,
) -> None:
    customer = await sign_up(client)

    checkout = await client.post(
        "/api/v1/billing/checkout", json={"tier": "byok"}, headers=customer.headers
    )
    assert checkout.status_code == 200, checkout.text
    assert checkout.json()["checkout_url"].startswith("https://checkout.stripe.com/")
    sent = checkout_api.requests[-1].form()
    assert sent["client_reference_id"] == customer.tenant_id
    assert PRICES["byok"] in sent.values()

    localstripe.send_webhooks_to(f"{webhook_receiver.url}/api/v1/billing/webhook", WEBHOOK_SECRET)
    stripe_customer = subscribe_on_stripe(localstripe, customer.tenant_id, "byok")
    for delivery in deliveries_about(webhook_receiver, stripe_customer):
        answer = await client.post(
            "/api/v1/billing/webhook",
            content=delivery.body,
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": delivery.headers["Stripe-Signature"],
            },
        )
        assert answer.status_code == 200, answer.text
    tenant = (await client.get("/api/v1/tenant", headers=customer.headers)).json()
    assert (tenant["tier"], tenant["status"]) == ("byok", "active")

    put = await client.put(
        "/api/v1/settings/llm-config/",
        json={"provider": "openai", "api_key": key_for("openai"), "model_preference": "gpt-4o"},
        headers=customer.headers,
    )
    assert put.status_code == 200, put.text
    database = await open_database(postgres_url)
    try:
        stored = await database.credentials.get(customer.tenant_id)
    finally:
        await database.close()
    assert stored is not None and stored.ciphertext.store == "vault"
    assert stored.ciphertext.token.startswith("vault:v")

    tested = await client.post(
        "/api/v1/settings/llm-config/test", json={}, headers=customer.headers
    )
    assert tested.json()["result"] == "valid"
    got = (await client.get("/api/v1/settings/llm-config/", headers=customer.headers)).json()
    assert got["status"] == "valid"

    service = service_token
    admitted = await client.post(
        "/api/v1/gateway/admit",
        json={"tenant_id": customer.tenant_id, "message_id": "e2e-1", "max_tokens": 2000},
        headers=service,
    )
    assert admitted.status_code == 200, admitted.text
    assert admitted.json()["model"]["primary"].endswith("/gpt-4o")
    settled = await client.post(
        "/api/v1/gateway/settle",
        json={"tenant_id": customer.tenant_id, "message_id": "e2e-1", "model": "openai/gpt-4o",
              "input_tokens": 1200, "output_tokens": 300, "credential": "tenant"},
        headers=service,
    )  # fmt: skip
    assert settled.json() == {"settled": True, "counted_as": "tenant", "anomaly": None}
    usage = (await client.get("/api/v1/usage", headers=customer.headers)).json()
    assert usage["day"]["messages_used"] == 1
    assert usage["period"]["tokens_used"] == 1500

    config = await client.get(
        f"/api/v1/gateway/tenants/{customer.tenant_id}/config", headers=service
    )
    assert config.status_code == 200
    assert key_for("openai") not in config.text
    written = tmp_path / "openclaw" / customer.tenant_id / "openclaw.json"
    report = validator.validate(written)
    assert report.valid, report.issues
