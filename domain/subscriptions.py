"""The subscription life cycle: one live subscription per tenant, plan changes on it (an
upgrade at once, a downgrade at the end of the period), cancel at the period end and resume,
and the paid invoices that are the platform's revenue.

Provider-neutral like ``domain.billing``: the payment adapter reports what the provider holds
(``SubscriptionSnapshot``, ``SubscriptionEvent``); these rules decide what to ask for and what
the tenant has meanwhile.
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from domain.billing import (
    SUBSCRIPTION_KINDS,
    EventDecision,
    EventKind,
    Outcome,
    PriceBook,
    SubscriptionEvent,
    apply_event,
)
from domain.catalog import Catalog
from domain.errors import Conflict, ValidationError
from domain.ids import TenantId, TierId
from domain.subscription_records import PaidInvoice, Subscription, SubscriptionSnapshot
from domain.tenants import SubscriptionStatus, Tenant

CHANGE_PLAN_ENDPOINT = "POST /api/v1/billing/change-plan"
CHECKOUT_ENDPOINT = "POST /api/v1/billing/checkout"


@attrs.frozen
class BillingStatus:
    """What the customer sees of its billing: the tier in force, the status, the end of the
    period, whether the subscription ends then, the tier it moves to then."""

    tier: TierId
    status: SubscriptionStatus
    current_period_end: datetime | None
    cancel_at_period_end: bool
    pending_tier: TierId | None
    has_subscription: bool


def has_live_subscription(tenant: Tenant) -> bool:
    """A tenant has a live subscription from the moment the provider names one for it until
    that subscription is canceled; a second one is never sold beside it."""
    return tenant.stripe_subscription_id is not None and (
        tenant.status is not SubscriptionStatus.CANCELED
    )


def billing_status(tenant: Tenant, subscription: Subscription | None) -> BillingStatus:
    """The record of a subscription the tenant no longer has (replaced or canceled) adds
    nothing."""
    live = has_live_subscription(tenant)
    current = (
        subscription
        if live
        and subscription is not None
        and subscription.subscription_id == tenant.stripe_subscription_id
        else None
    )
    return BillingStatus(
        tier=tenant.tier,
        status=tenant.status,
        current_period_end=current.current_period_end if current else None,
        cancel_at_period_end=current.cancel_at_period_end if current else False,
        pending_tier=current.pending_tier if current else None,
        has_subscription=live,
    )


def refuse_second_checkout(tenant: Tenant) -> None:
    """Checkout sells a first subscription only; a tenant who has one changes its plan."""
    if has_live_subscription(tenant):
        raise Conflict(
            "you already have a subscription; change its plan with "
            f"{CHANGE_PLAN_ENDPOINT} instead of starting a new checkout",
        )


def live_subscription_id(tenant: Tenant) -> str:
    """The subscription a change, cancel or resume acts on; none is a conflict that names
    checkout as the way to subscribe."""
    if not has_live_subscription(tenant) or tenant.stripe_subscription_id is None:
        raise Conflict(f"you have no subscription yet; subscribe with {CHECKOUT_ENDPOINT}")
    return tenant.stripe_subscription_id


class ChangeKind(enum.Enum):
    UPGRADE = "upgrade"
    """A dearer tier: in force at once, the rest of the period charged pro rata now."""
    DOWNGRADE = "downgrade"
    """A cheaper tier (or one at the same price): billed from the next period, in force
    from the end of this one; the tenant keeps what it paid for until then."""
    RETURN = "return"
    """Back to the tier in force while a downgrade waits: the downgrade is dropped."""


@attrs.frozen
class PlanChange:
    """What to ask the provider for: the subscription's item moves to ``price_id`` with
    (``prorate``) or without proration; ``applies_at`` None means the tier changes now."""

    kind: ChangeKind
    tier: TierId
    price_id: str
    prorate: bool
    applies_at: datetime | None


def decide_plan_change(
    catalog: Catalog,
    prices: PriceBook,
    tenant: Tenant,
    subscription: Subscription | None,
    requested_tier: str,
) -> PlanChange:
    """An upgrade (a dearer tier) applies at once and is prorated; any other change applies
    at the end of the current period, without proration, so the customer keeps the tier it
    paid for until then. Asking for the tier in force while a downgrade waits drops it;
    asking for it otherwise, or for the tier already waiting, changes nothing and is a
    conflict. A tier without a configured price is not for sale."""
    live_subscription_id(tenant)
    tier_id = catalog.normalise_tier_id(requested_tier)
    price_id = prices.price_for(tier_id)
    if price_id is None:
        raise ValidationError(
            f"tier {tier_id!r} is not for sale: no price is configured for it", field="tier"
        )
    pending = subscription.pending_tier if subscription else None
    if tier_id == tenant.tier:
        if pending is None:
            raise Conflict(f"you are already on the {catalog.tier(tier_id).name} plan")
        return PlanChange(ChangeKind.RETURN, tier_id, price_id, prorate=False, applies_at=None)
    if tier_id == pending:
        raise Conflict(f"a change to the {catalog.tier(tier_id).name} plan is already scheduled")
    if is_upgrade(catalog, tenant.tier, tier_id):
        return PlanChange(ChangeKind.UPGRADE, tier_id, price_id, prorate=True, applies_at=None)
    period_end = subscription.current_period_end if subscription else None
    return PlanChange(ChangeKind.DOWNGRADE, tier_id, price_id, prorate=False, applies_at=period_end)


def is_upgrade(catalog: Catalog, from_tier: TierId, to_tier: TierId) -> bool:
    """A change is an upgrade when the new tier's monthly price is higher."""
    return catalog.tier(to_tier).price.amount_cents > catalog.tier(from_tier).price.amount_cents


