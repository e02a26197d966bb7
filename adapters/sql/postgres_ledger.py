"""The usage ledger on PostgreSQL: each operation calls a function of
``adapters/sql/functions`` (spec §2, ADR 0003); admissions, calls' reservations and
settlements are group-committed (``adapters/sql/ledger_batches.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import attrs

from adapters.sql.ledger import (
    RECORD_COLUMNS,
    models_text,
    reservation_id,
    stored_terms,
    usage_record,
)
from adapters.sql.ledger_batches import LedgerBatches, LedgerOperation
from adapters.sql.unavailable import reports_unavailable
from domain.errors import DatabaseUnavailable
from domain.ids import MessageId, TenantId
from domain.metering import (
    AdmissionOutcome,
    AdmissionRequest,
    Admitted,
    Counters,
    RefusalReason,
    Refused,
    Settled,
    SettlementOutcome,
    SettlementRequest,
    TenantChanged,
    UsageRecord,
)
from domain.windows import Window

TENANT_CHANGED = "tenant_changed"
REPLAYED = "replayed"
CAP_REACHED = RefusalReason.MESSAGE_CAP_REACHED.value
BUDGET_EXHAUSTED = RefusalReason.TOKEN_BUDGET_EXHAUSTED.value

COUNTERS_SQL = """
SELECT
    (SELECT coalesce(max(d.messages), 0) FROM usage_days d
     WHERE d.tenant_id = $1 AND d.day_key = $2) AS messages,
    (SELECT coalesce(max(p.tokens_settled), 0) FROM usage_periods p
     WHERE p.tenant_id = $1 AND p.period_key = $3) AS settled,
    (SELECT coalesce(sum(r.tokens), 0) FROM reservations r
     WHERE r.tenant_id = $1 AND r.period_key = $3 AND r.state = 'held'
       AND r.expires_at > $4) AS reserved,
    (SELECT coalesce(max(p.own_key_tokens), 0) FROM usage_periods p
     WHERE p.tenant_id = $1 AND p.period_key = $3) AS own
"""
RELEASE_SQL = "SELECT tk_release_held($1, $2, $3)"
RECORDS_SQL = (
    f"SELECT {RECORD_COLUMNS} FROM settlements"  # noqa: S608 - constant column list
    " WHERE settled_at >= $1 AND settled_at < $2 ORDER BY settled_at, id"
)


def _admission(row: Mapping[str, Any], request: AdmissionRequest) -> AdmissionOutcome:
    outcome = row["o_outcome"]
    if outcome == TENANT_CHANGED:
        return TenantChanged()
    if outcome == CAP_REACHED:
        return Refused(RefusalReason.MESSAGE_CAP_REACHED, request.day.resets_at)
    if outcome == BUDGET_EXHAUSTED:
        return Refused(RefusalReason.TOKEN_BUDGET_EXHAUSTED, request.period.resets_at)
    counters = Counters(row["o_messages"], row["o_settled"], row["o_reserved"], row["o_own"])
    return Admitted(
        reservation_id(request.tenant_id, request.message_id),
        counters,
        replayed=outcome == REPLAYED,
        held_tokens=int(row["o_held"]),
    )


@reports_unavailable
@attrs.frozen
class PostgresUsageLedger:
    """The ledger on PostgreSQL: reads are one statement each on a pooled asyncpg
    connection; admissions, reservations and settlements run in group commits."""

    pool: asyncpg.Pool
    batches: LedgerBatches = attrs.field(
        default=attrs.Factory(lambda ledger: LedgerBatches(ledger.pool), takes_self=True),
        repr=False,
    )

    async def admit(self, request: AdmissionRequest) -> AdmissionOutcome:
        route = request.route
        arguments = (
            request.tenant_id,
            request.message_id,
            request.day.key,
            request.period.key,
            request.message_cap,
            request.token_budget,
            request.reserve_tokens,
            request.reservation_optional,
            request.now,
            request.reservation_expires_at,
            request.tenant_revision,
            models_text(route.models),
            route.tenant_key_model,
            route.max_weight,
        )
        row = await self.batches.run(
            LedgerOperation("admit", request.tenant_id, request.period.key, arguments)
        )
        return _admission(row, request)

    async def reserve_call(
        self, request: AdmissionRequest, named: MessageId | None
    ) -> AdmissionOutcome:
        route = request.route
        arguments = (
            request.tenant_id,
            request.message_id,
            named,
            request.day.key,
            request.period.key,
            request.token_budget,
            request.reserve_tokens,
            request.reservation_optional,
            request.now,
            request.reservation_expires_at,
            request.tenant_revision,
            models_text(route.models),
            route.tenant_key_model,
            route.max_weight,
        )
        row = await self.batches.run(
            LedgerOperation("reserve_call", request.tenant_id, request.period.key, arguments)
        )
        if row["o_message"] is not None:
            request = attrs.evolve(request, message_id=MessageId(row["o_message"]))
        return _admission(row, request)

    async def settle(self, request: SettlementRequest) -> SettlementOutcome:
        arguments = (
            request.tenant_id,
            request.message_id,
            request.day.key,
            request.period.key,
            request.model,
            request.credential.value,
            request.usage.input_tokens,
            request.usage.output_tokens,
            request.usage.cache_read_tokens,
            request.reported_weight,
            request.unadmitted_weight,
            request.at,
            request.tenant_revision,
            request.token_budget,
            request.drawn.lease_id if request.drawn else None,
            request.drawn.tokens if request.drawn else None,
        )
        row = await self.batches.run(
            LedgerOperation("settle", request.tenant_id, request.period.key, arguments)
        )
        if row["o_outcome"] == TENANT_CHANGED:
            return TenantChanged()
        messages = row["o_messages"]
        before = Counters(
            messages, row["o_settled_before"], row["o_reserved_before"], row["o_own_before"]
        )
        after = Counters(
            messages, row["o_settled_after"], row["o_reserved_after"], row["o_own_after"]
        )
        terms = stored_terms(row["o_counted_as"], row["o_weighted"], row["o_anomaly"])
        return Settled(before, after, terms, replayed=row["o_outcome"] == REPLAYED)

    async def release(self, tenant_id: TenantId, message_id: MessageId, now: datetime) -> int:
        """``tk_release_held`` alone: its caller waits for nothing else of the tenant."""
        released = await self.pool.fetchval(RELEASE_SQL, tenant_id, message_id, now)
        return int(released)

    async def counters(
        self, tenant_id: TenantId, day: Window, period: Window, now: datetime
    ) -> Counters:
        row = await self.pool.fetchrow(COUNTERS_SQL, tenant_id, day.key, period.key, now)
        assert row is not None
        return Counters(
            int(row["messages"]), int(row["settled"]), int(row["reserved"]), int(row["own"])
        )

    async def check_writable(self) -> None:
        """Raises ``DatabaseUnavailable`` unless a transaction here could write now."""
        if await self.pool.fetchval("SELECT current_setting('transaction_read_only')") == "on":
            raise DatabaseUnavailable("the database is read-only")

    async def close(self) -> None:
        """Run every queued operation, then close the pool."""
        await self.batches.close()
        await self.pool.close()

    async def release_expired(self, now: datetime) -> int:
        return int(await self.pool.fetchval("SELECT tk_release_expired($1)", now) or 0)

    async def usage_records(self, starts_at: datetime, ends_at: datetime) -> Sequence[UsageRecord]:
        rows = await self.pool.fetch(RECORDS_SQL, starts_at, ends_at)
        return [usage_record(row, row["settled_at"].astimezone(UTC)) for row in rows]
