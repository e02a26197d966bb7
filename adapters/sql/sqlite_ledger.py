"""The usage ledger on SQLite: every call is one ``BEGIN IMMEDIATE`` transaction on a
dedicated sqlite3 connection in its own thread, running the domain's rules themselves
(``evaluate_admission``, ``settlement_terms``) while holding SQLite's single write lock, so
processes sharing the file wait for it (busy timeout) instead of interleaving (ADR 0003).
An admission writes the cap thresholds it crossed to the notifications outbox in the same
transaction (issue #15)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeVar

from adapters.sql.ledger import (
    RECORD_COLUMNS,
    models_text,
    offered_route,
    reservation_id,
    stored_terms,
    usage_record,
)
from adapters.sql.outbox import enqueue_on_sqlite
from adapters.sql.unavailable import reports_unavailable
from domain.call_reservations import evaluate_call_reservation
from domain.ids import MessageId, TenantId
from domain.metering import (
    AdmissionOutcome,
    AdmissionRequest,
    Admitted,
    Counters,
    Credential,
    DrawnFromLease,
    LimitKind,
    Refused,
    Settled,
    SettlementOutcome,
    SettlementRequest,
    TenantChanged,
    Threshold,
    UsageRecord,
    admitted_counters,
    crossed_percents,
    evaluate_admission,
    reserved_counters,
    settlement_terms,
)
from domain.metering import offered_route as route_offered
from domain.notifications import channels_for, threshold_facts
from domain.windows import Window

T = TypeVar("T")

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


def _lock_period(conn: sqlite3.Connection, tenant_id: str, period: str, now: str) -> sqlite3.Row:
    """Create the period row if needed, lapse its expired reservations, return it. The
    write lock is already held, so nothing changes under us."""
    conn.execute(
        "INSERT OR IGNORE INTO usage_periods (tenant_id, period_key) VALUES (?, ?)",
        (tenant_id, period),
    )
    _release_period(conn, tenant_id, period, now)
    row: sqlite3.Row = conn.execute(
        "SELECT tokens_settled, tokens_reserved, own_key_tokens FROM usage_periods"
        " WHERE tenant_id = ? AND period_key = ?",
        (tenant_id, period),
    ).fetchone()
    return row


def _messages(conn: sqlite3.Connection, tenant_id: str, day: str) -> int:
    row = conn.execute(
        "SELECT messages FROM usage_days WHERE tenant_id = ? AND day_key = ?",
        (tenant_id, day),
    ).fetchone()
    return int(row["messages"]) if row else 0


def _counters(messages: int, period: sqlite3.Row) -> Counters:
    return Counters(
        messages,
        int(period["tokens_settled"]),
        int(period["tokens_reserved"]),
        int(period["own_key_tokens"]),
    )


def _notify_crossings(
    conn: sqlite3.Connection,
    tenant_id: TenantId,
    kind: LimitKind,
    window_key: str,
    before: int,
    after: int,
    limit: int | None,
    at: datetime,
) -> None:
    """The thresholds ``before → after`` crosses (``crossed_percents``) go to the outbox in
    the caller's transaction, committed with the count (once per tenant/kind/window/percent)."""
    for percent in crossed_percents(before, after, limit):
        assert limit is not None
        facts = threshold_facts(Threshold(tenant_id, kind, percent, window_key, after, limit))
        enqueue_on_sqlite(conn, facts, channels_for(facts.kind), at)


def _admit(conn: sqlite3.Connection, request: AdmissionRequest) -> AdmissionOutcome:
    if _tenant_changed(conn, request):
        return TenantChanged()
    tenant, day, period = request.tenant_id, _key(request.day.key), _key(request.period.key)
    counters = _counters(
        _messages(conn, tenant, day), _lock_period(conn, tenant, period, _ts(request.now))
    )
    rid = reservation_id(request.tenant_id, request.message_id)
    seen = conn.execute(
        "SELECT tokens FROM reservations WHERE tenant_id = ? AND message_id = ?",
        (tenant, request.message_id),
    ).fetchone()
    if seen:
        return Admitted(rid, counters, replayed=True, held_tokens=int(seen["tokens"]))
    held = evaluate_admission(counters, request)
    if isinstance(held, Refused):
        return held
    conn.execute(
        "INSERT INTO usage_days (tenant_id, day_key, messages) VALUES (?, ?, 1)"
        " ON CONFLICT (tenant_id, day_key) DO UPDATE SET messages = messages + 1",
        (tenant, day),
    )
    _hold(conn, request, held)
    after = admitted_counters(counters, held)
    _notify_crossings(
        conn, request.tenant_id, LimitKind.MESSAGES, day,
        counters.messages_today, after.messages_today, request.message_cap, request.now,
    )  # fmt: skip
    return Admitted(rid, after, held_tokens=held)


