"""Where a SQL repository gets its connection, and the dialect's upsert.

A repository never opens a connection itself; it asks its ``Connections``:

- ``EngineConnections``: each call gets its own connection from the engine, a read in no
  transaction, a write in one transaction committed when the call returns;
- ``TransactionConnections``: every call runs on one connection inside a transaction its
  owner (a unit of work) begins, commits or rolls back. Each write runs in a savepoint, so
  a refused write (a taken email raises ``Conflict``) leaves that transaction usable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class Connections(Protocol):
    def reading(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection to read on."""
        ...

    def writing(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection whose writes last only if the block ends without an exception."""
        ...


@attrs.frozen
class EngineConnections:
    engine: AsyncEngine

    def reading(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self.engine.connect()

    def writing(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self.engine.begin()


@attrs.frozen
class TransactionConnections:
    connection: AsyncConnection
    """Already in a transaction; its owner ends it."""

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        yield self.connection

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        async with self.connection.begin_nested():
            yield self.connection


def upsert(bind: AsyncEngine | AsyncConnection, table: sa.Table) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support for the dialect of ``bind``."""
    if bind.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
