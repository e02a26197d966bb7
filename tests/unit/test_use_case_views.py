"""What the use cases hand the pages: the usage view's reservations per tier, the overview's
zones while a zone change waits, and virtual keys kept or rotated by a regeneration."""

from __future__ import annotations

from datetime import timedelta

import attrs

from domain.catalog import Catalog
from domain.ids import MessageId, TenantId
from domain.tenants import PendingTimezone
from domain.use_cases.configs import ProxyMode
from domain.use_cases.virtual_keys import VirtualKeys
from tests.fakes import FakeKeyStore, InMemoryVirtualKeyRepository
from tests.unit.conftest import World

T = TenantId("t-1")


async def test_a_premium_usage_view_shows_its_own_reservation_and_no_fallback(
    catalog: Catalog,
) -> None:
    world = World(catalog)
    await world.add_tenant(tier="premium")
    await world.metering.admit(T, MessageId("m-1"), max_tokens=16_000)
    usage = await world.metering.usage(T)
    assert usage.tokens_reserved > 0
    assert (usage.fallback_tokens_used, usage.fallback_tokens_reserved) == (None, None)


async def test_a_byok_usage_view_reserves_nothing_on_its_own_key(catalog: Catalog) -> None:
    """A BYOK tenant's reservation is held on the fallback budget, not on its own key."""
    world = World(catalog)
    await world.add_tenant(tier="byok")
    await world.add_key()
    await world.metering.admit(T, MessageId("m-1"), max_tokens=16_000)
    usage = await world.metering.usage(T)
    assert (usage.tokens_reserved, usage.fallback_tokens_reserved) == (0, 16_000)


async def test_the_overview_counts_today_in_the_old_zone_and_shows_the_new_one_pending(
    catalog: Catalog,
) -> None:
    world = World(catalog)
    await world.add_tenant(timezone="UTC")
    await world.tenants.update(T, timezone="Asia/Tokyo")
    overview = await world.tenants.overview(T)
    end_of_day = world.clock.now().replace(hour=0) + timedelta(days=1)
    assert overview.timezone == "UTC"
    assert overview.pending_timezone == PendingTimezone("Asia/Tokyo", end_of_day)
    world.clock.instant = end_of_day
    later = await world.tenants.overview(T)
    assert (later.timezone, later.pending_timezone) == ("Asia/Tokyo", None)


async def test_a_regeneration_keeps_virtual_keys_unless_asked_to_rotate_them(
    catalog: Catalog,
) -> None:
    world = World(catalog)
    await world.add_tenant()
    keys = VirtualKeys(InMemoryVirtualKeyRepository(), FakeKeyStore(), world.clock)
    configs = attrs.evolve(world.configs, proxy=ProxyMode("http://tk:8000", keys))
    first = await keys.current(T)
    await configs.regenerate()
    assert await keys.current(T) == first
    assert [s.value for s in world.writer.written[T].secrets] == [first]
    await configs.regenerate(rotate_virtual_keys=True)
    rotated = await keys.current(T)
    assert rotated != first
    assert [s.value for s in world.writer.written[T].secrets] == [rotated]
