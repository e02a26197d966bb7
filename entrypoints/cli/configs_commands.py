"""``tierkeeper configs regenerate [--tenant ID ... | --all]``: rewrite tenants' OpenClaw
configs with a progress bar and a summary; the exit code is 1 when any tenant failed."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from domain.ids import TenantId
from domain.use_cases.configs import RegenerationSummary
from entrypoints import bootstrap
from entrypoints.bootstrap import Services
from entrypoints.cli.serve_commands import migrate_embedded
from entrypoints.settings import Settings

EXIT_OK = 0
EXIT_FAILED = 1
MAX_FAILURES_SHOWN = 20

ServicesBuilder = Callable[[Settings], Awaitable[Services]]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("configs", help="tenants' OpenClaw configuration files")
    commands = parser.add_subparsers(dest="configs_command", required=True, metavar="COMMAND")
    regenerate = commands.add_parser(
        "regenerate", help="render and write tenants' openclaw.json (and .env) files"
    )
    which = regenerate.add_mutually_exclusive_group()
    which.add_argument(
        "--tenant",
        dest="tenant_ids",
        action="append",
        metavar="ID",
        help="a tenant to regenerate (repeatable)",
    )
    which.add_argument(
        "--all", dest="all_tenants", action="store_true", help="every tenant (the default)"
    )
    regenerate.add_argument(
        "--rotate-virtual-keys",
        action="store_true",
        help="proxy mode: give each tenant a new virtual key (the old one stops working)",
    )
    regenerate.set_defaults(handler=regenerate_command)


def regenerate_command(args: argparse.Namespace) -> int:
    settings = Settings.from_environ()
    migrate_embedded(settings)
    tenant_ids = [TenantId(t) for t in args.tenant_ids] if args.tenant_ids else None
    rotate = bool(getattr(args, "rotate_virtual_keys", False))
    return asyncio.run(_run(bootstrap.build_services, settings, tenant_ids, rotate))


async def _run(
    builder: ServicesBuilder,
    settings: Settings,
    tenant_ids: list[TenantId] | None,
    rotate_virtual_keys: bool = False,
) -> int:
    services = await builder(settings)
    try:
        summary = await regenerate(services, tenant_ids, Console(), rotate_virtual_keys)
    finally:
        await services.close()
    return EXIT_OK if summary.ok() else EXIT_FAILED


async def regenerate(
    services: Services,
    tenant_ids: Sequence[TenantId] | None,
    console: Console,
    rotate_virtual_keys: bool = False,
) -> RegenerationSummary:
    """Regenerate the named tenants (or all), showing progress, then print the counts and
    the first failures (tenant and reason; never a key: the reasons come from the use case)."""
    ids = list(tenant_ids) if tenant_ids is not None else None
    total = len(ids) if ids is not None else await services.ports.tenants.count()
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("regenerating configs", total=total)

        def advance(tenant_id: TenantId, outcome: str) -> None:
            progress.advance(task)

        summary = await services.configs.regenerate(
            ids, progress=advance, rotate_virtual_keys=rotate_virtual_keys
        )
    console.print(summary_table(summary))
    for tenant_id, reason in summary.failed[:MAX_FAILURES_SHOWN]:
        console.print(f"[red]failed[/red] {escape(tenant_id)}: {escape(reason)}", highlight=False)
    if len(summary.failed) > MAX_FAILURES_SHOWN:
        console.print(f"… and {len(summary.failed) - MAX_FAILURES_SHOWN} more failures")
    return summary


def summary_table(summary: RegenerationSummary) -> Table:
    table = Table(title="configs regenerate")
    for column in ("written", "unchanged", "failed"):
        table.add_column(column, justify="right")
    table.add_row(str(summary.written), str(summary.unchanged), str(len(summary.failed)))
    return table
