"""``tierkeeper tenants set-tier TENANT_ID TIER [--status STATUS]``: the operator's override
of a tenant's tier (legacy ids accepted) and subscription status; takes effect at once and
rewrites the tenant's config."""

from __future__ import annotations

import argparse
import asyncio

from domain.ids import TenantId
from domain.tenants import SubscriptionStatus, Tenant
from entrypoints.bootstrap import build_services
from entrypoints.cli import notifications_commands
from entrypoints.cli.serve_commands import migrate_embedded
from entrypoints.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("tenants", help="operator actions on tenants")
    commands = parser.add_subparsers(dest="tenants_command", required=True, metavar="COMMAND")
    set_tier = commands.add_parser("set-tier", help="change a tenant's tier (and status)")
    set_tier.add_argument("tenant_id", metavar="TENANT_ID")
    set_tier.add_argument("tier", metavar="TIER", help="a tier id; legacy basic/plus accepted")
    set_tier.add_argument(
        "--status",
        choices=[s.value for s in SubscriptionStatus],
        help="also set the subscription status",
    )
    set_tier.set_defaults(handler=set_tier_command)
    welcome = commands.add_parser("welcome", help="print a tenant's welcome message")
    welcome.add_argument("tenant_id", metavar="TENANT_ID")
    welcome.set_defaults(handler=notifications_commands.welcome_command)


def set_tier_command(args: argparse.Namespace) -> int:
    settings = Settings.from_environ()
    migrate_embedded(settings)
    status = SubscriptionStatus(args.status) if args.status else None
    tenant = asyncio.run(_set_tier(settings, TenantId(args.tenant_id), args.tier, status))
    print(f"tenant {tenant.id}: tier {tenant.tier}, status {tenant.status.value}")
    return 0


async def _set_tier(
    settings: Settings, tenant_id: TenantId, tier: str, status: SubscriptionStatus | None
) -> Tenant:
    services = await build_services(settings)
    try:
        before = await services.tenants.get(tenant_id)
        changed = await services.tenants.change_tier(tenant_id, tier, status)
        if services.notifications is not None:
            await services.notifications.tenant_changed(before, changed)
        return changed
    finally:
        await services.close()