def subscription_before_change(
    tenant: Tenant, subscription_id: str, before: Subscription | None, change: PlanChange
) -> Subscription:
    """The record while the provider is asked: a downgrade already waits (from the period
    end known so far), anything else waits for nothing."""
    base = (
        before
        if before is not None and before.subscription_id == subscription_id
        else Subscription(tenant.id, subscription_id)
    )
    if change.kind is ChangeKind.DOWNGRADE:
        return attrs.evolve(base, pending_tier=change.tier, pending_from=change.applies_at)
    return attrs.evolve(base, pending_tier=None, pending_from=None)


def subscription_after_change(
    tenant: Tenant, change: PlanChange, snapshot: SubscriptionSnapshot
) -> Subscription:
    """The record after the provider accepted a change, whatever waited before it: a
    downgrade waits for the end of the period the provider reports; an upgrade or a return
    leaves nothing waiting."""
    recorded = _from_snapshot(tenant.id, None, snapshot)
    if change.kind is ChangeKind.DOWNGRADE:
        waits_from = snapshot.current_period_end or change.applies_at
        return attrs.evolve(recorded, pending_tier=change.tier, pending_from=waits_from)
    return recorded


def subscription_after_snapshot(
    tenant: Tenant, before: Subscription | None, snapshot: SubscriptionSnapshot
) -> Subscription:
    """The record after a cancel or resume: period and cancel flag as reported, the waiting
    downgrade kept."""
    return _from_snapshot(tenant.id, before, snapshot)


def _from_snapshot(
    tenant_id: TenantId, before: Subscription | None, snapshot: SubscriptionSnapshot
) -> Subscription:
    same = before is not None and before.subscription_id == snapshot.subscription_id
    return Subscription(
        tenant_id=tenant_id,
        subscription_id=snapshot.subscription_id,
        current_period_start=snapshot.current_period_start,
        current_period_end=snapshot.current_period_end,
        cancel_at_period_end=snapshot.cancel_at_period_end,
        pending_tier=before.pending_tier if same and before else None,
        pending_from=before.pending_from if same and before else None,
    )


