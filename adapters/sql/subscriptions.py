"""Subscription records and paid invoices on SQLAlchemy Core, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa

from adapters.sql import tables as t
from adapters.sql.connections import Connections, upsert
from adapters.sql.unavailable import reports_unavailable
from domain.ids import TenantId, TierId
from domain.subscription_records import PaidInvoice, Subscription


def _subscription_row(subscription: Subscription) -> dict[str, Any]:
    return {
        "tenant_id": subscription.tenant_id,
        "subscription_id": subscription.subscription_id,
        "current_period_start": subscription.current_period_start,
        "current_period_end": subscription.current_period_end,
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "pending_tier": subscription.pending_tier,
        "pending_from": subscription.pending_from,
    }


def _subscription(row: Mapping[Any, Any]) -> Subscription:
    return Subscription(
        tenant_id=TenantId(row["tenant_id"]),
        subscription_id=row["subscription_id"],
        current_period_start=row["current_period_start"],
        current_period_end=row["current_period_end"],
        cancel_at_period_end=bool(row["cancel_at_period_end"]),
        pending_tier=TierId(row["pending_tier"]) if row["pending_tier"] else None,
        pending_from=row["pending_from"],
    )


@reports_unavailable
@attrs.frozen
class SqlSubscriptionRepository:
    """One row per tenant, replaced whole on save."""

    connections: Connections
    """Its own connection per call, or a unit of work's transaction."""

    async def get(self, tenant_id: TenantId) -> Subscription | None:
        query = sa.select(t.subscriptions).where(t.subscriptions.c.tenant_id == tenant_id)
        async with self.connections.reading() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _subscription(row)

    async def save(self, subscription: Subscription) -> None:
        row = _subscription_row(subscription)
        async with self.connections.writing() as conn:
            statement = (
                upsert(conn, t.subscriptions)
                .values(**row)
                .on_conflict_do_update(
                    index_elements=[t.subscriptions.c.tenant_id],
                    set_={k: v for k, v in row.items() if k != "tenant_id"},
                )
            )
            await conn.execute(statement)


@reports_unavailable
@attrs.frozen
class SqlPaidInvoiceRepository:
    """Paid invoices, each kept once by its invoice id (the primary key)."""

    connections: Connections

    async def record(self, invoice: PaidInvoice) -> bool:
        async with self.connections.writing() as conn:
            statement = (
                upsert(conn, t.paid_invoices)
                .values(
                    invoice_id=invoice.invoice_id,
                    tenant_id=invoice.tenant_id,
                    amount_cents=invoice.amount_cents,
                    currency=invoice.currency,
                    paid_at=invoice.paid_at,
                )
                .on_conflict_do_nothing(index_elements=[t.paid_invoices.c.invoice_id])
            )
            result = await conn.execute(statement)
        return result.rowcount == 1

    async def paid_between(self, starts_at: datetime, ends_at: datetime) -> Sequence[PaidInvoice]:
        query = (
            sa.select(t.paid_invoices)
            .where(t.paid_invoices.c.paid_at >= starts_at, t.paid_invoices.c.paid_at < ends_at)
            .order_by(t.paid_invoices.c.paid_at, t.paid_invoices.c.invoice_id)
        )
        async with self.connections.reading() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            PaidInvoice(
                invoice_id=row["invoice_id"],
                tenant_id=TenantId(row["tenant_id"]),
                amount_cents=int(row["amount_cents"]),
                currency=row["currency"],
                paid_at=row["paid_at"],
            )
            for row in rows
        ]
