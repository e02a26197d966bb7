"""The seam a unit of work builds on: SQL repositories on ``TransactionConnections`` run
every call on one connection inside a transaction their owner ends, on SQLite and
PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import attrs
import pytest

from adapters.sql.accounts import SqlAccountRepository
from adapters.sql.audit import SqlAuditLog
from adapters.sql.auth_tokens import SqlAuthTokenRepository
from adapters.sql.connections import EngineConnections, TransactionConnections
from adapters.sql.credentials import SqlCredentialRepository
from adapters.sql.database import SqlDatabase, open_database
from adapters.sql.processed_events import SqlProcessedEventRepository
from adapters.sql.subscriptions import SqlPaidInvoiceRepository, SqlSubscriptionRepository
from adapters.sql.tenants import SqlTenantRepository
from domain.accounts import OneTimePurpose, OneTimeToken
from domain.audit import Actor, AuditAction, AuditEntry, AuditSource
from domain.errors import Conflict
from domain.ids import TenantId, UserId
from domain.sessions import AuthToken
from domain.subscription_records import PaidInvoice, Subscription
from tests.contract.test_repositories_contract import T0, a_credential, a_tenant, a_user
from tests.support import postgres

pytestmark = pytest.mark.contract

TOKEN = AuthToken("h" * 64, "service", "gateway", T0)
SUBSCRIPTION = Subscription(TenantId("t001"), "sub_1")
INVOICE = PaidInvoice("in_1", TenantId("t001"), 2_500, "usd", T0)
CODE = OneTimeToken(
    "c" * 64, OneTimePurpose.VERIFY_EMAIL, UserId("u001"), "user1@example.com", T0,
    T0 + timedelta(hours=1),
)  # fmt: skip
ENTRY = AuditEntry(T0, AuditAction.KEY_SAVED, Actor(AuditSource.API, "u001"), TenantId("t001"))


class Boom(Exception):
    pass


@attrs.frozen
class Bound:
    tenants: SqlTenantRepository
    credentials: SqlCredentialRepository
    auth_tokens: SqlAuthTokenRepository
    processed_events: SqlProcessedEventRepository
    subscriptions: SqlSubscriptionRepository
    invoices: SqlPaidInvoiceRepository
    audit: SqlAuditLog
    accounts: SqlAccountRepository


def bound(connections: TransactionConnections) -> Bound:
    return Bound(
        SqlTenantRepository(connections),
        SqlCredentialRepository(connections),
        SqlAuthTokenRepository(connections),
        SqlProcessedEventRepository(connections),
        SqlSubscriptionRepository(connections),
        SqlPaidInvoiceRepository(connections),
        SqlAuditLog(connections),
        SqlAccountRepository(connections),
    )


def accounts(db: SqlDatabase) -> SqlAccountRepository:
    """The account repository as the app builds it: a connection per call."""
    return SqlAccountRepository(EngineConnections(db.engine))


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    if request.param == "sqlite":
        path = tmp_path / "tierkeeper.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_url")
        postgres.truncate_all(url)
    database = await open_database(url, pool_size=2)
    try:
        yield database
    finally:
        await database.close()


async def test_writes_on_one_transaction_are_seen_inside_it_and_elsewhere_after_commit(
    db: SqlDatabase,
) -> None:
    async with db.engine.begin() as conn:
        repos = bound(TransactionConnections(conn))
        await repos.tenants.add(a_tenant(), a_user())
        await repos.credentials.put(a_credential())
        await repos.auth_tokens.add(TOKEN)
        assert await repos.processed_events.remember("evt_1", "invoice.paid", "applied", T0)
        await repos.subscriptions.save(SUBSCRIPTION)
        assert await repos.invoices.record(INVOICE)
        await repos.audit.record(ENTRY)
        await repos.accounts.add_one_time_token(CODE)
        assert await repos.tenants.get(TenantId("t001")) == a_tenant()
        assert await repos.credentials.get(TenantId("t001")) == a_credential()
        if db.backend == "postgresql":  # SQLite runs one transaction at a time
            assert await db.tenants.get(TenantId("t001")) is None
    assert await db.tenants.get(TenantId("t001")) == a_tenant()
    assert await db.credentials.get(TenantId("t001")) == a_credential()
    assert await db.auth_tokens.find(TOKEN.token_hash) == TOKEN
    assert await db.processed_events.outcome("evt_1") == "applied"
    assert await db.subscriptions.get(TenantId("t001")) == SUBSCRIPTION
    assert await db.paid_invoices.paid_between(T0, T0 + timedelta(seconds=1)) == [INVOICE]
    assert await db.audit.entries() == [ENTRY]
    assert await accounts(db).consume_one_time_token(CODE.token_hash, CODE.purpose, T0) == (
        attrs.evolve(CODE, used_at=T0)
    )


async def test_an_error_before_commit_leaves_none_of_the_writes(db: SqlDatabase) -> None:
    with pytest.raises(Boom):
        async with db.engine.begin() as conn:
            repos = bound(TransactionConnections(conn))
            await repos.tenants.add(a_tenant(), a_user())
            await repos.credentials.put(a_credential())
            await repos.auth_tokens.add(TOKEN)
            await repos.subscriptions.save(SUBSCRIPTION)
            await repos.invoices.record(INVOICE)
            await repos.audit.record(ENTRY)
            await repos.accounts.add_one_time_token(CODE)
            raise Boom
    assert await db.tenants.count() == 0
    assert await db.credentials.get(TenantId("t001")) is None
    assert await db.auth_tokens.find(TOKEN.token_hash) is None
    assert await db.subscriptions.get(TenantId("t001")) is None
    assert await db.paid_invoices.paid_between(T0, T0 + timedelta(seconds=1)) == []
    assert await db.audit.entries() == []
    assert await accounts(db).consume_one_time_token(CODE.token_hash, CODE.purpose, T0) is None


async def test_a_refused_write_leaves_the_transaction_usable(db: SqlDatabase) -> None:
    """A duplicate key fails inside its own savepoint: PostgreSQL would otherwise refuse
    every later statement of the transaction."""
    async with db.engine.begin() as conn:
        repos = bound(TransactionConnections(conn))
        await repos.tenants.add(a_tenant(1), a_user(1))
        with pytest.raises(Conflict):
            await repos.tenants.add(a_tenant(1), a_user(2))
        with pytest.raises(Conflict):
            await repos.auth_tokens.add(TOKEN)
            await repos.auth_tokens.add(TOKEN)
        await repos.credentials.put(a_credential(1))
    assert await db.tenants.count() == 1
    assert await db.tenants.user_by_email("user2@example.com") is None
    assert await db.credentials.get(TenantId("t001")) == a_credential(1)
    assert await db.auth_tokens.find(TOKEN.token_hash) == TOKEN
