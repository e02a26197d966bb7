"""The usage ledger in SQL: admit and settle are atomic in the database, so any number of
API processes sharing it keep the caps exact (spec §2, ADR 0003).

PostgreSQL: one round trip per admit or settle, calling the PL/pgSQL functions of revisions
``0004_usage_ledger`` to ``0006_settle_tenant_revision`` on a bare asyncpg pool. SQLite:
one short ``BEGIN IMMEDIATE`` transaction on a dedicated sqlite3 connection in its own
thread, running the domain's ``evaluate_admission`` itself while holding SQLite's write
lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import attrs

from adapters.sql.unavailable import reports_unavailable
from domain.ids import MessageId, ModelRef, ReservationId, TenantId
from domain.metering import (
    AdmissionDecision,
    AdmissionRequest,
    Admitted,
    Counters,
    Credential,
    RefusalReason,
    Refused,
    Settled,
    SettlementOutcome,
    SettlementRequest,
    TenantChanged,
    admitted_counters,
    evaluate_admission,
)
from domain.ports import UsageRecord
from domain.windows import Window

T = TypeVar("T")

REPLAYED = "replayed"
ADMITTED = "admitted"
TENANT_CHANGED = RefusalReason.TENANT_CHANGED.value

ADMIT_SQL = "SELECT * FROM tk_admit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
SETTLE_SQL = "SELECT * FROM tk_settle($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
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
RECORDS_SQL = """
SELECT tenant_id, message_id, model, credential, input_tokens, output_tokens,
       cache_read_tokens, weighted_tokens, settled_at
