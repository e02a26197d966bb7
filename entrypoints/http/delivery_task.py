"""The deliverer inside ``serve``: a task started and stopped with the app's lifespan that
sends due notifications every ``TIERKEEPER_NOTIFICATIONS_POLL_SECONDS`` (at once again while
a pass finds a full batch). A failing pass is logged and retried on the next tick."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar

from domain.use_cases.notifications import Deliverer

log = logging.getLogger("tierkeeper.notifications")
BATCH = 50


async def deliver_forever(deliverer: Deliverer, poll_s: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            run = await deliverer.deliver_due(BATCH)
        except Exception:
            log.exception("a delivery pass failed; retrying in %s s", poll_s)
            run = None
        if run is not None and run.total() >= BATCH:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=poll_s)


@asynccontextmanager
async def deliver_in_background(app: Litestar) -> AsyncIterator[None]:
    """Runs while the app runs, when the app built its own services (``serve``); off when
    the caller handed the app its services (they may live on another event loop, as under
    the test client's portal: the caller delivers), when no deliverer is built, or when the
    poll interval is 0."""
    services = app.state.services
    if not app.state.get("services_built_here", False):
        yield
        return
    deliverer = services.deliverer
    poll_s = services.settings.notifications_poll_s
    if deliverer is None or poll_s <= 0:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(deliver_forever(deliverer, poll_s, stop), name="deliverer")
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=30)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
