"""Billing rules: which price sells which tier, how a payment provider's subscription events
change a tenant, and what a tenant's usage costs the platform against what it pays.

Provider-neutral: the Stripe adapter turns webhooks into ``SubscriptionEvent`` values; these
rules decide. Events can arrive late, twice or out of order; the tenant remembers the
provider-side instant of the last change it applied and never goes back behind it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import attrs

from domain.catalog import Catalog, ModelRates
from domain.errors import DomainError, ValidationError
from domain.ids import TenantId, TierId
from domain.metering import Credential, MessageCounts, UsageRecord
from domain.subscription_records import PaidInvoice
from domain.tenants import SubscriptionStatus, Tenant, with_status, with_tier
from domain.windows import parse_timezone

TOKENS_PER_MTOK = Decimal(1_000_000)
CENTS_PER_USD = Decimal(100)


# --- the price book -------------------------------------------------------------------------


@attrs.frozen
class PriceBook:
    """Price ids and the tiers they sell. The first price named for a tier is the one checkout
    sells; later ones (legacy ``basic``/``plus`` prices) are still recognised on events."""

    entries: tuple[tuple[str, TierId], ...]

    def tier_for(self, price_id: str | None) -> TierId | None:
        return next((tier for price, tier in self.entries if price == price_id), None)

    def price_for(self, tier_id: TierId) -> str | None:
        return next((price for price, tier in self.entries if tier == tier_id), None)


def build_price_book(catalog: Catalog, pairs: Iterable[tuple[str, str]]) -> PriceBook:
    """(price id, tier id) pairs as configured; legacy tier ids name the current tier, and one
    price id may not sell two tiers."""
    entries: list[tuple[str, TierId]] = []
    for price_id, tier_id in pairs:
        price = price_id.strip()
        tier = catalog.normalise_tier_id(tier_id)
        if not price:
            raise ValidationError(f"an empty price id is configured for {tier!r}", field="price")
        known = next((t for p, t in entries if p == price), None)
        if known is not None and known != tier:
            raise ValidationError(
                f"price {price!r} is configured for both {known!r} and {tier!r}", field="price"
            )
        entries.append((price, tier))
    return PriceBook(tuple(entries))


# --- provider statuses ----------------------------------------------------------------------

_STATUS_MAP: dict[str | None, SubscriptionStatus] = {
    "active": SubscriptionStatus.ACTIVE,
    "trialing": SubscriptionStatus.ACTIVE,
    "past_due": SubscriptionStatus.PAST_DUE,
    "unpaid": SubscriptionStatus.INCOMPLETE,
    "canceled": SubscriptionStatus.CANCELED,
    "incomplete_expired": SubscriptionStatus.CANCELED,
    "incomplete": SubscriptionStatus.INCOMPLETE,
    "paused": SubscriptionStatus.INCOMPLETE,
}


def subscription_status(provider_status: str | None) -> SubscriptionStatus | None:
    """A provider's subscription status as ours: trialing counts as active; unpaid (the
    provider gave up collecting after the grace period) and paused as not paid for, which
    admits nothing but keeps the subscription live (a paid invoice makes it active again); an
    expired incomplete subscription as canceled. None for no status, or one this service
    does not know."""
    return _STATUS_MAP.get(provider_status)


_STATUS_RANK = {
    SubscriptionStatus.INCOMPLETE: 0,
    SubscriptionStatus.ACTIVE: 1,
    SubscriptionStatus.PAST_DUE: 1,
    SubscriptionStatus.CANCELED: 2,
}


# --- events ---------------------------------------------------------------------------------


class EventKind(enum.Enum):
    CHECKOUT_COMPLETED = "checkout_completed"
    SUBSCRIPTION_CREATED = "subscription_created"
    SUBSCRIPTION_UPDATED = "subscription_updated"
    SUBSCRIPTION_DELETED = "subscription_deleted"
    INVOICE_PAID = "invoice_paid"
    INVOICE_PAYMENT_FAILED = "invoice_payment_failed"


SUBSCRIPTION_KINDS = frozenset(
    {
        EventKind.SUBSCRIPTION_CREATED,
        EventKind.SUBSCRIPTION_UPDATED,
        EventKind.SUBSCRIPTION_DELETED,
    }
)


@attrs.frozen
class SubscriptionEvent:
    """One verified provider event about a tenant's subscription.

    ``occurred_at`` is the provider's time of the change and orders events. ``provider_status``
    is the subscription's status in the provider's words (a completed, paid checkout says
    ``active``). ``tenant_id`` comes from the checkout's client reference or the metadata this
    service put on the subscription. ``billing_anchor`` is the instant the provider bills
    from; its day of month, in the tenant's zone, becomes the billing anchor day. A
    subscription event also carries its current period and whether it ends at the period
    end; a paid invoice its id and the amount paid (integer cents, currency code).
    """

    event_id: str
    event_type: str
    kind: EventKind
    occurred_at: datetime
    customer_id: str | None = None
    subscription_id: str | None = None
    price_id: str | None = None
    provider_status: str | None = None
    tenant_id: TenantId | None = None
    tier_hint: str | None = None
    billing_anchor: datetime | None = None
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    invoice_id: str | None = None
    amount_paid_cents: int | None = None
    currency: str | None = None


@attrs.define(eq=False)
class MalformedEvent(DomainError):
    """A correctly signed provider event whose content is not what the provider sends (an id
    missing, a time that is not a number); ``field`` names the part at fault. Nothing of it
    is applied, and the provider is told so instead of retrying for days."""

    field: str = ""
    code: str = "invalid_event"


class Outcome(enum.Enum):
    """What became of an event; stored with its id."""

    APPLIED = "applied"
    STALE = "stale"
    """Older than the change the tenant already reflects: ignored."""
    UNKNOWN_PRICE = "unknown_price"
    """The subscription's price sells no tier here: refused, nothing changed."""
    UNKNOWN_TENANT = "unknown_tenant"
    """No tenant has the event's tenant id or customer (yet): nothing changed."""
    OTHER_SUBSCRIPTION = "other_subscription"
    """About a subscription the tenant has since replaced: ignored."""


