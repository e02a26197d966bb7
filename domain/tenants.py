"""Tenants and users: who pays for which tier, and whether the subscription lets them work."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

import attrs

from domain.catalog import Catalog, Tier
from domain.errors import ValidationError
from domain.ids import ModelRef, TenantId, TierId, UserId
from domain.windows import ZoneSpan, day_zone, history_after_change, parse_timezone


class SubscriptionStatus(enum.Enum):
    INCOMPLETE = "incomplete"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"


@attrs.frozen
class Tenant:
    id: TenantId
    tier: TierId
    status: SubscriptionStatus
    timezone: str
    billing_anchor_day: int
    created_at: datetime
    model_preference: ModelRef | None = None
    past_due_since: datetime | None = None
    stripe_customer_id: str | None = None
    stripe_subscription_id: str | None = None
    subscription_updated_at: datetime | None = None
    """The provider-side time of the last subscription change applied; older ones are ignored."""
    zone_history: tuple[ZoneSpan, ...] = ()
    """Zones the tenant left that still govern its current day or period (``with_timezone``);
    ``timezone`` is the zone chosen last, which governs every window after them."""
    revision: int = attrs.field(default=0, eq=False)
    """Bumped by the repository on every save: a copy held in memory is checked against it
    by the ledger in the same statement that admits (``AdmissionRequest.tenant_revision``).
    Storage bookkeeping, so not part of equality."""


@attrs.frozen(repr=False)
class User:
    id: UserId
    email: str
    password_hash: str
    tenant_id: TenantId
    created_at: datetime

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, email={self.email!r}, tenant_id={self.tenant_id!r})"


def may_use_service(tenant: Tenant, now: datetime, grace_days: int) -> bool:
    """Active subscriptions work; past_due ones keep working for the grace period."""
    if tenant.status is SubscriptionStatus.ACTIVE:
        return True
    if tenant.status is SubscriptionStatus.PAST_DUE and tenant.past_due_since is not None:
        return now < tenant.past_due_since + timedelta(days=grace_days)
    return False


def with_status(tenant: Tenant, status: SubscriptionStatus, now: datetime) -> Tenant:
    """Entering past_due starts the grace clock once; leaving it clears the clock."""
    if status is SubscriptionStatus.PAST_DUE:
        since = tenant.past_due_since if tenant.status is SubscriptionStatus.PAST_DUE else now
        return attrs.evolve(tenant, status=status, past_due_since=since or now)
    return attrs.evolve(tenant, status=status, past_due_since=None)


def with_tier(tenant: Tenant, tier: Tier) -> Tenant:
    """A tier change takes effect at once; a model preference the new tier cannot serve is
    dropped. Counts already spent stay (they live in the ledger, not here)."""
    keep = tenant.model_preference in tier.selectable_models
    return attrs.evolve(
        tenant, tier=tier.id, model_preference=tenant.model_preference if keep else None
    )


@attrs.frozen
class PendingTimezone:
    timezone: str
    applies_at: datetime


def with_timezone(tenant: Tenant, timezone: str, now: datetime) -> Tenant:
    """A zone change takes effect at the end of the current day in the zone that counts it,
    and never moves the current period: windows never overlap, so no change of zone (in any
    order, at any speed) opens a day or a period early."""
    parse_timezone(timezone)
    if timezone == tenant.timezone:
        return tenant
    history = history_after_change(
        tenant.timezone, tenant.billing_anchor_day, tenant.zone_history, now
    )
    return attrs.evolve(tenant, timezone=timezone, zone_history=history)


def current_timezone(tenant: Tenant, now: datetime) -> str:
    """The zone the tenant's current day is counted in."""
    return day_zone(tenant.timezone, tenant.zone_history, now)


def pending_timezone(tenant: Tenant, now: datetime) -> PendingTimezone | None:
    """The zone chosen but not yet counting days, and when its first day starts."""
    if current_timezone(tenant, now) == tenant.timezone:
        return None
    return PendingTimezone(tenant.timezone, tenant.zone_history[-1].days_until)


def choose_model(catalog: Catalog, tenant: Tenant, ref: str | None) -> Tenant:
    """A tenant may choose among its tier's selectable models; None restores the default."""
    if ref is None:
        return attrs.evolve(tenant, model_preference=None)
    tier = catalog.tier(tenant.tier)
    if ref not in tier.selectable_models:
        allowed = ", ".join(tier.selectable_models) or "none"
        raise ValidationError(
            f"model {ref!r} is not selectable on the {tier.name} tier (allowed: {allowed})",
            field="model_preference",
        )
    return attrs.evolve(tenant, model_preference=ModelRef(ref))


@attrs.frozen
class TenantListing:
    """A tenant as the operator finds it: with its users' emails."""

    tenant: Tenant
    emails: tuple[str, ...]