def _reserve_call(
    conn: sqlite3.Connection, request: AdmissionRequest, named: MessageId | None
) -> AdmissionOutcome:
    """``tk_reserve_call``: one call's reservation, no message counted (spec §13). The
    first call naming a held message claims its reservation; any other holds its own."""
    if _tenant_changed(conn, request):
        return TenantChanged()
    tenant, day, period = request.tenant_id, _key(request.day.key), _key(request.period.key)
    now = _ts(request.now)
    counters = _counters(_messages(conn, tenant, day), _lock_period(conn, tenant, period, now))
    call = request.message_id
    if named is not None:
        claimed = conn.execute(
            "UPDATE reservations SET claimed_by = ? WHERE tenant_id = ? AND message_id = ?"
            " AND state = 'held' AND expires_at > ? AND (claimed_by IS NULL OR claimed_by = ?)"
            " RETURNING tokens",
            (call, tenant, named, now, call),
        ).fetchone()
        if claimed:
            rid = reservation_id(request.tenant_id, named)
            return Admitted(rid, counters, replayed=True, held_tokens=int(claimed["tokens"]))
    seen = conn.execute(
        "SELECT tokens FROM reservations WHERE tenant_id = ? AND message_id = ?",
        (tenant, call),
    ).fetchone()
    if seen:
        rid = reservation_id(request.tenant_id, call)
        return Admitted(rid, counters, replayed=True, held_tokens=int(seen["tokens"]))
    held = evaluate_call_reservation(counters, request)
    if isinstance(held, Refused):
        return held
    _hold(conn, request, held)
    rid = reservation_id(request.tenant_id, request.message_id)
    return Admitted(rid, reserved_counters(counters, held), held_tokens=held)


def _hold(conn: sqlite3.Connection, request: AdmissionRequest, held: int) -> None:
    """Write the reservation of ``request.message_id`` holding ``held`` tokens."""
    tenant, day, period = request.tenant_id, _key(request.day.key), _key(request.period.key)
    route = route_offered(request, held)
    conn.execute(
        "UPDATE usage_periods SET tokens_reserved = tokens_reserved + ?"
        " WHERE tenant_id = ? AND period_key = ?",
        (held, tenant, period),
    )
    conn.execute(
        "INSERT INTO reservations (tenant_id, message_id, day_key, period_key, tokens,"
        " admitted_at, expires_at, state, offered_models, tenant_key_model, max_weight)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'held', ?, ?, ?)",
        (
            tenant,
            request.message_id,
            day,
            period,
            held,
            _ts(request.now),
            _ts(request.reservation_expires_at),
            models_text(route.models),
            route.tenant_key_model,
            str(route.max_weight),
        ),
    )


def _draw(conn: sqlite3.Connection, request: SettlementRequest, drawn: DrawnFromLease) -> None:
    """``tk_draw_lease``: a call served from a budget lease takes its reservation out of the
    lease (its day, period, route, admission and expiry; its tokens only while the lease is
    held), unless the call has one already."""
    tenant, lease_id = request.tenant_id, drawn.lease_id
    lease = conn.execute(
        "SELECT period_key FROM reservations WHERE tenant_id = ? AND message_id = ?"
        " AND NOT EXISTS (SELECT 1 FROM reservations WHERE tenant_id = ? AND message_id = ?)",
        (tenant, lease_id, tenant, request.message_id),
    ).fetchone()
    if lease is None:
        return
    _lock_period(conn, tenant, lease["period_key"], _ts(request.at))  # lapses it if expired
    held = conn.execute(
        "SELECT tokens FROM reservations WHERE tenant_id = ? AND message_id = ? AND state = 'held'",
        (tenant, lease_id),
    ).fetchone()
    tokens = min(drawn.tokens, int(held["tokens"])) if held else 0
    conn.execute(
        "UPDATE reservations SET tokens = tokens - ? WHERE tenant_id = ? AND message_id = ?",
        (tokens, tenant, lease_id),
    )
    conn.execute(
        "INSERT INTO reservations (tenant_id, message_id, day_key, period_key, tokens,"
        " admitted_at, expires_at, state, offered_models, tenant_key_model, max_weight)"
        " SELECT tenant_id, ?, day_key, period_key, ?, admitted_at, expires_at, ?,"
        " offered_models, tenant_key_model, max_weight FROM reservations"
        " WHERE tenant_id = ? AND message_id = ?",
        (request.message_id, tokens, "held" if held else "lapsed", tenant, lease_id),
    )


