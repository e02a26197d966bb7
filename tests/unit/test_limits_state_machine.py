"""The adversarial customer and gateway of ``tests/support/limits_machine`` against the
domain with its fakes (issue #13); the same machine runs on PostgreSQL in
``tests/integration/test_limits_state_machine_postgres.py``."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from adapters.catalog.toml_loader import load_catalog
from tests.fakes import (
    InMemoryCredentialRepository,
    InMemoryOutbox,
    InMemoryTenantRepository,
    InMemoryUnitOfWork,
    InMemoryUsageLedger,
)
from tests.support.limits_machine import LimitsMachine, Storage, small_catalog


async def in_memory() -> Storage:
    tenants, credentials = InMemoryTenantRepository(), InMemoryCredentialRepository()

    async def close() -> None:
        return None

    return Storage(
        tenants, credentials, InMemoryUsageLedger(tenants=tenants), close,
        unit_of_work=InMemoryUnitOfWork(tenants, credentials, InMemoryOutbox()),
    )  # fmt: skip


class InMemoryLimits(LimitsMachine):
    catalog = small_catalog(load_catalog(environ={}))
    open_storage = staticmethod(in_memory)


InMemoryLimits.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLimitsOnTheFakes = InMemoryLimits.TestCase
