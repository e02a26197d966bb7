"""Caps stay exact under concurrency: several OS processes, each with many concurrent tasks,
admit (or reserve LLM calls) against one tenant in one shared database (spec §2 guarantees,
§13, ADR 0003)."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from adapters.sql.database import open_database, upgrade
from domain.ids import MessageId, ModelRef, ReservationId, TenantId
from domain.metering import (
    AdmissionRequest,
    Admitted,
    Credential,
    Refused,
    SettlementRequest,
    TokenUsage,
)
from domain.windows import day_window, period_window
from tests.support import postgres

pytestmark = pytest.mark.integration

PROCESSES = 4
TASKS = 32
T0 = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
TENANT = TenantId("tenant-hot")
DAY = day_window(T0, UTC)
PERIOD = period_window(T0, UTC, 1)


def _admission(message: str, cap: int, budget: int | None, reserve: int) -> AdmissionRequest:
    return AdmissionRequest(
        tenant_id=TENANT,
        message_id=MessageId(message),
        day=DAY,
        period=PERIOD,
        message_cap=cap,
        token_budget=budget,
        reserve_tokens=reserve,
        now=T0,
        reservation_expires_at=T0 + timedelta(minutes=15),
    )


def _settlement(message: str, weighted: int) -> SettlementRequest:
    return SettlementRequest(
        tenant_id=TENANT,
        message_id=MessageId(message),
        model=ModelRef("moonshot/kimi-k2.5"),
        credential=Credential.PLATFORM,
        usage=TokenUsage(weighted, 0, 0),
        reported_weight=Decimal(1),
        unadmitted_weight=Decimal(1),
        period=PERIOD,
        day=DAY,
        at=T0,
    )


async def _work(
    url: str, messages: list[str], plan: dict[str, Any], barrier: Any
) -> dict[str, Any]:
    db = await open_database(url, pool_size=plan["pool_size"])
    queue: asyncio.Queue[str] = asyncio.Queue()
    for message in messages:
        queue.put_nowait(message)
    outcomes: Counter[str] = Counter()
    worst_committed = 0
    latencies: list[float] = []

    async def task() -> None:
        nonlocal worst_committed
        while not queue.empty():
            message = queue.get_nowait()
            started = time.perf_counter()
            decision = await db.ledger.admit(
                _admission(message, plan["cap"], plan["budget"], plan["reserve"])
            )
            latencies.append(time.perf_counter() - started)
            if isinstance(decision, Admitted):
                outcomes["replayed" if decision.replayed else "admitted"] += 1
                worst_committed = max(
                    worst_committed, decision.counters.platform_tokens_committed()
                )
                if plan["settle"] is not None and (plan["settle_replays"] or not decision.replayed):
                    settled = await db.ledger.settle(_settlement(message, plan["settle"]))
                    outcomes["settle_replayed" if settled.replayed else "settled"] += 1
            else:
                outcomes[decision.reason.value] += 1

    try:
        await asyncio.to_thread(barrier.wait)
        started = time.perf_counter()
        await asyncio.gather(*(task() for _ in range(plan["tasks"])))
        elapsed = time.perf_counter() - started
    finally:
        await db.close()
    latencies.sort()
    return {
        "outcomes": dict(outcomes),
        "worst_committed": worst_committed,
        "elapsed": elapsed,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else 0.0,
    }


async def _call_work(
    url: str, calls: list[str], plan: dict[str, Any], barrier: Any
) -> dict[str, Any]:
    """Each call reserves naming ``plan["named"]``, then settles its own usage (the call's
    number of tokens, weight 1) under the id the ledger gave it."""
    db = await open_database(url, pool_size=plan["pool_size"])
    queue: asyncio.Queue[str] = asyncio.Queue()
    for call in calls:
        queue.put_nowait(call)
    outcomes: Counter[str] = Counter()
    worst_committed = settled_usage = 0
    named = MessageId(plan["named"])

    async def task() -> None:
        nonlocal worst_committed, settled_usage
        while not queue.empty():
            call = queue.get_nowait()
            request = _admission(call, 0, plan["budget"], plan["reserve"])
            decision = await db.ledger.reserve_call(request, named)
            if isinstance(decision, Refused):
                outcomes[decision.reason.value] += 1
                continue
            worst_committed = max(worst_committed, decision.counters.platform_tokens_committed())
            claimed = decision.reservation_id == ReservationId(f"{TENANT}:{named}")
            outcomes["claimed" if claimed else "own"] += 1
            usage = int(call.removeprefix("call-"))
            settled = await db.ledger.settle(_settlement(named if claimed else call, usage))
            outcomes["settle_replayed" if settled.replayed else "settled"] += 1
            settled_usage += usage

    try:
        await asyncio.to_thread(barrier.wait)
        await asyncio.gather(*(task() for _ in range(plan["tasks"])))
    finally:
        await db.close()
    return {
        "outcomes": dict(outcomes),
        "worst_committed": worst_committed,
        "settled_usage": settled_usage,
    }


def _worker(url: str, messages: list[str], plan: dict[str, Any], barrier: Any) -> dict[str, Any]:
    work = _call_work if "named" in plan else _work
    return asyncio.run(work(url, messages, plan, barrier))


@pytest.fixture(scope="module")
def workers() -> Iterator[tuple[ProcessPoolExecutor, Any]]:
    """Warm worker processes (spawned, so nothing is inherited but the arguments) and a
    barrier that starts them together; shared by the module's tests."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(PROCESSES, mp_context=ctx) as pool:
        yield pool, manager.Barrier(PROCESSES)


