"""What the pages show of billing: the "Billing" panel of Plan & usage (period end, a
scheduled end or downgrade, Manage billing, Cancel plan, Resume), the checkout return notice,
and, on the plan cards of a subscribed tenant, what a change of plan does and when.

Plain values for the billing partial templates; the rules themselves live in
``domain.subscriptions``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from domain.catalog import Catalog
from domain.subscriptions import BillingStatus, is_upgrade
from domain.tenants import SubscriptionStatus, Tenant
from domain.welcome import format_price
from domain.windows import parse_timezone
from entrypoints.bootstrap import Services

CONFIRM_WAIT_SECONDS = 60
"""How long the checkout return page polls for Stripe's confirmation before it says so."""


@attrs.frozen
class BillingPanel:
    has_subscription: bool
    tier_name: str
    period_end: str | None
    period_end_iso: str | None
    ending: bool
    pending_tier_name: str | None
    can_manage: bool
    payment_failed: bool


@attrs.frozen
class PlanChangePreview:
    """One plan card's "Change plan" for a subscribed tenant: the button and what it says
    changes, and when."""

    kind: str
    label: str
    summary: str


@attrs.frozen
class CheckoutReturn:
    """The notice after Stripe Checkout: confirmed, or waiting for Stripe's word."""

    confirmed: bool
    message: str
    wait_seconds: int = CONFIRM_WAIT_SECONDS


def local_date(instant: datetime, timezone: str) -> str:
    """A period end as the customer reads it: the local calendar date."""
    local = instant.astimezone(parse_timezone(timezone))
    return f"{local:%-d %B %Y}"


def billing_panel(catalog: Catalog, tenant: Tenant, status: BillingStatus) -> BillingPanel:
    end = status.current_period_end
    pending = status.pending_tier
    return BillingPanel(
        has_subscription=status.has_subscription,
        tier_name=catalog.tier(status.tier).name,
        period_end=local_date(end, tenant.timezone) if end else None,
        period_end_iso=end.isoformat() if end else None,
        ending=status.cancel_at_period_end,
        pending_tier_name=catalog.tier(pending).name if pending else None,
        can_manage=tenant.stripe_customer_id is not None,
        payment_failed=status.status is SubscriptionStatus.PAST_DUE,
    )


def plan_changes(
    catalog: Catalog, tenant: Tenant, status: BillingStatus
) -> dict[str, PlanChangePreview]:
    """For each other tier: an upgrade starts now and Stripe charges the difference for the
    rest of the period; a downgrade starts at the period end, the current tier kept until
    then; the tier in force, while a downgrade waits, keeps it."""
    if not status.has_subscription:
        return {}
    current = catalog.tier(status.tier)
    end = status.current_period_end
    until = local_date(end, tenant.timezone) if end else "the end of this billing period"
    previews: dict[str, PlanChangePreview] = {}
    for tier in catalog.tiers:
        price = f"{format_price(tier.price.amount_cents, tier.price.currency)} a month"
        if tier.id == status.tier:
            if status.pending_tier is not None:
                previews[tier.id] = PlanChangePreview(
                    "return", f"Keep {tier.name}",
                    f"Stay on {tier.name} after {until}; the scheduled change is dropped.",
                )  # fmt: skip
            continue
        if tier.id == status.pending_tier:
            continue
        if is_upgrade(catalog, current.id, tier.id):
            previews[tier.id] = PlanChangePreview(
                "upgrade", f"Upgrade to {tier.name}",
                f"{tier.name} starts now. Stripe charges the difference for the rest of this "
                f"period at once; from {until} you pay {price}.",
            )  # fmt: skip
        else:
            previews[tier.id] = PlanChangePreview(
                "downgrade", f"Switch to {tier.name}",
                f"You keep {current.name} until {until}; then {tier.name} starts at {price}. "
                "Nothing is refunded for this period.",
            )  # fmt: skip
    return previews


def checkout_return(catalog: Catalog, tenant: Tenant) -> CheckoutReturn:
    tier = catalog.tier(tenant.tier)
    if tenant.status is SubscriptionStatus.ACTIVE:
        return CheckoutReturn(True, f"Your payment went through: your {tier.name} plan is active.")
    return CheckoutReturn(
        False,
        "Confirming your payment with Stripe… This page updates by itself as soon as Stripe "
        "confirms it.",
    )


async def billing_context(services: Services, tenant: Tenant, checkout: str = "") -> dict[str, Any]:
    """The billing values a page template needs (``checkout`` is the page's ``checkout``
    query flag); no panel and no plan changes when payments are not configured."""
    returned = checkout_return(services.catalog, tenant) if checkout == "success" else None
    if services.billing is None:
        return {"billing": None, "plan_changes": {}, "checkout_return": returned}
    status = await services.billing.status(tenant.id)
    return {
        "billing": billing_panel(services.catalog, tenant, status),
        "plan_changes": plan_changes(services.catalog, tenant, status),
        "checkout_return": returned,
    }