def _release(conn: sqlite3.Connection, tenant_id: str, message_id: str, now: str) -> int:
    """``tk_release_held``: a held reservation gives back its tokens, settling nothing."""
    held = conn.execute(
        "SELECT period_key FROM reservations WHERE tenant_id = ? AND message_id = ?"
        " AND state = 'held'",
        (tenant_id, message_id),
    ).fetchone()
    if held is None:
        return 0
    period = held["period_key"]
    _lock_period(conn, tenant_id, period, now)  # lapses it if expired
    released = conn.execute(
        "UPDATE reservations SET state = 'released' WHERE tenant_id = ? AND message_id = ?"
        " AND state = 'held' RETURNING tokens",
        (tenant_id, message_id),
    ).fetchone()
    if released is None:
        return 0
    conn.execute(
        "UPDATE usage_periods SET tokens_reserved = tokens_reserved - ?"
        " WHERE tenant_id = ? AND period_key = ?",
        (released["tokens"], tenant_id, period),
    )
    return int(released["tokens"])


def _settle(conn: sqlite3.Connection, request: SettlementRequest) -> SettlementOutcome:
    if _tenant_changed(conn, request):
        return TenantChanged()
    if request.drawn is not None:
        _draw(conn, request, request.drawn)
    tenant, message = request.tenant_id, request.message_id
    reservation = conn.execute(
        "SELECT day_key, period_key, state, tokens, offered_models, tenant_key_model,"
        " max_weight FROM reservations WHERE tenant_id = ? AND message_id = ?",
        (tenant, message),
    ).fetchone()
    if reservation:
        day, period = reservation["day_key"], reservation["period_key"]
    else:
        day, period = _key(request.day.key), _key(request.period.key)
    messages = _messages(conn, tenant, day)
    before = _counters(messages, _lock_period(conn, tenant, period, _ts(request.at)))
    done = conn.execute(
        "SELECT credential, weighted_tokens, anomaly FROM settlements"
        " WHERE tenant_id = ? AND message_id = ?",
        (tenant, message),
    ).fetchone()
    if done:
        terms = stored_terms(done["credential"], done["weighted_tokens"], done["anomaly"])
        return Settled(before, before, terms, replayed=True)
    terms = settlement_terms(offered_route(reservation) if reservation else None, request)
    platform = terms.counted_as is Credential.PLATFORM
    conn.execute(
        "INSERT INTO settlements (tenant_id, message_id, model, credential, input_tokens,"
        " output_tokens, cache_read_tokens, weighted_tokens, counts_against_budget,"
        " day_key, period_key, settled_at, reported_credential, anomaly)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            tenant,
            message,
            request.model,
            terms.counted_as.value,
            request.usage.input_tokens,
            request.usage.output_tokens,
            request.usage.cache_read_tokens,
            terms.weighted,
            platform,
            day,
            period,
            _ts(request.at),
            request.credential.value,
            terms.anomaly.value if terms.anomaly else None,
        ),
    )
    released = 0
    if reservation and reservation["state"] in ("held", "lapsed"):
        # lapsed reservations already left the counter (``_release_period``)
        state = conn.execute(
            "SELECT state FROM reservations WHERE tenant_id = ? AND message_id = ?",
            (tenant, message),
        ).fetchone()["state"]
        released = int(reservation["tokens"]) if state == "held" else 0
        conn.execute(
            "UPDATE reservations SET state = 'settled' WHERE tenant_id = ? AND message_id = ?",
            (tenant, message),
        )
    budget = terms.weighted if platform else 0
    own_key = 0 if platform else terms.weighted
    conn.execute(
        "UPDATE usage_periods SET tokens_reserved = tokens_reserved - ?,"
        " tokens_settled = tokens_settled + ?, own_key_tokens = own_key_tokens + ?"
        " WHERE tenant_id = ? AND period_key = ?",
        (released, budget, own_key, tenant, period),
    )
    after = Counters(
        messages,
        before.platform_tokens_settled + budget,
        before.platform_tokens_reserved - released,
        before.own_key_tokens + own_key,
    )
    if platform:
        _notify_crossings(
            conn, request.tenant_id, LimitKind.TOKENS, period,
            before.platform_tokens_settled, after.platform_tokens_settled,
            request.token_budget, request.at,
        )  # fmt: skip
    return Settled(before, after, terms)


