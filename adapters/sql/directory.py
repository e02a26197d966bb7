"""``SqlTenantDirectory``: the operator's search over the ``tenants`` and ``users`` tables."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.sql import tables as t
from adapters.sql.tenants import tenant_of
from adapters.sql.unavailable import reports_unavailable
from domain.ids import TenantId
from domain.tenants import SubscriptionStatus, TenantListing


@reports_unavailable
@attrs.frozen
class SqlTenantDirectory:
    engine: AsyncEngine

    async def find(
        self,
        tier: str | None = None,
        status: SubscriptionStatus | None = None,
        email_contains: str | None = None,
        limit: int = 100,
    ) -> Sequence[TenantListing]:
        query = sa.select(t.tenants).order_by(t.tenants.c.created_at, t.tenants.c.id)
        if tier is not None:
            query = query.where(t.tenants.c.tier == tier)
        if status is not None:
            query = query.where(t.tenants.c.status == status.value)
        if email_contains is not None:
            matching = sa.select(t.users.c.tenant_id).where(
                sa.func.lower(t.users.c.email).contains(email_contains.lower(), autoescape=True)
            )
            query = query.where(t.tenants.c.id.in_(matching))
        async with self.engine.connect() as conn:
            tenants = [
                tenant_of(row) for row in (await conn.execute(query.limit(limit))).mappings()
            ]
            emails = await self._emails(conn, [tenant.id for tenant in tenants])
        return [TenantListing(tenant, emails.get(tenant.id, ())) for tenant in tenants]

    async def listing(self, tenant_id: TenantId) -> TenantListing | None:
        query = sa.select(t.tenants).where(t.tenants.c.id == tenant_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
            if row is None:
                return None
            emails = await self._emails(conn, [tenant_id])
        return TenantListing(tenant_of(row), emails.get(tenant_id, ()))

    @staticmethod
    async def _emails(conn: AsyncConnection, ids: list[TenantId]) -> dict[str, tuple[str, ...]]:
        if not ids:
            return {}
        query = (
            sa.select(t.users.c.tenant_id, t.users.c.email)
            .where(t.users.c.tenant_id.in_(ids))
            .order_by(t.users.c.created_at, t.users.c.email)
        )
        found: dict[str, list[str]] = {}
        for tenant_id, email in (await conn.execute(query)).all():
            found.setdefault(tenant_id, []).append(email)
        return {tenant_id: tuple(emails) for tenant_id, emails in found.items()}