def refuse_resume(tenant: Tenant, subscription: Subscription | None) -> None:
    """Only a subscription set to end at its period end can be resumed."""
    live_subscription_id(tenant)
    if subscription is None or not subscription.cancel_at_period_end:
        raise Conflict("your subscription is not set to end, so there is nothing to resume")


def refuse_cancel(tenant: Tenant, subscription: Subscription | None) -> None:
    """A subscription already set to end at its period end is not canceled twice."""
    live_subscription_id(tenant)
    if subscription is not None and subscription.cancel_at_period_end:
        raise Conflict("your subscription already ends at the end of the period")


@attrs.frozen
class LifecycleDecision:
    """An event's effect on the tenant and on its subscription record."""

    decision: EventDecision
    subscription: Subscription | None


def apply_lifecycle_event(
    catalog: Catalog,
    prices: PriceBook,
    tenant: Tenant,
    subscription: Subscription | None,
    event: SubscriptionEvent,
) -> LifecycleDecision:
    """``apply_event``, and a waiting downgrade: while the event's period is the one in which
    the downgrade was asked, the price of the cheaper tier leaves the dearer tier in force;
    from the next period on the tier follows the price and nothing waits any more. A price
    that is neither the waiting tier's nor the current one (a change made elsewhere, such as
    the billing portal) drops what waited. The record follows each applied subscription
    event of the tenant's subscription."""
    decided = apply_event(catalog, prices, tenant, event)
    if decided.outcome is not Outcome.APPLIED or event.kind not in SUBSCRIPTION_KINDS:
        return LifecycleDecision(decided, subscription)
    if event.subscription_id is None:
        return LifecycleDecision(decided, subscription)
    record = _record_from_event(decided.tenant, subscription, event)
    event_tier = prices.tier_for(event.price_id)
    waiting = record.pending_tier
    if waiting is not None and event_tier == waiting and not _period_reached(record, event):
        kept = attrs.evolve(
            decided.tenant, tier=tenant.tier, model_preference=tenant.model_preference
        )
        return LifecycleDecision(EventDecision(Outcome.APPLIED, kept), record)
    if waiting is not None and event_tier is not None and event_tier != tenant.tier:
        record = attrs.evolve(record, pending_tier=None, pending_from=None)
    return LifecycleDecision(decided, record)


def _period_reached(record: Subscription, event: SubscriptionEvent) -> bool:
    if record.pending_from is None:
        return True
    start = event.current_period_start
    return start is not None and start >= record.pending_from


def _record_from_event(
    tenant: Tenant, before: Subscription | None, event: SubscriptionEvent
) -> Subscription:
    assert event.subscription_id is not None
    same = before is not None and before.subscription_id == event.subscription_id
    base = before if same and before else Subscription(tenant.id, event.subscription_id)
    ended = event.kind is EventKind.SUBSCRIPTION_DELETED
    return attrs.evolve(
        base,
        current_period_start=event.current_period_start or base.current_period_start,
        current_period_end=event.current_period_end or base.current_period_end,
        cancel_at_period_end=False if ended else event.cancel_at_period_end,
        pending_tier=None if ended else base.pending_tier,
        pending_from=None if ended else base.pending_from,
    )


def paid_invoice(tenant: Tenant, event: SubscriptionEvent) -> PaidInvoice | None:
    """A paid-invoice event with its invoice id and amount becomes a paid invoice of the
    tenant, whatever became of its status change (a late or repeated event still records
    money received; the invoice id keeps it counted once)."""
    if event.kind is not EventKind.INVOICE_PAID or event.invoice_id is None:
        return None
    if event.amount_paid_cents is None or event.currency is None:
        return None
    return PaidInvoice(
        invoice_id=event.invoice_id,
        tenant_id=tenant.id,
        amount_cents=event.amount_paid_cents,
        currency=event.currency,
        paid_at=event.occurred_at,
    )