def _release_period(conn: sqlite3.Connection, tenant_id: str, period: str, now: str) -> int:
    """Held reservations of the period past their expiry lapse: they leave its counter at once;
    ``release_expired`` sweeps them later (and counts them then, as the reference does)."""
    row = conn.execute(
        "SELECT count(*) AS n, coalesce(sum(tokens), 0) AS tokens FROM reservations"
        " WHERE tenant_id = ? AND period_key = ? AND state = 'held' AND expires_at <= ?",
        (tenant_id, period, now),
    ).fetchone()
    if row["n"]:
        conn.execute(
            "UPDATE reservations SET state = 'lapsed' WHERE tenant_id = ? AND period_key = ?"
            " AND state = 'held' AND expires_at <= ?",
            (tenant_id, period, now),
        )
        conn.execute(
            "UPDATE usage_periods SET tokens_reserved = tokens_reserved - ?"
            " WHERE tenant_id = ? AND period_key = ?",
            (row["tokens"], tenant_id, period),
        )
    return int(row["n"])


@reports_unavailable
class SqliteUsageLedger:
    """The ledger on SQLite: every call is one ``BEGIN IMMEDIATE`` transaction, so the
    read-check-write of admission holds the database's single write lock."""

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
            conn.row_factory = sqlite3.Row
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

    async def admit(self, request: AdmissionRequest) -> AdmissionOutcome:
        return await self._run(lambda conn: _admit(conn, request))

    async def reserve_call(
        self, request: AdmissionRequest, named: MessageId | None
    ) -> AdmissionOutcome:
        return await self._run(lambda conn: _reserve_call(conn, request, named))

    async def settle(self, request: SettlementRequest) -> SettlementOutcome:
        return await self._run(lambda conn: _settle(conn, request))

    async def release(self, tenant_id: TenantId, message_id: MessageId, now: datetime) -> int:
        return await self._run(lambda conn: _release(conn, tenant_id, message_id, _ts(now)))

    async def counters(
        self, tenant_id: TenantId, day: Window, period: Window, now: datetime
    ) -> Counters:
        def read(conn: sqlite3.Connection) -> Counters:
            row = conn.execute(
                "SELECT coalesce(max(tokens_settled), 0) AS settled,"
                " coalesce(max(own_key_tokens), 0) AS own"
                " FROM usage_periods WHERE tenant_id = ? AND period_key = ?",
                (tenant_id, _key(period.key)),
            ).fetchone()
            reserved = conn.execute(
                "SELECT coalesce(sum(tokens), 0) AS reserved FROM reservations"
                " WHERE tenant_id = ? AND period_key = ? AND state = 'held' AND expires_at > ?",
                (tenant_id, _key(period.key), _ts(now)),
            ).fetchone()
            messages = _messages(conn, tenant_id, _key(day.key))
            return Counters(
                messages, int(row["settled"]), int(reserved["reserved"]), int(row["own"])
            )

        return await self._run(read)

    async def check_writable(self) -> None:
        """Raises ``DatabaseUnavailable`` unless the file takes a write now (the header's
        ``user_version`` written back unchanged, and rolled back)."""

        def probe(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                conn.execute(f"PRAGMA user_version = {version}")
            finally:
                conn.execute("ROLLBACK")

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, lambda: probe(self._connection()))

    async def release_expired(self, now: datetime) -> int:
        def release(conn: sqlite3.Connection) -> int:
            cutoff = _ts(now)
            periods = conn.execute(
                "SELECT DISTINCT tenant_id, period_key FROM reservations"
                " WHERE state IN ('held', 'lapsed') AND expires_at <= ?",
                (cutoff,),
            ).fetchall()
            for row in periods:
                _release_period(conn, row["tenant_id"], row["period_key"], cutoff)
            return conn.execute(
                "UPDATE reservations SET state = 'expired'"
                " WHERE state = 'lapsed' AND expires_at <= ?",
                (cutoff,),
            ).rowcount

        return await self._run(release)

    async def usage_records(self, starts_at: datetime, ends_at: datetime) -> Sequence[UsageRecord]:
        def read(conn: sqlite3.Connection) -> list[UsageRecord]:
            rows = conn.execute(
                f"SELECT {RECORD_COLUMNS} FROM settlements"  # noqa: S608 - constant columns
                " WHERE settled_at >= ? AND settled_at < ? ORDER BY settled_at, id",
                (_ts(starts_at), _ts(ends_at)),
            ).fetchall()
            return [usage_record(row, _from_ts(row["settled_at"])) for row in rows]

        return await self._run(read)
