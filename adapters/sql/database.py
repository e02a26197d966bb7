"""Open a database by URL and hand out its repositories; run Alembic programmatically.

``open_database(url)`` is what the composition root calls; ``upgrade(url)`` is what
``tierkeeper db upgrade`` calls. Alembic's configuration is built here in code, so the
migrations run from an installed package without an ``alembic.ini``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import asyncpg
import attrs
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.sql.audit import SqlAuditLog
from adapters.sql.auth_tokens import SqlAuthTokenRepository
from adapters.sql.connections import EngineConnections
from adapters.sql.credentials import SqlCredentialRepository
from adapters.sql.directory import SqlTenantDirectory
from adapters.sql.message_counts import SqlMessageCounter
from adapters.sql.outbox import SqlNotificationSettings, SqlOutbox
from adapters.sql.pool_usage import PoolUsage
from adapters.sql.postgres_ledger import PostgresUsageLedger
from adapters.sql.processed_events import SqlProcessedEventRepository
from adapters.sql.sqlite_ledger import SqliteUsageLedger
from adapters.sql.subscriptions import SqlPaidInvoiceRepository, SqlSubscriptionRepository
from adapters.sql.tenants import SqlTenantRepository
from adapters.sql.unit_of_work import SqlUnitOfWork
from adapters.sql.urls import (
    POSTGRESQL,
    async_url,
    asyncpg_dsn,
    backend,
    sqlite_path,
    sync_url,
    transaction_pooled,
)
from adapters.sql.virtual_keys import SqlVirtualKeyRepository

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_STATEMENT_CACHE = 100
"""asyncpg's own default: the hot path's statements are prepared once per connection."""
SQLITE_BUSY_TIMEOUT_MS = 60_000


def alembic_config(url: str) -> Config:
    """Alembic's configuration, built in code from the package's own migrations folder."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    rendered = sync_url(url).render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def _sync_engine(url: str) -> sa.Engine:
    if backend(url) != POSTGRESQL:
        sqlite_path(url)
    # psycopg prepares a statement by name from its fifth run; a pooler in transaction mode
    # may hand the next run another server connection
    unprepared = {"prepare_threshold": None} if transaction_pooled(url) else {}
    engine = sa.create_engine(sync_url(url), poolclass=sa.NullPool, connect_args=unprepared)
    if engine.dialect.name == "sqlite":
        # batch migrations copy and rename tables; SQLite's foreign key enforcement would
        # cascade or refuse those steps, so migrations run with it off
        _sqlite_pragmas(engine, foreign_keys=False)
    return engine


def _run_alembic(url: str, action: Any, revision: str) -> None:
    engine = _sync_engine(url)
    try:
        with engine.connect() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            action(config, revision)
            connection.commit()
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest), data migrations included."""
    _run_alembic(url, command.upgrade, revision)


def downgrade(url: str, revision: str) -> None:
    """Take the schema back to ``revision``; see each revision for what it refuses."""
    _run_alembic(url, command.downgrade, revision)


def current_revision(url: str) -> str | None:
    engine = _sync_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite:///unused")).get_current_head()
    assert head is not None
    return head


async def keep_session_state(_connection: asyncpg.Connection) -> None:
    """The asyncpg pool's release hook. The adapters never change session state (no SET,
    LISTEN, cursors or session-level advisory locks), so the default reset query, one more
    round trip on every release, is skipped; asyncpg itself still rolls back a transaction
    left open."""


def _sqlite_pragmas(engine: sa.Engine, *, foreign_keys: bool = True) -> None:
    """WAL, a busy timeout, foreign keys, and ``BEGIN IMMEDIATE`` for every transaction:
    pysqlite's deferred BEGIN lets two writers deadlock on the lock upgrade."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@attrs.define
