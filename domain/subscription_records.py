"""What the platform keeps of a tenant's subscription at the payment provider, and of the
invoices it paid: plain values, shared by the life-cycle rules and the ports."""

from __future__ import annotations

from datetime import datetime

import attrs

from domain.ids import TenantId, TierId


@attrs.frozen
class Subscription:
    """The tenant's subscription at the provider as last reported, and the downgrade that
    waits for the end of the period in which it was asked (``pending_tier`` from
    ``pending_from``)."""

    tenant_id: TenantId
    subscription_id: str
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    pending_tier: TierId | None = None
    pending_from: datetime | None = None


@attrs.frozen
class SubscriptionSnapshot:
    """What the provider answered after a change: the subscription's price, status and
    period, and whether it ends at the period end."""

    subscription_id: str
    price_id: str | None
    provider_status: str | None
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool


@attrs.frozen
class PaidInvoice:
    """An invoice the provider reports paid: the amount is revenue in the month it was paid."""

    invoice_id: str
    tenant_id: TenantId
    amount_cents: int
    currency: str
    paid_at: datetime


@attrs.frozen
class CheckoutSession:
    session_id: str
    url: str
