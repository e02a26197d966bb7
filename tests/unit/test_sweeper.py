"""``serve`` runs expiry on a timer (spec §2): reservations never settled leave the ledger's
counters without anyone calling ``usage sweep``."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from domain.ids import MessageId, TenantId
from entrypoints.http.sweeper import sweeping
from tests.unit.conftest import World


async def test_the_timer_sweeps_expired_reservations_until_stopped(world: World) -> None:
    await world.add_tenant()
    metering = world.metering
    await metering.admit(TenantId("t-1"), MessageId("m1"))
    world.clock.advance(minutes=16)
    services: Any = SimpleNamespace(metering=metering)
    async with sweeping(services, interval_s=0.01):
        for _ in range(200):
            if all(r.settled for r in world.ledger.reservations.values()):
                break
            await asyncio.sleep(0.01)
    assert [r.settled for r in world.ledger.reservations.values()] == [True]
    assert await metering.sweep() == 0


async def test_a_failing_sweep_is_tried_again_next_time(world: World) -> None:
    calls: list[int] = []

    class Flaky:
        async def sweep(self) -> int:
            calls.append(1)
            if len(calls) == 1:
                raise OSError("database away")
            return 0

    async with sweeping(SimpleNamespace(metering=Flaky()), interval_s=0.01):  # type: ignore[arg-type]
        for _ in range(200):
            if len(calls) >= 2:
                break
            await asyncio.sleep(0.01)
    assert len(calls) >= 2
