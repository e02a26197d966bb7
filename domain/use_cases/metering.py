"""Admit a message, settle its usage, and show a tenant where it stands.

Admit and settle are each one ledger statement on the tenant copy this process kept: the
ledger checks the copy's revision in that statement and answers ``TenantChanged`` (having
done nothing) when the stored tenant moved on. So both read as one loop: the kept copy, then
up to three fresh reads (``Metering._tenant_versions``). An LLM call of a tenant calling
often makes no statement before it goes upstream: it draws its reservation from a budget
lease this process holds (``budget_leases``), and its settlement, one statement as ever,
takes its tokens out of the lease.

The 80% and 100% crossings of the cap and the budget are written to the notifications outbox
by the ledger itself, in the admitting or settling transaction (``UsageLedger``): nothing is
left to do here after the ledger answers, so a crash cannot lose one and a settlement after a
period boundary files it under its reservation's period only.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Generic, TypeVar

import attrs

from domain.bounded_memory import remember
from domain.catalog import BYOK, Catalog, Tier
from domain.errors import Conflict, NotFound
from domain.ids import MessageId, ModelRef, TenantId
from domain.metering import (
    AdmissionRequest,
    Admitted,
    Anomaly,
    Counters,
    Credential,
    DrawnFromLease,
    OfferedRoute,
    RefusalReason,
    Refused,
    SettlementRequest,
    TenantChanged,
    TokenUsage,
    check_token_usage,
    remaining,
    reservation_expiry,
    reservation_tokens,
)
from domain.ports import Clock, CredentialRepository, TenantRepository, UsageLedger
from domain.routing import (
    Route,
    decide_route,
    platform_fallback_tier,
    platform_token_budget,
    tier_models,
)
from domain.tenants import Tenant, may_use_service
from domain.use_cases.budget_leases import BudgetLease, BudgetLeases, LeaseDraw, LeaseTerms
from domain.use_cases.single_flight import SingleFlight
from domain.windows import Window, WindowMemo

log = logging.getLogger("tierkeeper.metering")

MAX_TENANT_COPIES = 100_000
"""Tenants whose last-read copy admission keeps (the memory is emptied when full)."""
MAX_TENANT_READS = 3
"""How often one admission or settlement reads a tenant that keeps changing before it
gives up."""


@attrs.define
class MeteringCaches:
    """What one API process keeps between messages, built once by bootstrap: the tenant
    copies last read (checked by the ledger against the stored revision, so never stale in
    effect) and the windows last computed. Never a count: counts live in the ledger.

    Concurrent messages of a tenant whose copy is missing or stale share one read of it
    (``tenant_reads``): a read that began before a message arrived is safe to share for
    the same reason a kept copy is, the ledger checks its revision."""

    tenant_copies: dict[TenantId, Tenant] = attrs.Factory(dict)
    tenant_reads: SingleFlight[TenantId, Tenant | None] = attrs.Factory(SingleFlight)
    windows: WindowMemo = attrs.Factory(WindowMemo)
    weights: dict[tuple[ModelRef, ...], Decimal] = attrs.Factory(dict)
    """The highest budget weight per set of model refs (the catalog never changes while
    the process runs; a handful of routes and tiers, so it stays small)."""

    def keep(self, tenant_id: TenantId, tenant: Tenant | None) -> None:
        """Remember the tenant as just read; forget it when it is gone."""
        if tenant is None:
            self.tenant_copies.pop(tenant_id, None)
        else:
            remember(self.tenant_copies, tenant_id, tenant, MAX_TENANT_COPIES)

    async def read(
        self, tenant_id: TenantId, get: Callable[[TenantId], Awaitable[Tenant | None]]
    ) -> Tenant | None:
        """The tenant as stored now (None: gone), kept; or the answer of the read of it
        already under way. A failed read fails everyone waiting on it and keeps nothing."""

        async def read_and_keep() -> Tenant | None:
            tenant = await get(tenant_id)
            self.keep(tenant_id, tenant)
            return tenant

        return await self.tenant_reads.run(tenant_id, read_and_keep)


@attrs.frozen
class Admission:
    """An admitted message or call: the route it may take and what remains of the day's cap
    and the period's budget (None: the tier sets no such limit)."""

    decision: Admitted
    route: Route
    messages_remaining: int | None
    tokens_remaining: int | None


