"""Database URLs: one setting (``sqlite:///…`` or ``postgresql://…``) names the database;
each use picks its driver from it.

``?pooler=transaction`` on a PostgreSQL URL says the connections go through a pooler in
transaction mode (PgBouncer before 1.21): a server connection serves one transaction of one
client, so no named prepared statement may outlive a transaction. The flag is the
adapters' own and is taken off every URL handed to a driver.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import sqlalchemy as sa

from domain.errors import ValidationError

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
POOLER_PARAM = "pooler"
TRANSACTION_POOLER = "transaction"


def backend(url: str) -> str:
    """``sqlite`` or ``postgresql``; anything else is a configuration error."""
    name = sa.make_url(url).get_backend_name()
    if name not in (SQLITE, POSTGRESQL):
        raise ValidationError(
            f"database URL must be sqlite:///… or postgresql://…, got a {name!r} URL",
            field="TIERKEEPER_DATABASE_URL",
        )
    return name


def transaction_pooled(url: str) -> bool:
    """Whether ``url`` goes through a transaction-mode pooler (``?pooler=transaction``)."""
    value = sa.make_url(url).query.get(POOLER_PARAM)
    if value is None:
        return False
    if value != TRANSACTION_POOLER or backend(url) != POSTGRESQL:
        raise ValidationError(
            f"the database URL's {POOLER_PARAM} must be {TRANSACTION_POOLER!r}, on a "
            "postgresql:// URL",
            field="TIERKEEPER_DATABASE_URL",
        )
    return True


def _driver_url(url: str) -> sa.URL:
    return sa.make_url(url).difference_update_query([POOLER_PARAM])


def sync_url(url: str) -> sa.URL:
    """The URL Alembic runs on: pysqlite or psycopg 3."""
    parsed = _driver_url(url)
    if backend(url) == SQLITE:
        return parsed.set(drivername="sqlite")
    return parsed.set(drivername="postgresql+psycopg")


def async_url(url: str) -> sa.URL:
    """The URL the repositories' async engine runs on: aiosqlite or asyncpg."""
    parsed = _driver_url(url)
    if backend(url) == SQLITE:
        return parsed.set(drivername="sqlite+aiosqlite")
    return parsed.set(drivername="postgresql+asyncpg")


def asyncpg_dsn(url: str) -> str:
    """A libpq-style DSN for a bare asyncpg pool (the ledger's hot path)."""
    return _driver_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def sqlite_path(url: str) -> Path:
    """The database file of a SQLite URL; its directory is created on first use (0700) and
    the file is readable by the owner only (0600: it holds password and token hashes);
    SQLite gives its journal files the database file's mode."""
    database = sa.make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise ValidationError(
            "the SQLite database must be a file (sqlite:///path/to/file.sqlite3)",
            field="TIERKEEPER_DATABASE_URL",
        )
    path = Path(database)
    private_file(path)
    return path


def private_file(path: Path) -> None:
    """Create ``path``'s directory 0700 and the file 0600 if missing; take group and other
    bits off an existing file (never loosen anything)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, mode & 0o700)
