"""Read and change a tenant: tier (operator or billing), status, time zone, model choice."""

from __future__ import annotations

import attrs

from domain.audit import OPERATOR, Actor, NoAuditLog, tenant_change_entries
from domain.catalog import BYOK, Catalog
from domain.errors import NotFound
from domain.ids import TenantId
from domain.ports import AuditLog, Clock, CredentialRepository, TenantRepository, UnitOfWork
from domain.routing import Route, decide_route
from domain.tenants import (
    PendingTimezone,
    SubscriptionStatus,
    Tenant,
    choose_model,
    current_timezone,
    pending_timezone,
    with_status,
    with_tier,
    with_timezone,
)
from domain.use_cases.configs import Configs
from domain.use_cases.notifications import Notifications
from domain.welcome import welcome_message


@attrs.frozen
class TenantOverview:
    """``timezone``: the zone the current day is counted in; ``pending_timezone``: the zone
    chosen since, and when it starts counting days."""

    tenant: Tenant
    route: Route
    welcome_message: str
    timezone: str
    pending_timezone: PendingTimezone | None


@attrs.frozen
class Tenants:
    catalog: Catalog
    tenants: TenantRepository
    credentials: CredentialRepository
    configs: Configs
    clock: Clock
    unit_of_work: UnitOfWork = attrs.field(kw_only=True)
    notifications: Notifications = attrs.field(kw_only=True)
    audit: AuditLog = attrs.field(factory=NoAuditLog, kw_only=True)

    async def get(self, tenant_id: TenantId) -> Tenant:
        tenant = await self.tenants.get(tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id!r} is unknown")
        return tenant

    async def overview(self, tenant_id: TenantId) -> TenantOverview:
        """The tenant with its route and welcome; the saved key is read only on BYOK."""
        tenant = await self.get(tenant_id)
        byok = self.catalog.tier(tenant.tier).id == BYOK
        credential = await self.credentials.get(tenant.id) if byok else None
        route = decide_route(self.catalog, tenant, credential)
        now = self.clock.now()
        return TenantOverview(
            tenant,
            route,
            welcome_message(self.catalog, tenant, route),
            current_timezone(tenant, now),
            pending_timezone(tenant, now),
        )

    async def change_tier(
        self,
        tenant_id: TenantId,
        tier_id: str,
        status: SubscriptionStatus | None = None,
        actor: Actor = OPERATOR,
    ) -> Tenant:
        """Takes effect at once (legacy ids accepted) and rewrites the tenant's config; the
        customer is told (welcome at activation, payment failed, plan changed) in the same
        unit of work as the change; the audit trail records the change and ``actor`` (the
        operator's command by default)."""
        tenant = await self.get(tenant_id)
        now = self.clock.now()
        changed = with_tier(tenant, self.catalog.tier(tier_id))
        if status is not None:
            changed = with_status(changed, status, now)
        told = await self.notifications.tenant_change_facts(tenant, changed)
        async with self.unit_of_work.begin() as tx:
            await tx.tenants.save(changed)
            for facts in told:
                await tx.outbox.enqueue(facts, facts.channels(), now)
        for entry in tenant_change_entries(tenant, changed, actor, self.clock.now()):
            await self.audit.record(entry)
        await self.configs.write(tenant_id)
        return changed

    async def update(
        self,
        tenant_id: TenantId,
        timezone: str | None = None,
        model_preference: str | None = None,
        clear_model_preference: bool = False,
    ) -> Tenant:
        tenant = await self.get(tenant_id)
        changed = tenant
        if timezone is not None:
            changed = with_timezone(changed, timezone, self.clock.now())
        if model_preference is not None or clear_model_preference:
            changed = choose_model(self.catalog, changed, model_preference)
        if changed != tenant:
            await self.tenants.save(changed)
            if changed.model_preference != tenant.model_preference:
                await self.configs.write(tenant_id)
        return changed
