"""Changes and the notifications they cause, in one transaction (issue #15), on SQLite and
PostgreSQL:

- an error raised after the change and its notification were written, before the commit,
  leaves neither (the unit of work's outbox writer is made to fail right after writing);
- a server killed with SIGKILL after a key invalidation committed (status and
  notification) still delivers the notification after a restart.
"""

from __future__ import annotations

import asyncio
import os
import tomllib
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from adapters.catalog.toml_loader import default_catalog_text
from adapters.sql.database import SqlDatabase, open_database, upgrade
from domain.byok import CredentialInput, KeyStatus
from domain.catalog import build_catalog
from domain.ids import TenantId, TierId, UserId
from domain.notifications import Channel, NotificationFacts, NotificationId
from domain.secrets import Secret
from domain.use_cases.configs import Configs
from domain.use_cases.credentials import Credentials
from tests.contract.test_repositories_contract import a_tenant, a_user
from tests.fakes import FakeKeyStore, FixedClock, FixedProviderProbe, InMemoryConfigWriter
from tests.integration.test_notifications_delivery import (
    QUIET_S,
    environ,
    hooks_for,
    mails_to,
    receiver,
    seed,
    services_for,
    sink,
    verified,
)
from tests.support import postgres
from tests.support.app_server import running_app
from tests.support.recording_server import Recorder
from tests.support.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration

__all__ = ["receiver", "services_for", "sink"]

OPENAI_KEY = "sk-test-unit-of-work-0123456789abcdef"
T = TenantId("t001")


class Crash(Exception):
    """Stands for anything failing between the last write and the commit."""


@attrs.frozen
class CrashingOutbox:
    """Writes the notification for real, then fails before the block can commit."""

    inner: Any

    async def enqueue(
        self, facts: NotificationFacts, channels: Sequence[Channel], at: datetime
    ) -> NotificationId | None:
        await self.inner.enqueue(facts, channels, at)
        raise Crash("after the change and its notification, before the commit")


@attrs.frozen
class CrashingTransaction:
    inner: Any

    @property
    def tenants(self) -> Any:
        return self.inner.tenants

    @property
    def credentials(self) -> Any:
        return self.inner.credentials

    @property
    def outbox(self) -> CrashingOutbox:
        return CrashingOutbox(self.inner.outbox)


@attrs.frozen
class CrashingUnitOfWork:
    inner: Any

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[CrashingTransaction]:
        async with self.inner.begin() as tx:
            yield CrashingTransaction(tx)


@pytest.fixture
def sqlite_database(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest) -> AsyncIterator[SqlDatabase]:
    url = str(request.getfixturevalue(f"{request.param}_database"))
    upgrade(url)
    if request.param == "postgres":
        postgres.truncate_all(url)
    database = await open_database(url, pool_size=2)
    try:
        yield database
    finally:
        await database.close()


def credentials_on(db: SqlDatabase, unit_of_work: Any) -> Credentials:
    catalog = build_catalog(tomllib.loads(default_catalog_text()))
    keys = FakeKeyStore()
    configs = Configs(catalog, db.tenants, db.credentials, keys, InMemoryConfigWriter())
    return Credentials(
        catalog, db.tenants, db.credentials, keys, FixedProviderProbe(), unit_of_work, configs,
        FixedClock(),
    )  # fmt: skip


