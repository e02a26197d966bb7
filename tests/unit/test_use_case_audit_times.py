"""Audit entries written by the key and tenant use cases carry the time of the change, the
tenant, and who acted (the customer when no user is named)."""

from __future__ import annotations

import attrs

from domain.audit import Actor, AuditAction, AuditSource
from domain.ids import TenantId
from tests.fakes import InMemoryAuditLog
from tests.unit.conftest import World

T = TenantId("t-1")


async def test_a_key_removed_without_a_user_is_recorded_now_as_the_customers(
    world: World,
) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    world.clock.advance(hours=1)
    audit = InMemoryAuditLog()
    await attrs.evolve(world.credentials, audit=audit).delete(T)
    (entry,) = audit.recorded
    assert (entry.action, entry.at, entry.actor, entry.tenant_id) == (
        AuditAction.KEY_REMOVED, world.clock.now(), Actor(AuditSource.API, "customer"), T,
    )  # fmt: skip


async def test_a_key_of_a_tenant_already_gone_is_removed_without_a_config(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    del world.tenant_repo.tenants[T]
    await world.credentials.delete(T)
    assert await world.credential_repo.get(T) is None


async def test_a_key_rejected_at_the_gateway_is_recorded_now_for_its_tenant(
    world: World,
) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    world.clock.advance(hours=2)
    audit = InMemoryAuditLog()
    await attrs.evolve(world.credentials, audit=audit).report_key_failure(T, "openai", 401)
    (entry,) = audit.recorded
    assert (entry.action, entry.at, entry.tenant_id) == (
        AuditAction.KEY_INVALIDATED, world.clock.now(), T,
    )  # fmt: skip


async def test_an_operators_tier_change_is_recorded_at_the_time_it_is_made(world: World) -> None:
    await world.add_tenant(tier="starter")
    world.clock.advance(hours=3)
    audit = InMemoryAuditLog()
    await attrs.evolve(world.tenants, audit=audit).change_tier(T, "premium")
    assert [(e.action, e.at) for e in audit.recorded] == [
        (AuditAction.TIER_CHANGED, world.clock.now())
    ]
