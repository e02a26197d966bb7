"""In proxy mode a config carries the tenant's virtual key: building, writing or rendering a
config keeps the key it has unless rotation is asked for."""

from __future__ import annotations

import attrs
import pytest

from domain.catalog import Catalog
from domain.ids import TenantId
from domain.use_cases.configs import ProxyMode
from domain.use_cases.virtual_keys import VirtualKeys
from tests.fakes import FakeKeyStore, InMemoryVirtualKeyRepository
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
