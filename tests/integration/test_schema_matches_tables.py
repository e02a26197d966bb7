"""``adapters/sql/tables.py`` describes exactly what the migrations create: a fresh database
upgraded to head, on SQLite and PostgreSQL, differs from it in no table, column, type,
nullability, server default (on PostgreSQL), index, unique, check or foreign-key constraint
(issue #14 step 3)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from adapters.sql import tables
from adapters.sql.database import upgrade
from adapters.sql.urls import sync_url

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgres"])
def migrated(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """A fresh database upgraded to the newest revision."""
    url = str(
        request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_database")
    )
    upgrade(url)
    engine = sa.create_engine(sync_url(url), poolclass=sa.NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


def _named(entries: list[dict[str, Any]]) -> set[tuple[str, tuple[str, ...]]]:
    return {(entry["name"], tuple(entry["column_names"])) for entry in entries}


def test_migrations_and_tables_py_describe_the_same_schema(migrated: sa.Engine) -> None:
    """Server defaults are compared on PostgreSQL only: on SQLite Alembic reports every
    empty-string default as changed."""
    postgresql = migrated.dialect.name == "postgresql"
    with migrated.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": postgresql}
        )
        assert compare_metadata(context, tables.metadata) == []


def test_every_index_and_constraint_has_the_migrations_name(migrated: sa.Engine) -> None:
    """Alembic matches an unnamed constraint by its columns; the names must agree too, or a
    later migration dropping one by name would fail on a database built from ``tables.py``."""
    inspector = sa.inspect(migrated)
    database = set(inspector.get_table_names()) - {"alembic_version"}
    assert database == set(tables.metadata.tables)
    for name, table in tables.metadata.tables.items():
        declared_indexes = {
            (index.name, tuple(c.name for c in index.columns)) for index in table.indexes
        }
        declared_uniques = {
            (constraint.name, tuple(c.name for c in constraint.columns))
            for constraint in table.constraints
            if isinstance(constraint, sa.UniqueConstraint)
        }
        # both databases also report the index behind each unique constraint
        found_indexes = _named(
            [
                index
                for index in inspector.get_indexes(name)
                if not index.get("duplicates_constraint")
                and not index["name"].startswith("sqlite_autoindex")
            ]
        )
        assert found_indexes == declared_indexes, name
        assert _named(inspector.get_unique_constraints(name)) == declared_uniques, name
        declared_checks = {
            constraint.name
            for constraint in table.constraints
            if isinstance(constraint, sa.CheckConstraint)
        }
        found_checks = {check["name"] for check in inspector.get_check_constraints(name)}
        assert found_checks == declared_checks, name
        declared_keys = {
            tuple(c.name for c in key.columns): key.name for key in table.foreign_key_constraints
        }
        found_keys = {
            tuple(key["constrained_columns"]): key["name"]
            for key in inspector.get_foreign_keys(name)
        }
        assert set(found_keys) == set(declared_keys), name
        # a key the migrations left unnamed gets the database's own name
        assert {c: n for c, n in found_keys.items() if declared_keys[c]} == {
            c: n for c, n in declared_keys.items() if n
        }, name
