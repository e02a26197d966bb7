"""Writing a config: in proxy mode it carries the tenant's virtual key, kept unless rotation
is asked for; a tenant whose account is deleted gets none; an unknown tenant is not found."""

from __future__ import annotations

import attrs
import pytest

from domain.catalog import Catalog
from domain.errors import NotFound
from domain.ids import TenantId
from domain.tenants import Tenant
from domain.use_cases.configs import ProxyMode
from domain.use_cases.virtual_keys import VirtualKeys
from tests.fakes import FakeKeyStore, InMemoryTenantRepository, InMemoryVirtualKeyRepository
from tests.unit.conftest import World

pytestmark = pytest.mark.unit

T = TenantId("t-1")


async def test_building_writing_and_rendering_keep_the_virtual_key_unless_rotating(
    catalog: Catalog,
) -> None:
    world = World(catalog)
    tenant = await world.add_tenant()
    keys = VirtualKeys(InMemoryVirtualKeyRepository(), FakeKeyStore(), world.clock)
    configs = attrs.evolve(world.configs, proxy=ProxyMode("http://tk:8000", keys))
    first = await keys.current(T)
    await configs.build(T)
    await configs.write(T)
    await configs.config_for(tenant, None)
    assert await keys.current(T) == first
    assert [s.value for s in world.writer.written[T].secrets] == [first]
    await configs.write(T, rotate_virtual_key=True)
    rotated = await keys.current(T)
    assert rotated != first
    assert [s.value for s in world.writer.written[T].secrets] == [rotated]


async def test_a_tenant_whose_account_is_deleted_gets_no_config_written(world: World) -> None:
    await world.add_tenant()
    world.tenant_repo.users.clear()
    assert await world.configs.write(T) is False
    assert world.writer.writes == 0


async def test_an_unknown_tenant_is_not_found_in_words(world: World) -> None:
    for attempt in (world.configs.write, world.configs.build):
        with pytest.raises(NotFound) as caught:
            await attempt(TenantId("t-9"))
        assert str(caught.value) == "tenant 't-9' is unknown"


async def test_writing_a_config_reads_the_tenant_once(world: World) -> None:
    class CountingReads(InMemoryTenantRepository):
        reads = 0

        async def get(self, tenant_id: TenantId) -> Tenant | None:
            self.reads += 1
            return await super().get(tenant_id)

    counting = CountingReads()
    counting.tenants, counting.users = world.tenant_repo.tenants, world.tenant_repo.users
    await world.add_tenant()
    configs = attrs.evolve(world.configs, tenants=counting)
    assert await configs.write(T) is True
    assert counting.reads == 1
