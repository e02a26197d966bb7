"""The usage ledger's contract: the in-memory reference, SQLite and PostgreSQL admit,
settle, expire and count exactly alike (spec §2)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs
import pytest

from domain.ids import MessageId, ModelRef, ReservationId, TenantId, TierId, UserId
from domain.metering import (
    AdmissionRequest,
    Admitted,
    Anomaly,
    Counters,
    Credential,
    OfferedRoute,
    RefusalReason,
    Refused,
    Settled,
    SettlementRequest,
    SettlementTerms,
    TenantChanged,
    TokenUsage,
    UsageRecord,
)
from domain.tenants import SubscriptionStatus, Tenant, User
from domain.windows import Window, day_window, period_window
from tests.contract.conftest import Storage
from tests.fakes import InMemoryUsageLedger

pytestmark = pytest.mark.contract

T0 = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
ZONE = ZoneInfo("Europe/Berlin")
TENANT = TenantId("t001")
TTL = timedelta(minutes=15)
KIMI = ModelRef("moonshot/kimi-k2.5")
OWN = ModelRef("byok-openai/gpt-4.1")
ROUTE = OfferedRoute((OWN, KIMI), OWN, Decimal(1))
"""A BYOK route: the tenant's key first, kimi on the platform's."""
PLATFORM_ROUTE = OfferedRoute((KIMI,), None, Decimal("1.67"))


def windows(at: datetime) -> tuple[Window, Window]:
    return day_window(at, ZONE), period_window(at, ZONE, 15)


def admission(
    message: str,
    at: datetime = T0,
    cap: int = 3,
    budget: int | None = 100_000,
    reserve: int = 16_000,
    tenant: str = TENANT,
    optional: bool = False,
    route: OfferedRoute = ROUTE,
) -> AdmissionRequest:
    day, period = windows(at)
    return AdmissionRequest(
        tenant_id=TenantId(tenant),
        message_id=MessageId(message),
        day=day,
        period=period,
        message_cap=cap,
        token_budget=budget,
        reserve_tokens=reserve,
        now=at,
        reservation_expires_at=at + TTL,
        reservation_optional=optional,
        route=route,
    )


def settlement(
    message: str,
    weighted: int,
    at: datetime = T0,
    counts: bool = True,
    tenant: str = TENANT,
    model: str = KIMI,
    weight: Decimal | None = Decimal(1),
) -> SettlementRequest:
    """``weighted`` tokens of ``model`` (weight 1) on the platform's key, or (``counts``
    False) on the tenant's."""
    day, period = windows(at)
    return SettlementRequest(
        tenant_id=TenantId(tenant),
        message_id=MessageId(message),
        model=ModelRef(model),
        credential=Credential.PLATFORM if counts else Credential.TENANT,
        usage=TokenUsage(weighted - 10, 10, 0),
        reported_weight=weight,
        unadmitted_weight=Decimal(1),
        period=period,
        day=day,
        at=at,
    )


PLATFORM_500 = SettlementTerms(Credential.PLATFORM, 500, None)


async def counters_at(storage: Storage, at: datetime, tenant: str = TENANT) -> Counters:
    day, period = windows(at)
    return await storage.ledger.counters(TenantId(tenant), day, period, at)


async def test_an_admitted_message_counts_at_once_and_holds_its_reservation(
    storage: Storage,
) -> None:
    decision = await storage.ledger.admit(admission("m1"))
    assert decision == Admitted(
        ReservationId("t001:m1"), Counters(1, 0, 16_000, 0), held_tokens=16_000
    )
    assert await counters_at(storage, T0) == Counters(1, 0, 16_000, 0)


async def test_the_day_cap_refuses_with_the_reset_of_the_local_day(storage: Storage) -> None:
    for n in range(3):
        assert isinstance(await storage.ledger.admit(admission(f"m{n}", budget=None)), Admitted)
    refused = await storage.ledger.admit(admission("m3", budget=None))
    assert refused == Refused(RefusalReason.MESSAGE_CAP_REACHED, windows(T0)[0].resets_at)
    assert (await counters_at(storage, T0)).messages_today == 3


