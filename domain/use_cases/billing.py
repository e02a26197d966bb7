"""Sell a tier through the payment provider's checkout, change, cancel and resume the one
subscription that follows, open the provider's billing portal, and apply its events."""

from __future__ import annotations

import logging

import attrs

from domain.audit import PAYMENT_PROVIDER, NoAuditLog, tenant_change_entries
from domain.billing import (
    Outcome,
    PriceBook,
    SubscriptionEvent,
)
from domain.catalog import Catalog
from domain.errors import Conflict, DomainError, NotFound, ValidationError
from domain.ids import TenantId
from domain.notifications import (
    NotificationFacts,
    cancellation_facts,
    plan_changed_facts,
)
from domain.ports import (
    AuditLog,
    BillingGateway,
    Clock,
    PaidInvoiceRepository,
    ProcessedEventRepository,
    SubscriptionRepository,
    TenantRepository,
    Transaction,
    UnitOfWork,
)
from domain.subscription_records import CheckoutSession, Subscription
from domain.subscriptions import (
    BillingStatus,
    ChangeKind,
    apply_lifecycle_event,
    billing_status,
    decide_plan_change,
    live_subscription_id,
    paid_invoice,
    refuse_cancel,
    refuse_resume,
    refuse_second_checkout,
    subscription_after_change,
    subscription_after_snapshot,
    subscription_before_change,
)
from domain.tenants import Tenant, with_tier
from domain.use_cases.configs import Configs
from domain.use_cases.notifications import Notifications

log = logging.getLogger(__name__)