@attrs.frozen
class Refusal:
    """A refused message or call: why, and when it may be asked again. It offers no route,
    so it carries none."""

    decision: Refused


U = TypeVar("U")


@attrs.frozen
class CallAdmission(Generic[U]):
    """One LLM call's reservation (``admission``; None: no upstream of the tenant's route
    serves the call, and nothing was reserved), the id it settles under, the upstreams
    ``plan`` chose for the route the admission offers (none for a refusal), and the budget
    lease it was drawn from (None: reserved in the ledger on its own)."""

    admission: Admission | Refusal | None
    ledger_id: MessageId
    plan: Sequence[U]
    drawn: LeaseDraw | None = None


@attrs.frozen
class Settlement:
    """How a settlement counted: ``counted_as`` the tenant's key or platform usage, the
    anomaly that made it differ from the report, and whether it was settled before."""

    counted_as: Credential
    anomaly: Anomaly | None
    replayed: bool


@attrs.frozen
class UsageView:
    day: Window
    period: Window
    messages_used: int
    message_cap: int
    tokens_used: int
    tokens_reserved: int
    token_budget: int | None
    fallback_tokens_used: int | None
    fallback_tokens_reserved: int | None
    fallback_token_budget: int | None


def _refused(reason: RefusalReason) -> Refusal:
    return Refusal(Refused(reason, None))