async def test_a_crash_before_the_commit_leaves_the_key_valid_and_no_notification(
    db: SqlDatabase,
) -> None:
    await db.tenants.add(a_tenant(1, tier=TierId("byok")), a_user(1))
    crashing = credentials_on(db, CrashingUnitOfWork(db.unit_of_work))
    submitted = CredentialInput("openai", "gpt-4.1", Secret(OPENAI_KEY), None)
    await crashing.put(T, UserId("u001"), submitted)

    with pytest.raises(Crash):
        await crashing.report_key_failure(T, "openai", 401)
    stored = await db.credentials.get(T)
    assert stored is not None and stored.status is KeyStatus.UNVERIFIED
    assert await db.outbox.for_tenant(T, 10) == []

    working = credentials_on(db, db.unit_of_work)
    assert await working.report_key_failure(T, "openai", 401) is KeyStatus.INVALID
    stored = await db.credentials.get(T)
    assert stored is not None and stored.status is KeyStatus.INVALID
    (note,) = await db.outbox.for_tenant(T, 10)
    assert note.api_kind() == "key_invalidated" and note.facts.provider == "openai"


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres.fresh_database("unit_of_work_kill", durable=False) as url:
        upgrade(url)
        yield url


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_server_killed_after_a_key_invalidation_committed_delivers_after_restart(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    sink: SmtpSink,
    receiver: Recorder,
    services_for: Any,
) -> None:
    """The first server's deliverer looks once an hour; the gateway reports the key
    rejected (status and notification commit in one unit of work), and the server is
    killed (SIGKILL: no shutdown runs). A second server delivers it: one mail, one signed
    webhook, with the notification's id."""
    if backend == "postgres":
        url = str(request.getfixturevalue("postgres_url"))
    else:
        url = f"sqlite:///{tmp_path / 'tierkeeper.sqlite3'}"
        upgrade(url)
    env = environ(tmp_path, url, sink)
    services = await services_for(env)
    tenant = await seed(services, receiver, "keykill")
    await services.tenants.change_tier(tenant.tenant_id, "byok")
    submitted = CredentialInput("openai", "gpt-4.1", Secret(OPENAI_KEY), None)
    await services.credentials.put(tenant.tenant_id, UserId("operator"), submitted)
    token = (await services.accounts.create_service_token("uow-kill")).reveal()
    before = {n.id for n in await services.ports.outbox.for_tenant(tenant.tenant_id, 50)}

    sleepy = {**os.environ, **env, "TIERKEEPER_NOTIFICATIONS_POLL_SECONDS": "3600"}
    with running_app(sleepy, tmp_path) as first:
        async with httpx.AsyncClient(
            base_url=first.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as client:
            response = await client.post(
                "/api/v1/gateway/key-failure",
                json={"tenant_id": tenant.tenant_id, "provider": "openai", "status_code": 401},
            )
        assert response.status_code == 200, response.text
        first.process.kill()
        first.process.wait(10)
    stored = await services.ports.credentials.get(tenant.tenant_id)
    assert stored is not None and stored.status is KeyStatus.INVALID
    (note,) = [
        n for n in await services.ports.outbox.for_tenant(tenant.tenant_id, 50)
        if n.id not in before
    ]  # fmt: skip
    assert note.api_kind() == "key_invalidated"
    assert await services.ports.outbox.deliveries(note.id) == [
        ("email", "pending", 0),
        ("webhook", "pending", 0),
    ]
    assert mails_to(sink, tenant.email) == []

    with running_app({**os.environ, **env}, tmp_path):
        sink.wait_for(lambda mails: any(m["Message-ID"] == f"<{note.id}@tierkeeper.test>"
                                        for m in mails))  # fmt: skip
        receiver.wait_for(
            lambda requests: any(r.headers.get("webhook-id") == note.id for r in requests)
        )
        await asyncio.sleep(QUIET_S)

    mails = [
        m for m in mails_to(sink, tenant.email) if m["Message-ID"] == f"<{note.id}@tierkeeper.test>"
    ]
    assert len(mails) == 1
    assert mails[0]["Subject"] == "[tierkeeper] Your OpenAI key was rejected"
    hooks = [h for h in hooks_for(receiver, tenant.tenant_id) if h.headers["webhook-id"] == note.id]
    assert len(hooks) == 1
    assert verified(hooks[0], tenant.secret)["data"]["kind"] == "key_invalidated"
    assert OPENAI_KEY not in mails[0].as_string()
