"""Concurrent messages of a tenant whose copy is missing share one read of it: 64 first
messages of a tenant read it once, a failed read fails them all and is not kept, and a
message cancelled while waiting leaves the read to the others."""

from __future__ import annotations

import asyncio

import attrs
import pytest

from domain.catalog import Catalog
from domain.ids import MessageId, TenantId
from domain.metering import Admitted
from domain.tenants import Tenant
from domain.use_cases.metering import Admission, Metering
from domain.use_cases.single_flight import SingleFlight
from tests.fakes import InMemoryTenantRepository
from tests.unit.conftest import World

T = TenantId("t-1")


class ReadFailed(Exception):
    pass


@attrs.define
class SlowTenants(InMemoryTenantRepository):
    """Counts reads; each waits for ``gate`` (open unless closed), the next ``failures``
    reads fail."""

    reads: list[TenantId] = attrs.Factory(list)
    gate: asyncio.Event = attrs.Factory(asyncio.Event)
    failures: int = 0

    async def get(self, tenant_id: TenantId) -> Tenant | None:
        self.reads.append(tenant_id)
        await asyncio.sleep(0)  # a read takes a turn of the loop, as a database's does
        await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise ReadFailed("the database went away")
        return await super().get(tenant_id)


@pytest.fixture
def tenants() -> SlowTenants:
    repo = SlowTenants()
    repo.gate.set()
    return repo


@pytest.fixture
def world(catalog: Catalog, tenants: SlowTenants) -> World:
    return World(catalog, tenant_repo=tenants)


@pytest.fixture
def metering(world: World) -> Metering:
    """One use case kept across calls, as the app keeps it."""
    return world.metering


def admits(metering: Metering, tenant_id: TenantId, count: int) -> list[asyncio.Task[Admission]]:
    return [
        asyncio.create_task(metering.admit(tenant_id, MessageId(f"m{n}"))) for n in range(count)
    ]


async def test_64_first_messages_of_a_tenant_read_it_once(
    world: World, metering: Metering, tenants: SlowTenants
) -> None:
    await world.add_tenant(tier="premium")
    answers = await asyncio.gather(*admits(metering, T, 64))
    assert tenants.reads == [T]
    assert all(isinstance(a.decision, Admitted) for a in answers)
    assert world.ledger.messages == {(T, "2026-03-15"): 64}


async def test_each_tenant_is_read_once_and_answers_for_itself(
    world: World, metering: Metering, tenants: SlowTenants
) -> None:
    await world.add_tenant("t-1", tier="premium")
    await world.add_tenant("t-2", tier="starter")
    await asyncio.gather(
        *admits(metering, TenantId("t-1"), 8), *admits(metering, TenantId("t-2"), 8)
    )
    assert sorted(tenants.reads) == ["t-1", "t-2"]
    assert metering.caches.tenant_copies[TenantId("t-1")].tier == "premium"
    assert metering.caches.tenant_copies[TenantId("t-2")].tier == "starter"


async def test_a_failed_read_fails_everyone_waiting_and_is_not_kept(
    world: World, metering: Metering, tenants: SlowTenants
) -> None:
    await world.add_tenant()
    tenants.failures = 1
    answers = await asyncio.gather(*admits(metering, T, 8), return_exceptions=True)
    assert [type(a) for a in answers] == [ReadFailed] * 8
    assert tenants.reads == [T]
    assert T not in metering.caches.tenant_copies
    again = await metering.admit(T, MessageId("m9"))
    assert isinstance(again.decision, Admitted)
    assert tenants.reads == [T, T]


async def test_a_message_cancelled_while_waiting_leaves_the_read_to_the_others(
    world: World, metering: Metering, tenants: SlowTenants
) -> None:
    await world.add_tenant()
    tenants.gate.clear()
    first, second = admits(metering, T, 2)
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    tenants.gate.set()
    answer = await second
    assert isinstance(answer.decision, Admitted)
    assert first.cancelled()
    assert tenants.reads == [T]
    assert world.ledger.messages == {(T, "2026-03-15"): 1}


async def test_a_read_that_ended_is_not_shared_with_later_callers() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    calls: list[str] = []

    async def read() -> int:
        calls.append("read")
        await asyncio.sleep(0)
        return len(calls)

    assert list(await asyncio.gather(flight.run("k", read), flight.run("k", read))) == [1, 1]
    assert await flight.run("k", read) == 2
    assert await flight.run("other", read) == 3