FROM settlements WHERE settled_at >= $1 AND settled_at < $2 ORDER BY settled_at, id
"""


def reservation_id(tenant_id: TenantId, message_id: MessageId) -> ReservationId:
    return ReservationId(f"{tenant_id}:{message_id}")


def _decision(outcome: str, counters: Counters, request: AdmissionRequest) -> AdmissionDecision:
    if outcome == TENANT_CHANGED:
        return Refused(RefusalReason.TENANT_CHANGED, None)
    if outcome == RefusalReason.MESSAGE_CAP_REACHED.value:
        return Refused(RefusalReason.MESSAGE_CAP_REACHED, request.day.resets_at)
    if outcome == RefusalReason.TOKEN_BUDGET_EXHAUSTED.value:
        return Refused(RefusalReason.TOKEN_BUDGET_EXHAUSTED, request.period.resets_at)
    rid = reservation_id(request.tenant_id, request.message_id)
    return Admitted(rid, counters, replayed=outcome == REPLAYED)


def _record(row: Any, at: datetime) -> UsageRecord:
    return UsageRecord(
        tenant_id=TenantId(row[0]),
        message_id=MessageId(row[1]),
        model=ModelRef(row[2]),
        credential=Credential(row[3]),
        input_tokens=int(row[4]),
        output_tokens=int(row[5]),
        cache_read_tokens=int(row[6]),
        weighted_tokens=int(row[7]),
        at=at,
    )


@reports_unavailable
@attrs.frozen
class PostgresUsageLedger:
    """The ledger on PostgreSQL: each call is one statement on a pooled asyncpg connection."""

    pool: asyncpg.Pool

    async def admit(self, request: AdmissionRequest) -> AdmissionDecision:
        row = await self.pool.fetchrow(
            ADMIT_SQL,
            request.tenant_id,
            request.message_id,
            request.day.key,
            request.period.key,
            request.message_cap,
            request.token_budget,
            request.reserve_tokens,
            request.now,
            request.reservation_expires_at,
            request.tenant_revision,
        )
        assert row is not None
        counters = Counters(row[1], row[2], row[3], row[4])
        return _decision(row[0], counters, request)

    async def settle(self, request: SettlementRequest) -> SettlementOutcome:
        row = await self.pool.fetchrow(
            SETTLE_SQL,
            request.tenant_id,
            request.message_id,
            request.day.key,
            request.period.key,
            request.model,
            request.credential.value,
            request.usage.input_tokens,
            request.usage.output_tokens,
            request.usage.cache_read_tokens,
            request.weighted,
            request.counts_against_budget,
            request.at,
            request.tenant_revision,
        )
        assert row is not None
        if row[0] == TENANT_CHANGED:
            return TenantChanged()
        before = Counters(row[1], row[2], row[3], row[4])
        after = Counters(row[1], row[5], row[6], row[7])
        return Settled(before, after, replayed=row[0] == REPLAYED)

    async def counters(
        self, tenant_id: TenantId, day: Window, period: Window, now: datetime
    ) -> Counters:
        row = await self.pool.fetchrow(COUNTERS_SQL, tenant_id, day.key, period.key, now)
        assert row is not None
        return Counters(int(row[0]), int(row[1]), int(row[2]), int(row[3]))

    async def release_expired(self, now: datetime) -> int:
        return int(await self.pool.fetchval("SELECT tk_release_expired($1)", now) or 0)

    async def usage_records(self, starts_at: datetime, ends_at: datetime) -> Sequence[UsageRecord]:
        rows = await self.pool.fetch(RECORDS_SQL, starts_at, ends_at)
        return [_record(row, row[8].astimezone(UTC)) for row in rows]


SQLITE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
SQLITE_BUSY_TIMEOUT_MS = 60_000


def _ts(instant: datetime) -> str:
    """UTC text that sorts like the instant (the format SQLAlchemy uses on SQLite)."""
    return instant.astimezone(UTC).strftime(SQLITE_TIME_FORMAT)


def _from_ts(text: str) -> datetime:
    return datetime.strptime(text, SQLITE_TIME_FORMAT).replace(tzinfo=UTC)


def _key(day: date) -> str:
    return day.isoformat()


def _tenant_changed(
    conn: sqlite3.Connection, request: AdmissionRequest | SettlementRequest
) -> bool:
    """Whether the request carries a tenant revision the stored tenant no longer has."""
    if request.tenant_revision is None:
        return False
    row = conn.execute(
        "SELECT 1 FROM tenants WHERE id = ? AND revision = ?",
        (request.tenant_id, request.tenant_revision),
    ).fetchone()
    return row is None


@reports_unavailable
class SqliteUsageLedger:
    """The ledger on SQLite: every call is one ``BEGIN IMMEDIATE`` transaction, so the
    read-check-write of admission holds the database's single write lock; processes sharing
    the file wait for it (busy timeout) instead of interleaving."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-ledger")
        self._conn: sqlite3.Connection | None = None

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, work)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self._path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            self._conn = conn
        return self._conn

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def close(self) -> None:
        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, _close)
        self._executor.shutdown(wait=True)

    @staticmethod
    def _lock_period(
        conn: sqlite3.Connection, tenant_id: str, period: str, now: str
    ) -> tuple[int, int, int]:
        """Create the period row if needed, drop its expired reservations; (settled, reserved,
        own). The write lock is already held, so nothing changes under us."""
        conn.execute(
            "INSERT OR IGNORE INTO usage_periods (tenant_id, period_key) VALUES (?, ?)",
            (tenant_id, period),
        )
        _release_period(conn, tenant_id, period, now)
        row = conn.execute(
            "SELECT tokens_settled, tokens_reserved, own_key_tokens FROM usage_periods"
            " WHERE tenant_id = ? AND period_key = ?",
            (tenant_id, period),
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    @staticmethod
    def _messages(conn: sqlite3.Connection, tenant_id: str, day: str) -> int:
        row = conn.execute(
            "SELECT messages FROM usage_days WHERE tenant_id = ? AND day_key = ?",
            (tenant_id, day),
        ).fetchone()
        return int(row[0]) if row else 0

    async def admit(self, request: AdmissionRequest) -> AdmissionDecision:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._admit_or_refuse, request)

    def _admit_or_refuse(self, request: AdmissionRequest) -> AdmissionDecision:
        """A full day refuses under a read snapshot, without taking the write lock (the
        count only grows, so the answer is the one the locked path would give)."""
        conn = self._connection()
        tenant, day = request.tenant_id, _key(request.day.key)
        conn.execute("BEGIN")
        try:
            if _tenant_changed(conn, request):
                return Refused(RefusalReason.TENANT_CHANGED, None)
            full = self._messages(conn, tenant, day) >= request.message_cap
            seen = (
                full
                and conn.execute(
                    "SELECT 1 FROM reservations WHERE tenant_id = ? AND message_id = ?",
                    (tenant, request.message_id),
                ).fetchone()
            )
        finally:
            conn.execute("COMMIT")
        if full and not seen:
            return Refused(RefusalReason.MESSAGE_CAP_REACHED, request.day.resets_at)
        return self._transaction(lambda c: self._admit(c, request))

    def _admit(self, conn: sqlite3.Connection, request: AdmissionRequest) -> AdmissionDecision:
        if _tenant_changed(conn, request):
            return Refused(RefusalReason.TENANT_CHANGED, None)
        tenant, day, period = request.tenant_id, _key(request.day.key), _key(request.period.key)
        settled, reserved, own = self._lock_period(conn, tenant, period, _ts(request.now))
        counters = Counters(self._messages(conn, tenant, day), settled, reserved, own)
        rid = reservation_id(request.tenant_id, request.message_id)
        seen = conn.execute(
            "SELECT 1 FROM reservations WHERE tenant_id = ? AND message_id = ?",
            (tenant, request.message_id),
        ).fetchone()
        if seen:
            return Admitted(rid, counters, replayed=True)
        refusal = evaluate_admission(counters, request)
        if refusal is not None:
            return refusal
        conn.execute(
            "INSERT INTO usage_days (tenant_id, day_key, messages) VALUES (?, ?, 1)"
            " ON CONFLICT (tenant_id, day_key) DO UPDATE SET messages = messages + 1",
            (tenant, day),
        )
        conn.execute(
            "UPDATE usage_periods SET tokens_reserved = tokens_reserved + ?"
            " WHERE tenant_id = ? AND period_key = ?",
            (request.reserve_tokens, tenant, period),
        )
        conn.execute(
            "INSERT INTO reservations (tenant_id, message_id, day_key, period_key, tokens,"
            " admitted_at, expires_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, 'held')",
            (
                tenant,
                request.message_id,
                day,
                period,
                request.reserve_tokens,
                _ts(request.now),
                _ts(request.reservation_expires_at),
            ),
        )
        return Admitted(rid, admitted_counters(counters, request))

    async def settle(self, request: SettlementRequest) -> SettlementOutcome:
        return await self._run(lambda conn: self._settle(conn, request))

    def _settle(self, conn: sqlite3.Connection, request: SettlementRequest) -> SettlementOutcome:
        if _tenant_changed(conn, request):
            return TenantChanged()
        tenant, message = request.tenant_id, request.message_id
        found = conn.execute(
            "SELECT day_key, period_key FROM reservations WHERE tenant_id = ? AND message_id = ?",
            (tenant, message),
        ).fetchone()
        day, period = found or (_key(request.day.key), _key(request.period.key))
        settled, reserved, own = self._lock_period(conn, tenant, period, _ts(request.at))
        messages = self._messages(conn, tenant, day)
        before = Counters(messages, settled, reserved, own)
        inserted = conn.execute(
            "INSERT INTO settlements (tenant_id, message_id, model, credential, input_tokens,"
            " output_tokens, cache_read_tokens, weighted_tokens, counts_against_budget,"
            " day_key, period_key, settled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (tenant_id, message_id) DO NOTHING",
            (
                tenant,
                message,
                request.model,
                request.credential.value,
                request.usage.input_tokens,
                request.usage.output_tokens,
                request.usage.cache_read_tokens,
                request.weighted,
                request.counts_against_budget,
                day,
                period,
                _ts(request.at),
            ),
        ).rowcount
        if inserted != 1:
            return Settled(before, before, replayed=True)
        held = conn.execute(
            "SELECT state, tokens FROM reservations WHERE tenant_id = ? AND message_id = ?"
            " AND state IN ('held', 'lapsed')",
            (tenant, message),
        ).fetchone()
        released = int(held[1]) if held and held[0] == "held" else 0
        if held:
            conn.execute(
                "UPDATE reservations SET state = 'settled' WHERE tenant_id = ? AND message_id = ?",
                (tenant, message),
            )
        budget = request.weighted if request.counts_against_budget else 0
        own_key = 0 if request.counts_against_budget else request.weighted
        conn.execute(
            "UPDATE usage_periods SET tokens_reserved = tokens_reserved - ?,"
            " tokens_settled = tokens_settled + ?, own_key_tokens = own_key_tokens + ?"
            " WHERE tenant_id = ? AND period_key = ?",
            (released, budget, own_key, tenant, period),
        )
        after = Counters(messages, settled + budget, reserved - released, own + own_key)
        return Settled(before, after)

    async def counters(
        self, tenant_id: TenantId, day: Window, period: Window, now: datetime
    ) -> Counters:
        def read(conn: sqlite3.Connection) -> Counters:
            row = conn.execute(
                "SELECT coalesce(max(tokens_settled), 0), coalesce(max(own_key_tokens), 0)"
                " FROM usage_periods WHERE tenant_id = ? AND period_key = ?",
                (tenant_id, _key(period.key)),
            ).fetchone()
            reserved = conn.execute(
                "SELECT coalesce(sum(tokens), 0) FROM reservations WHERE tenant_id = ?"
                " AND period_key = ? AND state = 'held' AND expires_at > ?",
                (tenant_id, _key(period.key), _ts(now)),
            ).fetchone()
            messages = self._messages(conn, tenant_id, _key(day.key))
            return Counters(messages, int(row[0]), int(reserved[0]), int(row[1]))

        return await self._run(read)

    async def release_expired(self, now: datetime) -> int:
        def release(conn: sqlite3.Connection) -> int:
            cutoff = _ts(now)
            periods = conn.execute(
                "SELECT DISTINCT tenant_id, period_key FROM reservations"
                " WHERE state IN ('held', 'lapsed') AND expires_at <= ?",
                (cutoff,),
            ).fetchall()
            for tenant, period in periods:
                _release_period(conn, tenant, period, cutoff)
            return conn.execute(
                "UPDATE reservations SET state = 'expired'"
                " WHERE state = 'lapsed' AND expires_at <= ?",
                (cutoff,),
            ).rowcount

        return await self._run(release)

    async def usage_records(self, starts_at: datetime, ends_at: datetime) -> Sequence[UsageRecord]:
        def read(conn: sqlite3.Connection) -> list[UsageRecord]:
            rows = conn.execute(
                "SELECT tenant_id, message_id, model, credential, input_tokens, output_tokens,"
                " cache_read_tokens, weighted_tokens, settled_at FROM settlements"
                " WHERE settled_at >= ? AND settled_at < ? ORDER BY settled_at, id",
                (_ts(starts_at), _ts(ends_at)),
            ).fetchall()
            return [_record(row, _from_ts(row[8])) for row in rows]

        return await self._run(read)


def _release_period(conn: sqlite3.Connection, tenant_id: str, period: str, now: str) -> int:
    """Held reservations of the period past their expiry lapse: they leave its counter at once;
    ``release_expired`` sweeps them later (and counts them then, as the reference does)."""
    count, tokens = conn.execute(
        "SELECT count(*), coalesce(sum(tokens), 0) FROM reservations WHERE tenant_id = ?"
        " AND period_key = ? AND state = 'held' AND expires_at <= ?",
        (tenant_id, period, now),
    ).fetchone()
    if count:
        conn.execute(
            "UPDATE reservations SET state = 'lapsed' WHERE tenant_id = ? AND period_key = ?"
            " AND state = 'held' AND expires_at <= ?",
            (tenant_id, period, now),
        )
        conn.execute(
            "UPDATE usage_periods SET tokens_reserved = tokens_reserved - ?"
            " WHERE tenant_id = ? AND period_key = ?",
            (tokens, tenant_id, period),
        )
    return int(count)
