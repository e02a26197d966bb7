"""``tierkeeper tenants set-tier TENANT_ID TIER [--status STATUS]``: the operator's override
of a tenant's tier (legacy ids accepted) and subscription status; takes effect at once and
rewrites the tenant's config. ``tenants list [--tier T] [--status S] [--search EMAIL]`` finds
tenants; ``tenants show ID`` prints one: tier, status, zone, usage, key state (never the
key), subscription, its recent audit trail and its recent notifications with each channel's
delivery outcome."""

from __future__ import annotations

import argparse
import asyncio

from domain.ids import TenantId
from domain.tenants import SubscriptionStatus, Tenant, TenantListing
from domain.use_cases.operations import TenantReport
from entrypoints.bootstrap import build_services
from entrypoints.cli import notifications_commands
from entrypoints.cli.operator import operator
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
    listing = commands.add_parser("list", help="find tenants by tier, status or email")
    listing.add_argument("--tier", help="a tier id; legacy basic/plus accepted")
    listing.add_argument("--status", choices=[s.value for s in SubscriptionStatus])
    listing.add_argument("--search", metavar="EMAIL", help="part of a user's email")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    listing.set_defaults(handler=list_command)
    show = commands.add_parser(
        "show", help="one tenant: plan, usage, key state, trail, notifications"
    )
    show.add_argument("tenant_id", metavar="TENANT_ID")
    show.set_defaults(handler=show_command)


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
        return await services.tenants.change_tier(tenant_id, tier, status, actor=operator())
    finally:
        await services.close()


def list_command(args: argparse.Namespace) -> int:
    settings = Settings.from_environ()
    migrate_embedded(settings)
    status = SubscriptionStatus(args.status) if args.status else None
    found = asyncio.run(_list(settings, args.tier, status, args.search, args.limit))
    print(f"{'TENANT':<36} {'TIER':<8} {'STATUS':<10} {'ZONE':<20} EMAILS")
    for listing in found:
        tenant = listing.tenant
        print(f"{tenant.id:<36} {tenant.tier:<8} {tenant.status.value:<10} "
              f"{tenant.timezone:<20} {', '.join(listing.emails)}")  # fmt: skip
    print(f"{len(found)} tenant(s)")
    return 0


async def _list(
    settings: Settings,
    tier: str | None,
    status: SubscriptionStatus | None,
    search: str | None,
    limit: int,
) -> list[TenantListing]:
    services = await build_services(settings)
    try:
        return list(await services.operations.list_tenants(tier, status, search, limit))
    finally:
        await services.close()


def show_command(args: argparse.Namespace) -> int:
    settings = Settings.from_environ()
    migrate_embedded(settings)
    report = asyncio.run(_show(settings, TenantId(args.tenant_id)))
    for line in report_lines(report):
        print(line)
    return 0


async def _show(settings: Settings, tenant_id: TenantId) -> TenantReport:
    services = await build_services(settings)
    try:
        return await services.operations.show(tenant_id)
    finally:
        await services.close()


def report_lines(report: TenantReport) -> list[str]:
    """The tenant report as ``name: value`` lines, then its recent audit entries and
    notifications (each channel's delivery status and attempts)."""
    tenant, usage, key = report.listing.tenant, report.usage, report.key
    budget = "no limit" if usage.token_budget is None else f"{usage.token_budget:,}"
    lines = [
        f"tenant:        {tenant.id}",
        f"emails:        {', '.join(report.listing.emails) or '-'}",
        f"tier:          {tenant.tier}",
        f"status:        {tenant.status.value}"
        + (f" (past due since {tenant.past_due_since:%Y-%m-%d})" if tenant.past_due_since else ""),
        f"time zone:     {tenant.timezone}",
        f"created:       {tenant.created_at:%Y-%m-%d %H:%M} UTC",
        f"messages today: {usage.messages_used} of {usage.message_cap} (day {usage.day.key})",
        f"tokens:        {usage.tokens_used:,} of {budget} "
        f"(period {usage.period.starts_at:%Y-%m-%d} to {usage.period.resets_at:%Y-%m-%d})",
    ]
    if usage.fallback_token_budget is not None:
        lines.append(
            f"fallback:      {usage.fallback_tokens_used or 0:,} of "
            f"{usage.fallback_token_budget:,} platform tokens"
        )
    if key is None:
        lines.append("key:           none stored")
    else:
        fallback = "on" if key.allow_platform_fallback else "off"
        lines.append(
            f"key:           {key.provider} {key.key_mask}, {key.status.value}, "
            f"{key.store} v{key.key_version}, fallback {fallback}"
        )
    lines.append(
        f"subscription:  customer {tenant.stripe_customer_id or '-'}, subscription "
        f"{tenant.stripe_subscription_id or '-'}, billing day {tenant.billing_anchor_day}"
    )
    lines.append("recent audit entries:" if report.recent_audit else "recent audit entries: none")
    for entry in report.recent_audit:
        lines.append(
            f"  {entry.at:%Y-%m-%d %H:%M:%S} {entry.action.value} by "
            f"{entry.actor.source.value}:{entry.actor.name} {entry.detail}".rstrip()
        )
    lines.append(
        "recent notifications:" if report.recent_notifications else "recent notifications: none"
    )
    for sent in report.recent_notifications:
        outcomes = ", ".join(
            f"{channel} {status} ({attempts} attempt{'' if attempts == 1 else 's'})"
            for channel, status, attempts in sent.deliveries
        )
        lines.append(
            f"  {sent.note.created_at:%Y-%m-%d %H:%M:%S} {sent.note.api_kind()} {sent.note.id}: "
            f"{outcomes or 'no channel'}"
        )
    return lines
