"""``SqlAuditLog``: the audit trail in the ``audit_log`` table (SQLite or PostgreSQL).

Only INSERT and SELECT are ever issued here; the migration's triggers make the database
refuse an UPDATE or DELETE of an entry, whoever sends it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa

from adapters.sql import tables as t
from adapters.sql.connections import Connections
from adapters.sql.unavailable import reports_unavailable
from domain.audit import Actor, AuditAction, AuditEntry, AuditSource
from domain.ids import TenantId

MAX_DETAIL = 500
MAX_ACTOR = 255


@reports_unavailable
@attrs.frozen
class SqlAuditLog:
    connections: Connections

    async def record(self, entry: AuditEntry) -> None:
        async with self.connections.writing() as conn:
            await conn.execute(
                t.audit_log.insert().values(
                    at=entry.at,
                    action=entry.action.value,
                    source=entry.actor.source.value,
                    actor=entry.actor.name[:MAX_ACTOR],
                    tenant_id=entry.tenant_id,
                    detail=entry.detail[:MAX_DETAIL],
                )
            )

    async def entries(
        self, tenant_id: TenantId | None = None, since: datetime | None = None, limit: int = 1000
    ) -> Sequence[AuditEntry]:
        query = sa.select(t.audit_log).order_by(t.audit_log.c.at.desc(), t.audit_log.c.id.desc())
        if tenant_id is not None:
            query = query.where(t.audit_log.c.tenant_id == tenant_id)
        if since is not None:
            query = query.where(t.audit_log.c.at >= since)
        async with self.connections.reading() as conn:
            rows = (await conn.execute(query.limit(limit))).mappings().all()
        return [_entry(row) for row in rows]


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        at=row["at"],
        action=AuditAction(row["action"]),
        actor=Actor(AuditSource(row["source"]), row["actor"]),
        tenant_id=TenantId(row["tenant_id"]) if row["tenant_id"] is not None else None,
        detail=row["detail"],
    )