@attrs.frozen
class EventDecision:
    outcome: Outcome
    tenant: Tenant
    tier_changed: bool = False


def apply_event(
    catalog: Catalog, prices: PriceBook, tenant: Tenant, event: SubscriptionEvent
) -> EventDecision:
    """The tenant after the event, or the tenant unchanged with the reason it was not applied.

    A completed checkout links the provider's customer and subscription to the tenant and,
    while no subscription event has been applied yet, grants the tier it sold (and ``active``
    once paid). Subscription events set the tier from the price, the status from the
    provider's status (deleted means canceled) and the anchor day; invoice events move the
    status only: a failed payment makes an active subscription past due and starts the grace
    clock, a paid invoice makes it active again. Events older than the last applied change
    are stale; one from the same instant is stale when it would move the status backwards."""
    if event.kind is EventKind.CHECKOUT_COMPLETED:
        return _apply_checkout(catalog, tenant, event)
    last = tenant.subscription_updated_at
    if last is not None and event.occurred_at < last:
        return EventDecision(Outcome.STALE, tenant)
    if _names_other_subscription(tenant, event):
        return EventDecision(Outcome.OTHER_SUBSCRIPTION, tenant)
    if event.kind in SUBSCRIPTION_KINDS:
        decided = _apply_subscription(catalog, prices, tenant, event)
    else:
        decided = _apply_invoice(tenant, event)
    if decided.outcome is not Outcome.APPLIED:
        return decided
    if _regresses_at_same_instant(tenant, decided.tenant, event):
        return EventDecision(Outcome.STALE, tenant)
    return decided


def _names_other_subscription(tenant: Tenant, event: SubscriptionEvent) -> bool:
    """Only subscription created/updated events may switch the tenant to a new subscription;
    a deletion or an invoice of a subscription the tenant no longer has changes nothing."""
    if event.kind in (EventKind.SUBSCRIPTION_CREATED, EventKind.SUBSCRIPTION_UPDATED):
        return False
    current = tenant.stripe_subscription_id
    return current is not None and event.subscription_id not in (None, current)


def _regresses_at_same_instant(before: Tenant, after: Tenant, event: SubscriptionEvent) -> bool:
    if before.subscription_updated_at != event.occurred_at:
        return False
    if before.stripe_subscription_id != after.stripe_subscription_id:
        return False
    return _STATUS_RANK[after.status] < _STATUS_RANK[before.status]