async def test_the_token_budget_counts_outstanding_reservations(storage: Storage) -> None:
    assert isinstance(await storage.ledger.admit(admission("m1", budget=40_000)), Admitted)
    assert isinstance(await storage.ledger.admit(admission("m2", budget=40_000)), Admitted)
    refused = await storage.ledger.admit(admission("m3", budget=40_000))
    assert refused == Refused(RefusalReason.TOKEN_BUDGET_EXHAUSTED, windows(T0)[1].resets_at)
    assert await counters_at(storage, T0) == Counters(2, 0, 32_000, 0)


async def test_the_cap_is_reported_before_the_budget_when_both_are_spent(
    storage: Storage,
) -> None:
    await storage.ledger.admit(admission("m1", cap=1, budget=16_000))
    refused = await storage.ledger.admit(admission("m2", cap=1, budget=16_000))
    assert isinstance(refused, Refused)
    assert refused.reason is RefusalReason.MESSAGE_CAP_REACHED


async def test_a_repeated_message_id_returns_the_first_admission_and_counts_once(
    storage: Storage,
) -> None:
    first = await storage.ledger.admit(admission("m1"))
    again = await storage.ledger.admit(admission("m1"))
    assert isinstance(first, Admitted) and isinstance(again, Admitted)
    assert again.replayed is True
    assert again.reservation_id == first.reservation_id
    assert again.counters == Counters(1, 0, 16_000, 0)


async def test_a_replay_is_admitted_even_after_the_cap_is_reached(storage: Storage) -> None:
    await storage.ledger.admit(admission("m1", cap=1))
    again = await storage.ledger.admit(admission("m1", cap=1))
    assert isinstance(again, Admitted) and again.replayed


async def test_settlement_replaces_the_reservation_by_weighted_tokens(storage: Storage) -> None:
    await storage.ledger.admit(admission("m1"))
    await storage.ledger.admit(admission("m2"))
    settled = await storage.ledger.settle(settlement("m1", 1_234))
    assert settled.replayed is False
    assert settled.counters_before == Counters(2, 0, 32_000, 0)
    assert settled.counters_after == Counters(2, 1_234, 16_000, 0)
    assert await counters_at(storage, T0) == Counters(2, 1_234, 16_000, 0)


async def test_settlement_is_idempotent_on_the_message_id(storage: Storage) -> None:
    await storage.ledger.admit(admission("m1"))
    await storage.ledger.settle(settlement("m1", 500))
    again = await storage.ledger.settle(settlement("m1", 99_999))
    assert again.replayed is True
    assert again.counters_before == again.counters_after == Counters(1, 500, 0, 0)


async def test_own_key_tokens_count_against_no_platform_limit(storage: Storage) -> None:
    await storage.ledger.admit(admission("m1", budget=None, reserve=0))
    settled = await storage.ledger.settle(settlement("m1", 7_000, counts=False))
    assert settled.counters_after == Counters(1, 0, 0, 7_000)


async def test_settled_tokens_beyond_the_reservation_count_in_full(storage: Storage) -> None:
    await storage.ledger.admit(admission("m1", budget=20_000))
    await storage.ledger.settle(settlement("m1", 19_000))
    refused = await storage.ledger.admit(admission("m2", budget=20_000, reserve=1_001))
    assert isinstance(refused, Refused)
    assert refused.reason is RefusalReason.TOKEN_BUDGET_EXHAUSTED
    assert isinstance(
        await storage.ledger.admit(admission("m3", budget=20_000, reserve=1_000)), Admitted
    )


async def test_a_settlement_without_a_reservation_still_counts(storage: Storage) -> None:
    settled = await storage.ledger.settle(settlement("ghost", 300))
    assert settled.counters_before == Counters(0, 0, 0, 0)
    assert settled.counters_after == Counters(0, 300, 0, 0)


async def test_expired_reservations_stop_counting_and_free_the_budget(storage: Storage) -> None:
    await storage.ledger.admit(admission("m1", budget=20_000))
    later = T0 + TTL
    assert await counters_at(storage, later) == Counters(1, 0, 0, 0)
    admitted = await storage.ledger.admit(admission("m2", at=later, budget=20_000))
    assert admitted == Admitted(
        ReservationId("t001:m2"), Counters(2, 0, 16_000, 0), held_tokens=16_000
    )


async def test_release_expired_drops_each_stale_reservation_once(storage: Storage) -> None:
    await storage.ledger.admit(admission("m1"))
    await storage.ledger.admit(admission("m2", at=T0 + timedelta(minutes=5)))
    await storage.ledger.admit(admission("m3", tenant="t002"))
    assert await storage.ledger.release_expired(T0 + TTL) == 2
    assert await storage.ledger.release_expired(T0 + TTL) == 0
    assert await storage.ledger.release_expired(T0 + TTL + timedelta(minutes=5)) == 1


