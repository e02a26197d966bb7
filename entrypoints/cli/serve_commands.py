"""``tierkeeper serve [--host H] [--port P] [--workers N]``: the HTTP API (and pages) under
uvicorn. On the embedded default (SQLite) the schema is brought to the newest revision
first, so a fresh machine needs no other step; then every tenant's config is brought in
line with the database (``reconcile_configs``). The app expires unsettled reservations on a
timer (``entrypoints.http.app``). With more than one worker the metrics are kept in
prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``: the operator's
directory, else a temporary one), emptied at start so ``/metrics`` sums only this run's
workers. uvicorn's own access log is off: the app writes one JSON line per request."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from entrypoints.settings import Settings

if TYPE_CHECKING:
    from domain.use_cases.configs import RegenerationSummary

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
APP_FACTORY = "entrypoints.http.app:create_app"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("serve", help="serve the HTTP API and the web pages")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"bind address ({DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT})")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes sharing the port (1)"
    )
    parser.set_defaults(handler=serve)


def migrate_embedded(settings: Settings) -> bool:
    """Upgrade the schema when the database is the embedded SQLite file; PostgreSQL is
    upgraded by the operator (``tierkeeper db upgrade``) before a rollout."""
    from adapters.sql.database import upgrade
    from adapters.sql.urls import backend

    if backend(settings.database_url) != "sqlite":
        return False
    settings.var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    upgrade(settings.database_url)
    return True


async def reconcile_configs(settings: Settings) -> RegenerationSummary:
    """Before serving: every tenant's files written again from the database and the
    temporary files of a crashed write removed, so a crash between saving a key and
    writing its files leaves nothing out of line (spec §3)."""
    from entrypoints.bootstrap import build_services

    services = await build_services(settings)
    try:
        return await services.configs.regenerate()
    finally:
        await services.close()


@contextmanager
def metrics_directory(workers: int, environ: MutableMapping[str, str]) -> Iterator[str | None]:
    """The multiprocess metrics directory for this run, set in ``environ`` before the
    workers start: the one configured (emptied of an earlier run's files), else a temporary
    one removed afterwards; None for a single worker without one configured."""
    configured = environ.get(MULTIPROC_ENV)
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        yield str(directory)
        return
    if workers == 1:
        yield None
        return
    created = tempfile.mkdtemp(prefix="tierkeeper-metrics-")
    environ[MULTIPROC_ENV] = created
    try:
        yield created
    finally:
        environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(created, ignore_errors=True)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    if args.workers < 1:
        raise SystemExit("error: --workers must be at least 1")
    settings = Settings.from_environ()
    if migrate_embedded(settings):
        print("database schema is up to date (embedded SQLite)")
    if settings.key_store == "fernet":
        settings.fernet_secrets()  # generate the embedded secret once, before workers race
    summary = asyncio.run(reconcile_configs(settings))
    print(
        f"configs in line with the database: {summary.written} rewritten,"
        f" {summary.unchanged} unchanged, {len(summary.failed)} failed"
    )
    print(f"tierkeeper serving on http://{args.host}:{args.port} ({args.workers} worker(s))")
    with metrics_directory(args.workers, os.environ):
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            proxy_headers=True,
            server_header=False,
            log_level="info",
            access_log=False,
        )
    return 0
