"""The unit of work on SQLAlchemy (SQLite and PostgreSQL): one connection in one
transaction, with the tenant, credential, subscription, account and token repositories
(``TransactionConnections``) and the outbox's insert on it, so a change and the
notification it causes commit together or not at all. Committed when the ``begin()`` block
ends, rolled back when it raises.

On SQLite the transaction is ``BEGIN IMMEDIATE`` (the engine's listener): it holds the
write lock for the block, so the block must not use another connection of the same engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

import attrs
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.sql.accounts import SqlAccountRepository
from adapters.sql.auth_tokens import SqlAuthTokenRepository
from adapters.sql.connections import TransactionConnections
from adapters.sql.credentials import SqlCredentialRepository
from adapters.sql.outbox import insert_notification
from adapters.sql.subscriptions import SqlSubscriptionRepository
from adapters.sql.tenants import SqlTenantRepository
from adapters.sql.unavailable import DETAIL, is_disconnect, reports_unavailable
from domain.errors import DatabaseUnavailable
from domain.notifications import Channel, NotificationFacts, NotificationId


@reports_unavailable
@attrs.frozen
class TransactionOutbox:
    """The outbox's insert on the unit of work's connection."""

    connection: AsyncConnection

    async def enqueue(
        self, facts: NotificationFacts, channels: Sequence[Channel], at: datetime
    ) -> NotificationId | None:
        return await insert_notification(self.connection, facts, channels, at)


@attrs.frozen
class SqlTransaction:
    tenants: SqlTenantRepository
    credentials: SqlCredentialRepository
    subscriptions: SqlSubscriptionRepository
    accounts: SqlAccountRepository
    auth_tokens: SqlAuthTokenRepository
    outbox: TransactionOutbox


@attrs.frozen
class SqlUnitOfWork:
    engine: AsyncEngine

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[SqlTransaction]:
        try:
            async with self.engine.begin() as connection:
                on_it = TransactionConnections(connection)
                yield SqlTransaction(
                    SqlTenantRepository(on_it),
                    SqlCredentialRepository(on_it),
                    SqlSubscriptionRepository(on_it),
                    SqlAccountRepository(on_it),
                    SqlAuthTokenRepository(on_it),
                    TransactionOutbox(connection),
                )
        except Exception as exc:
            if is_disconnect(exc):
                raise DatabaseUnavailable(DETAIL) from exc
            raise