CHECKOUT_SUCCESS_PATH = "/plan?checkout=success&session_id={CHECKOUT_SESSION_ID}"
CHECKOUT_CANCEL_PATH = "/plan?checkout=canceled"
PORTAL_RETURN_PATH = "/settings"


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
    subscriptions: SubscriptionRepository = attrs.field(kw_only=True)
    invoices: PaidInvoiceRepository = attrs.field(kw_only=True)
    unit_of_work: UnitOfWork = attrs.field(kw_only=True)
    """A tier, status or subscription record change and the notifications it causes
    commit together."""
    notifications: Notifications | None = attrs.field(default=None, kw_only=True)
    """Tells the customer about activation (welcome), a failed payment and a plan change."""

    async def checkout(
        self, tenant_id: TenantId, tier: str, email: str | None = None
    ) -> CheckoutSession:
        """A subscription checkout for the tier (legacy ids accepted) at its configured
        price, for a tenant without a live subscription (one that has one changes its plan:
        ``Conflict``). The tenant is made a customer of the provider once, before its first
        checkout, and every later session names that same customer; the provider returns to
        the plan page afterwards."""
        tenant = await _known_tenant(self.tenants, tenant_id)
        refuse_second_checkout(tenant)
        tier_id = self.catalog.normalise_tier_id(tier)
        price_id = self.prices.price_for(tier_id)
        if price_id is None:
            raise ValidationError(
                f"tier {tier_id!r} is not for sale: no price is configured for it", field="tier"
            )
        if tenant.stripe_customer_id is None:
            customer_id = await self.gateway.create_customer(tenant, email)
            tenant = attrs.evolve(
                await _known_tenant(self.tenants, tenant_id), stripe_customer_id=customer_id
            )
            await self.tenants.save(tenant)
        base = self.public_url.rstrip("/")
        return await self.gateway.create_checkout(
            tenant,
            price_id,
            tier_id,
            success_url=base + CHECKOUT_SUCCESS_PATH,
            cancel_url=base + CHECKOUT_CANCEL_PATH,
        )

    async def status(self, tenant_id: TenantId) -> BillingStatus:
        """The tier in force, the status, the period end, a scheduled end or downgrade."""
        tenant = await _known_tenant(self.tenants, tenant_id)
        return billing_status(tenant, await self.subscriptions.get(tenant_id))

    async def change_plan(self, tenant_id: TenantId, tier: str) -> BillingStatus:
        """Change the price of the tenant's one subscription (never a second one). An upgrade
        is prorated by the provider and in force at once; a downgrade is billed from the
        next period and waits for it (``pending_tier``); asking for the tier in force drops a
        waiting downgrade. A downgrade is recorded as waiting before the provider is asked,
        so the provider's webhook of the change, however early it comes, finds it (and the
        record is put back if the provider refuses)."""
        tenant = await _known_tenant(self.tenants, tenant_id)
        from_tier = tenant.tier
        before = await self.subscriptions.get(tenant_id)
        change = decide_plan_change(self.catalog, self.prices, tenant, before, tier)
        subscription_id = live_subscription_id(tenant)
        intent = subscription_before_change(tenant, subscription_id, before, change)
        await self.subscriptions.save(intent)
        try:
            snapshot = await self.gateway.change_price(
                subscription_id, change.price_id, change.prorate
            )
        except DomainError:
            await self.subscriptions.save(before or Subscription(tenant.id, subscription_id))
            raise
        told = (
            [plan_changed_facts(tenant_id, from_tier, change.tier, change.applies_at)]
            if self.notifications is not None and change.kind is not ChangeKind.RETURN
            else []
        )
        record = subscription_after_change(tenant, change, snapshot)
        async with self.unit_of_work.begin() as tx:
            await tx.subscriptions.save(record)
            if change.kind is ChangeKind.UPGRADE:
                # read again: the provider's webhook of this change may have arrived meanwhile
                stored = await _known_tenant(tx.tenants, tenant_id)
                tenant = with_tier(stored, self.catalog.tier(change.tier))
                await tx.tenants.save(tenant)
            await self._tell(tx, told)
        if change.kind is ChangeKind.UPGRADE:
            await self._rewrite_config(tenant)
        return billing_status(tenant, record)

    async def _tell(self, tx: Transaction, told: list[NotificationFacts]) -> None:
        now = self.clock.now()
        for facts in told:
            await tx.outbox.enqueue(facts, facts.channels(), now)

    async def cancel(self, tenant_id: TenantId) -> BillingStatus:
        """End the subscription at the end of the period; the agent works until then."""
        return await self._set_cancel(tenant_id, cancel=True)

    async def resume(self, tenant_id: TenantId) -> BillingStatus:
        """Keep renewing a subscription set to end, before it ends."""
        return await self._set_cancel(tenant_id, cancel=False)

    async def _set_cancel(self, tenant_id: TenantId, cancel: bool) -> BillingStatus:
        tenant = await _known_tenant(self.tenants, tenant_id)
        before = await self.subscriptions.get(tenant_id)
        if cancel:
            refuse_cancel(tenant, before)
        else:
            refuse_resume(tenant, before)
        snapshot = await self.gateway.set_cancel_at_period_end(live_subscription_id(tenant), cancel)
        record = subscription_after_snapshot(tenant, before, snapshot)
        ends_at = record.current_period_end
        told = (
            [cancellation_facts(tenant_id, ends_at)]
            if cancel and self.notifications is not None and ends_at is not None
            else []
        )
        async with self.unit_of_work.begin() as tx:
            await tx.subscriptions.save(record)
            await self._tell(tx, told)
        return billing_status(tenant, record)

    async def portal(self, tenant_id: TenantId) -> str:
        """A billing portal session (card, invoices, receipts) for the tenant's customer,
        returning to the plan page; a tenant who never started a checkout has none."""
        tenant = await _known_tenant(self.tenants, tenant_id)
        if tenant.stripe_customer_id is None:
            raise Conflict("there is no billing account yet: choose a plan first")
        return await self.gateway.create_portal_session(
            tenant.stripe_customer_id, self.public_url.rstrip("/") + PORTAL_RETURN_PATH
        )

    async def handle_event(self, event: SubscriptionEvent) -> EventResult:
        """Apply a verified event once. A repeated event id changes nothing and reports the
        first outcome. An event whose price sells no tier is recorded as refused and logged
        as an error for the operator. An event that names no tenant known yet (an invoice
        that arrives before the subscription or checkout that links its customer) is logged
        and not recorded: later events carry the same state, and a redelivery can still
        apply it. A tier change rewrites the tenant's config; the subscription record
        follows subscription events (a downgrade waits for its period), and a paid invoice
        is kept once as revenue."""
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
        before = await self.subscriptions.get(tenant.id)
        lifecycle = apply_lifecycle_event(self.catalog, self.prices, tenant, before, event)
        decision = lifecycle.decision
        if decision.outcome is Outcome.UNKNOWN_PRICE:
            log.error(
                "billing event %s (%s) for tenant %s names price %r, which sells no tier; "
                "not applied (configure TIERKEEPER_STRIPE_PRICE_*)",
                event.event_id, event.event_type, tenant.id, event.price_id,
            )  # fmt: skip
        changed = decision.tenant != tenant
        told = (
            await self.notifications.tenant_change_facts(tenant, decision.tenant)
            if changed and self.notifications is not None
            else []
        )
        async with self.unit_of_work.begin() as tx:
            if changed:
                await tx.tenants.save(decision.tenant)
            if lifecycle.subscription is not None and lifecycle.subscription != before:
                await tx.subscriptions.save(lifecycle.subscription)
            await self._tell(tx, told)
        if changed:
            now = self.clock.now()
            for entry in tenant_change_entries(tenant, decision.tenant, PAYMENT_PROVIDER, now):
                await self.audit.record(entry)
        invoice = paid_invoice(tenant, event)
        if invoice is not None:
            await self.invoices.record(invoice)
        if decision.tier_changed:
            await self._rewrite_config(decision.tenant)
        return await self._remember(event, decision.outcome.value, tenant.id, decision.tenant)

    async def _find_tenant(self, event: SubscriptionEvent) -> Tenant | None:
        if event.tenant_id is not None:
            tenant = await self.tenants.get(event.tenant_id)
            if tenant is not None:
                return tenant
        if event.customer_id is not None:
            return await self.tenants.tenant_by_stripe_customer(event.customer_id)
        return None

    async def _rewrite_config(self, tenant: Tenant) -> None:
        """The tier is already saved and admission follows it at once; a config that cannot be
        written now is logged and left to ``tierkeeper configs regenerate``."""
        try:
            await self.configs.write(tenant.id)
        except (DomainError, OSError) as exc:
            log.error("config for tenant %s not rewritten after tier change: %s",
                      tenant.id, exc)  # fmt: skip

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


async def _known_tenant(tenants: TenantRepository, tenant_id: TenantId) -> Tenant:
    tenant = await tenants.get(tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id!r} is unknown")
    return tenant
