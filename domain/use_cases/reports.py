"""The usage and margin report for one month, for the operator's batch job and the CLI."""

from __future__ import annotations

from decimal import Decimal

import attrs

from domain.billing import ReportPeriod, TenantUsage, report_period, tenant_usage
from domain.catalog import Catalog
from domain.ids import TenantId
from domain.ports import TenantRepository, UsageLedger, UsageRecord


@attrs.frozen
class PeriodReport:
    period: ReportPeriod
    tenants: tuple[TenantUsage, ...]

    @property
    def messages(self) -> int:
        return sum(t.messages for t in self.tenants)

    @property
    def model_cost_usd(self) -> Decimal:
        return sum((t.model_cost_usd for t in self.tenants), Decimal(0))

    @property
    def model_cost_cents(self) -> int:
        return sum(t.model_cost_cents for t in self.tenants)

    @property
    def revenue_cents(self) -> int:
        return sum(t.revenue_cents for t in self.tenants)

    @property
    def margin_cents(self) -> int:
        return sum(t.margin_cents for t in self.tenants)


@attrs.frozen
class UsageReport:
    catalog: Catalog
    tenants: TenantRepository
    ledger: UsageLedger

    async def for_period(self, period: str) -> PeriodReport:
        """Every tenant on record (with or without usage) and every tenant with settled
        messages in the month (``YYYY-MM``, UTC), ordered by tenant id."""
        window = report_period(period)
        records = await self.ledger.usage_records(window.starts_at, window.ends_at)
        by_tenant: dict[TenantId, list[UsageRecord]] = {}
        for record in records:
            by_tenant.setdefault(record.tenant_id, []).append(record)
        tenant_ids = {t async for t in self.tenants.iter_tenant_ids()} | set(by_tenant)
        rows = []
        for tenant_id in sorted(tenant_ids):
            tenant = await self.tenants.get(tenant_id)
            rows.append(tenant_usage(self.catalog, tenant_id, tenant, by_tenant.get(tenant_id, [])))
        return PeriodReport(window, tuple(rows))