def run_processes(
    workers: tuple[ProcessPoolExecutor, Any], url: str, per_process: list[list[str]], **plan: Any
) -> dict[str, Any]:
    """Run one worker process per message list, all starting together; merge their tallies."""
    pool, barrier = workers
    assert len(per_process) == PROCESSES
    plan = {"tasks": TASKS, "pool_size": 16, "settle": None, "settle_replays": False, **plan}
    futures = [pool.submit(_worker, url, messages, plan, barrier) for messages in per_process]
    tallies = [future.result(timeout=300) for future in futures]
    total: Counter[str] = Counter()
    for tally in tallies:
        total.update(tally["outcomes"])
    if "named" in plan:
        return {
            "outcomes": dict(total),
            "worst_committed": max(t["worst_committed"] for t in tallies),
            "settled_usage": sum(t["settled_usage"] for t in tallies),
        }
    return {
        "outcomes": dict(total),
        "worst_committed": max(t["worst_committed"] for t in tallies),
        "ops_per_s": round(sum(total.values()) / max(t["elapsed"] for t in tallies)),
        "p99_ms": round(max(t["p99_ms"] for t in tallies), 1),
    }


def split(messages: list[str], parts: int) -> list[list[str]]:
    return [messages[i::parts] for i in range(parts)]


async def final_counters(url: str) -> Any:
    db = await open_database(url, pool_size=1)
    try:
        return await db.ledger.counters(TENANT, DAY, PERIOD, T0)
    finally:
        await db.close()


@pytest.fixture(params=["postgres", "sqlite"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database shared by every worker process."""
    if request.param == "postgres":
        url = str(request.getfixturevalue("postgres_database"))
        upgrade(url)
        postgres.truncate_all(url)
    else:
        url = str(request.getfixturevalue("sqlite_url"))
        upgrade(url)
    return url


async def test_two_thousand_attempts_against_a_cap_of_500_admit_exactly_500(
    database_url: str, workers: Any
) -> None:
    messages = [f"msg-{n}" for n in range(2_000)]
    result = run_processes(
        workers, database_url, split(messages, PROCESSES), cap=500, budget=None, reserve=0
    )
    print(f"\ncap: {result}")
    assert result["outcomes"] == {"admitted": 500, "message_cap_reached": 1_500}
    assert (await final_counters(database_url)).messages_today == 500


async def test_admissions_never_exceed_the_token_budget_with_reservations(
    database_url: str, workers: Any
) -> None:
    """Each admission reserves 16,000 tokens and is settled for 9,000: the committed total
    (settled plus held) never passes the budget at any admission, nor at the end."""
    budget = 1_000_000
    messages = [f"msg-{n}" for n in range(1_200)]
    result = run_processes(
        workers,
        database_url,
        split(messages, PROCESSES),
        cap=10_000,
        budget=budget,
        reserve=16_000,
        settle=9_000,
    )
    print(f"\nbudget: {result}")
    outcomes = result["outcomes"]
    assert outcomes["admitted"] + outcomes["token_budget_exhausted"] == 1_200
    assert result["worst_committed"] <= budget
    counters = await final_counters(database_url)
    assert counters.platform_tokens_committed() <= budget
    assert counters.platform_tokens_settled == 9_000 * outcomes["admitted"]
    assert counters.platform_tokens_reserved == 0
    # 1,000,000 // 9,000 = 111 settled at most; the last reservation needs 16,000 free
    assert outcomes["admitted"] == (budget - 16_000) // 9_000 + 1


async def test_replayed_message_ids_are_admitted_and_settled_once_across_processes(
    database_url: str, workers: Any
) -> None:
    """Four processes admit and then settle the same 600 message ids, each in its own order:
    every id is admitted once and settled once."""
    messages = [f"msg-{n}" for n in range(600)]
    per_process = [random.Random(seed).sample(messages, len(messages)) for seed in range(4)]
    result = run_processes(
        workers,
        database_url,
        per_process,
        cap=5_000,
        budget=None,
        reserve=16_000,
        settle=100,
        settle_replays=True,
    )
    print(f"\nreplay: {result}")
    assert result["outcomes"] == {
        "admitted": 600,
        "replayed": 1_800,
        "settled": 600,
        "settle_replayed": 1_800,
    }
    counters = await final_counters(database_url)
    assert counters.messages_today == 600
    assert counters.platform_tokens_settled == 600 * 100
    assert counters.platform_tokens_reserved == 0


async def test_many_calls_naming_one_message_count_every_usage_and_never_pass_the_budget(
    database_url: str, workers: Any
) -> None:
    """Spec §13: 400 concurrent LLM calls (4 processes x 32 tasks) name one admitted message.
    One call claims its reservation, every other holds its own or is refused by the budget;
    every call's usage is counted (none settles as a replay of another), and the committed
    tokens never pass the budget."""
    budget, reserve = 1_000_000, 16_000
    db = await open_database(database_url, pool_size=1)
    try:
        admitted = await db.ledger.admit(_admission("message", 10, budget, reserve))
    finally:
        await db.close()
    assert isinstance(admitted, Admitted)
    calls = [f"call-{1_000 + n}" for n in range(400)]
    result = run_processes(
        workers, database_url, split(calls, PROCESSES), named="message", budget=budget,
        reserve=reserve,
    )  # fmt: skip
    print(f"\ncalls naming one message: {result}")
    outcomes = result["outcomes"]
    assert outcomes["claimed"] == 1
    assert outcomes["settled"] == outcomes["claimed"] + outcomes["own"]
    assert "settle_replayed" not in outcomes
    assert outcomes["settled"] + outcomes.get("token_budget_exhausted", 0) == len(calls)
    assert result["worst_committed"] <= budget
    counters = await final_counters(database_url)
    assert counters.platform_tokens_settled == result["settled_usage"]
    assert counters.platform_tokens_reserved == 0
    assert counters.messages_today == 1
