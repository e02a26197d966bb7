"""Alembic environment: runs on the connection that ``adapters.sql.database`` hands over."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=sa.NullPool)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
        transactional_ddl=True,  # SQLite's DDL is transactional too (Alembic assumes not)
    )
    # one transaction for the whole run: a refused downgrade leaves the schema untouched
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("tierkeeper migrations run online only")
run_migrations_online()
