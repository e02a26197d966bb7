"""Storage backends for the repository and ledger contracts: the in-memory fakes, SQLite in
a temporary file, and PostgreSQL (embedded, or ``TIERKEEPER_TEST_DATABASE_URL``).

PostgreSQL starts only when a PostgreSQL case runs; each test module gets its own database,
emptied before every test; each SQLite test copies a freshly migrated file.
"""

from __future__ import annotations

import shutil
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from adapters.catalog.toml_loader import default_catalog_text
from adapters.sql.database import open_database, upgrade
from domain.catalog import build_catalog
from domain.use_cases.notifications import Notifications
from tests.fakes import (
    FakeKeyStore,
    FixedClock,
    InMemoryAccountRepository,
    InMemoryAuthTokenRepository,
    InMemoryCredentialRepository,
    InMemoryNotificationSettings,
    InMemoryOutbox,
    InMemoryProcessedEventRepository,
    InMemoryTenantRepository,
    InMemoryUnitOfWork,
    InMemoryUsageLedger,
)
from tests.support import postgres

BACKENDS = ("memory", "sqlite", "postgres")


@attrs.frozen
class Storage:
    """Every storage port of one backend."""

    backend: str
    tenants: Any
    credentials: Any
    ledger: Any
    auth_tokens: Any
    processed_events: Any
    outbox: Any = None
    notification_settings: Any = None
    unit_of_work: Any = None

    async def key_invalidations(self, tenant_id: str) -> list[str]:
        """The providers whose key invalidation was recorded for ``tenant_id``."""
        notes = reversed(await self.outbox.for_tenant(tenant_id, 100))
        return [str(n.facts.provider) for n in notes if n.facts.kind.value == "key_invalidated"]


def notifications_on(storage_tenants: Any, credentials: Any, outbox: Any, settings: Any) -> Any:
    """The notifications use case on the given storage (a fake key store, a fixed clock)."""
    return Notifications(
        build_catalog(tomllib.loads(default_catalog_text())),
        outbox,
        settings,
        storage_tenants,
        credentials,
        FakeKeyStore(),
        FixedClock(),
    )


@pytest.fixture(scope="module")
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with postgres.fresh_database(request.module.__name__.rsplit(".", 1)[-1], durable=False) as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    if request.param == "memory":
        tenants = InMemoryTenantRepository()
        credentials = InMemoryCredentialRepository()
        outbox, settings = InMemoryOutbox(), InMemoryNotificationSettings()
        tokens = InMemoryAuthTokenRepository()
        accounts = InMemoryAccountRepository(tenants, tokens)
        yield Storage(
            "memory",
            tenants,
            credentials,
            InMemoryUsageLedger(tenants=tenants, outbox=outbox),
            tokens,
            InMemoryProcessedEventRepository(),
            outbox,
            settings,
            InMemoryUnitOfWork(tenants, credentials, outbox, accounts=accounts),
        )
        return
    if request.param == "sqlite":
        path = tmp_path / "tierkeeper.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_url")
        postgres.truncate_all(url)
    db = await open_database(url, pool_size=4)
    try:
        yield Storage(
            request.param,
            db.tenants,
            db.credentials,
            db.ledger,
            db.auth_tokens,
            db.processed_events,
            db.outbox,
            db.notification_settings,
            db.unit_of_work,
        )
    finally:
        await db.close()
