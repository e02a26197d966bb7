"""Admission keeps the tenant it last read and lets the ledger check, in the admitting
statement, that the stored tenant is still that revision: one read saved per message, and a
change saved by any process still takes effect on the very next message."""

from __future__ import annotations

import attrs
import pytest

from domain.catalog import Catalog
from domain.errors import Conflict, NotFound
from domain.ids import MessageId, TenantId
from domain.metering import (
    AdmissionOutcome,
    AdmissionRequest,
    Admitted,
    Credential,
    RefusalReason,
    Refused,
    SettlementOutcome,
    SettlementRequest,
    TenantChanged,
    TokenUsage,
)
from domain.tenants import SubscriptionStatus, Tenant
from domain.use_cases import metering as metering_module
from domain.use_cases.metering import MAX_TENANT_READS, Metering
from tests.fakes import InMemoryTenantRepository, InMemoryUsageLedger
from tests.unit.conftest import World

T = TenantId("t-1")


@attrs.define
class CountingTenants(InMemoryTenantRepository):
    reads: int = 0

    async def get(self, tenant_id: TenantId) -> Tenant | None:
        self.reads += 1
        return await super().get(tenant_id)


@pytest.fixture
def world(catalog: Catalog) -> World:
    return World(catalog, tenant_repo=CountingTenants())


@pytest.fixture
def metering(world: World) -> Metering:
    """One use case kept across calls, as the app keeps it."""
    return world.metering


def reads(world: World) -> int:
    assert isinstance(world.tenant_repo, CountingTenants)
    return world.tenant_repo.reads


async def save(world: World, **changes: object) -> None:
    """What another process does: save a changed tenant (not counted as this one's read)."""
    stored = world.tenant_repo.tenants[T]
    await world.tenant_repo.save(attrs.evolve(stored, **changes))


async def test_the_tenant_is_read_once_for_many_messages(world: World, metering: Metering):
    await world.add_tenant(tier="starter")
    decisions = [(await metering.admit(T, MessageId(f"m{n}"))).decision for n in range(5)]
    assert reads(world) == 1
    last = decisions[-1]
    assert isinstance(last, Admitted)
    assert (last.reservation_id, last.replayed, last.counters.messages_today) == (
        "t-1:m4", False, 5,
    )  # fmt: skip


async def test_the_kept_copies_are_bounded_and_forgotten_all_at_once_when_full(
    world: World, metering: Metering, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metering_module, "MAX_TENANT_COPIES", 2)
    for name in ("t-1", "t-2", "t-3"):
        await world.add_tenant(name)
        await metering.admit(TenantId(name), MessageId("m1"))
    assert reads(world) == 3
    await metering.admit(TenantId("t-3"), MessageId("m2"))
    assert reads(world) == 3
    await metering.admit(TenantId("t-1"), MessageId("m2"))
    assert reads(world) == 4


async def test_a_tier_change_saved_elsewhere_applies_to_the_next_message(
    world: World, metering: Metering
) -> None:
    await world.add_tenant(tier="premium")
    first = await metering.admit(T, MessageId("m1"))
    assert first.messages_remaining == world.catalog.tier("premium").messages_per_day - 1
    await save(world, tier="starter")
    second = await metering.admit(T, MessageId("m2"))
    assert second.messages_remaining == world.catalog.tier("starter").messages_per_day - 2
    assert second.route is not None
    assert second.route.primary is not None
    assert second.route.primary.ref == world.catalog.tier("starter").primary_model


async def test_a_cancellation_saved_elsewhere_refuses_the_next_message(
    world: World, metering: Metering
) -> None:
    await world.add_tenant()
    assert isinstance((await metering.admit(T, MessageId("m1"))).decision, Admitted)
    await save(world, status=SubscriptionStatus.CANCELED)
    decision = (await metering.admit(T, MessageId("m2"))).decision
    assert decision == Refused(RefusalReason.SUBSCRIPTION_INACTIVE, None)
    assert world.ledger.messages == {(T, "2026-03-15"): 1}


async def test_a_kept_copy_that_would_refuse_is_read_again_before_refusing(
    world: World, metering: Metering
) -> None:
    """The ledger never sees a refusal made on the copy, so the copy is checked by reading."""
    await world.add_tenant(status=SubscriptionStatus.INCOMPLETE)
    refused = (await metering.admit(T, MessageId("m1"))).decision
    assert isinstance(refused, Refused)
    await save(world, status=SubscriptionStatus.ACTIVE)
    assert isinstance((await metering.admit(T, MessageId("m2"))).decision, Admitted)
    assert reads(world) == 2


