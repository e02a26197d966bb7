"""What ``Metering.reserve_call`` answers for each outcome of one LLM call's reservation: the
refusal and the id the call settles under, the plan made only for a route that can serve,
and a tenant copy re-read before it refuses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import attrs
import pytest

from domain.byok import StoredCredential
from domain.catalog import Catalog
from domain.errors import Conflict
from domain.ids import MessageId, ModelRef, TenantId
from domain.metering import (
    AdmissionOutcome,
    AdmissionRequest,
    Credential,
    RefusalReason,
    Refused,
    TenantChanged,
    TokenUsage,
)
from domain.routing import Route, decide_route
from domain.tenants import SubscriptionStatus, Tenant
from domain.use_cases.metering import MAX_TENANT_READS, CallAdmission, Refusal
from tests.fakes import InMemoryCredentialRepository, InMemoryUsageLedger
from tests.unit.conftest import World
from tests.unit.test_use_case_call_reservations import CALL, T, route_refs


def refused(reason: RefusalReason) -> Refusal:
    return Refusal(Refused(reason, None))


async def test_an_unknown_tenants_call_is_refused_under_its_own_id_with_no_plan(
    world: World,
) -> None:
    reserved = await world.metering.reserve_call(T, CALL, None, 1_000, route_refs)
    assert reserved == CallAdmission(refused(RefusalReason.TENANT_UNKNOWN), CALL, ())


async def test_an_inactive_tenants_call_is_refused_under_its_own_id_with_no_plan(
    world: World,
) -> None:
    await world.add_tenant(status=SubscriptionStatus.CANCELED)
    reserved = await world.metering.reserve_call(T, CALL, None, 1_000, route_refs)
    assert reserved == CallAdmission(refused(RefusalReason.SUBSCRIPTION_INACTIVE), CALL, ())


async def test_a_past_due_tenants_call_is_reserved_within_the_grace_and_refused_after(
    world: World,
) -> None:
    await world.add_tenant(status=SubscriptionStatus.PAST_DUE, past_due_since=world.clock.now())
    within = await world.metering.reserve_call(T, CALL, None, 1_000, route_refs)
    assert within.admission is not None
    assert within.admission.tokens_remaining == 500_000 - 1_000
    world.clock.advance(days=world.catalog.past_due_grace_days)
    after = await world.metering.reserve_call(T, MessageId("call-2"), None, 1_000, route_refs)
    assert after.admission == refused(RefusalReason.SUBSCRIPTION_INACTIVE)


async def test_a_kept_copy_that_would_refuse_a_call_is_read_again_before_refusing(
    world: World,
) -> None:
    await world.add_tenant(status=SubscriptionStatus.INCOMPLETE)
    metering = world.metering
    first = await metering.reserve_call(T, CALL, None, 1_000, route_refs)
    assert first.admission == refused(RefusalReason.SUBSCRIPTION_INACTIVE)
    stored = world.tenant_repo.tenants[T]
    await world.tenant_repo.save(attrs.evolve(stored, status=SubscriptionStatus.ACTIVE))
    second = await metering.reserve_call(T, MessageId("call-2"), None, 1_000, route_refs)
    assert second.admission is not None
    assert second.admission.tokens_remaining == 500_000 - 1_000


async def test_a_call_nothing_serves_answers_no_admission_under_its_own_id(world: World) -> None:
    await world.add_tenant(tier="starter")
    reserved = await world.metering.reserve_call(T, CALL, None, 1_000, lambda _t, _r: ())
    assert reserved == CallAdmission(None, CALL, ())


async def test_a_byok_call_with_no_usable_model_is_refused_before_any_plan_is_made(
    world: World,
) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key(allow_platform_fallback=False)
    await world.credentials.report_key_failure(T, "openai", 401)
    asked: list[Route] = []

    def plan(_tenant: Tenant, route: Route) -> Sequence[ModelRef]:
        asked.append(route)
        return [ModelRef("byok-openai/gpt-4.1")]

    reserved = await world.metering.reserve_call(T, CALL, None, 1_000, plan)
    route = decide_route(world.catalog, world.tenant_repo.tenants[T], world.credential_repo.rows[T])
    assert route.primary is None
    assert reserved == CallAdmission(refused(RefusalReason.BYOK_KEY_INVALID), CALL, ())
    assert asked == []


async def test_a_call_beyond_the_budget_is_refused_until_the_period_resets(world: World) -> None:
    await world.add_tenant(tier="starter")
    await world.metering.settle(T, MessageId("spent"), "moonshot/kimi-k2.5",
                                TokenUsage(499_500, 0), Credential.PLATFORM)  # fmt: skip
    reserved = await world.metering.reserve_call(T, CALL, None, 1_000, route_refs)
    resets = datetime(2026, 4, 1, tzinfo=UTC)
    budget_refusal = Refusal(Refused(RefusalReason.TOKEN_BUDGET_EXHAUSTED, resets))
    assert reserved == CallAdmission(budget_refusal, CALL, ())
    assert (await world.metering.usage(T)).tokens_reserved == 0


@attrs.define
class ChangingLedger(InMemoryUsageLedger):
    """A ledger that finds the tenant changed at every call reservation."""

    asked: int = 0

    async def reserve_call(
        self, request: AdmissionRequest, named: MessageId | None
    ) -> AdmissionOutcome:
        self.asked += 1
        return TenantChanged()


async def test_a_tenant_that_keeps_changing_while_a_call_is_reserved_is_a_conflict(
    world: World,
) -> None:
    await world.add_tenant()
    ledger = ChangingLedger(tenants=world.tenant_repo)
    metering = attrs.evolve(world.metering, ledger=ledger)
    with pytest.raises(Conflict) as raised:
        await metering.reserve_call(T, CALL, None, 1_000, route_refs)
    assert raised.value.detail == "tenant 't-1' changed while its call was reserved; ask again"
    assert ledger.asked == MAX_TENANT_READS


@attrs.define
class CountingCredentials(InMemoryCredentialRepository):
    reads: int = 0

    async def get(self, tenant_id: TenantId) -> StoredCredential | None:
        self.reads += 1
        return await super().get(tenant_id)


@pytest.mark.parametrize(("tier", "reads"), [("starter", 0), ("premium", 0), ("byok", 1)])
async def test_only_a_byok_tenants_stored_key_is_read_to_admit_or_reserve(
    catalog: Catalog, tier: str, reads: int
) -> None:
    """Platform tiers route on the catalog alone: their hot path reads no credential."""
    credentials = CountingCredentials()
    world = World(catalog, credential_repo=credentials)
    await world.add_tenant(tier=tier)
    await world.metering.admit(T, MessageId("m-1"))
    assert credentials.reads == reads
    await world.metering.reserve_call(T, CALL, None, 1_000, route_refs)
    assert credentials.reads == 2 * reads
