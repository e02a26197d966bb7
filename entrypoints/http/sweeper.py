"""The server's timer that expires reservations never settled (spec §2: expiry is run, not
only counted), beside ``tierkeeper usage sweep``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from domain.errors import DomainError
from entrypoints.bootstrap import Services

log = logging.getLogger("tierkeeper.sweep")

SWEEP_INTERVAL_S = 60.0
"""How often each server process sweeps; a reservation lives 15 minutes, so it leaves the
counters within a minute of expiring (it stops counting at once in any case)."""


async def sweep_forever(services: Services, interval_s: float = SWEEP_INTERVAL_S) -> None:
    """Sweep every ``interval_s`` until cancelled; a failed sweep (database away) is logged
    and tried again next time."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            expired = await services.metering.sweep()
        except (DomainError, OSError) as exc:
            log.warning("reservation sweep failed: %s", type(exc).__name__)
        else:
            if expired:
                log.info("reservation sweep expired %d reservation(s)", expired)


@contextlib.asynccontextmanager
async def sweeping(services: Services, interval_s: float = SWEEP_INTERVAL_S) -> AsyncIterator[None]:
    """The sweep timer runs while the context is open."""
    task = asyncio.create_task(sweep_forever(services, interval_s), name="reservation-sweep")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
