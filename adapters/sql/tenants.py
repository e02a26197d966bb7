"""``SqlTenantRepository``: tenants and their users on SQLAlchemy Core, and the translation
between their rows and the domain's ``Tenant`` and ``User``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import sqlalchemy as sa

from adapters.sql import tables as t
from adapters.sql.connections import Connections
from adapters.sql.unavailable import reports_unavailable
from domain.errors import Conflict, NotFound
from domain.ids import ModelRef, TenantId, TierId, UserId
from domain.tenants import SubscriptionStatus, Tenant, User
from domain.windows import ZoneSpan


def utc(value: datetime | None) -> datetime | None:
    """A stored time as an aware UTC time (SQLite hands back naive ones)."""
    return None if value is None else value.astimezone(UTC)


def zone_history_text(history: tuple[ZoneSpan, ...]) -> str | None:
    """The zones a tenant left, as JSON (None when it left none)."""
    if not history:
        return None
    return json.dumps(
        [[s.timezone, s.days_until.isoformat(), s.periods_until.isoformat()] for s in history]
    )


def zone_history_of(text: str | None) -> tuple[ZoneSpan, ...]:
    if not text:
        return ()
    return tuple(
        ZoneSpan(zone, datetime.fromisoformat(days), datetime.fromisoformat(periods))
        for zone, days, periods in json.loads(text)
    )


def tenant_row(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "tier": tenant.tier,
        "status": tenant.status.value,
        "timezone": tenant.timezone,
        "billing_anchor_day": tenant.billing_anchor_day,
        "created_at": tenant.created_at,
        "model_preference": tenant.model_preference,
        "past_due_since": tenant.past_due_since,
        "stripe_customer_id": tenant.stripe_customer_id,
        "stripe_subscription_id": tenant.stripe_subscription_id,
        "subscription_updated_at": tenant.subscription_updated_at,
        "zone_history": zone_history_text(tenant.zone_history),
    }


def tenant_of(row: Mapping[Any, Any]) -> Tenant:
    return Tenant(
        id=TenantId(row["id"]),
        tier=TierId(row["tier"]),
        status=SubscriptionStatus(row["status"]),
        timezone=row["timezone"],
        billing_anchor_day=row["billing_anchor_day"],
        created_at=utc(row["created_at"]),  # type: ignore[arg-type]
        model_preference=ModelRef(row["model_preference"]) if row["model_preference"] else None,
        past_due_since=utc(row["past_due_since"]),
        stripe_customer_id=row["stripe_customer_id"],
        stripe_subscription_id=row["stripe_subscription_id"],
        subscription_updated_at=utc(row["subscription_updated_at"]),
        revision=int(row["revision"]),
        zone_history=zone_history_of(row["zone_history"]),
    )


def user_of(row: Mapping[Any, Any]) -> User:
    return User(
        id=UserId(row["id"]),
        email=row["email"],
        password_hash=row["password_hash"],
        tenant_id=TenantId(row["tenant_id"]),
        created_at=utc(row["created_at"]),  # type: ignore[arg-type]
    )


@reports_unavailable
@attrs.frozen
class SqlTenantRepository:
    connections: Connections

    async def add(self, tenant: Tenant, user: User) -> None:
        """Tenant and first user in one transaction; a taken email raises ``Conflict``."""
        try:
            async with self.connections.writing() as conn:
                taken = await conn.scalar(
                    sa.select(sa.literal(1)).where(t.users.c.email == user.email)
                )
                if taken:
                    raise Conflict(f"email {user.email!r} is already signed up", code="conflict")
                await conn.execute(t.tenants.insert().values(tenant_row(tenant)))
                await conn.execute(
                    t.users.insert().values(
                        id=user.id,
                        email=user.email,
                        password_hash=user.password_hash,
                        tenant_id=user.tenant_id,
                        created_at=user.created_at,
                    )
                )
        except sa.exc.IntegrityError:
            raise Conflict(
                f"tenant {tenant.id!r} or email {user.email!r} already exists", code="conflict"
            ) from None

    async def get(self, tenant_id: TenantId) -> Tenant | None:
        query = t.tenants.select().where(t.tenants.c.id == tenant_id)
        async with self.connections.reading() as conn:
            row = (await conn.execute(query)).mappings().first()
        return tenant_of(row) if row else None

    async def save(self, tenant: Tenant) -> None:
        async with self.connections.writing() as conn:
            result = await conn.execute(
                t.tenants.update()
                .where(t.tenants.c.id == tenant.id)
                .values({**tenant_row(tenant), "revision": t.tenants.c.revision + 1})
            )
        if result.rowcount == 0:
            raise NotFound(f"tenant {tenant.id!r} is unknown")

    async def user_by_email(self, email: str) -> User | None:
        query = t.users.select().where(t.users.c.email == email)
        async with self.connections.reading() as conn:
            row = (await conn.execute(query)).mappings().first()
        return user_of(row) if row else None

    async def user(self, user_id: UserId) -> User | None:
        query = t.users.select().where(t.users.c.id == user_id)
        async with self.connections.reading() as conn:
            row = (await conn.execute(query)).mappings().first()
        return user_of(row) if row else None

    async def has_account(self, tenant_id: TenantId) -> bool:
        query = sa.select(sa.exists().where(t.users.c.tenant_id == tenant_id))
        async with self.connections.reading() as conn:
            return bool(await conn.scalar(query))

    async def tenant_by_stripe_customer(self, customer_id: str) -> Tenant | None:
        query = (
            t.tenants.select()
            .where(t.tenants.c.stripe_customer_id == customer_id)
            .order_by(t.tenants.c.id)
            .limit(1)
        )
        async with self.connections.reading() as conn:
            row = (await conn.execute(query)).mappings().first()
        return tenant_of(row) if row else None

    async def iter_tenant_ids(self, batch_size: int = 500) -> AsyncIterator[TenantId]:
        """Every tenant id in order, read in batches (keyset pagination, no long transaction)."""
        after: str | None = None
        while True:
            query = sa.select(t.tenants.c.id).order_by(t.tenants.c.id).limit(batch_size)
            if after is not None:
                query = query.where(t.tenants.c.id > after)
            async with self.connections.reading() as conn:
                ids = list((await conn.scalars(query)).all())
            for tenant_id in ids:
                yield TenantId(tenant_id)
            if len(ids) < batch_size:
                return
            after = ids[-1]

    async def count(self) -> int:
        query = sa.select(sa.func.count()).select_from(t.tenants)
        async with self.connections.reading() as conn:
            return int(await conn.scalar(query) or 0)
