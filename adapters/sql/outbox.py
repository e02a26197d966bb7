"""The outbox on SQLAlchemy Core: notifications, one delivery row per channel, and each
tenant's channel settings (SQLite and PostgreSQL).

Claiming: one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING`` marks
due rows with a claim token and a lease. On PostgreSQL two deliverers skip each other's
locked rows; on SQLite every transaction is ``BEGIN IMMEDIATE`` (one writer at a time), so
the same statement is already exclusive. A deliverer that dies leaves its rows to be taken
again when the lease ends: at least once, with the notification's stable id.

``insert_notification(conn, facts, channels, at)`` is the one statement pair that writes a
notification; a caller holding its own transaction (the ledger's admission) can call it on
its connection so the notification commits with the change that caused it.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.sql import tables as t
from adapters.sql.connections import upsert
from adapters.sql.unavailable import reports_unavailable
from domain.byok import Ciphertext
from domain.ids import TenantId, UserId
from domain.notifications import (
    Channel,
    ClaimedDelivery,
    DeliveryOutcome,
    DeliveryStatus,
    NotificationFacts,
    NotificationId,
    NotificationKind,
    NotificationSettings,
    StoredNotification,
)

log = logging.getLogger("tierkeeper.notifications")

n = t.notifications.c
d = t.notification_deliveries.c


ENQUEUE = sa.text(
    "SELECT tk_enqueue_notification(:tenant, :kind, :window, :percent, :used, :limit,"
    " :provider, :detail, :user, :link_store, :link_version, :link_token, :at,"
    " CAST(:channels AS text[]), :public_id)"
)


def new_notification_id() -> NotificationId:
    """``msg_`` and 32 hex digits: unique, and a valid Standard Webhooks message id."""
    return NotificationId(f"msg_{uuid.uuid4().hex}")


async def insert_notification(
    conn: AsyncConnection,
    facts: NotificationFacts,
    channels: Sequence[Channel],
    at: datetime,
) -> NotificationId | None:
    """Write the notification and its pending deliveries on ``conn`` (the caller's
    transaction); None when its (tenant, kind, window key, percent) is already stored. On
    PostgreSQL this is one call of ``tk_enqueue_notification`` (revision 0008), which a
    database function can call in its own transaction too."""
    public_id = new_notification_id()
    link = facts.secret_link
    detail = _detail(facts)
    if conn.dialect.name == "postgresql":
        written = await conn.scalar(
            ENQUEUE,
            {
                "tenant": facts.tenant_id, "kind": facts.kind.value,
                "window": facts.window_key, "percent": facts.percent, "used": facts.used,
                "limit": facts.limit, "provider": facts.provider, "detail": detail,
                "user": facts.user_id, "link_store": link.store if link else None,
                "link_version": link.key_version if link else None,
                "link_token": link.token if link else None, "at": at,
                "channels": [c.value for c in channels], "public_id": public_id,
            },
        )  # fmt: skip
        return None if written is None else NotificationId(written)
    statement = (
        upsert(conn.engine, t.notifications)
        .values(
            public_id=public_id,
            tenant_id=facts.tenant_id,
            kind=facts.kind.value,
            window_key=facts.window_key,
            percent=facts.percent,
            used=facts.used,
            limit_value=facts.limit,
            provider=facts.provider,
            detail=detail,
            user_id=facts.user_id,
            link_store=link.store if link else None,
            link_key_version=link.key_version if link else None,
            link_token=link.token if link else None,
            created_at=at,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "kind", "window_key", "percent"])
        .returning(n.id)
    )
    row_id = (await conn.execute(statement)).scalar()
    if row_id is None:
        return None
    if channels:
        await conn.execute(
            t.notification_deliveries.insert(),
            [
                {
                    "notification_id": row_id,
                    "channel": channel.value,
                    "status": DeliveryStatus.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": at,
                }
                for channel in channels
            ],
        )
    return public_id


def _detail(facts: NotificationFacts) -> str | None:
    return json.dumps(dict(facts.detail), sort_keys=True) if facts.detail else None


SQLITE_INSTANT = "%Y-%m-%d %H:%M:%S.%f"
"""How instants are stored on SQLite (naive UTC text, as ``tables.UtcDateTime`` writes)."""


def enqueue_on_sqlite(
    conn: sqlite3.Connection,
    facts: NotificationFacts,
    channels: Sequence[Channel],
    at: datetime,
) -> NotificationId | None:
    """``insert_notification`` for a plain ``sqlite3`` connection inside the caller's
    ``BEGIN IMMEDIATE`` (the SQLite ledger's admission), so a threshold crossing commits with
    the admission that crossed it; None when it is already stored."""
    public_id = new_notification_id()
    link = facts.secret_link
    stamp = at.astimezone(UTC).strftime(SQLITE_INSTANT)
    row = conn.execute(
        "INSERT INTO notifications (public_id, tenant_id, kind, window_key, percent, used,"
        " limit_value, provider, detail, user_id, link_store, link_key_version, link_token,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (tenant_id, kind, window_key, percent) DO NOTHING RETURNING id",
        (
            public_id, facts.tenant_id, facts.kind.value, facts.window_key, facts.percent,
            facts.used, facts.limit, facts.provider, _detail(facts), facts.user_id,
            link.store if link else None, link.key_version if link else None,
            link.token if link else None, stamp,
        ),
    ).fetchone()  # fmt: skip
    if row is None:
        return None
    conn.executemany(
        "INSERT INTO notification_deliveries (notification_id, channel, status, attempts,"
        " next_attempt_at) VALUES (?, ?, ?, 0, ?)",
        [(row[0], channel.value, DeliveryStatus.PENDING.value, stamp) for channel in channels],
    )
    return public_id


def _stored(row: sa.RowMapping) -> StoredNotification:
    link = (
        Ciphertext(row["link_store"], row["link_key_version"], row["link_token"])
        if row["link_token"]
        else None
    )
    facts = NotificationFacts(
        tenant_id=TenantId(row["tenant_id"]),
        kind=NotificationKind(row["kind"]),
        window_key=row["window_key"],
        percent=row["percent"],
        used=row["used"],
        limit=row["limit_value"],
        provider=row["provider"],
        detail=json.loads(row["detail"]) if row["detail"] else {},
        user_id=UserId(row["user_id"]) if row["user_id"] else None,
        secret_link=link,
    )
    return StoredNotification(
        NotificationId(row["public_id"]), facts, row["created_at"], row["read_at"]
    )


NOTIFICATION_COLUMNS = (
    n.public_id, n.tenant_id, n.kind, n.window_key, n.percent, n.used, n.limit_value,
    n.provider, n.detail, n.user_id, n.link_store, n.link_key_version, n.link_token,
    n.created_at, n.read_at,
)  # fmt: skip


@reports_unavailable
@attrs.frozen
class SqlOutbox:
    engine: AsyncEngine

    async def enqueue(
        self, facts: NotificationFacts, channels: Sequence[Channel], at: datetime
    ) -> NotificationId | None:
        async with self.engine.begin() as conn:
            written = await insert_notification(conn, facts, channels, at)
        if written is not None:
            log.info(
                "notification %s (%s) for tenant %s written to the outbox",
                written, facts.kind.value, facts.tenant_id,
            )  # fmt: skip
        return written

    async def claim(self, now: datetime, lease: timedelta, limit: int) -> list[ClaimedDelivery]:
        token = secrets.token_hex(16)
        due = (
            sa.select(d.id)
            .where(
                d.status == DeliveryStatus.PENDING.value,
                d.next_attempt_at <= now,
                sa.or_(d.claimed_until.is_(None), d.claimed_until <= now),
            )
            .order_by(d.next_attempt_at, d.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claim = (
            t.notification_deliveries.update()
            .where(d.id.in_(due.scalar_subquery()))
            .values(claimed_until=now + lease, claim_token=token, attempts=d.attempts + 1)
            .returning(d.id, d.notification_id, d.channel, d.attempts)
        )
        async with self.engine.begin() as conn:
            claimed = (await conn.execute(claim)).mappings().all()
            if not claimed:
                return []
            ids = {row["notification_id"] for row in claimed}
            email = (
                sa.select(t.users.c.email)
                .where(t.users.c.tenant_id == n.tenant_id)
                .where(sa.or_(n.user_id.is_(None), t.users.c.id == n.user_id))
                .order_by(t.users.c.created_at)
                .limit(1)
                .scalar_subquery()
            )
            rows = (
                await conn.execute(
                    sa.select(n.id, email.label("email_to"), *NOTIFICATION_COLUMNS).where(
                        n.id.in_(ids)
                    )
                )
            ).mappings()
            notes = {row["id"]: (_stored(row), row["email_to"]) for row in rows}
        return [
            ClaimedDelivery(
                delivery_id=row["id"],
                claim_token=token,
                channel=Channel(row["channel"]),
                attempts=row["attempts"],
                notification=notes[row["notification_id"]][0],
                email_to=notes[row["notification_id"]][1],
            )
            for row in claimed
        ]

    async def finish(self, claim: ClaimedDelivery, outcome: DeliveryOutcome, at: datetime) -> bool:
        done = outcome.status is not DeliveryStatus.PENDING
        values: dict[str, Any] = {
            "status": outcome.status.value,
            "claimed_until": None,
            "claim_token": None,
            "last_error": outcome.error,
            "finished_at": at if done else None,
        }
        if outcome.retry_at is not None:
            values["next_attempt_at"] = outcome.retry_at
        statement = (
            t.notification_deliveries.update()
            .where(d.id == claim.delivery_id, d.claim_token == claim.claim_token)
            .values(**values)
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1

    async def for_tenant(self, tenant_id: TenantId, limit: int) -> list[StoredNotification]:
        query = (
            sa.select(*NOTIFICATION_COLUMNS)
            .where(n.tenant_id == tenant_id)
            .order_by(n.id.desc())
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [_stored(row) for row in (await conn.execute(query)).mappings()]

    async def mark_read(
        self, tenant_id: TenantId, notification_id: NotificationId, at: datetime
    ) -> bool:
        statement = (
            t.notifications.update()
            .where(n.tenant_id == tenant_id, n.public_id == notification_id)
            .values(read_at=sa.func.coalesce(n.read_at, at))
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1

    async def deliveries(self, notification_id: NotificationId) -> list[tuple[str, str, int]]:
        query = (
            sa.select(d.channel, d.status, d.attempts)
            .join(t.notifications, n.id == d.notification_id)
            .where(n.public_id == notification_id)
            .order_by(d.channel)
        )
        async with self.engine.connect() as conn:
            return [(r[0], r[1], r[2]) for r in (await conn.execute(query)).all()]


s = t.notification_settings.c


@reports_unavailable
@attrs.frozen
class SqlNotificationSettings:
    engine: AsyncEngine

    async def get(self, tenant_id: TenantId) -> NotificationSettings:
        query = sa.select(t.notification_settings).where(s.tenant_id == tenant_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            return NotificationSettings(tenant_id)
        secret = (
            Ciphertext(row["secret_store"], row["secret_key_version"], row["secret_token"])
            if row["secret_token"]
            else None
        )
        return NotificationSettings(tenant_id, row["email_enabled"], row["webhook_url"], secret)

    async def put(self, settings: NotificationSettings) -> None:
        secret = settings.webhook_secret
        values = {
            "email_enabled": settings.email_enabled,
            "webhook_url": settings.webhook_url,
            "secret_store": secret.store if secret else None,
            "secret_key_version": secret.key_version if secret else None,
            "secret_token": secret.token if secret else None,
            "updated_at": sa.func.current_timestamp(),
        }
        statement = (
            upsert(self.engine, t.notification_settings)
            .values(tenant_id=settings.tenant_id, **values)
            .on_conflict_do_update(index_elements=["tenant_id"], set_=values)
        )
        async with self.engine.begin() as conn:
            await conn.execute(statement)
