"""A real PgBouncer (Debian package ``pgbouncer``, installed by ``make deps``) in
transaction-pooling mode in front of the test PostgreSQL: a process of its own on a free
127.0.0.1 port, configured in a temporary directory, stopped on exit.

Run as root, it switches to the unprivileged user that owns the embedded server (PgBouncer
refuses to run as root). ``auth_type = any``: it connects to PostgreSQL as the server's
user over the Unix socket, as the tests do directly.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

PGBOUNCER = os.environ.get("TIERKEEPER_PGBOUNCER", "/usr/sbin/pgbouncer")
READY_TIMEOUT_S = 20.0
UNPRIVILEGED_USERS = ("embedded_postgres", "postgres")


def available() -> bool:
    return Path(PGBOUNCER).exists() or shutil.which("pgbouncer") is not None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    raise RuntimeError("pgbouncer will not run as root and no unprivileged user exists")


def config_text(server_url: str, port: int, work: Path, user: str | None, pool_size: int) -> str:
    """The configuration: every database of ``server_url``'s server, transaction pooling."""
    url = sa.make_url(server_url)
    host = url.query.get("host") or url.host or "127.0.0.1"
    if isinstance(host, tuple):
        host = host[0]
    server = f"host={host} port={url.port or 5432} user={url.username or 'postgres'}"
    if url.password:
        server += f" password={url.password}"
    lines = [
        "[databases]",
        f"* = {server}",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        "auth_type = any",
        "pool_mode = transaction",
        f"default_pool_size = {pool_size}",
        "max_client_conn = 2000",
        "ignore_startup_parameters = extra_float_digits",
        f"logfile = {work / 'pgbouncer.log'}",
        f"pidfile = {work / 'pgbouncer.pid'}",
    ]
    if user is not None:
        lines.append(f"user = {user}")
    return "\n".join(lines) + "\n"


def pooled_url(database_url: str, port: int) -> str:
    """``database_url``'s database, reached through the pooler, flagged so the adapters use
    no named prepared statements."""
    url = sa.make_url(database_url)
    pooled = sa.URL.create(
        "postgresql",
        username=url.username or "postgres",
        password=url.password,
        host="127.0.0.1",
        port=port,
        database=url.database,
        query={"pooler": "transaction"},
    )
    return pooled.render_as_string(hide_password=False)


@contextlib.contextmanager
def running_pgbouncer(server_url: str, pool_size: int = 20) -> Iterator[int]:
    """PgBouncer in front of ``server_url``'s server; yields its port."""
    work = Path(tempfile.mkdtemp(prefix="tierkeeper-pgbouncer-"))
    user = _run_as()
    port = _free_port()
    config = work / "pgbouncer.ini"
    config.write_text(config_text(server_url, port, work, user, pool_size))
    if user is not None:
        owner = pwd.getpwnam(user)
        os.chown(work, owner.pw_uid, owner.pw_gid)
        os.chown(config, owner.pw_uid, owner.pw_gid)
    binary = PGBOUNCER if Path(PGBOUNCER).exists() else str(shutil.which("pgbouncer"))
    process = subprocess.Popen(
        [binary, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        _wait_listening(port, process, work)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def _wait_listening(port: int, process: subprocess.Popen[bytes], work: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = work / "pgbouncer.log"
            text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"pgbouncer exited ({process.returncode}):\n{text}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"pgbouncer did not listen on port {port} within {READY_TIMEOUT_S} s")
