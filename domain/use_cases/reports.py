"""The usage and margin report for one month, for the operator's batch job and the CLI:
revenue from the invoices paid in the month, tenants working without payment flagged,
messages admitted, settled and expired counted apart."""

from __future__ import annotations

from decimal import Decimal

import attrs

from domain.billing import NO_MESSAGES, ReportPeriod, TenantUsage, report_period, tenant_usage
from domain.catalog import Catalog
from domain.ids import TenantId
from domain.metering import UsageRecord
from domain.ports import MessageCounter, PaidInvoiceRepository, TenantRepository, UsageLedger
from domain.subscription_records import PaidInvoice


@attrs.frozen
class PeriodReport:
    period: ReportPeriod
    tenants: tuple[TenantUsage, ...]

    def messages(self) -> int:
        return sum(t.messages() for t in self.tenants)

    def model_cost_usd(self) -> Decimal:
        return sum((t.model_cost_usd for t in self.tenants), Decimal(0))

    def model_cost_cents(self) -> int:
        return sum(t.model_cost_cents for t in self.tenants)

    def revenue_cents(self) -> int:
        return sum(t.revenue_cents for t in self.tenants)

    def margin_cents(self) -> int:
        return sum(t.margin_cents for t in self.tenants)

    def unpaid_activations(self) -> tuple[TenantUsage, ...]:
        """Tenants working as paying ones with no subscription and nothing paid."""
        return tuple(t for t in self.tenants if t.activated_without_payment)


@attrs.frozen
class UsageReport:
    catalog: Catalog
    tenants: TenantRepository
    ledger: UsageLedger
    invoices: PaidInvoiceRepository
    messages: MessageCounter | None = None
    """Where admitted, settled and expired messages are counted; None leaves them at zero."""

    async def for_period(self, period: str) -> PeriodReport:
        """Every tenant on record (with or without usage) and every tenant with settled
        messages or paid invoices in the month (``YYYY-MM``, UTC), ordered by tenant id."""
        window = report_period(period)
        records = await self.ledger.usage_records(window.starts_at, window.ends_at)
        by_tenant: dict[TenantId, list[UsageRecord]] = {}
        for record in records:
            by_tenant.setdefault(record.tenant_id, []).append(record)
        paid: dict[TenantId, list[PaidInvoice]] = {}
        for invoice in await self.invoices.paid_between(window.starts_at, window.ends_at):
            paid.setdefault(invoice.tenant_id, []).append(invoice)
        counts = (
            await self.messages.message_counts(window.starts_at, window.ends_at)
            if self.messages is not None
            else {}
        )
        tenant_ids = {t async for t in self.tenants.iter_tenant_ids()} | set(by_tenant)
        tenant_ids |= set(paid) | set(counts)
        rows = []
        for tenant_id in sorted(tenant_ids):
            tenant = await self.tenants.get(tenant_id)
            rows.append(
                tenant_usage(
                    self.catalog,
                    tenant_id,
                    tenant,
                    by_tenant.get(tenant_id, []),
                    paid.get(tenant_id, []),
                    counts.get(tenant_id, NO_MESSAGES),
                )
            )
        return PeriodReport(window, tuple(rows))