def _apply_subscription(
    catalog: Catalog, prices: PriceBook, tenant: Tenant, event: SubscriptionEvent
) -> EventDecision:
    changed = tenant
    tier_changed = False
    if event.price_id is not None:
        tier_id = prices.tier_for(event.price_id)
        if tier_id is None:
            return EventDecision(Outcome.UNKNOWN_PRICE, tenant)
        tier_changed = tier_id != tenant.tier
        changed = with_tier(changed, catalog.tier(tier_id))
    if event.kind is EventKind.SUBSCRIPTION_DELETED:
        status: SubscriptionStatus | None = SubscriptionStatus.CANCELED
    else:
        status = subscription_status(event.provider_status)
    if status is not None:
        changed = with_status(changed, status, event.occurred_at)
    if event.billing_anchor is not None and event.kind is not EventKind.SUBSCRIPTION_DELETED:
        changed = attrs.evolve(
            changed, billing_anchor_day=anchor_day(event.billing_anchor, tenant.timezone)
        )
    changed = attrs.evolve(
        changed,
        stripe_customer_id=event.customer_id or tenant.stripe_customer_id,
        stripe_subscription_id=event.subscription_id or tenant.stripe_subscription_id,
        subscription_updated_at=event.occurred_at,
    )
    return EventDecision(Outcome.APPLIED, changed, tier_changed)


def _apply_invoice(tenant: Tenant, event: SubscriptionEvent) -> EventDecision:
    """An invoice never revives a canceled subscription nor grants grace to one never paid."""
    status = tenant.status
    unpaid = (SubscriptionStatus.PAST_DUE, SubscriptionStatus.INCOMPLETE)
    if event.kind is EventKind.INVOICE_PAID and status in unpaid:
        status = SubscriptionStatus.ACTIVE
    elif event.kind is EventKind.INVOICE_PAYMENT_FAILED and status is SubscriptionStatus.ACTIVE:
        status = SubscriptionStatus.PAST_DUE
    changed = with_status(tenant, status, event.occurred_at)
    changed = attrs.evolve(
        changed,
        stripe_customer_id=tenant.stripe_customer_id or event.customer_id,
        stripe_subscription_id=tenant.stripe_subscription_id or event.subscription_id,
        subscription_updated_at=event.occurred_at,
    )
    return EventDecision(Outcome.APPLIED, changed)


def _apply_checkout(catalog: Catalog, tenant: Tenant, event: SubscriptionEvent) -> EventDecision:
    changed = attrs.evolve(
        tenant,
        stripe_customer_id=tenant.stripe_customer_id or event.customer_id,
        stripe_subscription_id=(
            tenant.stripe_subscription_id
            if tenant.subscription_updated_at is not None
            else event.subscription_id or tenant.stripe_subscription_id
        ),
    )
    tier_changed = False
    if tenant.subscription_updated_at is None:
        tier_id = _known_tier(catalog, event.tier_hint)
        if tier_id is not None and tier_id != tenant.tier:
            changed = with_tier(changed, catalog.tier(tier_id))
            tier_changed = True
        if subscription_status(event.provider_status) is SubscriptionStatus.ACTIVE:
            changed = with_status(changed, SubscriptionStatus.ACTIVE, event.occurred_at)
    return EventDecision(Outcome.APPLIED, changed, tier_changed)


def _known_tier(catalog: Catalog, tier_hint: str | None) -> TierId | None:
    if tier_hint is None:
        return None
    try:
        return catalog.normalise_tier_id(tier_hint)
    except ValidationError:
        return None


def anchor_day(instant: datetime, timezone: str) -> int:
    """The day of month the provider bills on, as the tenant's calendar shows it."""
    return instant.astimezone(parse_timezone(timezone)).day


# --- money ----------------------------------------------------------------------------------


def model_cost_usd(
    rates: ModelRates, input_tokens: int, output_tokens: int, cache_read_tokens: int
) -> Decimal:
    """Tokens at the model's list rates (USD per million tokens), unrounded."""
    return (
        rates.usd_per_mtok_input * input_tokens
        + rates.usd_per_mtok_output * output_tokens
        + rates.usd_per_mtok_cache_read * cache_read_tokens
    ) / TOKENS_PER_MTOK


def usd_to_cents(amount_usd: Decimal) -> int:
    """Whole cents, half a cent rounding away from zero."""
    return int((amount_usd * CENTS_PER_USD).to_integral_value(rounding=ROUND_HALF_UP))


def pays_for_tier(status: SubscriptionStatus) -> bool:
    """Subscriptions that are billed: active, or past due and collectible."""
    return status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)


def record_cost_usd(catalog: Catalog, record: UsageRecord) -> Decimal | None:
    """What one settled message cost the platform: nothing on the tenant's own key, the
    catalog rates on platform keys; None when the model has no rates in the catalog."""
    if record.credential is Credential.TENANT:
        return Decimal(0)
    model = catalog.find_model(record.model)
    if model is None:
        return None
    return model_cost_usd(
        model.rates, record.input_tokens, record.output_tokens, record.cache_read_tokens
    )


