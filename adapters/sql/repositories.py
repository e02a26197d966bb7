"""Repositories on SQLAlchemy Core: explicit translation between rows and domain objects.

Each method is one short transaction on the async engine; none of this is the metering hot
path (that is ``SqlUsageLedger``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg
import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql import tables as t
from adapters.sql.unavailable import reports_unavailable
from domain.byok import Ciphertext, KeyStatus, StoredCredential
from domain.errors import Conflict, NotFound
from domain.ids import ModelRef, ProviderId, TenantId, TierId, UserId
from domain.sessions import AuthToken
from domain.tenants import SubscriptionStatus, Tenant, User
from domain.windows import ZoneSpan


async def _first(
    engine: AsyncEngine,
    pool: asyncpg.Pool | None,
    fast_sql: str,
    query: Callable[[], Any],
    *args: Any,
) -> Mapping[Any, Any] | None:
    """One row by key. On PostgreSQL, per-request reads (tenant, credential, token) run as
    one prepared statement on the bare asyncpg pool, skipping SQLAlchemy's async layer
    (ADR 0003); elsewhere the Core statement ``query()`` builds runs on the engine (built
    only there: building one costs about 13 µs, a tenth of the whole read)."""
    if pool is not None:
        return await pool.fetchrow(fast_sql, *args)  # type: ignore[no-any-return]
    async with engine.connect() as conn:
        return (await conn.execute(query())).mappings().first()


def upsert(engine: AsyncEngine, table: sa.Table) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support for the engine's dialect."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _tenant_row(tenant: Tenant) -> dict[str, Any]:
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


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _tenant(row: Mapping[Any, Any]) -> Tenant:
    return Tenant(
        id=TenantId(row["id"]),
        tier=TierId(row["tier"]),
        status=SubscriptionStatus(row["status"]),
        timezone=row["timezone"],
        billing_anchor_day=row["billing_anchor_day"],
        created_at=_utc(row["created_at"]),  # type: ignore[arg-type]
        model_preference=ModelRef(row["model_preference"]) if row["model_preference"] else None,
        past_due_since=_utc(row["past_due_since"]),
        stripe_customer_id=row["stripe_customer_id"],
        stripe_subscription_id=row["stripe_subscription_id"],
        subscription_updated_at=_utc(row["subscription_updated_at"]),
        revision=int(row["revision"]),
        zone_history=zone_history_of(row["zone_history"]),
    )


def _user(row: Mapping[Any, Any]) -> User:
    return User(
        id=UserId(row["id"]),
        email=row["email"],
        password_hash=row["password_hash"],
        tenant_id=TenantId(row["tenant_id"]),
        created_at=_utc(row["created_at"]),  # type: ignore[arg-type]
    )


TENANT_BY_ID = "SELECT * FROM tenants WHERE id = $1"
CREDENTIAL_BY_TENANT = "SELECT * FROM credentials WHERE tenant_id = $1"
LIVE_TOKEN_BY_HASH = "SELECT * FROM auth_tokens WHERE token_hash = $1 AND revoked_at IS NULL"


@reports_unavailable
@attrs.frozen
class SqlTenantRepository:
    engine: AsyncEngine
    pool: asyncpg.Pool | None = None
    """PostgreSQL only: the asyncpg pool that serves ``get`` on the request path."""

    async def add(self, tenant: Tenant, user: User) -> None:
        """Tenant and first user in one transaction; a taken email raises ``Conflict``."""
        try:
            async with self.engine.begin() as conn:
                taken = await conn.scalar(
                    sa.select(sa.literal(1)).where(t.users.c.email == user.email)
                )
                if taken:
                    raise Conflict(f"email {user.email!r} is already signed up", code="conflict")
                await conn.execute(t.tenants.insert().values(_tenant_row(tenant)))
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
        row = await _first(
            self.engine,
            self.pool,
            TENANT_BY_ID,
            lambda: t.tenants.select().where(t.tenants.c.id == tenant_id),
            tenant_id,
        )
        return _tenant(row) if row else None

    async def save(self, tenant: Tenant) -> None:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                t.tenants.update()
                .where(t.tenants.c.id == tenant.id)
                .values({**_tenant_row(tenant), "revision": t.tenants.c.revision + 1})
            )
        if result.rowcount == 0:
            raise NotFound(f"tenant {tenant.id!r} is unknown")

    async def user_by_email(self, email: str) -> User | None:
        async with self.engine.connect() as conn:
            query = t.users.select().where(t.users.c.email == email)
            row = (await conn.execute(query)).mappings().first()
        return _user(row) if row else None

    async def user(self, user_id: UserId) -> User | None:
        async with self.engine.connect() as conn:
            query = t.users.select().where(t.users.c.id == user_id)
            row = (await conn.execute(query)).mappings().first()
        return _user(row) if row else None

    async def tenant_by_stripe_customer(self, customer_id: str) -> Tenant | None:
        query = (
            t.tenants.select()
            .where(t.tenants.c.stripe_customer_id == customer_id)
            .order_by(t.tenants.c.id)
            .limit(1)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return _tenant(row) if row else None

    async def iter_tenant_ids(self, batch_size: int = 500) -> AsyncIterator[TenantId]:
        """Every tenant id in order, read in batches (keyset pagination, no long transaction)."""
        after: str | None = None
        while True:
            query = sa.select(t.tenants.c.id).order_by(t.tenants.c.id).limit(batch_size)
            if after is not None:
                query = query.where(t.tenants.c.id > after)
            async with self.engine.connect() as conn:
                ids = list((await conn.scalars(query)).all())
            for tenant_id in ids:
                yield TenantId(tenant_id)
            if len(ids) < batch_size:
                return
            after = ids[-1]

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            return int(await conn.scalar(sa.select(sa.func.count()).select_from(t.tenants)) or 0)


def _credential_row(credential: StoredCredential) -> dict[str, Any]:
    return {
        "tenant_id": credential.tenant_id,
        "user_id": credential.user_id,
        "provider": credential.provider,
        "model_preference": credential.model_preference,
        "ciphertext_store": credential.ciphertext.store,
        "ciphertext_key_version": credential.ciphertext.key_version,
        "ciphertext_token": credential.ciphertext.token,
        "key_mask": credential.key_mask,
        "status": credential.status.value,
        "allow_platform_fallback": credential.allow_platform_fallback,
        "created_at": credential.created_at,
        "updated_at": credential.updated_at,
        "last_verified_at": credential.last_verified_at,
        "last_error": credential.last_error,
    }


def _credential(row: Mapping[Any, Any]) -> StoredCredential:
    return StoredCredential(
        tenant_id=TenantId(row["tenant_id"]),
        user_id=UserId(row["user_id"]),
        provider=ProviderId(row["provider"]),
        model_preference=row["model_preference"],
        ciphertext=Ciphertext(
            row["ciphertext_store"], row["ciphertext_key_version"], row["ciphertext_token"]
        ),
        key_mask=row["key_mask"],
        status=KeyStatus(row["status"]),
        allow_platform_fallback=bool(row["allow_platform_fallback"]),
        created_at=_utc(row["created_at"]),  # type: ignore[arg-type]
        updated_at=_utc(row["updated_at"]),  # type: ignore[arg-type]
        last_verified_at=_utc(row["last_verified_at"]),
        last_error=row["last_error"],
    )


@reports_unavailable
@attrs.frozen
class SqlCredentialRepository:
    """One credential per tenant; ciphertext and its store/version are three columns."""

    engine: AsyncEngine
    pool: asyncpg.Pool | None = None
    """PostgreSQL only: the asyncpg pool that serves ``get`` on the request path."""

    async def get(self, tenant_id: TenantId) -> StoredCredential | None:
        row = await _first(
            self.engine,
            self.pool,
            CREDENTIAL_BY_TENANT,
            lambda: t.credentials.select().where(t.credentials.c.tenant_id == tenant_id),
            tenant_id,
        )
        return _credential(row) if row else None

    async def put(self, credential: StoredCredential) -> None:
        values = _credential_row(credential)
        statement = upsert(self.engine, t.credentials).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=[t.credentials.c.tenant_id],
            set_={k: v for k, v in values.items() if k != "tenant_id"},
        )
        async with self.engine.begin() as conn:
            await conn.execute(statement)

    async def delete(self, tenant_id: TenantId) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                t.credentials.delete().where(t.credentials.c.tenant_id == tenant_id)
            )
        return result.rowcount > 0

    async def replace_ciphertext(
        self, tenant_id: TenantId, expected: Ciphertext, new: Ciphertext
    ) -> bool:
        """Compare-and-swap in one ``UPDATE … WHERE`` on all three ciphertext columns."""
        c = t.credentials.c
        statement = (
            t.credentials.update()
            .where(
                c.tenant_id == tenant_id,
                c.ciphertext_store == expected.store,
                c.ciphertext_key_version == expected.key_version,
                c.ciphertext_token == expected.token,
            )
            .values(
                ciphertext_store=new.store,
                ciphertext_key_version=new.key_version,
                ciphertext_token=new.token,
            )
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1

    async def iter_all(self, batch_size: int = 500) -> AsyncIterator[StoredCredential]:
        after: str | None = None
        while True:
            query = t.credentials.select().order_by(t.credentials.c.tenant_id).limit(batch_size)
            if after is not None:
                query = query.where(t.credentials.c.tenant_id > after)
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).mappings().all()
            for row in rows:
                yield _credential(row)
            if len(rows) < batch_size:
                return
            after = rows[-1]["tenant_id"]


@reports_unavailable
@attrs.frozen
class SqlAuthTokenRepository:
    """Bearer tokens by hash; the plaintext token is never stored."""

    engine: AsyncEngine
    pool: asyncpg.Pool | None = None
    """PostgreSQL only: the asyncpg pool that serves ``find`` on the request path."""

    async def add(self, token: AuthToken) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    t.auth_tokens.insert().values(
                        token_hash=token.token_hash,
                        kind=token.kind,
                        subject=token.subject,
                        created_at=token.created_at,
                        revoked_at=token.revoked_at,
                    )
                )
        except sa.exc.IntegrityError:
            raise Conflict("this token already exists", code="conflict") from None

    async def find(self, token_hash: str) -> AuthToken | None:
        row = await _first(
            self.engine,
            self.pool,
            LIVE_TOKEN_BY_HASH,
            lambda: t.auth_tokens.select().where(
                t.auth_tokens.c.token_hash == token_hash, t.auth_tokens.c.revoked_at.is_(None)
            ),
            token_hash,
        )
        return None if row is None else _auth_token(row)

    async def revoke(self, token_hash: str, at: datetime) -> bool:
        """Revoke once: False when the token is unknown or already revoked."""
        statement = (
            t.auth_tokens.update()
            .where(t.auth_tokens.c.token_hash == token_hash, t.auth_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1

    async def touch(self, token_hash: str, at: datetime) -> None:
        statement = (
            t.auth_tokens.update()
            .where(t.auth_tokens.c.token_hash == token_hash)
            .values(last_used_at=at)
        )
        async with self.engine.begin() as conn:
            await conn.execute(statement)

    async def live_for_subject(self, kind: str, subject: str | None = None) -> list[AuthToken]:
        query = t.auth_tokens.select().where(
            t.auth_tokens.c.kind == kind, t.auth_tokens.c.revoked_at.is_(None)
        )
        if subject is not None:
            query = query.where(t.auth_tokens.c.subject == subject)
        query = query.order_by(t.auth_tokens.c.created_at, t.auth_tokens.c.token_hash)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_auth_token(row) for row in rows]

    async def revoke_subject(self, subject: str, at: datetime, keep: str | None = None) -> int:
        statement = t.auth_tokens.update().where(
            t.auth_tokens.c.subject == subject, t.auth_tokens.c.revoked_at.is_(None)
        )
        if keep is not None:
            statement = statement.where(t.auth_tokens.c.token_hash != keep)
        async with self.engine.begin() as conn:
            result = await conn.execute(statement.values(revoked_at=at))
        return int(result.rowcount)


def _auth_token(row: Mapping[Any, Any]) -> AuthToken:
    return AuthToken(
        row["token_hash"],
        row["kind"],
        row["subject"],
        _utc(row["created_at"]),  # type: ignore[arg-type]
        _utc(row["revoked_at"]),
        _utc(row["last_used_at"]),
    )


@reports_unavailable
@attrs.frozen
class SqlProcessedEventRepository:
    """Provider event ids, each recorded once by the primary key."""

    engine: AsyncEngine

    async def remember(self, event_id: str, event_type: str, outcome: str, at: datetime) -> bool:
        statement = (
            upsert(self.engine, t.processed_events)
            .values(event_id=event_id, event_type=event_type, outcome=outcome, processed_at=at)
            .on_conflict_do_nothing(index_elements=[t.processed_events.c.event_id])
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1

    async def outcome(self, event_id: str) -> str | None:
        query = sa.select(t.processed_events.c.outcome).where(
            t.processed_events.c.event_id == event_id
        )
        async with self.engine.connect() as conn:
            value = await conn.scalar(query)
        return None if value is None else str(value)