@attrs.frozen
class Metering:
    catalog: Catalog
    tenants: TenantRepository
    credentials: CredentialRepository
    ledger: UsageLedger
    clock: Clock
    caches: MeteringCaches = attrs.field(factory=MeteringCaches, repr=False, eq=False)
    leases: BudgetLeases = attrs.field(factory=BudgetLeases, repr=False, eq=False)
    _giving_back: set[asyncio.Task[None]] = attrs.field(
        factory=set, init=False, repr=False, eq=False
    )

    def tenant_windows(self, tenant: Tenant, now: datetime) -> tuple[Window, Window]:
        """The tenant's local day and billing period containing ``now`` (zone changes
        apply at the end of the current day and period: windows never overlap)."""
        return self.caches.windows.windows(
            tenant.timezone, tenant.billing_anchor_day, now, tenant.zone_history
        )

    async def _tenant_versions(
        self, tenant_id: TenantId
    ) -> AsyncIterator[tuple[Tenant | None, bool]]:
        """The kept copy of the tenant when there is one, then up to three fresh reads,
        each with whether it is fresh (None: the tenant is gone)."""
        copy = self.caches.tenant_copies.get(tenant_id)
        if copy is not None:
            yield copy, False
        for _ in range(MAX_TENANT_READS):
            yield await self.caches.read(tenant_id, self.tenants.get), True

    async def admit(
        self, tenant_id: TenantId, message_id: MessageId, max_tokens: int | None = None
    ) -> Admission | Refusal:
        """Refuse unknown tenants, inactive subscriptions and BYOK tenants with no usable
        model; otherwise let the ledger admit atomically against cap and budget."""
        reserve = reservation_tokens(max_tokens, self.catalog.reservation_tokens_default)
        now = self.clock.now()
        async for tenant, fresh in self._tenant_versions(tenant_id):
            if tenant is None:
                return _refused(RefusalReason.TENANT_UNKNOWN)
            admission = await self._admit(tenant, fresh, message_id, reserve, now)
            if not isinstance(admission, TenantChanged):
                return admission
        raise Conflict(f"tenant {tenant_id!r} changed while its message was counted; ask again")

    def _request(
        self, tenant: Tenant, route: Route, message_id: MessageId, reserve: int, now: datetime
    ) -> AdmissionRequest:
        """What the ledger checks for one message or call on ``route`` (its primary set):
        the tenant's windows, the cap, and the platform budget with ``reserve`` tokens while
        any model of the route runs on platform keys; optional behind a tenant's own key."""
        assert route.primary is not None
        tier = self.catalog.tier(tenant.tier)
        day, period = self.tenant_windows(tenant, now)
        budget = platform_token_budget(self.catalog, tier)
        on_platform = route.runs_on_platform()
        on_tenant_key = route.primary.credential is Credential.TENANT
        return AdmissionRequest(
            tenant_id=tenant.id,
            message_id=message_id,
            day=day,
            period=period,
            message_cap=tier.messages_per_day,
            token_budget=budget if on_platform else None,
            reserve_tokens=reserve if on_platform else 0,
            now=now,
            reservation_expires_at=reservation_expiry(now, self.catalog.reservation_ttl_seconds),
            tenant_revision=tenant.revision,
            reservation_optional=on_tenant_key and on_platform,
            route=OfferedRoute(
                models=tuple(choice.ref for choice in route.choices()),
                tenant_key_model=route.primary.ref if on_tenant_key else None,
                max_weight=self._highest_weight(route.platform_refs()),
            ),
        )

    async def _admit(
        self, tenant: Tenant, fresh: bool, message_id: MessageId, reserve: int, now: datetime
    ) -> Admission | Refusal | TenantChanged:
        """The admission decided on this tenant. A kept copy that would refuse before the
        ledger could check it is read again first (``TenantChanged``).

        Tokens are reserved against the platform budget while any model of the route runs
        on platform keys: the primary's reservation is required; a BYOK tenant's platform
        fallbacks are offered only while the starter budget holds the reservation."""
        if not may_use_service(tenant, now, self.catalog.past_due_grace_days):
            return _refused(RefusalReason.SUBSCRIPTION_INACTIVE) if fresh else TenantChanged()
        tier = self.catalog.tier(tenant.tier)
        credential = await self.credentials.get(tenant.id) if tier.id == BYOK else None
        route = decide_route(self.catalog, tenant, credential)
        if route.primary is None:
            if fresh:
                return _refused(RefusalReason.BYOK_KEY_INVALID)
            return TenantChanged()
        request = self._request(tenant, route, message_id, reserve, now)
        decision = await self.ledger.admit(request)
        if isinstance(decision, TenantChanged):
            return decision
        if isinstance(decision, Refused):
            return Refusal(decision)
        if request.reservation_optional and decision.held_tokens == 0:
            route = route.without_platform()
        return self._admitted(tier, route, decision)

    def _admitted(self, tier: Tier, route: Route, decision: Admitted) -> Admission:
        """An admission with what is left of the day's cap and the period's budget."""
        return Admission(
            decision=decision,
            route=route,
            messages_remaining=remaining(tier.messages_per_day, decision.counters.messages_today),
            tokens_remaining=remaining(
                platform_token_budget(self.catalog, tier),
                decision.counters.platform_tokens_committed(),
            ),
        )

    def _highest_weight(self, refs: tuple[ModelRef, ...]) -> Decimal:
        """The budget weight of the most expensive of these models (1 when none is known)."""
        known = self.caches.weights.get(refs)
        if known is None:
            found = [m.budget_weight for m in map(self.catalog.find_model, refs) if m]
            known = self.caches.weights[refs] = max(found, default=Decimal(1))
        return known

    def _tier_weight(self, tier: Tier) -> Decimal:
        """The weight a settlement without an admission is rated at for an unknown model:
        the most expensive platform model the tier could have routed to."""
        fallback = platform_fallback_tier(self.catalog, tier)
        return self._highest_weight(
            tier_models(tier) + tier.selectable_models + tier_models(fallback)
        )

    async def reserve_call(
        self,
        tenant_id: TenantId,
        call_id: MessageId,
        named: MessageId | None,
        max_tokens: int | None,
        plan: Callable[[Tenant, Route], Sequence[U]],
    ) -> CallAdmission[U]:
        """Hold one LLM call's tokens against the right budget without counting a message
        (message caps stay with admission, spec §13). ``plan`` picks the route's upstreams
        for the call: none, and the call is refused having reserved nothing. The first call
        naming a message whose reservation is still held claims it and settles against it;
        any other (another call naming the same message too) holds its own reservation under
        ``call_id`` (fresh for every call), so each settlement counts its own usage."""
        reserve = reservation_tokens(max_tokens, self.catalog.reservation_tokens_default)
        now = self.clock.now()
        async for tenant, fresh in self._tenant_versions(tenant_id):
            if tenant is None:
                return CallAdmission(_refused(RefusalReason.TENANT_UNKNOWN), call_id, ())
            held = await self._reserve_call(tenant, fresh, call_id, named, reserve, now, plan)
            if not isinstance(held, TenantChanged):
                return held
        raise Conflict(f"tenant {tenant_id!r} changed while its call was reserved; ask again")

    async def _reserve_call(
        self,
        tenant: Tenant,
        fresh: bool,
        call_id: MessageId,
        named: MessageId | None,
        reserve: int,
        now: datetime,
        plan: Callable[[Tenant, Route], Sequence[U]],
    ) -> CallAdmission[U] | TenantChanged:
        """The call's reservation on this tenant, against the budget ``_admit`` would
        reserve a message's against. A kept copy that would refuse is read again first."""
        if not may_use_service(tenant, now, self.catalog.past_due_grace_days):
            refused = _refused(RefusalReason.SUBSCRIPTION_INACTIVE)
            return CallAdmission(refused, call_id, ()) if fresh else TenantChanged()
        tier = self.catalog.tier(tenant.tier)
        credential = await self.credentials.get(tenant.id) if tier.id == BYOK else None
        route = decide_route(self.catalog, tenant, credential)
        upstreams = plan(tenant, route) if route.primary is not None else ()
        if not upstreams:
            if not fresh:
                return TenantChanged()
            if route.primary is None:
                return CallAdmission(_refused(RefusalReason.BYOK_KEY_INVALID), call_id, ())
            return CallAdmission(None, call_id, ())
        assert route.primary is not None
        request = self._request(tenant, route, call_id, reserve, now)
        leasable = named is None and not request.reservation_optional
        terms = LeaseTerms.of(request) if leasable else None  # None: never from a lease
        if terms is not None and (drawn := await self._draw(request, terms)) is not None:
            admitted = attrs.evolve(drawn.lease.granted, held_tokens=drawn.tokens)
            return CallAdmission(self._admitted(tier, route, admitted), call_id, upstreams, drawn)
        decision = await self.ledger.reserve_call(request, named)
        if isinstance(decision, TenantChanged):
            return decision
        if isinstance(decision, Refused):
            return CallAdmission(Refusal(decision), call_id, ())
        if terms is not None:
            self.leases.observe(terms, decision.counters, _now())
        if request.reservation_optional and decision.held_tokens == 0:
            route = route.without_platform()
            upstreams = plan(tenant, route)
        admission = self._admitted(tier, route, decision)
        ledger_id = named if decision.replayed and named is not None else call_id
        return CallAdmission(admission, ledger_id, upstreams)

    async def _draw(self, request: AdmissionRequest, terms: LeaseTerms) -> LeaseDraw | None:
        """The call's reservation out of the open budget lease with its ``terms``; a lease
        is asked of the ledger (once for all calls with the same terms) when there is none,
        or it is spent, and the tenant is calling often enough."""
        tokens = request.reserve_tokens
        lease = self.leases.opened(terms)
        if lease is not None and lease.free < tokens:
            self._close_lease(lease)
            lease = None
        if lease is None and self.leases.worth_asking(terms, tokens, _now()):
            lease = await self.leases.asking.run(terms, lambda: self._ask_lease(request, terms))
        return self.leases.draw(lease, tokens) if lease is not None else None

    async def _ask_lease(self, request: AdmissionRequest, terms: LeaseTerms) -> BudgetLease | None:
        """A lease of ``leases.size`` tokens, held in the ledger like a call's reservation;
        None when the budget cannot hold it (or the tenant changed: the call's own
        reservation finds that out)."""
        lease_id = MessageId(f"lease-{secrets.token_hex(12)}")
        size = self.leases.size(terms, request.reserve_tokens)
        asked = attrs.evolve(request, message_id=lease_id, reserve_tokens=size)
        decision = await self.ledger.reserve_call(asked, None)
        if isinstance(decision, TenantChanged):
            return None
        if isinstance(decision, Refused):
            self.leases.refused(terms, _now())
            return None
        self.leases.observe(terms, decision.counters, _now())
        lease = BudgetLease(lease_id, terms, size, decision)
        self.leases.open(lease)
        asyncio.get_running_loop().call_later(self.leases.seconds, self._close_lease, lease)
        return lease

    def _close_lease(self, lease: BudgetLease) -> None:
        """The lease's time is up, or it is spent: no call draws from it any more. It is
        given back now, or as its last call settles."""
        if self.leases.close(lease):
            task = asyncio.ensure_future(self._give_back(lease))
            self._giving_back.add(task)
            task.add_done_callback(self._giving_back.discard)

    async def _give_back(self, lease: BudgetLease) -> None:
        """What the lease still holds goes back to the budget. On failure the lease's
        reservation stays held until it expires, like any unsettled call's."""
        try:
            await self.ledger.release(lease.terms.tenant_id, lease.id, self.clock.now())
        except Exception:
            log.exception("a budget lease could not be given back; it lapses at its expiry")

    async def end_leases(self) -> None:
        """Close every lease (the process stops): those with no call left to settle are
        given back now, the others as their last call settles."""
        for lease in self.leases.close_all():
            await self._give_back(lease)
        while self._giving_back:
            await asyncio.gather(*list(self._giving_back))

    async def settle(
        self,
        tenant_id: TenantId,
        message_id: MessageId,
        model: str,
        usage: TokenUsage,
        credential: Credential,
        drawn: LeaseDraw | None = None,
    ) -> Settlement:
        """Replace the reservation by the weighted actual count, once per message id,
        checked against what the admission offered (``settlement_terms``): platform-served
        tokens count against the (fallback) budget; a settlement never makes tokens free.
        A call ``drawn`` from a budget lease takes its reservation out of it first."""
        check_token_usage(usage)
        now = self.clock.now()
        try:
            async for tenant, _fresh in self._tenant_versions(tenant_id):
                if tenant is None:
                    raise NotFound(f"tenant {tenant_id!r} is unknown", code="tenant_unknown")
                settlement = await self._settle(
                    tenant, message_id, model, usage, credential, now, drawn
                )
                if not isinstance(settlement, TenantChanged):
                    return settlement
        finally:
            if drawn is not None and self.leases.settled(drawn):
                await self._give_back(drawn.lease)
        raise Conflict(f"tenant {tenant_id!r} changed while its message was counted; ask again")

    async def _settle(
        self,
        tenant: Tenant,
        message_id: MessageId,
        model: str,
        usage: TokenUsage,
        credential: Credential,
        now: datetime,
        drawn: LeaseDraw | None,
    ) -> Settlement | TenantChanged:
        tier = self.catalog.tier(tenant.tier)
        catalog_model = self.catalog.find_model(model)
        day, period = self.tenant_windows(tenant, now)
        settled = await self.ledger.settle(
            SettlementRequest(
                tenant_id=tenant.id,
                message_id=message_id,
                model=ModelRef(model),
                credential=credential,
                usage=usage,
                reported_weight=catalog_model.budget_weight if catalog_model else None,
                unadmitted_weight=self._tier_weight(tier),
                period=period,
                day=day,
                at=now,
                tenant_revision=tenant.revision,
                token_budget=platform_token_budget(self.catalog, tier),
                drawn=DrawnFromLease(drawn.lease.id, drawn.tokens) if drawn else None,
            )
        )
        if isinstance(settled, TenantChanged):
            return settled
        terms = settled.terms
        if not settled.replayed and terms.anomaly is not None and usage.total():
            log.warning(
                "settlement anomaly %s: tenant %s message %s reported %s on %s, counted as %s",
                terms.anomaly.value, tenant.id, message_id, credential.value, model,
                terms.counted_as.value,
            )  # fmt: skip
        return Settlement(terms.counted_as, terms.anomaly, settled.replayed)

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
            tokens_reserved=0 if is_byok else counters.platform_tokens_reserved,
            token_budget=None if is_byok else budget,
            fallback_tokens_used=counters.platform_tokens_settled if is_byok else None,
            fallback_tokens_reserved=counters.platform_tokens_reserved if is_byok else None,
            fallback_token_budget=budget if is_byok else None,
        )

    async def sweep(self) -> int:
        """Expire reservations never settled (15 minutes after admission): they leave the
        counters for good. Run by ``tierkeeper usage sweep`` and on a timer by ``serve``."""
        return await self.ledger.release_expired(self.clock.now())


def _now() -> float:
    """The event loop's monotonic clock: how recent a call is, for leases only."""
    return asyncio.get_running_loop().time()
