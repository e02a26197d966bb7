"""A tenant's stored key is read only where its tier can use it: a config, the gateway's
config document, a welcome, the tenant's overview or a tier change of a tier without own
keys, and a change that activates nothing, read no stored key (one left from a BYOK past
included)."""

from __future__ import annotations

import attrs
import pytest

from domain.byok import StoredCredential
from domain.ids import TenantId
from domain.tenants import SubscriptionStatus
from tests.fakes import InMemoryCredentialRepository
from tests.unit.conftest import World
from tests.unit.test_config_documents import documents
from tests.unit.test_notifications import Notify

pytestmark = pytest.mark.unit

T = TenantId("t-1")


@attrs.define
class CountingReads(InMemoryCredentialRepository):
    reads: int = 0

    async def get(self, tenant_id: TenantId) -> StoredCredential | None:
        self.reads += 1
        return await super().get(tenant_id)


@pytest.fixture
async def counted(world: World) -> CountingReads:
    world.credential_repo = CountingReads()
    await world.add_tenant("t-1", tier="byok")
    await world.add_key("t-1")
    world.credential_repo.reads = 0
    return world.credential_repo


@pytest.mark.parametrize(("tier", "reads"), [("starter", 0), ("byok", 1)])
async def test_a_config_reads_the_stored_key_only_on_the_byok_tier(
    world: World, counted: CountingReads, tier: str, reads: int
) -> None:
    await world.tenant_repo.save(attrs.evolve(world.tenant_repo.tenants[T], tier=tier))
    await world.configs.write(T)
    assert counted.reads == reads


@pytest.mark.parametrize(("tier", "reads"), [("starter", 0), ("byok", 1)])
async def test_a_welcome_reads_the_stored_key_only_on_the_byok_tier(
    world: World, counted: CountingReads, tier: str, reads: int
) -> None:
    tenant = attrs.evolve(world.tenant_repo.tenants[T], tier=tier)
    await Notify(world).notifications.welcome_text(tenant)
    assert counted.reads == reads


async def test_a_change_that_activates_nothing_words_no_welcome(
    world: World, counted: CountingReads
) -> None:
    before = world.tenant_repo.tenants[T]
    after = attrs.evolve(before, status=SubscriptionStatus.PAST_DUE)
    await Notify(world).notifications.tenant_change_facts(before, after)
    assert counted.reads == 0


@pytest.mark.parametrize(("tier", "reads"), [("starter", 0), ("byok", 1)])
async def test_a_config_document_reads_the_stored_key_only_on_the_byok_tier(
    world: World, counted: CountingReads, tier: str, reads: int
) -> None:
    await world.tenant_repo.save(attrs.evolve(world.tenant_repo.tenants[T], tier=tier))
    await documents(world).document(T)
    assert counted.reads == reads


@pytest.mark.parametrize(("tier", "reads"), [("starter", 0), ("premium", 0), ("byok", 1)])
async def test_an_overview_reads_the_stored_key_only_on_the_byok_tier(
    world: World, counted: CountingReads, tier: str, reads: int
) -> None:
    await world.tenant_repo.save(attrs.evolve(world.tenant_repo.tenants[T], tier=tier))
    overview = await world.tenants.overview(T)
    assert overview.tenant.tier == tier
    assert counted.reads == reads


@pytest.mark.parametrize("tier", ["starter", "premium"])
async def test_a_change_to_a_platform_tier_reads_no_stored_key(
    world: World, counted: CountingReads, tier: str
) -> None:
    """The change welcomes the tenant to the new tier and rewrites its config: neither
    needs the key left from its BYOK tier."""
    await world.tenants.change_tier(T, tier)
    assert [kind for kind, _ in await world.written()] == ["welcome", "plan_changed"]
    assert counted.reads == 0
