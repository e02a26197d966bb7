"""Messages admitted, settled and expired per tenant, read from the ledger's reservations
table (the ledger itself writes it; this only reads it, on SQLite and PostgreSQL alike).

A reservation is taken at admission (``admitted_at``) and ends ``settled`` when usage is
reported, or ``lapsed``/``expired`` when its expiry passed without a settlement."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import attrs
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql import tables as t
from adapters.sql.unavailable import reports_unavailable
from domain.ids import TenantId
from domain.metering import MessageCounts

SETTLED_STATES = ("settled",)
EXPIRED_STATES = ("lapsed", "expired")


@reports_unavailable
@attrs.frozen
class SqlMessageCounter:
    engine: AsyncEngine

    async def message_counts(
        self, starts_at: datetime, ends_at: datetime
    ) -> Mapping[TenantId, MessageCounts]:
        r = t.reservations
        query = (
            sa.select(
                r.c.tenant_id,
                sa.func.count(),
                sa.func.count().filter(r.c.state.in_(SETTLED_STATES)),
                sa.func.count().filter(r.c.state.in_(EXPIRED_STATES)),
            )
            .where(r.c.admitted_at >= starts_at, r.c.admitted_at < ends_at)
            .group_by(r.c.tenant_id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {
            TenantId(tenant): MessageCounts(int(admitted), int(settled), int(expired))
            for tenant, admitted, settled, expired in rows
        }
