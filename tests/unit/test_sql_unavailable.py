"""Which driver failures the SQL adapters report as ``DatabaseUnavailable`` (HTTP 503), and
that every other failure passes through untouched."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator

import asyncpg
import pytest
import sqlalchemy as sa

from adapters.sql.unavailable import is_disconnect, reports_unavailable
from domain.errors import DatabaseUnavailable


def wrapped(orig: BaseException, *, invalidated: bool = False) -> sa.exc.DBAPIError:
    return sa.exc.DBAPIError("SELECT 1", None, orig, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "failure",
    [
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.exceptions.InternalClientError("unexpected state"),
        ConnectionRefusedError(111, "Connection refused"),
        FileNotFoundError(2, "No such file or directory"),
        TimeoutError(),
        sqlite3.OperationalError("database is locked"),
        sqlite3.OperationalError("attempt to write a readonly database"),
        asyncpg.exceptions.ReadOnlySQLTransactionError("cannot execute UPDATE in a read-only"),
        wrapped(ConnectionResetError(104, "reset")),
        wrapped(Exception("server closed the connection"), invalidated=True),
    ],
    ids=repr,
)
def test_a_lost_or_refused_connection_is_a_disconnect(failure: BaseException) -> None:
    assert is_disconnect(failure)


@pytest.mark.parametrize(
    "failure",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        sqlite3.OperationalError("near 'SELEC': syntax error"),
        sqlite3.IntegrityError("UNIQUE constraint failed"),
        wrapped(sqlite3.IntegrityError("UNIQUE constraint failed")),
        KeyError("tenant"),
        ValueError("bad row"),
    ],
    ids=repr,
)
def test_a_query_or_programming_error_is_not_a_disconnect(failure: BaseException) -> None:
    assert not is_disconnect(failure)


def test_a_disconnect_raised_as_the_cause_of_another_error_is_found() -> None:
    try:
        try:
            raise asyncpg.InterfaceError("pool is closing")
        except asyncpg.InterfaceError as inner:
            raise RuntimeError("acquire failed") from inner
    except RuntimeError as outer:
        assert is_disconnect(outer)


@reports_unavailable
class Repository:
    def __init__(self, failure: BaseException) -> None:
        self.failure = failure

    async def get(self) -> int:
        raise self.failure

    async def rows(self) -> AsyncIterator[int]:
        yield 1
        raise self.failure


async def test_a_disconnect_in_a_method_is_reported_as_database_unavailable() -> None:
    failure = ConnectionRefusedError(111, "Connection refused")
    with pytest.raises(DatabaseUnavailable) as raised:
        await Repository(failure).get()
    assert raised.value.code == "database_unavailable"
    assert raised.value.__cause__ is failure


async def test_a_disconnect_while_iterating_is_reported_after_the_rows_already_read() -> None:
    seen = []
    with pytest.raises(DatabaseUnavailable):
        async for row in Repository(asyncpg.InterfaceError("connection is closed")).rows():
            seen.append(row)
    assert seen == [1]


async def test_any_other_failure_passes_through_unchanged() -> None:
    failure = asyncpg.exceptions.UniqueViolationError("duplicate key")
    with pytest.raises(asyncpg.exceptions.UniqueViolationError) as raised:
        await Repository(failure).get()
    assert raised.value is failure
