"""``tierkeeper keys rotate | migrate --to fernet|vault | verify``: batch jobs over every
stored BYOK key, with a progress bar and a summary; the exit code is 1 when any key failed.

All three are safe to interrupt (Ctrl-C) and to rerun: each key is swapped on its own, and a
rerun skips the keys already current or already moved (``domain.use_cases.key_maintenance``).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapters.sql.urls import POSTGRESQL, backend
from domain.use_cases.key_maintenance import Action, KeyMaintenance, Summary
from domain.use_cases.key_maintenance import Progress as JobProgress
from entrypoints import bootstrap
from entrypoints.bootstrap import Services
from entrypoints.cli.operator import operator
from entrypoints.cli.serve_commands import migrate_embedded
from entrypoints.settings import KEY_STORES, Settings

EXIT_OK = 0
EXIT_FAILED = 1
MAX_FAILURES_SHOWN = 20
DEFAULT_CONCURRENCY = 8
SQLITE_CONCURRENCY = 2
"""SQLite has one write lock: past two writers, the rest only sleep in its busy handler
(1,000 keys measured 2.3 s at 2, 10.6 s at 8; ``bench/bench_key_rotation.py``)."""

ServicesBuilder = Callable[[Settings], Awaitable[Services]]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("keys", help="rotate, move or verify the stored BYOK keys")
    commands = parser.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    rotate = commands.add_parser(
        "rotate", help="re-encrypt every key not under its store's newest key"
    )
    rotate.set_defaults(handler=keys_command, action=Action.ROTATE, target=None)
    migrate = commands.add_parser("migrate", help="move every key into another key store")
    migrate.add_argument(
        "--to", dest="target", required=True, choices=KEY_STORES, help="the store to move into"
    )
    migrate.set_defaults(handler=keys_command, action=Action.MIGRATE)
    verify = commands.add_parser("verify", help="decrypt every key; report the unreadable ones")
    verify.set_defaults(handler=keys_command, action=Action.VERIFY, target=None)
    for command in (rotate, migrate, verify):
        command.add_argument(
            "--concurrency",
            type=_at_least_one,
            default=None,
            metavar="N",
            help=f"keys handled at a time (default {DEFAULT_CONCURRENCY} on PostgreSQL, "
            f"{SQLITE_CONCURRENCY} on SQLite)",
        )


def default_concurrency(settings: Settings) -> int:
    """How many keys a job handles at a time unless ``--concurrency`` says."""
    if backend(settings.database_url) == POSTGRESQL:
        return DEFAULT_CONCURRENCY
    return SQLITE_CONCURRENCY


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def keys_command(args: argparse.Namespace) -> int:
    settings = Settings.from_environ()
    migrate_embedded(settings)
    concurrency = args.concurrency or default_concurrency(settings)
    return asyncio.run(
        _run(bootstrap.build_services, settings, args.action, args.target, concurrency)
    )


async def _run(
    builder: ServicesBuilder,
    settings: Settings,
    action: Action,
    target: str | None,
    concurrency: int,
) -> int:
    services = await builder(settings)
    try:
        stores = bootstrap.build_key_stores(settings, also=(target,) if target else ())
        maintenance = KeyMaintenance(
            services.ports.credentials,
            stores,
            concurrency=concurrency,
            audit=services.ports.audit,
            clock=services.ports.clock,
            actor=operator(),
        )
        summary = await run_job(maintenance, action, target, Console())
    finally:
        await services.close()
    return EXIT_OK if summary.ok() else EXIT_FAILED


async def run_job(
    maintenance: KeyMaintenance, action: Action, target: str | None, console: Console
) -> Summary:
    """Run one job with a progress bar, then print the counts and the first failures
    (tenant and the store's reason; the reasons never hold a key)."""
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    description = f"keys {action.value}" + (f" --to {target}" if target else "")
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=None)

        def advance(event: JobProgress) -> None:
            progress.update(task, total=event.total, completed=event.done)

        if action is Action.ROTATE:
            summary = await maintenance.rotate(advance)
        elif action is Action.MIGRATE:
            assert target is not None
            summary = await maintenance.migrate(target, advance)
        else:
            summary = await maintenance.verify(advance)
    console.print(summary_table(summary, description))
    for failure in summary.failures[:MAX_FAILURES_SHOWN]:
        console.print(
            f"[red]failed[/red] {escape(failure.tenant_id)}: {escape(failure.detail)}",
            highlight=False,
        )
    if len(summary.failures) > MAX_FAILURES_SHOWN:
        console.print(f"… and {len(summary.failures) - MAX_FAILURES_SHOWN} more failures")
    return summary


def summary_table(summary: Summary, title: str) -> Table:
    table = Table(title=title)
    counts = {
        "processed": summary.processed,
        "changed": summary.changed,
        "skipped": summary.skipped,
        "failed": summary.failed,
    }
    if summary.action is Action.VERIFY:
        counts = {
            "processed": summary.processed,
            "readable": summary.verified,
            "stale": summary.stale,
            "failed": summary.failed,
        }
    for column in counts:
        table.add_column(column, justify="right")
    table.add_row(*(str(value) for value in counts.values()))
    return table
