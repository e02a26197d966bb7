"""Group commit on PostgreSQL (``adapters/sql/ledger_batches.py``): a batch answers each
caller exactly what its statement alone answers, keeps the totals exact under hundreds of
concurrent operations, fails only the operation that fails, loses nothing on close, and
costs fewer statements than operations under concurrency (exactly one alone)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import asyncpg
import attrs
import pytest

from adapters.sql import ledger_batches
from adapters.sql.database import SqlDatabase, open_database, upgrade
from adapters.sql.ledger_batches import (
    ALONE_SQL,
    BATCH_SQL,
    LedgerBatches,
    LedgerOperation,
)
from adapters.sql.postgres_ledger import PostgresUsageLedger
from domain.errors import DatabaseUnavailable
from domain.ids import MessageId, ModelRef, ReservationId, TenantId
from domain.metering import (
    AdmissionRequest,
    Admitted,
    Counters,
    Credential,
    OfferedRoute,
    Refused,
    Settled,
    SettlementRequest,
    TokenUsage,
)
from domain.windows import day_window, period_window
from tests.support import postgres

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
DAY = day_window(T0, UTC)
PERIOD = period_window(T0, UTC, 1)
KIMI = ModelRef("moonshot/kimi-k2.5")
OWN = ModelRef("byok-openai/gpt-4.1")
BYOK = OfferedRoute((OWN, KIMI), OWN, Decimal("1.5"))


def admission(
    tenant: str,
    message: str,
    *,
    cap: int = 10,
    budget: int | None = 100_000,
    reserve: int = 16_000,
    optional: bool = False,
    revision: int | None = None,
) -> AdmissionRequest:
    return AdmissionRequest(
        tenant_id=TenantId(tenant),
        message_id=MessageId(message),
        day=DAY,
        period=PERIOD,
        message_cap=cap,
        token_budget=budget,
        reserve_tokens=reserve,
        now=T0,
        reservation_expires_at=T0 + timedelta(minutes=15, microseconds=123_457),
        tenant_revision=revision,
        reservation_optional=optional,
        route=BYOK,
    )


def settlement(
    tenant: str, message: str, tokens: int, *, credential: Credential = Credential.PLATFORM
) -> SettlementRequest:
    return SettlementRequest(
        tenant_id=TenantId(tenant),
        message_id=MessageId(message),
        model=KIMI,
        credential=credential,
        usage=TokenUsage(tokens - 7, 5, 2),
        reported_weight=Decimal("1.25"),
        unadmitted_weight=Decimal("1.67"),
        period=PERIOD,
        day=DAY,
        at=T0 + timedelta(seconds=1, microseconds=7),
        token_budget=100_000,
    )


@attrs.define
class CountingPool:
    """The pool as the batches use it, counting the statements sent."""

    pool: asyncpg.Pool
    sent: list[str] = attrs.field(factory=list)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        self.sent.append(sql)
        return cast(list[asyncpg.Record], await self.pool.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        self.sent.append(sql)
        return await self.pool.fetchrow(sql, *args)


@attrs.define
class OneStatementEach(LedgerBatches):
    """The ledger without group commit: every operation its own statement, awaited."""

    async def run(self, operation: LedgerOperation) -> Mapping[str, Any]:
        row = await self.pool.fetchrow(ALONE_SQL[operation.kind], *operation.arguments)
        assert row is not None
        return row


@pytest.fixture
async def database(postgres_database: str) -> AsyncIterator[SqlDatabase]:
    upgrade(postgres_database)
    postgres.truncate_all(postgres_database)
    db = await open_database(postgres_database, pool_size=4)
    try:
        yield db
    finally:
        await db.close()


def ledgers(db: SqlDatabase) -> tuple[PostgresUsageLedger, CountingPool]:
    """A batching ledger on ``db`` whose statements are counted."""
    assert isinstance(db.ledger, PostgresUsageLedger)
    counting = CountingPool(db.ledger.pool)
    batches = LedgerBatches(cast(asyncpg.Pool, counting))
    return PostgresUsageLedger(db.ledger.pool, batches=batches), counting


def one_statement_each(db: SqlDatabase) -> PostgresUsageLedger:
    assert isinstance(db.ledger, PostgresUsageLedger)
    return PostgresUsageLedger(db.ledger.pool, batches=OneStatementEach(db.ledger.pool))


Step = Callable[[PostgresUsageLedger], Awaitable[object]]

EVERY_OUTCOME: list[Step] = [
    lambda ledger: ledger.admit(admission("a", "m1")),  # admitted
    lambda ledger: ledger.admit(admission("a", "m1")),  # replayed admission
    lambda ledger: ledger.admit(admission("a", "m2", cap=1)),  # message cap reached
    lambda ledger: ledger.reserve_call(admission("a", "c1"), MessageId("m1")),  # claims m1
    lambda ledger: ledger.reserve_call(admission("a", "c2"), MessageId("m1")),  # its own
    lambda ledger: ledger.reserve_call(admission("a", "c2"), None),  # replayed call
    lambda ledger: ledger.reserve_call(admission("a", "c3", reserve=90_000), None),  # refused
    lambda ledger: ledger.reserve_call(
        admission("a", "c4", reserve=90_000, optional=True), None
    ),  # optional, 0 held
    lambda ledger: ledger.settle(settlement("a", "m1", 9_000)),  # settled
    lambda ledger: ledger.settle(settlement("a", "m1", 9_000)),  # settle replayed
    lambda ledger: ledger.settle(settlement("a", "c4", 700, credential=Credential.TENANT)),
    lambda ledger: ledger.settle(settlement("a", "nobody", 500)),  # not admitted
    lambda ledger: ledger.reserve_call(admission("a", "c5", reserve=60_000), None),
    lambda ledger: ledger.admit(admission("b", "m1", revision=7)),  # tenant changed
    lambda ledger: ledger.reserve_call(admission("b", "c1", revision=7), None),
    lambda ledger: ledger.settle(attrs.evolve(settlement("b", "m1", 10), tenant_revision=7)),
    lambda ledger: ledger.settle(settlement("b", "x", 300)),  # not admitted, another tenant
    lambda ledger: ledger.admit(admission("b", "m2", budget=None, reserve=0)),
]


async def final_state(db: SqlDatabase, tenants: list[str]) -> tuple[list[Counters], list[Any]]:
    counters = [await db.ledger.counters(TenantId(tenant), DAY, PERIOD, T0) for tenant in tenants]
    records = await db.ledger.usage_records(T0, T0 + timedelta(days=1))
    return counters, sorted(records, key=lambda record: (record.tenant_id, record.message_id))


async def test_a_batch_of_every_outcome_answers_each_caller_as_its_statement_alone(
    database: SqlDatabase, postgres_database: str
) -> None:
    """The same script one statement at a time, then as one batch on an emptied database:
    the same answer for every caller, the same counters and settlements after."""
    alone = one_statement_each(database)
    expected = [await step(alone) for step in EVERY_OUTCOME]
    expected_state = await final_state(database, ["a", "b"])
    postgres.truncate_all(postgres_database)

    batched, counting = ledgers(database)
    answers = await asyncio.gather(*(step(batched) for step in EVERY_OUTCOME))

    assert counting.sent == [BATCH_SQL]  # every operation in one statement
    assert list(answers) == expected
    assert await final_state(database, ["a", "b"]) == expected_state
    kinds = {type(answer).__name__ for answer in answers}
    assert kinds == {"Admitted", "Refused", "Settled", "TenantChanged"}


async def test_hundreds_of_concurrent_operations_keep_the_totals_of_one_at_a_time(
    database: SqlDatabase, postgres_database: str
) -> None:
    """Eight tenants and one hot one: 560 calls reserve at once (the hot tenant's budget
    holds 37 of its 200), then every admitted call settles while its twin replays: the same
    outcomes and counters as the same operations one statement at a time."""
    tenants = [f"t{n}" for n in range(8)] + ["hot"]
    calls = [(tenant, f"c{n}") for tenant in tenants for n in range(200 if tenant == "hot" else 45)]
    random.Random(20).shuffle(calls)
    rng = random.Random(20)
    usage = {call: rng.randrange(1_000, 10_000) for call in calls}

    def reserve(ledger: PostgresUsageLedger, tenant: str, call: str) -> Awaitable[object]:
        budget = 600_000 if tenant == "hot" else 10_000_000
        return ledger.reserve_call(admission(tenant, call, budget=budget), None)

    async def run(ledger: PostgresUsageLedger, concurrently: bool) -> list[object]:
        async def each(steps: list[Callable[[], Awaitable[object]]]) -> list[object]:
            if concurrently:
                return list(await asyncio.gather(*(step() for step in steps)))
            return [await step() for step in steps]

        reserved = await each([lambda t=t, c=c: reserve(ledger, t, c) for t, c in calls])
        admitted = [
            call
            for call, answer in zip(calls, reserved, strict=True)
            if isinstance(answer, Admitted)
        ]
        settles = [
            lambda t=t, c=c: ledger.settle(settlement(t, c, usage[(t, c)]))
            for t, c in admitted
            for _ in range(2)
        ]
        return reserved + await each(settles)

    expected = await run(one_statement_each(database), concurrently=False)
    expected_state = await final_state(database, tenants)
    postgres.truncate_all(postgres_database)

    batched, counting = ledgers(database)
    answers = await run(batched, concurrently=True)

    assert sum(isinstance(answer, Refused) for answer in answers) == 200 - 37
    assert sorted(map(repr, answers)) == sorted(map(repr, expected))
    assert await final_state(database, tenants) == expected_state
    assert sum(isinstance(a, Settled) and a.replayed for a in answers) == len(calls) - 163
    assert len(counting.sent) < len(answers) / 10


async def test_an_operation_that_fails_in_a_batch_fails_its_own_caller_only(
    database: SqlDatabase,
) -> None:
    """A settlement whose weighted tokens overflow bigint breaks the batch: it is retried
    alone with the others, fails with the error it fails with alone, the others answer."""
    batched, counting = ledgers(database)
    huge = attrs.evolve(settlement("a", "big", 10), usage=TokenUsage(2**62, 2**62, 0))
    answers = await asyncio.gather(
        batched.admit(admission("a", "m1")),
        batched.settle(huge),
        batched.reserve_call(admission("b", "c1"), None),
        return_exceptions=True,
    )
    assert isinstance(answers[0], Admitted) and isinstance(answers[2], Admitted)
    assert isinstance(answers[1], asyncpg.NumericValueOutOfRangeError)
    assert counting.sent[0] == BATCH_SQL and len(counting.sent) == 4
    counters = await database.ledger.counters(TenantId("a"), DAY, PERIOD, T0)
    assert counters == Counters(1, 0, 16_000, 0)


async def test_a_lone_operation_is_its_own_statement_and_operations_queued_together_share_one(
    database: SqlDatabase,
) -> None:
    """At one request at a time every operation goes at once, as its own statement (no
    jsonb, nothing waits for company); operations queued together share one statement, in
    their queue order."""
    batched, counting = ledgers(database)
    assert isinstance(await batched.reserve_call(admission("a", "c1"), None), Admitted)
    assert counting.sent == [ALONE_SQL["reserve_call"]]
    settled, reserved = await asyncio.gather(
        batched.settle(settlement("a", "c1", 9_000)),
        batched.reserve_call(admission("a", "c2"), None),
    )
    assert counting.sent[1:] == [BATCH_SQL]
    assert isinstance(settled, Settled) and not settled.replayed
    # the settlement was queued first: it freed its reservation before c2 reserved
    assert reserved == Admitted(
        ReservationId("a:c2"),
        Counters(0, 11_250, 16_000, 0),
        held_tokens=16_000,
    )
    assert isinstance(await batched.settle(settlement("a", "c2", 100)), Settled)
    assert counting.sent[2:] == [ALONE_SQL["settle"]]


async def test_close_runs_what_is_queued_and_a_caller_that_left_still_completes(
    postgres_database: str,
) -> None:
    upgrade(postgres_database)
    postgres.truncate_all(postgres_database)
    db = await open_database(postgres_database, pool_size=2)
    left = asyncio.ensure_future(db.ledger.reserve_call(admission("a", "c1"), None))
    await asyncio.sleep(0)  # queued, and its batch on the way
    left.cancel()
    queued = asyncio.ensure_future(db.ledger.settle(settlement("a", "m9", 500)))
    await asyncio.sleep(0)  # queued behind the cancelled caller's batch
    await db.close()
    assert queued.done() and isinstance(queued.result(), Settled)

    db = await open_database(postgres_database, pool_size=1)
    try:
        counters = await db.ledger.counters(TenantId("a"), DAY, PERIOD, T0)
    finally:
        await db.close()
    # the cancelled caller's reservation completed (16,000 held); the settlement counted
    assert counters == Counters(0, 625, 16_000, 0)


async def test_two_batches_queued_in_opposite_tenant_order_lock_in_one_order(
    database: SqlDatabase,
) -> None:
    """Two ledgers (two workers) each send one batch over nine tenants, queued in opposite
    orders, while the middle tenant's period row is held: run in queue order they would
    deadlock (and fall back to one statement per operation); in key order the second waits
    behind the first and each stays one statement."""
    first, first_sent = ledgers(database)
    second, second_sent = ledgers(database)
    tenants = [f"t{n}" for n in range(9)]
    for tenant in tenants:  # the period rows exist
        await first.reserve_call(admission(tenant, "warm"), None)
    first_sent.sent.clear()
    assert isinstance(database.ledger, PostgresUsageLedger)
    async with database.ledger.pool.acquire() as blocker:
        holding = blocker.transaction()
        await holding.start()
        await blocker.execute("SELECT 1 FROM usage_periods WHERE tenant_id = 't4' FOR UPDATE")
        one = asyncio.gather(*(first.reserve_call(admission(t, "c1"), None) for t in tenants))
        two = asyncio.gather(
            *(second.reserve_call(admission(t, "c2"), None) for t in reversed(tenants))
        )
        for _ in range(3_000):  # until both batches wait on a lock (asked outside the
            # holding transaction, which would keep its first snapshot of the statistics)
            waiting = await database.ledger.pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if waiting == 2:
                break
            await asyncio.sleep(0.01)
        assert waiting == 2
        await holding.rollback()
    answers = list(await one) + list(await two)
    assert all(isinstance(answer, Admitted) for answer in answers)
    assert first_sent.sent == second_sent.sent == [BATCH_SQL]


async def test_a_lost_database_answers_every_caller_database_unavailable(
    postgres_database: str,
) -> None:
    upgrade(postgres_database)
    db = await open_database(postgres_database, pool_size=1)
    assert isinstance(db.ledger, PostgresUsageLedger)
    await db.ledger.pool.close()
    answers = await asyncio.gather(
        db.ledger.admit(admission("a", "m1")),
        db.ledger.reserve_call(admission("b", "c1"), None),
        db.ledger.settle(settlement("a", "m0", 10)),
        return_exceptions=True,
    )
    await db.engine.dispose()
    assert [type(answer) for answer in answers] == [DatabaseUnavailable] * 3


async def test_a_queue_longer_than_a_batch_goes_in_batches_one_after_another(
    database: SqlDatabase,
) -> None:
    """``MAX_BATCH`` operations at most in one statement: one more goes next, alone."""
    batched, counting = ledgers(database)
    queued = [settlement("a", f"m{n}", 10) for n in range(ledger_batches.MAX_BATCH + 1)]
    answers = await asyncio.gather(*(batched.settle(request) for request in queued))
    assert all(isinstance(answer, Settled) for answer in answers)
    assert counting.sent == [BATCH_SQL, ALONE_SQL["settle"]]
    counters = await database.ledger.counters(TenantId("a"), DAY, PERIOD, T0)
    assert counters.platform_tokens_settled == 13 * (ledger_batches.MAX_BATCH + 1)