class SqlDatabase:
    """One database and the repositories on it. ``close()`` releases every connection."""

    url: str
    engine: AsyncEngine
    tenants: SqlTenantRepository
    credentials: SqlCredentialRepository
    ledger: PostgresUsageLedger | SqliteUsageLedger
    auth_tokens: SqlAuthTokenRepository
    processed_events: SqlProcessedEventRepository
    subscriptions: SqlSubscriptionRepository
    paid_invoices: SqlPaidInvoiceRepository
    message_counts: SqlMessageCounter
    outbox: SqlOutbox
    notification_settings: SqlNotificationSettings
    _pool: asyncpg.Pool | None = attrs.field(default=None, repr=False)
    virtual_keys: SqlVirtualKeyRepository | None = None
    audit: SqlAuditLog = attrs.field(kw_only=True)
    directory: SqlTenantDirectory = attrs.field(kw_only=True)
    unit_of_work: SqlUnitOfWork = attrs.field(kw_only=True)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def pool_usage(self) -> list[PoolUsage]:
        """The asyncpg pool (PostgreSQL's hot path) and SQLAlchemy's pool, as they are now."""
        usage = []
        if self._pool is not None:
            size, idle = self._pool.get_size(), self._pool.get_idle_size()
            usage.append(PoolUsage("asyncpg", size - idle, idle, self._pool.get_max_size()))
        pool = self.engine.sync_engine.pool
        if isinstance(pool, sa.pool.QueuePool):
            usage.append(
                PoolUsage(
                    "sqlalchemy",
                    pool.checkedout(),
                    pool.checkedin(),
                    pool.size() + max(pool._max_overflow, 0),
                )
            )
        return usage

    async def close(self) -> None:
        await self.ledger.close()  # PostgreSQL's flushes its queue and closes the pool
        await self.engine.dispose()


def _unprepared_engine() -> dict[str, Any]:
    """SQLAlchemy's asyncpg dialect prepares every statement by name; behind a
    transaction-mode pooler the names must never be reused by another transaction, and
    nothing is cached (SQLAlchemy's documented PgBouncer setup)."""
    return {
        "connect_args": {
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": lambda: f"__tk_{uuid.uuid4().hex}__",
        }
    }


async def open_database(url: str, *, pool_size: int = 10, migrate: bool = False) -> SqlDatabase:
    """Connect to ``url`` (``sqlite:///file`` or ``postgresql://…``). The schema must be at
    the newest revision; ``migrate=True`` runs ``upgrade`` first (handy for the embedded
    SQLite default). ``pool_size`` bounds each of the two PostgreSQL pools."""
    if migrate:
        import asyncio

        await asyncio.to_thread(upgrade, url)
    if backend(url) == POSTGRESQL:
        pooled = transaction_pooled(url)
        engine = create_async_engine(
            async_url(url), pool_size=pool_size, **(_unprepared_engine() if pooled else {})
        )
        pool = await asyncpg.create_pool(
            asyncpg_dsn(url),
            min_size=1,
            max_size=pool_size,
            reset=keep_session_state,
            statement_cache_size=0 if pooled else DEFAULT_STATEMENT_CACHE,
        )
        assert pool is not None
        ledger: PostgresUsageLedger | SqliteUsageLedger = PostgresUsageLedger(pool)
    else:
        path = sqlite_path(url)
        engine = create_async_engine(async_url(url), pool_size=pool_size)
        _sqlite_pragmas(engine.sync_engine)
        ledger = SqliteUsageLedger(path)
        pool = None
    connections = EngineConnections(engine)
    return SqlDatabase(
        url=url,
        engine=engine,
        tenants=SqlTenantRepository(connections),
        credentials=SqlCredentialRepository(connections),
        ledger=ledger,
        auth_tokens=SqlAuthTokenRepository(connections),
        processed_events=SqlProcessedEventRepository(connections),
        subscriptions=SqlSubscriptionRepository(connections),
        paid_invoices=SqlPaidInvoiceRepository(connections),
        message_counts=SqlMessageCounter(engine),
        outbox=SqlOutbox(engine),
        notification_settings=SqlNotificationSettings(engine),
        pool=pool,
        virtual_keys=SqlVirtualKeyRepository(engine),
        audit=SqlAuditLog(connections),
        directory=SqlTenantDirectory(engine),
        unit_of_work=SqlUnitOfWork(engine),
    )