async def test_settling_an_expired_reservation_does_not_release_it_twice(
    storage: Storage,
) -> None:
    await storage.ledger.admit(admission("m1"))
    await storage.ledger.admit(admission("m2", at=T0 + timedelta(minutes=10)))
    late = T0 + timedelta(minutes=20)
    await storage.ledger.release_expired(late)
    settled = await storage.ledger.settle(settlement("m1", 100, at=late))
    assert settled.counters_before == Counters(2, 0, 16_000, 0)
    assert settled.counters_after == Counters(2, 100, 16_000, 0)


async def test_a_new_local_day_resets_messages_but_not_the_period(storage: Storage) -> None:
    for n in range(3):
        await storage.ledger.admit(admission(f"m{n}", reserve=1_000))
    await storage.ledger.settle(settlement("m0", 2_000))
    next_day = datetime(2026, 3, 15, 23, 30, tzinfo=UTC)  # 00:30 in Berlin; m0–m2 expired
    admitted = await storage.ledger.admit(admission("m9", at=next_day, reserve=1_000))
    assert admitted == Admitted(
        ReservationId("t001:m9"), Counters(1, 2_000, 1_000, 0), held_tokens=1_000
    )


async def test_tenants_are_counted_apart(storage: Storage) -> None:
    await storage.ledger.admit(admission("m1", cap=1))
    other = await storage.ledger.admit(admission("m1", cap=1, tenant="t002"))
    assert other == Admitted(
        ReservationId("t002:m1"), Counters(1, 0, 16_000, 0), held_tokens=16_000
    )


async def test_usage_records_list_settlements_in_a_half_open_range(storage: Storage) -> None:
    await storage.ledger.admit(admission("m1"))
    await storage.ledger.settle(settlement("m1", 1_000))
    later = T0 + timedelta(hours=1)
    await storage.ledger.settle(settlement("m2", 2_000, at=later, counts=False))
    records = await storage.ledger.usage_records(T0, later)
    assert records == [
        UsageRecord(
            TENANT, MessageId("m1"), ModelRef("moonshot/kimi-k2.5"), Credential.PLATFORM,
            990, 10, 0, 1_000, T0,
        )
    ]  # fmt: skip
    both = await storage.ledger.usage_records(T0, later + timedelta(microseconds=1))
    assert [(r.message_id, r.credential, r.at) for r in both] == [
        ("m1", Credential.PLATFORM, T0),
        ("m2", Credential.PLATFORM, later),  # no admission routed it to the tenant's key
    ]


@pytest.mark.parametrize("seed", [20261125, 7, 1234])
async def test_a_random_history_gives_the_reference_ledgers_answers(
    storage: Storage, seed: int
) -> None:
    """Admissions (some repeated), settlements (some repeated), time passing, expiry sweeps
    and reads, replayed on the reference and this ledger: every answer is the same."""
    reference = InMemoryUsageLedger()
    rng = random.Random(seed)
    at = T0
    for step in range(160):
        op = rng.choices(["admit", "settle", "tick", "release", "read"], [6, 3, 1, 1, 1])[0]
        tenant = rng.choice(["t001", "t002"])
        message = f"m{rng.randrange(40)}"
        if op == "admit":
            request = admission(
                message, at=at, cap=12, budget=rng.choice([None, 120_000]),
                reserve=rng.choice([0, 4_000, 16_000]), tenant=tenant,
            )  # fmt: skip
            expected, got = await reference.admit(request), await storage.ledger.admit(request)
        elif op == "settle":
            request = settlement(
                message, rng.randrange(1, 20_000), at=at, counts=rng.random() < 0.8, tenant=tenant
            )
            expected, got = await reference.settle(request), await storage.ledger.settle(request)
        elif op == "tick":
            at += timedelta(minutes=rng.choice([1, 4, 9, 180]))
            continue
        elif op == "release":
            expected = await reference.release_expired(at)
            got = await storage.ledger.release_expired(at)
        else:
            day, period = windows(at)
            expected = await reference.counters(TenantId(tenant), day, period, at)
            got = await storage.ledger.counters(TenantId(tenant), day, period, at)
        assert got == expected, f"step {step}: {op}"
    assert await storage.ledger.usage_records(T0, at + TTL) == await reference.usage_records(
        T0, at + TTL
    )


