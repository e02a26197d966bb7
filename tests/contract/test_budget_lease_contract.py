"""Budget leases in the ledger (issue #20, ``SettlementRequest.drawn`` and
``UsageLedger.release``): the in-memory reference, SQLite and PostgreSQL move a drawn call's
tokens out of its lease as it settles and give back what a lease still holds exactly alike.
A lease is an ordinary call reservation; these tests take one of 64,000 tokens."""

from __future__ import annotations

from datetime import datetime

import attrs
import pytest

from domain.ids import MessageId, TenantId
from domain.metering import (
    Admitted,
    Anomaly,
    Counters,
    Credential,
    DrawnFromLease,
    Refused,
    SettlementRequest,
    SettlementTerms,
)
from tests.contract.conftest import Storage
from tests.contract.test_ledger_contract import (
    PLATFORM_ROUTE,
    T0,
    TENANT,
    TTL,
    admission,
    counters_at,
    settlement,
)

pytestmark = pytest.mark.contract

LEASE = MessageId("lease-1")


async def _lease(storage: Storage, tokens: int = 64_000, budget: int = 100_000) -> None:
    asked = admission(LEASE, reserve=tokens, budget=budget, route=PLATFORM_ROUTE)
    await storage.ledger.reserve_call(asked, None)


def drawn(
    call: str,
    weighted: int,
    tokens: int = 16_000,
    lease: MessageId = LEASE,
    at: datetime = T0,
) -> SettlementRequest:
    """``settlement`` of a call that drew ``tokens`` from ``lease``."""
    request = settlement(call, weighted, at=at)
    return attrs.evolve(request, drawn=DrawnFromLease(lease, tokens))


async def test_a_drawn_call_settles_on_the_lease_route_and_takes_its_tokens_out(
    storage: Storage,
) -> None:
    await _lease(storage)
    settled = await storage.ledger.settle(drawn("c1", 700))
    # kimi, reported at weight 1, is on the lease's route: counted as reported
    assert settled.terms == SettlementTerms(Credential.PLATFORM, 700, None)
    assert settled.counters_before == Counters(0, 0, 64_000, 0)
    assert settled.counters_after == Counters(0, 700, 48_000, 0)
    assert await counters_at(storage, T0) == Counters(0, 700, 48_000, 0)


async def test_a_drawn_call_settled_again_draws_nothing_more(storage: Storage) -> None:
    await _lease(storage)
    await storage.ledger.settle(drawn("c1", 700))
    again = await storage.ledger.settle(drawn("c1", 700))
    assert again.replayed
    assert await counters_at(storage, T0) == Counters(0, 700, 48_000, 0)


async def test_a_released_lease_gives_back_what_is_left_once(storage: Storage) -> None:
    await _lease(storage)
    await storage.ledger.settle(drawn("c1", 700))
    await storage.ledger.settle(drawn("c2", 300))
    assert await storage.ledger.release(TenantId(TENANT), LEASE, T0) == 32_000
    assert await counters_at(storage, T0) == Counters(0, 1_000, 0, 0)
    assert await storage.ledger.release(TenantId(TENANT), LEASE, T0) == 0
    assert await counters_at(storage, T0) == Counters(0, 1_000, 0, 0)
    # nothing was settled under the lease's own id, and the sweep finds nothing of it
    assert [r.message_id for r in await storage.ledger.usage_records(T0, T0 + TTL)] == [
        "c1",
        "c2",
    ]
    assert await storage.ledger.release_expired(T0 + 2 * TTL) == 0


async def test_a_call_drawn_after_its_lease_was_released_keeps_the_route_not_the_tokens(
    storage: Storage,
) -> None:
    await _lease(storage)
    await storage.ledger.release(TenantId(TENANT), LEASE, T0)
    settled = await storage.ledger.settle(drawn("c1", 700))
    assert settled.terms == SettlementTerms(Credential.PLATFORM, 700, None)
    assert settled.counters_after == Counters(0, 700, 0, 0)


async def test_a_call_drawn_from_a_lease_past_its_expiry_gives_back_nothing_twice(
    storage: Storage,
) -> None:
    await _lease(storage)
    late = T0 + TTL
    settled = await storage.ledger.settle(drawn("c1", 700, at=late))
    assert settled.terms.anomaly is None
    assert await counters_at(storage, late) == Counters(0, 700, 0, 0)
    assert await storage.ledger.release(TenantId(TENANT), LEASE, late) == 0
    assert await counters_at(storage, late) == Counters(0, 700, 0, 0)


async def test_a_call_drawn_from_an_unknown_lease_counts_in_full_as_unadmitted(
    storage: Storage,
) -> None:
    settled = await storage.ledger.settle(drawn("c1", 700, lease=MessageId("lease-gone")))
    assert settled.terms.anomaly is Anomaly.NOT_ADMITTED
    assert await counters_at(storage, T0) == Counters(0, 700, 0, 0)


async def test_a_draw_never_takes_more_than_the_lease_holds(storage: Storage) -> None:
    await _lease(storage, tokens=20_000)
    await storage.ledger.settle(drawn("c1", 100, tokens=16_000))
    await storage.ledger.settle(drawn("c2", 100, tokens=16_000))
    # 4,000 were left for c2: the period never holds less than nothing
    assert await counters_at(storage, T0) == Counters(0, 200, 0, 0)
    assert await storage.ledger.release(TenantId(TENANT), LEASE, T0) == 0


async def test_release_leaves_a_settled_reservation_alone(storage: Storage) -> None:
    await storage.ledger.reserve_call(admission("c1"), None)
    await storage.ledger.settle(settlement("c1", 700))
    assert await storage.ledger.release(TenantId(TENANT), MessageId("c1"), T0) == 0
    assert await storage.ledger.release(TenantId(TENANT), MessageId("never"), T0) == 0
    assert await counters_at(storage, T0) == Counters(0, 700, 0, 0)


async def test_the_budget_counts_a_lease_whole_until_it_is_given_back(storage: Storage) -> None:
    await _lease(storage, budget=79_999)
    refused = await storage.ledger.reserve_call(admission("c9", budget=79_999), None)
    assert isinstance(refused, Refused)
    await storage.ledger.settle(drawn("c1", 1_000))
    await storage.ledger.release(TenantId(TENANT), LEASE, T0)
    fits = await storage.ledger.reserve_call(admission("c9", budget=79_999), None)
    assert isinstance(fits, Admitted)
    assert await counters_at(storage, T0) == Counters(0, 1_000, 16_000, 0)


async def test_a_lease_its_process_never_gave_back_is_swept_at_its_expiry(
    storage: Storage,
) -> None:
    """The process holding the lease was killed after one call settled: the rest stays
    reserved until the lease expires, then the sweep takes it off the counters."""
    await _lease(storage)
    await storage.ledger.settle(drawn("c1", 700))
    assert await counters_at(storage, T0 + TTL / 2) == Counters(0, 700, 48_000, 0)
    assert await storage.ledger.release_expired(T0 + TTL) == 1  # the lease (c1 settled)
    assert await counters_at(storage, T0 + TTL) == Counters(0, 700, 0, 0)
    assert await storage.ledger.release(TenantId(TENANT), LEASE, T0 + TTL) == 0
