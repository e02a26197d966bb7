"""``BillingGateway`` on Stripe: subscription-mode Checkout Sessions through an injected
``StripeClient`` (no module-global API key). The SDK is synchronous; its calls run in a
worker thread so the event loop never waits on Stripe."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import stripe

from domain.errors import PaymentProviderError
from domain.ports import CheckoutSession
from domain.secrets import Secret
from domain.tenants import Tenant


def build_stripe_client(
    api_key: Secret, api_base: str | None = None, max_network_retries: int = 2
) -> stripe.StripeClient:
    """A client for the account the key names; ``api_base`` points it elsewhere (a test
    server such as localstripe)."""
    return stripe.StripeClient(
        api_key.reveal(),
        base_addresses={"api": api_base.rstrip("/")} if api_base else None,
        max_network_retries=max_network_retries,
    )


def checkout_params(
    tenant: Tenant, price_id: str, tier: str, success_url: str, cancel_url: str
) -> dict[str, Any]:
    """One subscription to the tier's price. The tenant id travels as the client reference
    and, with the tier, as metadata on the session and on the subscription, so every later
    event names its tenant; a tenant who already is a Stripe customer stays the same one."""
    metadata = {"tenant_id": tenant.id, "tier": tier}
    params: dict[str, Any] = {
        "mode": "subscription",
        "client_reference_id": tenant.id,
        "line_items": [{"price": price_id, "quantity": 1}],
        "metadata": metadata,
        "subscription_data": {"metadata": dict(metadata)},
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    if tenant.stripe_customer_id:
        params["customer"] = tenant.stripe_customer_id
    return params


@attrs.frozen
class StripeBillingGateway:
    client: stripe.StripeClient

    async def create_checkout(
        self, tenant: Tenant, price_id: str, tier: str, success_url: str, cancel_url: str
    ) -> CheckoutSession:
        params = checkout_params(tenant, price_id, tier, success_url, cancel_url)
        try:
            session = await asyncio.to_thread(
                self.client.v1.checkout.sessions.create,
                params,  # type: ignore[arg-type]
            )
        except stripe.StripeError as exc:
            raise PaymentProviderError(_describe(exc)) from exc
        url = getattr(session, "url", None)
        if not url:
            raise PaymentProviderError(f"Stripe returned checkout session {session.id} without URL")
        return CheckoutSession(session_id=session.id, url=url)


def _describe(exc: stripe.StripeError) -> str:
    """Stripe's own user-facing message and code; never the request (it names the key)."""
    status = f" (HTTP {exc.http_status})" if exc.http_status else ""
    code = f" [{exc.code}]" if exc.code else ""
    message = exc.user_message or type(exc).__name__
    return f"Stripe refused the checkout session{status}{code}: {message}"
