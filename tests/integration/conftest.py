"""Real databases for integration tests: a fresh PostgreSQL database per test module (the
embedded server, or ``TIERKEEPER_TEST_DATABASE_URL``) and SQLite files in ``tmp_path``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from adapters.sql.database import SqlDatabase, open_database, upgrade
from tests.support import postgres


@pytest.fixture(scope="module")
def postgres_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database of its own for the module, dropped afterwards."""
    with postgres.fresh_database(request.module.__name__.rsplit(".", 1)[-1], durable=False) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tierkeeper.sqlite3'}"


@pytest.fixture
def sqlite_database(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest) -> AsyncIterator[SqlDatabase]:
    """A migrated database of each backend, opened; the PostgreSQL one emptied before each
    test."""
    url = str(request.getfixturevalue(f"{request.param}_database"))
    upgrade(url)
    if request.param == "postgres":
        postgres.truncate_all(url)
    database = await open_database(url, pool_size=2)
    try:
        yield database
    finally:
        await database.close()
