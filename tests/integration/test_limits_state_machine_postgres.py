"""The adversarial customer and gateway of ``tests/support/limits_machine`` against the
PostgreSQL adapters: the limits hold in the ledger's own statements (``tk_admit``,
``tk_settle``), not only in the domain (issue #13)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from adapters.catalog.toml_loader import load_catalog
from adapters.sql.database import open_database, upgrade
from tests.support import postgres
from tests.support.limits_machine import LimitsMachine, Storage, small_catalog

pytestmark = pytest.mark.integration


class PostgresLimits(LimitsMachine):
    catalog = small_catalog(load_catalog(environ={}))
    url = ""

    @staticmethod
    async def open_storage() -> Storage:
        postgres.truncate_all(PostgresLimits.url)
        database = await open_database(PostgresLimits.url, pool_size=2)
        return Storage(
            database.tenants, database.credentials, database.ledger, database.close,
            unit_of_work=database.unit_of_work,
        )  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def database() -> Iterator[None]:
    with postgres.fresh_database("limits_machine", durable=False) as url:
        upgrade(url)
        PostgresLimits.url = url
        yield


PostgresLimits.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLimitsOnPostgres = PostgresLimits.TestCase