@attrs.define
class CountingLedger(InMemoryUsageLedger):
    """Counts admissions and settlements; with ``answer`` / ``settle_answer`` set, gives that
    answer instead of deciding."""

    asked: int = 0
    answer: AdmissionOutcome | None = None
    settle_answer: SettlementOutcome | None = None

    async def admit(self, request: AdmissionRequest) -> AdmissionOutcome:
        self.asked += 1
        return self.answer or await super().admit(request)

    async def settle(self, request: SettlementRequest) -> SettlementOutcome:
        self.asked += 1
        return self.settle_answer or await super().settle(request)


async def on_counting_ledger(
    world: World,
    answer: AdmissionOutcome | None = None,
    settle_answer: SettlementOutcome | None = None,
) -> tuple[Metering, CountingLedger]:
    """The tenant stored, and a use case whose ledger counts what it is asked."""
    await world.add_tenant()
    ledger = CountingLedger(tenants=world.tenant_repo, answer=answer, settle_answer=settle_answer)
    return attrs.evolve(world.metering, ledger=ledger), ledger


async def test_a_tenant_gone_since_its_copy_was_kept_is_unknown_and_its_copy_dropped(
    world: World,
) -> None:
    metering, ledger = await on_counting_ledger(world)
    await metering.admit(T, MessageId("m1"))
    del world.tenant_repo.tenants[T]
    decision = (await metering.admit(T, MessageId("m2"))).decision
    assert decision == Refused(RefusalReason.TENANT_UNKNOWN, None)
    assert (await metering.admit(T, MessageId("m3"))).decision == decision
    assert (reads(world), ledger.asked) == (3, 2)


async def test_a_refusal_by_the_ledger_on_a_current_copy_needs_no_read(
    world: World, metering: Metering
) -> None:
    await world.add_tenant(tier="starter")
    cap = world.catalog.tier("starter").messages_per_day
    for n in range(cap + 3):
        await metering.admit(T, MessageId(f"m{n}"))
    assert reads(world) == 1


async def test_a_tenant_that_keeps_changing_is_a_conflict_after_a_few_reads(world: World):
    # a tenant saved again between every read and every admission
    metering, ledger = await on_counting_ledger(world, answer=TenantChanged())
    with pytest.raises(Conflict) as raised:
        await metering.admit(T, MessageId("m1"))
    assert raised.value.detail == "tenant 't-1' changed while its message was counted; ask again"
    assert (reads(world), ledger.asked) == (MAX_TENANT_READS, MAX_TENANT_READS)


USAGE = TokenUsage(300, 200, 0)
MODEL = "moonshot/kimi-k2.5"


async def settle(metering: Metering, message: str) -> bool:
    """Whether this settled the message (False: it was settled before)."""
    settled = await metering.settle(T, MessageId(message), MODEL, USAGE, Credential.PLATFORM)
    return not settled.replayed


async def test_settling_admitted_messages_reads_the_tenant_no_more(
    world: World, metering: Metering
) -> None:
    await world.add_tenant(tier="premium")
    for n in range(3):
        await metering.admit(T, MessageId(f"m{n}"))
        assert await settle(metering, f"m{n}") is True
    assert reads(world) == 1
    assert await settle(metering, "m0") is False
    assert reads(world) == 1


async def test_a_billing_anchor_saved_elsewhere_applies_to_the_next_settlement(
    world: World, metering: Metering
) -> None:
    """Messages settled without a reservation count in the period of the tenant as stored."""
    await world.add_tenant(billing_anchor_day=1)
    await settle(metering, "before")
    await save(world, billing_anchor_day=20)
    await settle(metering, "after")
    assert sorted(world.ledger.settled_tokens) == [(T, "2026-02-20"), (T, "2026-03-01")]
    assert reads(world) == 2


async def test_settling_for_a_tenant_gone_since_its_copy_was_kept_is_not_found(
    world: World,
) -> None:
    metering, ledger = await on_counting_ledger(world)
    await settle(metering, "m1")
    del world.tenant_repo.tenants[T]
    for message in ("m2", "m3"):
        with pytest.raises(NotFound) as raised:
            await settle(metering, message)
        assert raised.value.code == "tenant_unknown"
    assert (reads(world), ledger.asked) == (3, 2)


async def test_a_tenant_that_keeps_changing_while_settling_is_a_conflict(world: World):
    metering, ledger = await on_counting_ledger(world, settle_answer=TenantChanged())
    with pytest.raises(Conflict) as raised:
        await settle(metering, "m1")
    assert raised.value.detail == "tenant 't-1' changed while its message was counted; ask again"
    assert (reads(world), ledger.asked) == (MAX_TENANT_READS, MAX_TENANT_READS)
