"""A customer's usage history, for the history page, its CSV and the JSON API."""

from __future__ import annotations

from datetime import date

import attrs

from domain.errors import NotFound
from domain.ids import TenantId
from domain.ports import Clock, TenantRepository, UsageLedger
from domain.usage_history import (
    HistoryGroup,
    HistoryRange,
    HistoryRow,
    history_range,
    history_rows,
)
from domain.windows import parse_timezone


@attrs.frozen
class UsageHistoryView:
    span: HistoryRange
    group: HistoryGroup
    timezone: str
    rows: tuple[HistoryRow, ...]


@attrs.frozen
class UsageHistory:
    tenants: TenantRepository
    ledger: UsageLedger
    clock: Clock

    async def today(self, tenant_id: TenantId) -> date:
        """The tenant's local calendar day now."""
        tenant = await self.tenants.get(tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id!r} is unknown")
        return self.clock.now().astimezone(parse_timezone(tenant.timezone)).date()

    async def history(
        self, tenant_id: TenantId, first: date, last: date, group: HistoryGroup
    ) -> UsageHistoryView:
        """The tenant's settled messages from ``first`` to ``last`` (its local days, both
        included; at most 400 days), grouped by day or by model."""
        span = history_range(first, last)
        tenant = await self.tenants.get(tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id!r} is unknown")
        starts, ends = span.instants(tenant.timezone)
        records = [
            r for r in await self.ledger.usage_records(starts, ends) if r.tenant_id == tenant_id
        ]
        rows = history_rows(records, span, group, tenant.timezone)
        return UsageHistoryView(span=span, group=group, timezone=tenant.timezone, rows=rows)
