"""A lost or refused database connection becomes ``DatabaseUnavailable`` (HTTP 503), never
an unhandled driver exception: one class decorator applied to every SQL adapter.

A disconnect is recognised by the driver's connection error classes (asyncpg's 08xxx and
57xxx errors, a closed connection or pool, a protocol cut short, a refused or vanished
socket), by SQLAlchemy's ``connection_invalidated``, and, on SQLite, by a write lock not
granted within the busy timeout. A read-only database (PostgreSQL's 25006, SQLite's
"attempt to write a readonly database") cannot take a write either: 503 too. Anything
else (a constraint, a bug) passes through unchanged.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import asyncpg
import sqlalchemy as sa

from domain.errors import DatabaseUnavailable

log = logging.getLogger("tierkeeper.database")

C = TypeVar("C", bound=type)

DETAIL = "the database cannot be reached right now; retry shortly"
DRIVER_DISCONNECTS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,  # a connection cut mid-protocol, seen on release
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # a read-only database (25006)
    ConnectionError,
    FileNotFoundError,
    TimeoutError,
)
SQLITE_BUSY = "database is locked"
SQLITE_READ_ONLY = "attempt to write a readonly database"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__


def is_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) means the database could not be reached."""
    for link in _chain(exc):
        if isinstance(link, sa.exc.DBAPIError) and link.connection_invalidated:
            return True
        if isinstance(link, DRIVER_DISCONNECTS):
            return True
        if isinstance(link, sqlite3.OperationalError) and str(link).startswith(
            (SQLITE_BUSY, SQLITE_READ_ONLY)
        ):
            return True
    return False


def _unavailable(exc: BaseException, where: str) -> DatabaseUnavailable:
    log.warning("database unavailable in %s: %s", where, type(exc).__name__)
    return DatabaseUnavailable(DETAIL)


def _guard_coroutine(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except Exception as exc:
            if is_disconnect(exc):
                raise _unavailable(exc, method.__qualname__) from exc
            raise

    return guarded


def _guard_generator(method: Callable[..., AsyncIterator[Any]]) -> Callable[..., Any]:
    @functools.wraps(method)
    async def guarded(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        try:
            async for item in method(*args, **kwargs):
                yield item
        except Exception as exc:
            if is_disconnect(exc):
                raise _unavailable(exc, method.__qualname__) from exc
            raise

    return guarded


def reports_unavailable(cls: C) -> C:
    """Wrap every public coroutine and async generator method of ``cls`` so a disconnect
    raises ``DatabaseUnavailable`` instead of the driver's exception."""
    for name, member in list(vars(cls).items()):
        if name.startswith("_"):
            continue
        if inspect.iscoroutinefunction(member):
            setattr(cls, name, _guard_coroutine(member))
        elif inspect.isasyncgenfunction(member):
            setattr(cls, name, _guard_generator(member))
    return cls