async def stored_tenant(storage: Storage, saves: int = 0) -> int:
    """TENANT stored and saved ``saves`` times; its revision."""
    tenant = Tenant(TENANT, TierId("starter"), SubscriptionStatus.ACTIVE, "Europe/Berlin", 15, T0)
    await storage.tenants.add(tenant, User(UserId("u001"), "u1@example.com", "h", TENANT, T0))
    for _ in range(saves):
        await storage.tenants.save(tenant)
    stored = await storage.tenants.get(TENANT)
    assert stored is not None
    return stored.revision


async def test_an_admission_on_the_stored_tenants_revision_is_admitted(storage: Storage) -> None:
    current = await stored_tenant(storage, saves=1)
    decision = await storage.ledger.admit(attrs.evolve(admission("m1"), tenant_revision=current))
    assert decision == Admitted(
        ReservationId("t001:m1"), Counters(1, 0, 16_000, 0), held_tokens=16_000
    )


async def test_an_admission_on_an_older_revision_is_refused_as_changed_and_counts_nothing(
    storage: Storage,
) -> None:
    current = await stored_tenant(storage, saves=2)
    stale = attrs.evolve(admission("m1"), tenant_revision=current - 1)
    assert await storage.ledger.admit(stale) == TenantChanged()
    assert await counters_at(storage, T0) == Counters(0, 0, 0, 0)
    again = await storage.ledger.admit(attrs.evolve(stale, tenant_revision=current))
    assert isinstance(again, Admitted) and again.replayed is False


async def test_a_revision_for_a_tenant_not_stored_is_refused_as_changed(storage: Storage) -> None:
    request = attrs.evolve(admission("m1"), tenant_revision=0)
    assert await storage.ledger.admit(request) == TenantChanged()


async def test_a_full_day_on_an_older_revision_is_refused_as_changed_not_as_full(
    storage: Storage,
) -> None:
    """The refusal of a full day (taken without the period lock) checks the revision first."""
    current = await stored_tenant(storage, saves=1)
    assert isinstance(await storage.ledger.admit(admission("m1", cap=1)), Admitted)
    stale = attrs.evolve(admission("m2", cap=1), tenant_revision=current - 1)
    assert await storage.ledger.admit(stale) == TenantChanged()
    fresh = attrs.evolve(stale, tenant_revision=current)
    refused = await storage.ledger.admit(fresh)
    assert isinstance(refused, Refused) and refused.reason is RefusalReason.MESSAGE_CAP_REACHED


async def test_a_settlement_on_the_stored_tenants_revision_settles(storage: Storage) -> None:
    current = await stored_tenant(storage, saves=1)
    assert isinstance(await storage.ledger.admit(admission("m1")), Admitted)
    settled = await storage.ledger.settle(
        attrs.evolve(settlement("m1", 500), tenant_revision=current)
    )
    assert settled == Settled(Counters(1, 0, 16_000, 0), Counters(1, 500, 0, 0), PLATFORM_500)


async def test_a_settlement_on_an_older_revision_is_answered_as_changed_and_writes_nothing(
    storage: Storage,
) -> None:
    current = await stored_tenant(storage, saves=2)
    assert isinstance(await storage.ledger.admit(admission("m1")), Admitted)
    stale = attrs.evolve(settlement("m1", 500), tenant_revision=current - 1)
    assert await storage.ledger.settle(stale) == TenantChanged()
    assert await counters_at(storage, T0) == Counters(1, 0, 16_000, 0)
    assert await storage.ledger.usage_records(T0, T0 + TTL) == []
    again = await storage.ledger.settle(attrs.evolve(stale, tenant_revision=current))
    assert again == Settled(Counters(1, 0, 16_000, 0), Counters(1, 500, 0, 0), PLATFORM_500)


async def test_a_settlement_for_a_tenant_not_stored_is_answered_as_changed(
    storage: Storage,
) -> None:
    request = attrs.evolve(settlement("m1", 500), tenant_revision=0)
    assert await storage.ledger.settle(request) == TenantChanged()
    assert await counters_at(storage, T0) == Counters(0, 0, 0, 0)


