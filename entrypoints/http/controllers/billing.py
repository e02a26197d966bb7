"""Billing: checkout for a tier, and the payment provider's signed webhook."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.di import Provide
from litestar.params import JSONBody

from domain.errors import DomainError
from domain.use_cases.billing import Billing
from entrypoints.bootstrap import Services, WebhookParser
from entrypoints.http.auth import (
    CUSTOMER_SECURITY,
    CustomerDep,
    ServicesDep,
    provide_customer,
    tenant_of,
)
from entrypoints.http.openapi import CUSTOMER_ERRORS, errors
from entrypoints.http.schemas import CheckoutIn, CheckoutOut, WebhookOut

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


class BillingController(Controller):
    path = "/api/v1/billing"
    tags = ("billing",)

    @post(
        "/checkout",
        status_code=200,
        dependencies={"customer": Provide(provide_customer)},
        security=CUSTOMER_SECURITY,
        responses=errors(*CUSTOMER_ERRORS, 502, 503),
    )
    async def checkout(
        self, data: JSONBody[CheckoutIn], customer: CustomerDep, services: ServicesDep
    ) -> CheckoutOut:
        """A subscription checkout for the tier (legacy ids accepted); answers its URL."""
        session = await billing_of(services).checkout(tenant_of(customer), data.tier)
        return CheckoutOut(checkout_url=session.url, session_id=session.session_id)

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
