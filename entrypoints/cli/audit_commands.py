"""``tierkeeper audit [--tenant ID] [--since DATE] [--limit N]``: the audit trail, newest
first: when, what, who (and from where), which tenant, and the detail (never a secret)."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from domain.audit import AuditEntry
from domain.errors import ValidationError
from domain.ids import TenantId
from entrypoints.bootstrap import build_services
from entrypoints.cli.serve_commands import migrate_embedded
from entrypoints.settings import Settings

MAX_LIMIT = 100_000


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("audit", help="the audit trail of security-relevant events")
    parser.add_argument("--tenant", metavar="ID", help="only this tenant's entries")
    parser.add_argument(
        "--since", metavar="DATE", help="entries at or after this ISO date or time (UTC if none)"
    )
    parser.add_argument("--limit", type=int, default=1000, help="at most this many (1000)")
    parser.set_defaults(handler=audit_command)


def parse_since(text: str | None) -> datetime | None:
    """An ISO date (midnight UTC) or date and time; a time without an offset is UTC."""
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(
            f"--since must be an ISO date or time (2026-12-01 or 2026-12-01T08:00), got {text!r}",
            field="since",
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def audit_command(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= MAX_LIMIT:
        raise ValidationError(f"--limit must be between 1 and {MAX_LIMIT}", field="limit")
    since = parse_since(args.since)
    settings = Settings.from_environ()
    migrate_embedded(settings)
    tenant = TenantId(args.tenant) if args.tenant else None
    entries = asyncio.run(_entries(settings, tenant, since, args.limit))
    for entry in entries:
        print(entry_line(entry))
    print(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}")
    return 0


def entry_line(entry: AuditEntry) -> str:
    at = entry.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    who = f"{entry.actor.source.value}:{entry.actor.name}"
    return f"{at}  {entry.action.value:<22} {who:<40} {entry.tenant_id or '-':<36} {entry.detail}"


async def _entries(
    settings: Settings, tenant: TenantId | None, since: datetime | None, limit: int
) -> list[AuditEntry]:
    services = await build_services(settings)
    try:
        return list(await services.ports.audit.entries(tenant, since, limit))
    finally:
        await services.close()
