"""``SqlProcessedEventRepository``: provider event ids, each recorded once by the primary
key (SQLAlchemy Core)."""

from __future__ import annotations

from datetime import datetime

import attrs
import sqlalchemy as sa

from adapters.sql import tables as t
from adapters.sql.connections import Connections, upsert
from adapters.sql.unavailable import reports_unavailable


@reports_unavailable
@attrs.frozen
class SqlProcessedEventRepository:
    connections: Connections

    async def remember(self, event_id: str, event_type: str, outcome: str, at: datetime) -> bool:
        async with self.connections.writing() as conn:
            statement = (
                upsert(conn, t.processed_events)
                .values(event_id=event_id, event_type=event_type, outcome=outcome, processed_at=at)
                .on_conflict_do_nothing(index_elements=[t.processed_events.c.event_id])
            )
            result = await conn.execute(statement)
        return result.rowcount == 1

    async def outcome(self, event_id: str) -> str | None:
        query = sa.select(t.processed_events.c.outcome).where(
            t.processed_events.c.event_id == event_id
        )
        async with self.connections.reading() as conn:
            value = await conn.scalar(query)
        return None if value is None else str(value)
