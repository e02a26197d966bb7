"""Threshold notifications commit with the admission or settlement that crossed them (issue
#15): the ledger's admit and settle themselves — ``tk_admit``/``tk_settle`` on PostgreSQL, the
``BEGIN IMMEDIATE`` work on SQLite — write the notification and its pending deliveries,
with no use case and no notifier involved, so a crash after the ledger's commit cannot lose
one. The crossings are the domain's (``crossed_percents``) on both databases."""

from __future__ import annotations

import tomllib
from datetime import timedelta

import attrs
import pytest

from adapters.catalog.toml_loader import default_catalog_text
from adapters.sql.database import SqlDatabase
from domain.catalog import build_catalog
from domain.ids import MessageId, TenantId
from domain.metering import (
    Admitted,
    Credential,
    SettlementRequest,
    TokenUsage,
    crossed_percents,
)
from domain.notifications import NotificationKind
from domain.routing import platform_token_budget
from domain.use_cases.metering import Metering
from tests.contract.test_ledger_contract import T0, admission, settlement, windows
from tests.contract.test_repositories_contract import a_tenant, a_user
from tests.fakes import FixedClock

pytestmark = pytest.mark.integration


async def _tenant(db: SqlDatabase) -> TenantId:
    tenant = a_tenant(1)
    await db.tenants.add(tenant, a_user(1))
    return tenant.id


async def _thresholds(db: SqlDatabase, tenant: TenantId) -> list[tuple[str, str, int, int, int]]:
    stored = await db.outbox.for_tenant(tenant, 100)
    return sorted(
        (s.facts.kind.value, str(s.facts.window_key), int(s.facts.percent or 0),
         int(s.facts.used or 0), int(s.facts.limit or 0))
        for s in stored
    )  # fmt: skip


async def test_crossing_80_percent_of_the_cap_writes_one_notification_and_its_deliveries(
    db: SqlDatabase,
) -> None:
    tenant = await _tenant(db)
    day_key = windows(T0)[0].key.isoformat()
    for n in range(1, 4):  # 3 of 5: 60%
        assert isinstance(await db.ledger.admit(admission(f"m{n}", cap=5, tenant=tenant)), Admitted)
    assert await _thresholds(db, tenant) == []
    crossing = await db.ledger.admit(admission("m4", cap=5, tenant=tenant))  # 4 of 5: 80%
    assert isinstance(crossing, Admitted) and not crossing.replayed
    assert await _thresholds(db, tenant) == [("messages", day_key, 80, 4, 5)]
    (stored,) = await db.outbox.for_tenant(tenant, 100)
    assert stored.facts.kind is NotificationKind.MESSAGES and stored.api_kind() == "messages_80"
    assert sorted(await db.outbox.deliveries(stored.id)) == [
        ("email", "pending", 0),
        ("webhook", "pending", 0),
    ]
    replay = await db.ledger.admit(admission("m4", cap=5, tenant=tenant))
    assert isinstance(replay, Admitted) and replay.replayed
    assert await _thresholds(db, tenant) == [("messages", day_key, 80, 4, 5)]
    assert len(await db.outbox.deliveries(stored.id)) == 2


@pytest.mark.parametrize("cap", [1, 2, 4, 5, 7, 10])
async def test_the_ledger_notifies_exactly_the_domains_crossings(db: SqlDatabase, cap: int) -> None:
    """Admitting past the cap, each crossing is stored once, as ``crossed_percents``
    computes it; refusals beyond the cap write nothing more."""
    tenant = await _tenant(db)
    day = windows(T0)[0]
    expected = sorted(
        ("messages", day.key.isoformat(), percent, used, cap)
        for used in range(1, cap + 1)
        for percent in crossed_percents(used - 1, used, cap)
    )
    for n in range(cap + 2):
        await db.ledger.admit(admission(f"m{n}", cap=cap, budget=None, tenant=tenant))
    assert await _thresholds(db, tenant) == expected
    assert {p for _, _, p, _, _ in expected} == {80, 100}