async def test_an_optional_reservation_the_budget_cannot_hold_is_admitted_holding_nothing(
    storage: Storage,
) -> None:
    """A BYOK tenant's platform fallbacks: held on the starter budget while it can hold
    them; with it spent the message is admitted on the tenant's key alone."""
    first = await storage.ledger.admit(admission("m1", budget=20_000, optional=True))
    assert isinstance(first, Admitted) and first.held_tokens == 16_000
    second = await storage.ledger.admit(admission("m2", budget=20_000, optional=True))
    assert isinstance(second, Admitted) and second.held_tokens == 0
    assert await counters_at(storage, T0) == Counters(2, 0, 16_000, 0)
    again = await storage.ledger.admit(admission("m2", budget=20_000, optional=True))
    assert isinstance(again, Admitted) and again.replayed and again.held_tokens == 0
    # m2's route offered the tenant's key alone: a platform model on it is not offered
    settled = await storage.ledger.settle(settlement("m2", 1_000))
    assert settled.terms == SettlementTerms(Credential.PLATFORM, 1_000, Anomaly.MODEL_NOT_OFFERED)


async def test_the_tenants_key_served_releases_the_fallback_reservation(storage: Storage) -> None:
    await storage.ledger.admit(admission("m1", budget=20_000, optional=True))
    settled = await storage.ledger.settle(
        settlement("m1", 7_000, counts=False, model=OWN, weight=None)
    )
    assert settled.terms == SettlementTerms(Credential.TENANT, 7_000, None)
    assert settled.counters_after == Counters(1, 0, 0, 7_000)


async def test_tenant_credential_counts_as_platform_unless_the_admission_routed_there(
    storage: Storage,
) -> None:
    """Checked in the ledger statement itself: a settlement never makes tokens free."""
    await storage.ledger.admit(admission("m1", route=PLATFORM_ROUTE))
    settled = await storage.ledger.settle(settlement("m1", 1_000, counts=False))
    assert settled.terms == SettlementTerms(
        Credential.PLATFORM, 1_000, Anomaly.TENANT_KEY_NOT_ROUTED
    )
    assert settled.counters_after == Counters(1, 1_000, 0, 0)
    again = await storage.ledger.settle(settlement("m1", 1_000, counts=True))
    assert again.replayed and again.terms == settled.terms
    records = await storage.ledger.usage_records(T0, T0 + TTL)
    assert [(r.credential, r.weighted_tokens) for r in records] == [(Credential.PLATFORM, 1_000)]


async def test_an_unoffered_or_unknown_model_is_rated_at_the_routes_dearest(
    storage: Storage,
) -> None:
    await storage.ledger.admit(admission("m1", route=PLATFORM_ROUTE))
    await storage.ledger.admit(admission("m2", route=PLATFORM_ROUTE))
    opus = await storage.ledger.settle(
        settlement("m1", 1_000, model="anthropic/claude-opus-4-6", weight=Decimal("1.67"))
    )
    assert opus.terms == SettlementTerms(Credential.PLATFORM, 1_670, Anomaly.MODEL_NOT_OFFERED)
    unknown = await storage.ledger.settle(settlement("m2", 1_000, model="acme/x", weight=None))
    assert unknown.terms == SettlementTerms(Credential.PLATFORM, 1_670, Anomaly.MODEL_NOT_OFFERED)
    ghost = await storage.ledger.settle(settlement("m3", 999, counts=False))
    assert ghost.terms == SettlementTerms(Credential.PLATFORM, 999, Anomaly.NOT_ADMITTED)


async def test_the_ledger_itself_writes_each_crossing_once_to_the_outbox(storage: Storage) -> None:
    """The admission and the settlement that cross 80% or 100% write the notification
    (the SQL ledgers in their own transaction, the fake under its lock); replays do not."""
    await stored_tenant(storage)
    for n in range(5):
        await storage.ledger.admit(admission(f"m{n}", cap=5, budget=None))
    await storage.ledger.admit(admission("m3", cap=5, budget=None))
    await storage.ledger.settle(attrs.evolve(settlement("s1", 900), token_budget=1_000))
    await storage.ledger.settle(attrs.evolve(settlement("s1", 900), token_budget=1_000))
    day, period = (w.key.isoformat() for w in windows(T0))
    stored = await storage.outbox.for_tenant(TenantId(TENANT), 10)
    assert sorted((s.api_kind(), s.facts.window_key, s.facts.used) for s in stored) == [
        ("messages_100", day, 5),
        ("messages_80", day, 4),
        ("tokens_80", period, 900),
    ]
