"""Billing: checkout for a tier, the subscription's status, plan change, cancel and resume,
the billing portal, and the payment provider's signed webhook."""

from __future__ import annotations

from functools import partial
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import Provide
from litestar.params import JSONBody

from domain.errors import DomainError
from domain.ports import WebhookParser
from domain.subscriptions import BillingStatus
from domain.use_cases.billing import Billing
from entrypoints.bootstrap import Services
from entrypoints.http.auth import (
    CUSTOMER_SECURITY,
    CustomerDep,
    ServicesDep,
    provide_customer,
    tenant_of,
)
from entrypoints.http.openapi import CUSTOMER_ERRORS, errors
from entrypoints.http.schemas import (
    BillingOut,
    ChangePlanIn,
    CheckoutIn,
    CheckoutOut,
    PortalOut,
    WebhookOut,
)

STRIPE_SIGNATURE_HEADER = "stripe-signature"


def billing_of(services: Services) -> Billing:
    if services.billing is None:
        raise DomainError(
            "payments are not configured on this server (TIERKEEPER_STRIPE_API_KEY)",
            code="billing_not_configured",
        )
    return services.billing


def webhooks_of(services: Services) -> WebhookParser:
    if services.webhooks is None:
        raise DomainError(
            "webhooks are not configured on this server (TIERKEEPER_STRIPE_WEBHOOK_SECRET)",
            code="billing_not_configured",
        )
    return services.webhooks


def billing_out(status: BillingStatus) -> BillingOut:
    return BillingOut(
        tier=status.tier,
        status=status.status.value,
        current_period_end=status.current_period_end,
        cancel_at_period_end=status.cancel_at_period_end,
        pending_tier=status.pending_tier,
        has_subscription=status.has_subscription,
    )


subscription_change = partial(
    post, status_code=200, responses=errors(*CUSTOMER_ERRORS, 409, 502, 503)
)
"""A customer's POST that acts at Stripe: 409 when the subscription's state forbids it, 502
when Stripe fails, 503 when payments are not configured."""


class BillingController(Controller):
    """The signed-in customer's subscription."""

    path = "/api/v1/billing"
    tags = ("billing",)
    dependencies = {"customer": Provide(provide_customer)}  # noqa: RUF012
    security = CUSTOMER_SECURITY

    @subscription_change("/checkout")
    async def checkout(
        self, data: JSONBody[CheckoutIn], customer: CustomerDep, services: ServicesDep
    ) -> CheckoutOut:
        """A subscription checkout for the tier (legacy ids accepted); answers its URL. A
        tenant that already has a live subscription gets 409 ``conflict``: it changes its
        plan instead."""
        email = customer.user.email if customer.user is not None else None
        session = await billing_of(services).checkout(tenant_of(customer), data.tier, email)
        return CheckoutOut(checkout_url=session.url, session_id=session.session_id)

    @get("/", responses=errors(*CUSTOMER_ERRORS, 503))
    async def status(self, customer: CustomerDep, services: ServicesDep) -> BillingOut:
        """The tier in force, the status, the period end, and what is scheduled for then."""
        return billing_out(await billing_of(services).status(tenant_of(customer)))

    @subscription_change("/change-plan")
    async def change_plan(
        self, data: JSONBody[ChangePlanIn], customer: CustomerDep, services: ServicesDep
    ) -> BillingOut:
        """Change the plan of the one subscription: an upgrade at once (prorated), a
        downgrade at the period end (``pending_tier``); 409 without a subscription."""
        result = await billing_of(services).change_plan(tenant_of(customer), data.tier)
        return billing_out(result)

    @subscription_change("/cancel")
    async def cancel(self, customer: CustomerDep, services: ServicesDep) -> BillingOut:
        """End the subscription at the end of the period; the agent works until then."""
        return billing_out(await billing_of(services).cancel(tenant_of(customer)))

    @subscription_change("/resume")
    async def resume(self, customer: CustomerDep, services: ServicesDep) -> BillingOut:
        """Keep a subscription set to end renewing, before it ends."""
        return billing_out(await billing_of(services).resume(tenant_of(customer)))

    @subscription_change("/portal")
    async def portal(self, customer: CustomerDep, services: ServicesDep) -> PortalOut:
        """A Stripe Billing Portal session for card, invoices and receipts."""
        return PortalOut(url=await billing_of(services).portal(tenant_of(customer)))


class BillingWebhookController(Controller):
    """Stripe's calls, which carry no customer's credentials."""

    path = "/api/v1/billing"
    tags = ("billing",)

    @post("/webhook", status_code=200, security=[], responses=errors(400, 503))
    async def webhook(self, request: Request[Any, Any, Any], services: ServicesDep) -> WebhookOut:
        """Stripe's events, authenticated by their signature only: 200 once applied (or
        already applied before), 400 ``invalid_signature`` otherwise."""
        payload = await request.body()
        event = webhooks_of(services).parse(payload, request.headers.get(STRIPE_SIGNATURE_HEADER))
        if event is not None:
            result = await billing_of(services).handle_event(event)
            request.state.tenant_id = result.tenant_id
            request.state.webhook_outcome = "replayed" if result.replayed else result.outcome
        else:
            request.state.webhook_outcome = "ignored"
        return WebhookOut(received=True)
