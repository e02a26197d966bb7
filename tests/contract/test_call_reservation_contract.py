"""One LLM call's reservation (spec §13, ``UsageLedger.reserve_call``): the in-memory
reference, SQLite and PostgreSQL hold a call's tokens against the budget without counting a
message, settle it through ``settle`` and sweep it through ``release_expired`` exactly
alike."""

from __future__ import annotations

import attrs
import pytest

from domain.ids import MessageId, ReservationId
from domain.metering import (
    Admitted,
    Anomaly,
    Counters,
    Credential,
    RefusalReason,
    Refused,
    SettlementTerms,
    TenantChanged,
)
from tests.contract.conftest import Storage
from tests.contract.test_ledger_contract import (
    OWN,
    T0,
    TTL,
    admission,
    counters_at,
    settlement,
    stored_tenant,
    windows,
)

pytestmark = pytest.mark.contract

M1 = MessageId("m1")


async def test_a_call_holds_its_reservation_without_counting_a_message(storage: Storage) -> None:
    decision = await storage.ledger.reserve_call(admission("c1", cap=1), None)
    assert decision == Admitted(
        ReservationId("t001:c1"), Counters(0, 0, 16_000, 0), held_tokens=16_000
    )
    # a second call is not refused by a cap of one message: calls are not messages
    second = await storage.ledger.reserve_call(admission("c2", cap=1), None)
    assert isinstance(second, Admitted) and second.counters == Counters(0, 0, 32_000, 0)
    assert await counters_at(storage, T0) == Counters(0, 0, 32_000, 0)


async def test_a_call_the_budget_cannot_hold_is_refused_having_held_nothing(
    storage: Storage,
) -> None:
    await storage.ledger.reserve_call(admission("c1", budget=20_000), None)
    refused = await storage.ledger.reserve_call(admission("c2", budget=20_000), None)
    assert refused == Refused(RefusalReason.TOKEN_BUDGET_EXHAUSTED, windows(T0)[1].resets_at)
    assert await counters_at(storage, T0) == Counters(0, 0, 16_000, 0)
    # calls and messages share the budget: a message no longer fits either
    message = await storage.ledger.admit(admission("m1", budget=20_000))
    assert isinstance(message, Refused)


async def test_an_optional_call_reservation_the_budget_cannot_hold_holds_nothing(
    storage: Storage,
) -> None:
    await storage.ledger.reserve_call(admission("c1", budget=20_000, optional=True), None)
    second = await storage.ledger.reserve_call(admission("c2", budget=20_000, optional=True), None)
    assert isinstance(second, Admitted) and second.held_tokens == 0
    # its route offered the tenant's key alone: a platform model on it is not offered
    settled = await storage.ledger.settle(settlement("c2", 1_000))
    assert settled.terms == SettlementTerms(Credential.PLATFORM, 1_000, Anomaly.MODEL_NOT_OFFERED)


async def test_a_call_settles_exactly_through_the_settlement_path(storage: Storage) -> None:
    await storage.ledger.reserve_call(admission("c1"), None)
    settled = await storage.ledger.settle(settlement("c1", 700))
    assert settled.terms == SettlementTerms(Credential.PLATFORM, 700, None)
    assert (settled.counters_before, settled.counters_after) == (
        Counters(0, 0, 16_000, 0),
        Counters(0, 700, 0, 0),
    )
    again = await storage.ledger.settle(settlement("c1", 700))
    assert again.replayed and again.counters_after == Counters(0, 700, 0, 0)
    own = await storage.ledger.reserve_call(admission("c2", optional=True), None)
    assert isinstance(own, Admitted)
    on_key = await storage.ledger.settle(settlement("c2", 90, counts=False, model=OWN, weight=None))
    assert on_key.terms == SettlementTerms(Credential.TENANT, 90, None)
    assert on_key.counters_after == Counters(0, 700, 0, 90)


async def test_a_call_naming_a_held_message_uses_its_reservation(storage: Storage) -> None:
    await storage.ledger.admit(admission("m1"))
    decision = await storage.ledger.reserve_call(admission("c1"), M1)
    assert decision == Admitted(
        ReservationId("t001:m1"), Counters(1, 0, 16_000, 0), replayed=True, held_tokens=16_000
    )
    assert await counters_at(storage, T0) == Counters(1, 0, 16_000, 0)