# --- usage and margin per period ----------------------------------------------------------

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


@attrs.frozen
class ReportPeriod:
    """A calendar month in UTC, ``[starts_at, ends_at)``, named ``YYYY-MM``."""

    name: str
    starts_at: datetime
    ends_at: datetime


def report_period(name: str) -> ReportPeriod:
    match = _PERIOD.match(name.strip())
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise ValidationError(f"period {name!r} must be a month as YYYY-MM", field="period")
    year, month = int(match.group(1)), int(match.group(2))
    starts_at = datetime(year, month, 1, tzinfo=UTC)
    ends_at = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return ReportPeriod(f"{year:04d}-{month:02d}", starts_at, ends_at)


@attrs.frozen
class ModelUsage:
    """A tenant's messages and tokens on one model and one credential in a period.
    ``cost_usd`` is None when the catalog has no rates for a platform-served model."""

    model: str
    credential: Credential
    messages: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cost_usd: Decimal | None

    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens


NO_MESSAGES = MessageCounts()


@attrs.frozen
class TenantUsage:
    """A tenant's period: usage by model and credential, what it cost the platform in model
    tokens, what the tenant paid (its paid invoices), and the difference.
    ``activated_without_payment`` flags a tenant that works as a paying one although no
    payment provider subscription or paid invoice stands behind it (an operator's
    ``tenants set-tier``, say)."""

    tenant_id: TenantId
    tier: TierId | None
    status: SubscriptionStatus | None
    by_model: tuple[ModelUsage, ...]
    model_cost_usd: Decimal
    model_cost_cents: int
    revenue_cents: int
    margin_cents: int
    unpriced_messages: int
    activated_without_payment: bool = False
    counts: MessageCounts = NO_MESSAGES

    def messages(self) -> int:
        return sum(u.messages for u in self.by_model)

    def tokens(self) -> int:
        return sum(u.tokens() for u in self.by_model)


def activated_without_payment(tenant: Tenant | None, paid_cents: int) -> bool:
    """A tenant that may use the service as a paying one, with no subscription at the
    provider and nothing paid in the period."""
    return (
        tenant is not None
        and pays_for_tier(tenant.status)
        and tenant.stripe_subscription_id is None
        and paid_cents == 0
    )


def tenant_usage(
    catalog: Catalog,
    tenant_id: TenantId,
    tenant: Tenant | None,
    records: Sequence[UsageRecord],
    paid: Sequence[PaidInvoice] = (),
    counts: MessageCounts = NO_MESSAGES,
) -> TenantUsage:
    """Sum a tenant's settled messages by (model, credential). Revenue is what its invoices
    paid in the period brought in, whatever its tier or status says; margin is revenue less
    model cost on platform credentials, in whole cents."""
    groups: dict[tuple[str, Credential], list[UsageRecord]] = {}
    for record in records:
        groups.setdefault((record.model, record.credential), []).append(record)
    by_model = tuple(
        _model_usage(catalog, model, credential, group)
        for (model, credential), group in sorted(
            groups.items(), key=lambda item: (item[0][0], item[0][1].value)
        )
    )
    cost = sum((u.cost_usd for u in by_model if u.cost_usd is not None), Decimal(0))
    unpriced = sum(u.messages for u in by_model if u.cost_usd is None)
    revenue = sum(invoice.amount_cents for invoice in paid)
    cost_cents = usd_to_cents(cost)
    return TenantUsage(
        tenant_id=tenant_id,
        tier=tenant.tier if tenant else None,
        status=tenant.status if tenant else None,
        by_model=by_model,
        model_cost_usd=cost,
        model_cost_cents=cost_cents,
        revenue_cents=revenue,
        margin_cents=revenue - cost_cents,
        unpriced_messages=unpriced,
        activated_without_payment=activated_without_payment(tenant, revenue),
        counts=counts,
    )


def _model_usage(
    catalog: Catalog, model: str, credential: Credential, records: Sequence[UsageRecord]
) -> ModelUsage:
    costs = [record_cost_usd(catalog, r) for r in records]
    priced = all(c is not None for c in costs)
    return ModelUsage(
        model=model,
        credential=credential,
        messages=len(records),
        input_tokens=sum(r.input_tokens for r in records),
        output_tokens=sum(r.output_tokens for r in records),
        cache_read_tokens=sum(r.cache_read_tokens for r in records),
        cost_usd=Decimal(sum(c for c in costs if c is not None)) if priced else None,
    )
