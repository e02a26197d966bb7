"""The audit log and the tenant directory behave alike in memory, on SQLite and on
PostgreSQL; on both databases the audit log refuses every UPDATE and DELETE of an entry."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from adapters.sql.database import open_database
from domain.audit import OPERATOR, Actor, AuditAction, AuditEntry, AuditSource
from domain.ids import TenantId, TierId, UserId
from domain.tenants import SubscriptionStatus, Tenant, User
from tests.contract.conftest import BACKENDS
from tests.fakes import InMemoryAuditLog, InMemoryTenantDirectory, InMemoryTenantRepository
from tests.support import postgres

pytestmark = pytest.mark.contract

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@attrs.frozen
class Ports:
    backend: str
    tenants: Any
    audit: Any
    directory: Any
    engine: Any = None


@pytest.fixture(params=BACKENDS)
async def ports(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Ports]:
    if request.param == "memory":
        tenants = InMemoryTenantRepository()
        yield Ports("memory", tenants, InMemoryAuditLog(), InMemoryTenantDirectory(tenants))
        return
    if request.param == "sqlite":
        path = tmp_path / "tierkeeper.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_url")
        postgres.truncate_all(url)
    db = await open_database(url, pool_size=2)
    try:
        yield Ports(request.param, db.tenants, db.audit, db.directory, db.engine)
    finally:
        await db.close()


def entry(minutes: int, tenant: str | None, action: AuditAction = AuditAction.LOGIN,
          detail: str = "") -> AuditEntry:  # fmt: skip
    return AuditEntry(T0 + timedelta(minutes=minutes), action, OPERATOR,
                      TenantId(tenant) if tenant else None, detail)  # fmt: skip


async def test_recorded_entries_read_back_equal_newest_first(ports: Ports) -> None:
    first = AuditEntry(T0, AuditAction.KEY_SAVED, Actor(AuditSource.API, "u-1"), TenantId("t-1"),
                       "provider openai, store fernet v1, fallback on")  # fmt: skip
    second = entry(5, None, AuditAction.TOKEN_CREATED, "service token abcdef012345 for gw")
    await ports.audit.record(first)
    await ports.audit.record(second)
    assert list(await ports.audit.entries()) == [second, first]


async def test_entries_filter_by_tenant_and_since_and_stop_at_the_limit(ports: Ports) -> None:
    for minutes, tenant in ((0, "t-1"), (1, "t-2"), (2, "t-1"), (3, None)):
        await ports.audit.record(entry(minutes, tenant))
    assert [e.at for e in await ports.audit.entries(TenantId("t-1"))] == [
        T0 + timedelta(minutes=2),
        T0,
    ]
    assert len(await ports.audit.entries(since=T0 + timedelta(minutes=1))) == 3
    assert [e.at for e in await ports.audit.entries(limit=2)] == [
        T0 + timedelta(minutes=3),
        T0 + timedelta(minutes=2),
    ]


@pytest.mark.parametrize("ports", ["sqlite", "postgres"], indirect=True)
@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET detail = 'x'", "DELETE FROM audit_log"]
)
async def test_the_database_refuses_to_change_or_remove_an_entry(
    ports: Ports, statement: str
) -> None:
    await ports.audit.record(entry(0, "t-1", detail="original"))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        async with ports.engine.begin() as conn:
            await conn.execute(sa.text(statement))
    assert [e.detail for e in await ports.audit.entries()] == ["original"]


ACTIVE = SubscriptionStatus.ACTIVE


async def add(ports: Ports, tenant_id: str, email: str, tier: str = "starter",
              status: SubscriptionStatus = ACTIVE, minutes: int = 0) -> None:  # fmt: skip
    at = T0 + timedelta(minutes=minutes)
    tenant = Tenant(TenantId(tenant_id), TierId(tier), status, "UTC", 1, at)
    await ports.tenants.add(tenant, User(UserId(f"u-{tenant_id}"), email, "h", tenant.id, at))


async def test_the_directory_finds_tenants_by_tier_status_and_part_of_an_email(
    ports: Ports,
) -> None:
    await add(ports, "t-a", "ann@shop.example", "starter", minutes=0)
    await add(ports, "t-b", "bob@corp.example", "premium", minutes=1)
    await add(ports, "t-c", "cid@corp.example", "premium", SubscriptionStatus.PAST_DUE, 2)

    def ids(found: Any) -> list[str]:
        return [listing.tenant.id for listing in found]

    assert ids(await ports.directory.find()) == ["t-a", "t-b", "t-c"]
    assert ids(await ports.directory.find(tier="premium")) == ["t-b", "t-c"]
    assert ids(await ports.directory.find(status=SubscriptionStatus.PAST_DUE)) == ["t-c"]
    assert ids(await ports.directory.find(email_contains="corp")) == ["t-b", "t-c"]
    assert ids(await ports.directory.find(email_contains="CORP", tier="premium",
                                          status=SubscriptionStatus.ACTIVE)) == ["t-b"]  # fmt: skip
    assert ids(await ports.directory.find(limit=1)) == ["t-a"]
    assert ids(await ports.directory.find(email_contains="%")) == []
    assert ids(await ports.directory.find(email_contains="_")) == []


async def test_a_listing_carries_the_tenant_and_its_emails(ports: Ports) -> None:
    await add(ports, "t-a", "ann@shop.example")
    listing = await ports.directory.listing(TenantId("t-a"))
    assert listing is not None
    assert listing.tenant == await ports.tenants.get(TenantId("t-a"))
    assert listing.emails == ("ann@shop.example",)
    assert await ports.directory.listing(TenantId("t-none")) is None