async def test_two_calls_naming_one_held_message_each_settle_exactly_their_own_usage(
    storage: Storage,
) -> None:
    """The first call claims the message's reservation; the second holds its own under its
    call id, so neither settlement replays the other and the period counts both."""
    await storage.ledger.admit(admission("m1"))
    first = await storage.ledger.reserve_call(admission("c1"), M1)
    second = await storage.ledger.reserve_call(admission("c2"), M1)
    assert first == Admitted(
        ReservationId("t001:m1"), Counters(1, 0, 16_000, 0), replayed=True, held_tokens=16_000
    )
    assert second == Admitted(
        ReservationId("t001:c2"), Counters(1, 0, 32_000, 0), held_tokens=16_000
    )
    # the claiming call asked again keeps its claim
    again = await storage.ledger.reserve_call(admission("c1"), M1)
    assert isinstance(again, Admitted) and again.reservation_id == ReservationId("t001:m1")
    assert again.replayed and again.counters == Counters(1, 0, 32_000, 0)
    assert not (await storage.ledger.settle(settlement("m1", 1_000))).replayed
    assert not (await storage.ledger.settle(settlement("c2", 2_500))).replayed
    assert await counters_at(storage, T0) == Counters(1, 3_500, 0, 0)


async def test_a_call_naming_a_message_another_call_claimed_is_checked_against_the_budget(
    storage: Storage,
) -> None:
    await storage.ledger.admit(admission("m1", budget=20_000))
    await storage.ledger.reserve_call(admission("c1", budget=20_000), M1)
    refused = await storage.ledger.reserve_call(admission("c2", budget=20_000), M1)
    assert refused == Refused(RefusalReason.TOKEN_BUDGET_EXHAUSTED, windows(T0)[1].resets_at)
    assert await counters_at(storage, T0) == Counters(1, 0, 16_000, 0)


async def test_a_call_naming_a_settled_message_holds_a_reservation_of_its_own(
    storage: Storage,
) -> None:
    """The message's reservation is gone once settled: the next call is budget-checked."""
    await storage.ledger.admit(admission("m1", budget=20_000))
    await storage.ledger.settle(settlement("m1", 10_000))
    refused = await storage.ledger.reserve_call(admission("c1", budget=20_000), M1)
    assert isinstance(refused, Refused) and refused.reason is RefusalReason.TOKEN_BUDGET_EXHAUSTED
    held = await storage.ledger.reserve_call(admission("c2", budget=20_000, reserve=4_000), M1)
    assert held == Admitted(
        ReservationId("t001:c2"), Counters(1, 10_000, 4_000, 0), held_tokens=4_000
    )


async def test_a_call_naming_an_unknown_message_holds_its_own_and_counts_no_message(
    storage: Storage,
) -> None:
    held = await storage.ledger.reserve_call(admission("c1"), MessageId("never-admitted"))
    assert isinstance(held, Admitted) and held.reservation_id == ReservationId("t001:c1")
    # the named id stays free: its admission later is a new message, not a replay
    message = await storage.ledger.admit(admission("never-admitted"))
    assert isinstance(message, Admitted) and not message.replayed
    assert message.counters.messages_today == 1


async def test_a_repeated_call_id_returns_its_first_answer(storage: Storage) -> None:
    await storage.ledger.reserve_call(admission("c1"), None)
    again = await storage.ledger.reserve_call(admission("c1"), None)
    assert again == Admitted(
        ReservationId("t001:c1"), Counters(0, 0, 16_000, 0), replayed=True, held_tokens=16_000
    )


async def test_an_unsettled_call_reservation_is_swept_when_it_expires(storage: Storage) -> None:
    await storage.ledger.reserve_call(admission("c1"), None)
    later = T0 + TTL
    assert await storage.ledger.release_expired(later) == 1
    assert await counters_at(storage, later) == Counters(0, 0, 0, 0)
    assert await storage.ledger.release_expired(later) == 0


async def test_a_call_on_an_older_tenant_revision_is_answered_as_changed(
    storage: Storage,
) -> None:
    current = await stored_tenant(storage, saves=1)
    stale = attrs.evolve(admission("c1"), tenant_revision=current - 1)
    assert await storage.ledger.reserve_call(stale, None) == TenantChanged()
    assert await counters_at(storage, T0) == Counters(0, 0, 0, 0)
    fresh = attrs.evolve(admission("c2"), tenant_revision=current)
    assert isinstance(await storage.ledger.reserve_call(fresh, None), Admitted)


async def test_a_message_cap_above_the_integer_range_of_percent_times_cap_admits(
    storage: Storage,
) -> None:
    """The cap thresholds compare ``percent * cap``: with a cap of 100,000,000 that exceeds
    a 32-bit integer (PostgreSQL's ``tk_admit`` of 0013 failed every admission)."""
    decision = await storage.ledger.admit(admission("m1", cap=100_000_000))
    assert isinstance(decision, Admitted) and decision.counters.messages_today == 1
