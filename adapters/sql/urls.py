"""Database URLs: one setting (``sqlite:///…`` or ``postgresql://…``) names the database;
each use picks its driver from it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import sqlalchemy as sa

from domain.errors import ValidationError

SQLITE = "sqlite"
POSTGRESQL = "postgresql"


def backend(url: str) -> str:
    """``sqlite`` or ``postgresql``; anything else is a configuration error."""
    name = sa.make_url(url).get_backend_name()
    if name not in (SQLITE, POSTGRESQL):
        raise ValidationError(
            f"database URL must be sqlite:///… or postgresql://…, got a {name!r} URL",
            field="TIERKEEPER_DATABASE_URL",
        )
    return name


def sync_url(url: str) -> sa.URL:
    """The URL Alembic runs on: pysqlite or psycopg 3."""
    parsed = sa.make_url(url)
    if backend(url) == SQLITE:
        return parsed.set(drivername="sqlite")
    return parsed.set(drivername="postgresql+psycopg")


def async_url(url: str) -> sa.URL:
    """The URL the repositories' async engine runs on: aiosqlite or asyncpg."""
    parsed = sa.make_url(url)
    if backend(url) == SQLITE:
        return parsed.set(drivername="sqlite+aiosqlite")
    return parsed.set(drivername="postgresql+asyncpg")


def asyncpg_dsn(url: str) -> str:
    """A libpq-style DSN for a bare asyncpg pool (the ledger's hot path)."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


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
