"""Sell a tier through the payment provider's checkout, and apply its subscription events."""

from __future__ import annotations

import logging

import attrs

from domain.audit import PAYMENT_PROVIDER, NoAuditLog, tenant_change_entries
from domain.billing import (
    EventDecision,
    Outcome,
    PriceBook,
    SubscriptionEvent,
    apply_event,
)
from domain.catalog import Catalog, normalise_tier_id
from domain.errors import DomainError, NotFound, ValidationError
from domain.ids import TenantId
from domain.ports import (
    AuditLog,
    BillingGateway,
    CheckoutSession,
    Clock,
    ProcessedEventRepository,
    TenantRepository,
)
from domain.tenants import Tenant
from domain.use_cases.configs import Configs

log = logging.getLogger(__name__)

CHECKOUT_SUCCESS_PATH = "/plan?checkout=success&session_id={CHECKOUT_SESSION_ID}"
CHECKOUT_CANCEL_PATH = "/plan?checkout=canceled"


@attrs.frozen
class EventResult:
    """What handling an event did. ``replayed``: the event id was already processed, and
    ``outcome`` is the one stored then."""

    outcome: str
    replayed: bool
    tenant_id: TenantId | None = None
    tenant: Tenant | None = None


@attrs.frozen
class Billing:
    catalog: Catalog
    prices: PriceBook
    tenants: TenantRepository
    processed_events: ProcessedEventRepository
    gateway: BillingGateway
    configs: Configs
    clock: Clock
    public_url: str
    audit: AuditLog = attrs.field(factory=NoAuditLog, kw_only=True)

    async def checkout(self, tenant_id: TenantId, tier: str) -> CheckoutSession:
        """A subscription checkout for the tier (legacy ids accepted) at its configured
        price; the provider returns to the plan page afterwards."""
        tenant = await self.tenants.get(tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id!r} is unknown")
        tier_id = normalise_tier_id(self.catalog, tier)
        price_id = self.prices.price_for(tier_id)
        if price_id is None:
            raise ValidationError(
                f"tier {tier_id!r} is not for sale: no price is configured for it", field="tier"
            )
        base = self.public_url.rstrip("/")
        return await self.gateway.create_checkout(
            tenant,
            price_id,
            tier_id,
            success_url=base + CHECKOUT_SUCCESS_PATH,
            cancel_url=base + CHECKOUT_CANCEL_PATH,
        )

    async def handle_event(self, event: SubscriptionEvent) -> EventResult:
        """Apply a verified event once. A repeated event id changes nothing and reports the
        first outcome. An event whose price sells no tier is recorded as refused and logged
        as an error for the operator. An event that names no tenant known yet (an invoice
        that arrives before the subscription or checkout that links its customer) is logged
        and not recorded: later events carry the same state, and a redelivery can still
        apply it. A tier change rewrites the tenant's config."""
        stored = await self.processed_events.outcome(event.event_id)
        if stored is not None:
            return EventResult(stored, replayed=True, tenant_id=event.tenant_id)
        tenant = await self._find_tenant(event)
        if tenant is None:
            log.warning(
                "billing event %s (%s) names no known tenant yet (tenant %r, customer %r); "
                "not recorded, so a redelivery can still apply it",
                event.event_id, event.event_type, event.tenant_id, event.customer_id,
            )  # fmt: skip
            return EventResult(Outcome.UNKNOWN_TENANT.value, replayed=False)
        decision = apply_event(self.catalog, self.prices, tenant, event)
        if decision.outcome is Outcome.UNKNOWN_PRICE:
            log.error(
                "billing event %s (%s) for tenant %s names price %r, which sells no tier; "
                "not applied (configure TIERKEEPER_STRIPE_PRICE_*)",
                event.event_id, event.event_type, tenant.id, event.price_id,
            )  # fmt: skip
        if decision.tenant != tenant:
            await self.tenants.save(decision.tenant)
            now = self.clock.now()
            for entry in tenant_change_entries(tenant, decision.tenant, PAYMENT_PROVIDER, now):
                await self.audit.record(entry)
        if decision.tier_changed:
            await self._rewrite_config(decision)
        return await self._remember(event, decision.outcome.value, tenant.id, decision.tenant)

    async def _find_tenant(self, event: SubscriptionEvent) -> Tenant | None:
        if event.tenant_id is not None:
            tenant = await self.tenants.get(event.tenant_id)
            if tenant is not None:
                return tenant
        if event.customer_id is not None:
            return await self.tenants.tenant_by_stripe_customer(event.customer_id)
        return None

    async def _rewrite_config(self, decision: EventDecision) -> None:
        """The tier is already saved and admission follows it at once; a config that cannot be
        written now is logged and left to ``tierkeeper configs regenerate``."""
        try:
            await self.configs.write(decision.tenant.id)
        except (DomainError, OSError) as exc:
            log.error("config for tenant %s not rewritten after tier change: %s",
                      decision.tenant.id, exc)  # fmt: skip

    async def _remember(
        self, event: SubscriptionEvent, outcome: str, tenant_id: TenantId, tenant: Tenant
    ) -> EventResult:
        first = await self.processed_events.remember(
            event.event_id, event.event_type, outcome, self.clock.now()
        )
        if not first:
            stored = await self.processed_events.outcome(event.event_id)
            return EventResult(stored or outcome, replayed=True, tenant_id=tenant_id)
        return EventResult(outcome, replayed=False, tenant_id=tenant_id, tenant=tenant)
