"""Admit a message, settle its usage, and show a tenant where it stands."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

import attrs

from domain.bounded_memory import remember
from domain.catalog import BYOK, Catalog
from domain.errors import Conflict, NotFound
from domain.ids import MessageId, ModelRef, TenantId
from domain.metering import (
    AdmissionRequest,
    Admitted,
    Counters,
    Credential,
    LimitKind,
    RefusalReason,
    Refused,
    SettlementRequest,
    TenantChanged,
    TokenUsage,
    check_token_usage,
    remaining,
    reservation_expiry,
    reservation_tokens,
    thresholds_crossed,
    weighted_tokens,
)
from domain.ports import Clock, CredentialRepository, Notifier, TenantRepository, UsageLedger
from domain.routing import Route, decide_route, platform_token_budget
from domain.tenants import Tenant, may_use_service
from domain.windows import Window, WindowMemo


@attrs.frozen
class Admission:
    """The answer to the gateway: admitted with a route and what remains, or refused."""

    decision: Admitted | Refused
    route: Route | None
    messages_remaining: int | None
    tokens_remaining: int | None


@attrs.frozen
class UsageView:
    day: Window
    period: Window
    messages_used: int
    message_cap: int
    tokens_used: int
    token_budget: int | None
    fallback_tokens_used: int | None
    fallback_token_budget: int | None


T = TypeVar("T")

MAX_TENANT_COPIES = 100_000
"""Tenants whose last-read copy admission keeps (the memory is emptied when full)."""
MAX_TENANT_READS = 3
"""How often one admission or settlement reads a tenant that keeps changing before it
gives up."""


@attrs.frozen
class Metering:
    catalog: Catalog
    tenants: TenantRepository
    credentials: CredentialRepository
    ledger: UsageLedger
    notifier: Notifier
    clock: Clock
    _tenant_copies: dict[TenantId, Tenant] = attrs.field(
        factory=dict, init=False, repr=False, eq=False
    )
    _windows: WindowMemo = attrs.field(factory=WindowMemo, init=False, repr=False, eq=False)

    def tenant_windows(self, tenant: Tenant, now: datetime) -> tuple[Window, Window]:
        """The tenant's local day and billing period containing ``now``."""
        return self._windows.windows(tenant.timezone, tenant.billing_anchor_day, now)

    async def admit(
        self, tenant_id: TenantId, message_id: MessageId, max_tokens: int | None = None
    ) -> Admission:
        """Refuse unknown tenants, inactive subscriptions and BYOK tenants with no usable
        model; otherwise let the ledger admit atomically against cap and budget.

        Tokens are reserved against the platform budget only when the primary model runs on
        platform keys; a BYOK tenant's own-key traffic holds no platform reservation."""
        reserve = reservation_tokens(max_tokens, self.catalog.reservation_tokens_default)
        now = self.clock.now()

        async def on(tenant: Tenant | None, from_copy: bool) -> Admission | None:
            if tenant is None:
                return Admission(Refused(RefusalReason.TENANT_UNKNOWN, None), None, None, None)
            return await self._admit(tenant, message_id, reserve, now, from_copy)

        return await self._on_tenant(tenant_id, on)

    async def _on_tenant(
        self, tenant_id: TenantId, attempt: Callable[[Tenant | None, bool], Awaitable[T | None]]
    ) -> T:
        """``attempt(tenant, from_copy)`` on the copy of the tenant last read when there is
        one, else (and whenever it answers None) on the tenant read again; ``attempt(None,
        False)`` when the tenant is gone.

        The attempt builds its ledger request with the tenant's revision, so the ledger acts
        only if the stored tenant still has it (one statement; a change saved in any process
        takes effect at once) and answers None when it did not act."""
        copy = self._tenant_copies.get(tenant_id)
        if copy is not None:
            result = await attempt(copy, True)
            if result is not None:
                return result
        for _ in range(MAX_TENANT_READS):
            tenant = await self.tenants.get(tenant_id)
            if tenant is None:
                self._tenant_copies.pop(tenant_id, None)
            else:
                remember(self._tenant_copies, tenant.id, tenant, MAX_TENANT_COPIES)
            result = await attempt(tenant, False)
            if result is not None:
                return result
        raise Conflict(f"tenant {tenant_id!r} changed while its message was counted; ask again")

    async def _admit(
        self, tenant: Tenant, message_id: MessageId, reserve: int, now: datetime, from_copy: bool
    ) -> Admission | None:
        """The admission decided on this tenant; None when it must be read again: the ledger
        found the stored tenant changed (nothing was counted), or a kept copy would refuse
        before the ledger could check it."""
        if not may_use_service(tenant, now, self.catalog.past_due_grace_days):
            if from_copy:
                return None
            return Admission(Refused(RefusalReason.SUBSCRIPTION_INACTIVE, None), None, None, None)
        tier = self.catalog.tier(tenant.tier)
        credential = await self.credentials.get(tenant.id) if tier.id == BYOK else None
        route = decide_route(self.catalog, tenant, credential)
        if route.primary is None:
            if from_copy:
                return None
            return Admission(Refused(RefusalReason.BYOK_KEY_INVALID, None), route, None, None)
        day, period = self.tenant_windows(tenant, now)
        budget = platform_token_budget(self.catalog, tier)
        request = AdmissionRequest(
            tenant_id=tenant.id,
            message_id=message_id,
            day=day,
            period=period,
            message_cap=tier.messages_per_day,
            token_budget=budget if route.primary_is_platform else None,
            reserve_tokens=reserve if route.primary_is_platform else 0,
            now=now,
            reservation_expires_at=reservation_expiry(now, self.catalog.reservation_ttl_seconds),
            tenant_revision=tenant.revision,
        )
        decision = await self.ledger.admit(request)
        if isinstance(decision, Refused):
            if decision.reason is RefusalReason.TENANT_CHANGED:
                return None
            return Admission(decision, route, None, None)
        if not decision.replayed:
            await self._notify(
                tenant.id, LimitKind.MESSAGES, day,
                decision.counters.messages_today - 1, decision.counters.messages_today,
                tier.messages_per_day,
            )  # fmt: skip
        return Admission(
            decision=decision,
            route=route,
            messages_remaining=remaining(tier.messages_per_day, decision.counters.messages_today),
            tokens_remaining=remaining(budget, decision.counters.platform_tokens_committed),
        )

    async def settle(
        self,
        tenant_id: TenantId,
        message_id: MessageId,
        model: str,
        usage: TokenUsage,
        credential: Credential,
    ) -> bool:
        """Replace the reservation by the weighted actual count, once per message id.
        Platform-served tokens count against the (fallback) budget; own-key tokens do not.
        Returns False when the message was already settled."""
        check_token_usage(usage)
        now = self.clock.now()

        async def on(tenant: Tenant | None, _from_copy: bool) -> bool | None:
            if tenant is None:
                raise NotFound(f"tenant {tenant_id!r} is unknown", code="tenant_unknown")
            return await self._settle(tenant, message_id, model, usage, credential, now)

        return await self._on_tenant(tenant_id, on)

    async def _settle(
        self,
        tenant: Tenant,
        message_id: MessageId,
        model: str,
        usage: TokenUsage,
        credential: Credential,
        now: datetime,
    ) -> bool | None:
        """Whether this settled the message (False: settled before); None when the ledger
        found the stored tenant changed (nothing was written)."""
        tier = self.catalog.tier(tenant.tier)
        catalog_model = self.catalog.find_model(model)
        weight = catalog_model.budget_weight if catalog_model else Decimal(1)
        counts = credential is Credential.PLATFORM
        day, period = self.tenant_windows(tenant, now)
        settled = await self.ledger.settle(
            SettlementRequest(
                tenant_id=tenant.id,
                message_id=message_id,
                model=ModelRef(model),
                credential=credential,
                usage=usage,
                weighted=weighted_tokens(usage, weight),
                counts_against_budget=counts,
                period=period,
                day=day,
                at=now,
                tenant_revision=tenant.revision,
            )
        )
        if isinstance(settled, TenantChanged):
            return None
        if not settled.replayed and counts:
            await self._notify(
                tenant.id, LimitKind.TOKENS, period,
                settled.counters_before.platform_tokens_settled,
                settled.counters_after.platform_tokens_settled,
                platform_token_budget(self.catalog, tier),
            )  # fmt: skip
        return not settled.replayed

    async def usage(self, tenant_id: TenantId) -> UsageView:
        tenant = await self.tenants.get(tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id!r} is unknown")
        now = self.clock.now()
        tier = self.catalog.tier(tenant.tier)
        day, period = self.tenant_windows(tenant, now)
        counters: Counters = await self.ledger.counters(tenant_id, day, period, now)
        budget = platform_token_budget(self.catalog, tier)
        is_byok = tier.id == BYOK
        return UsageView(
            day=day,
            period=period,
            messages_used=counters.messages_today,
            message_cap=tier.messages_per_day,
            tokens_used=counters.own_key_tokens if is_byok else counters.platform_tokens_settled,
            token_budget=None if is_byok else budget,
            fallback_tokens_used=counters.platform_tokens_settled if is_byok else None,
            fallback_token_budget=budget if is_byok else None,
        )

    async def _notify(
        self,
        tenant_id: TenantId,
        kind: LimitKind,
        window: Window,
        before: int,
        after: int,
        limit: int | None,
    ) -> None:
        for threshold in thresholds_crossed(tenant_id, kind, window, before, after, limit):
            await self.notifier.threshold_crossed(threshold)
