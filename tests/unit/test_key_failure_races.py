"""A gateway's key failure racing another change: when the key was removed or already marked
invalid between the first read and the unit of work, the report changes nothing and tells
nobody; it answers the status found in the unit of work (None for a removed key). The
notice of a key the report does invalidate is the tenant's, stored at the clock's time."""

from __future__ import annotations

import attrs
import pytest

from domain.byok import KeyStatus, StoredCredential
from domain.ids import TenantId
from tests.fakes import InMemoryCredentialRepository
from tests.unit.conftest import World

pytestmark = pytest.mark.unit

T = TenantId("t-1")


@attrs.define
class ChangedAfterFirstRead(InMemoryCredentialRepository):
    """The first read sees the stored key; every later one sees ``then``."""

    then: StoredCredential | None = None
    reads: int = 0

    async def get(self, tenant_id: TenantId) -> StoredCredential | None:
        self.reads += 1
        return await super().get(tenant_id) if self.reads == 1 else self.then


async def racing(world: World, then: str) -> ChangedAfterFirstRead:
    await world.add_tenant(tier="byok")
    await world.add_key()
    stored = world.credential_repo.rows[T]
    repo = ChangedAfterFirstRead(dict(world.credential_repo.rows))
    if then == "invalidated":
        repo.then = attrs.evolve(stored, status=KeyStatus.INVALID, last_error="meanwhile")
    world.credential_repo = repo
    return repo


async def test_a_key_removed_meanwhile_is_reported_as_none_and_tells_nobody(
    world: World,
) -> None:
    repo = await racing(world, "removed")
    assert await world.credentials.report_key_failure(T, "openai", 401) is None
    assert (await world.written(), repo.rows[T].status) == ([], KeyStatus.UNVERIFIED)


async def test_a_key_invalidated_meanwhile_answers_invalid_and_tells_nobody(
    world: World,
) -> None:
    repo = await racing(world, "invalidated")
    assert await world.credentials.report_key_failure(T, "openai", 401) is KeyStatus.INVALID
    assert (await world.written(), repo.rows[T].status) == ([], KeyStatus.UNVERIFIED)


async def test_the_key_invalidated_notice_is_the_tenants_stored_at_the_clock(
    world: World,
) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    await world.credentials.report_key_failure(T, "openai", 401)
    (note,) = world.outbox.notes
    assert (note.facts.tenant_id, note.created_at) == (T, world.clock.now())
