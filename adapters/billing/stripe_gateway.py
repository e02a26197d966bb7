"""``BillingGateway`` on Stripe: customers, subscription-mode Checkout Sessions, price
changes and cancellation at the period end on the one subscription, and Billing Portal
sessions, through an injected ``StripeClient`` (no module-global API key). The SDK is
synchronous; its calls run in a worker thread so the event loop never waits on Stripe.

A price change names the new price as the item's ``plan``: Stripe accepts a recurring price
id there as it does under ``price``, and so does localstripe, which lets the same request
run against it in the tests (ADR 0005)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import attrs
import stripe

from domain.errors import PaymentProviderError
from domain.secrets import Secret
from domain.subscription_records import CheckoutSession, SubscriptionSnapshot
from domain.tenants import Tenant

T = TypeVar("T")

UPGRADE_PRORATION = "always_invoice"
"""An upgrade is charged pro rata at once, on an invoice of its own."""
DOWNGRADE_PRORATION = "none"
"""A downgrade credits nothing: the period is paid, the cheaper price is billed from the next."""


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


def customer_params(tenant: Tenant, email: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {"metadata": {"tenant_id": tenant.id}}
    if email:
        params["email"] = email
    return params


def change_price_params(item_id: str, price_id: str, prorate: bool) -> dict[str, Any]:
    """The subscription's one item moves to the price; an upgrade is invoiced pro rata now,
    a downgrade without proration."""
    return {
        "items": [{"id": item_id, "plan": price_id}],
        "proration_behavior": UPGRADE_PRORATION if prorate else DOWNGRADE_PRORATION,
    }


def portal_params(customer_id: str, return_url: str) -> dict[str, Any]:
    return {"customer": customer_id, "return_url": return_url}


@attrs.frozen
class StripeBillingGateway:
    client: stripe.StripeClient

    async def _call(self, what: str, call: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(call, *args)
        except stripe.StripeError as exc:
            raise PaymentProviderError(_describe(exc, what)) from exc

    async def create_customer(self, tenant: Tenant, email: str | None) -> str:
        customer = await self._call(
            "the customer", self.client.v1.customers.create, customer_params(tenant, email)
        )
        return str(customer.id)

    async def change_price(
        self, subscription_id: str, price_id: str, prorate: bool
    ) -> SubscriptionSnapshot:
        subscriptions = self.client.v1.subscriptions
        current = await self._call("the subscription", subscriptions.retrieve, subscription_id)
        items = current["items"].data
        if len(items) != 1:
            raise PaymentProviderError(
                f"Stripe subscription {subscription_id} has {len(items)} items, not one"
            )
        params = change_price_params(items[0].id, price_id, prorate)
        updated = await self._call("the plan change", subscriptions.update, subscription_id, params)
        return snapshot(updated.to_dict())

    async def set_cancel_at_period_end(
        self, subscription_id: str, cancel: bool
    ) -> SubscriptionSnapshot:
        updated = await self._call(
            "the cancellation" if cancel else "the resumption",
            self.client.v1.subscriptions.update,
            subscription_id,
            {"cancel_at_period_end": cancel},
        )
        return snapshot(updated.to_dict())

    async def create_portal_session(self, customer_id: str, return_url: str) -> str:
        session = await self._call(
            "the billing portal session",
            self.client.v1.billing_portal.sessions.create,
            portal_params(customer_id, return_url),
        )
        url = getattr(session, "url", None)
        if not url:
            raise PaymentProviderError("Stripe returned a billing portal session without URL")
        return str(url)

    async def create_checkout(
        self, tenant: Tenant, price_id: str, tier: str, success_url: str, cancel_url: str
    ) -> CheckoutSession:
        params = checkout_params(tenant, price_id, tier, success_url, cancel_url)
        session = await self._call(
            "the checkout session", self.client.v1.checkout.sessions.create, params
        )
        url = getattr(session, "url", None)
        if not url:
            raise PaymentProviderError(f"Stripe returned checkout session {session.id} without URL")
        return CheckoutSession(session_id=session.id, url=url)


def snapshot(sub: Mapping[str, Any]) -> SubscriptionSnapshot:
    """A subscription as Stripe answered it, in either API shape (period on the item or on
    the subscription; price under ``price`` or ``plan``)."""
    items = (sub.get("items") or {}).get("data") or [{}]
    item = items[0]
    price = item.get("price") or item.get("plan") or sub.get("plan") or {}
    return SubscriptionSnapshot(
        subscription_id=str(sub["id"]),
        price_id=price.get("id") if isinstance(price, Mapping) else str(price),
        provider_status=sub.get("status"),
        current_period_start=_instant(
            item.get("current_period_start") or sub.get("current_period_start")
        ),
        current_period_end=_instant(
            item.get("current_period_end") or sub.get("current_period_end")
        ),
        cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
    )


def _instant(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if isinstance(value, int) else None


def _describe(exc: stripe.StripeError, what: str) -> str:
    """Stripe's own user-facing message and code; never the request (it names the key)."""
    status = f" (HTTP {exc.http_status})" if exc.http_status else ""
    code = f" [{exc.code}]" if exc.code else ""
    message = exc.user_message or type(exc).__name__
    return f"Stripe refused {what}{status}{code}: {message}"
