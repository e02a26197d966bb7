"""Real databases for integration tests: a fresh PostgreSQL database per test module (the
embedded server, or ``TIERKEEPER_TEST_DATABASE_URL``) and SQLite files in ``tmp_path``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import postgres


@pytest.fixture(scope="module")
def postgres_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database of its own for the module, dropped afterwards."""
    with postgres.fresh_database(request.module.__name__.rsplit(".", 1)[-1], durable=False) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tierkeeper.sqlite3'}"
