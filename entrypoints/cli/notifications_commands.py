"""``tierkeeper notifications deliver``: send every due notification now (mail, customers'
webhooks) and print what happened; the same deliverer as the task inside ``serve``, safe to
run beside it (rows are claimed). ``tierkeeper tenants welcome ID`` lives with the tenants
commands."""

from __future__ import annotations

import argparse
import asyncio

from domain.ids import TenantId
from domain.use_cases.notifications import DeliveryRun
from entrypoints.bootstrap import build_services
from entrypoints.cli.serve_commands import migrate_embedded
from entrypoints.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("notifications", help="deliver notifications")
    commands = parser.add_subparsers(dest="notifications_command", required=True, metavar="COMMAND")
    deliver = commands.add_parser("deliver", help="send every due notification now")
    deliver.add_argument("--batch", type=int, default=50, help="deliveries claimed per pass (50)")
    deliver.set_defaults(handler=deliver_command)


def deliver_command(args: argparse.Namespace) -> int:
    if args.batch < 1:
        raise SystemExit("error: --batch must be at least 1")
    settings = Settings.from_environ()
    migrate_embedded(settings)
    run = asyncio.run(_deliver(settings, args.batch))
    print(
        f"sent {run.sent}, skipped {run.skipped} (channel off), retrying later {run.retrying},"
        f" failed for good {run.failed}"
    )
    return 0


async def _deliver(settings: Settings, batch: int) -> DeliveryRun:
    services = await build_services(settings)
    try:
        assert services.deliverer is not None
        return await services.deliverer.deliver_all(batch)
    finally:
        await services.close()


def welcome_command(args: argparse.Namespace) -> int:
    """Print the tenant's welcome message, built from the catalog as it is now."""
    settings = Settings.from_environ()
    migrate_embedded(settings)
    print(asyncio.run(_welcome(settings, TenantId(args.tenant_id))))
    return 0


async def _welcome(settings: Settings, tenant_id: TenantId) -> str:
    services = await build_services(settings)
    try:
        overview = await services.tenants.overview(tenant_id)
        return overview.welcome_message
    finally:
        await services.close()