async def test_settling_past_80_and_100_percent_of_the_budget_writes_each_once(
    db: SqlDatabase,
) -> None:
    """The period's platform budget (a BYOK tenant's fallback budget): platform tokens
    crossing it are notified by the settlement itself; own-key tokens and replays are not."""
    tenant = await _tenant(db)
    period_key = windows(T0)[1].key.isoformat()

    def settle(message: str, tokens: int, counts: bool = True) -> SettlementRequest:
        request = settlement(message, tokens, tenant=tenant, counts=counts)
        return attrs.evolve(request, token_budget=1_000)

    await db.ledger.settle(settle("a", 700))
    # admitted on a route with the tenant's key, served by it: not the platform budget's
    await db.ledger.admit(admission("own", cap=10, budget=None, tenant=tenant))
    await db.ledger.settle(settle("own", 900, counts=False))
    assert await _thresholds(db, tenant) == []
    await db.ledger.settle(settle("b", 150))  # 850 of 1000
    await db.ledger.settle(settle("b", 150))  # replayed
    assert await _thresholds(db, tenant) == [("tokens", period_key, 80, 850, 1_000)]
    await db.ledger.settle(settle("c", 400))  # 1250 of 1000
    assert await _thresholds(db, tenant) == [
        ("tokens", period_key, 80, 850, 1_000),
        ("tokens", period_key, 100, 1_250, 1_000),
    ]
    stored = await db.outbox.for_tenant(tenant, 100)
    assert {s.api_kind() for s in stored} == {"tokens_80", "tokens_100"}
    for notification in stored:
        assert sorted(await db.outbox.deliveries(notification.id)) == [
            ("email", "pending", 0),
            ("webhook", "pending", 0),
        ]


async def test_a_settlement_without_a_budget_writes_no_threshold(db: SqlDatabase) -> None:
    tenant = await _tenant(db)
    await db.ledger.settle(settlement("a", 5_000_000, tenant=tenant))
    assert await _thresholds(db, tenant) == []


async def test_a_settlement_after_the_period_boundary_is_notified_once_in_its_own_period(
    db: SqlDatabase,
) -> None:
    """Admitted a minute before the period ends, settled a minute after: the 80% crossing
    of the starter budget is written once, under the reservation's period, by the settlement
    through the use case (which no longer notifies on its own, so nothing is written under
    the new period)."""
    tenant = await _tenant(db)
    first = windows(T0)[1]
    clock = FixedClock(first.resets_at - timedelta(minutes=1))
    catalog = build_catalog(tomllib.loads(default_catalog_text()))
    metering = Metering(catalog, db.tenants, db.credentials, db.ledger, clock)
    admitted = await metering.admit(tenant, MessageId("late"), max_tokens=1_000)
    assert isinstance(admitted.decision, Admitted)
    clock.instant = first.resets_at + timedelta(minutes=1)
    budget = platform_token_budget(catalog, catalog.tier("starter"))
    assert budget is not None
    used = budget * 9 // 10
    await metering.settle(
        tenant, MessageId("late"), "moonshot/kimi-k2.5", TokenUsage(used, 0), Credential.PLATFORM
    )
    assert await _thresholds(db, tenant) == [("tokens", first.key.isoformat(), 80, used, budget)]


async def test_settling_llm_calls_past_80_percent_of_the_budget_notifies_and_counts_no_message(
    db: SqlDatabase,
) -> None:
    """The proxy's call reservations (``reserve_call``) settle through the same statement:
    the budget's threshold is written; the cap's never is, as no message was counted."""
    tenant = await _tenant(db)
    period_key = windows(T0)[1].key.isoformat()
    for call, tokens in (("c1", 500), ("c2", 350)):
        held = await db.ledger.reserve_call(
            admission(call, cap=1, budget=1_000, reserve=100, tenant=tenant), None
        )
        assert isinstance(held, Admitted) and held.counters.messages_today == 0
        settled = attrs.evolve(settlement(call, tokens, tenant=tenant), token_budget=1_000)
        await db.ledger.settle(settled)
    assert await _thresholds(db, tenant) == [("tokens", period_key, 80, 850, 1_000)]
