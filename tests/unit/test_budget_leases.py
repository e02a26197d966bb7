"""Budget leases (``domain/use_cases/budget_leases.py``): a tenant calling in quick
succession is served from tokens its lease holds, with no ledger statement per call, and the
ledger's counts stay exact: every call settles its own usage, and what a lease still holds
goes back when its time is up."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest

from domain.ids import MessageId, ModelRef, TenantId
from domain.metering import (
    AdmissionRequest,
    Counters,
    OfferedRoute,
    SettlementOutcome,
    SettlementRequest,
)
from domain.use_cases import budget_leases
from domain.use_cases.budget_leases import (
    HEADROOM,
    BudgetLease,
    BudgetLeases,
    LeaseTerms,
)
from domain.use_cases.metering import Admission, CallAdmission
from tests.contract.test_ledger_contract import T0, windows
from tests.fakes import InMemoryUsageLedger
from tests.unit.conftest import World
from tests.unit.test_use_case_llm_proxy import (
    MOONSHOT,
    OPENAI,
    FailingUpstream,
    Proxy,
    Reply,
    T,
    answer,
    make_proxy,
    openai_answer,
    openai_call,
    refusal,
    used,
)

pytestmark = pytest.mark.unit


@attrs.define
class CountingLedger(InMemoryUsageLedger):
    """The reference ledger, counting the reservations asked of it and the leases given
    back (with what they still held)."""

    reserved: list[AdmissionRequest] = attrs.Factory(list)
    released: list[tuple[MessageId, int]] = attrs.Factory(list)
    down: bool = False
    """True: every settlement fails."""
    gate: asyncio.Event | None = None
    """Set: each release waits for it."""
    release_fails: bool = False

    async def settle(self, request: SettlementRequest) -> SettlementOutcome:
        if self.down:
            raise RuntimeError("ledger down")
        return await super().settle(request)

    async def reserve_call(self, request: AdmissionRequest, named: MessageId | None) -> Any:
        self.reserved.append(request)
        return await super().reserve_call(request, named)

    async def release(self, tenant_id: TenantId, message_id: MessageId, now: Any) -> int:
        if self.gate is not None:
            await self.gate.wait()
        if self.release_fails:
            raise RuntimeError("ledger down")
        tokens = await super().release(tenant_id, message_id, now)
        self.released.append((message_id, tokens))
        return tokens


async def leasing_proxy(world: World, calls: int, seconds: float = 60.0, **tenant: Any) -> Proxy:
    """A proxy whose metering leases for ``seconds``, over a counting ledger, with
    ``calls`` whole answers of 37 tokens scripted."""
    world.ledger = CountingLedger(tenants=world.tenant_repo, outbox=world.outbox)
    replies = [Reply(200, (openai_answer(30, 7),)) for _ in range(calls)]
    p = await make_proxy(world, {MOONSHOT: replies}, **tenant)
    metering = attrs.evolve(world.metering, leases=BudgetLeases(seconds=seconds))
    return attrs.evolve(p, proxy=attrs.evolve(p.proxy, metering=metering))


def ledger(world: World) -> CountingLedger:
    assert isinstance(world.ledger, CountingLedger)
    return world.ledger


def reserved_ids(world: World) -> list[str]:
    return [request.message_id.split("-")[0] for request in ledger(world).reserved]


async def test_a_tenant_calling_in_quick_succession_is_served_from_one_lease(
    world: World,
) -> None:
    p = await leasing_proxy(world, 6)
    for _ in range(6):
        answer(await p.proxy.call(p.key, openai_call(max_tokens=1_000)))
    # the first call reserves alone; the second asks a lease of 32 calls and draws from it
    assert reserved_ids(world) == ["call", "lease"]
    assert ledger(world).reserved[1].reserve_tokens == 32_000
    await asyncio.sleep(0)  # the whole answers settle in their own tasks
    await p.proxy.drain()
    # every call settled its own usage under its own id; the lease gave the rest back
    assert await used(world) == (0, 0, 6 * 37)
    records = ledger(world).records
    assert [r.message_id.startswith("call-") for r in records] == [True] * 6
    ((lease_id, given_back),) = ledger(world).released
    assert lease_id.startswith("lease-") and given_back == 32_000 - 5 * 1_000


async def test_a_lease_is_given_back_when_its_time_is_up_and_its_calls_settled(
    world: World,
) -> None:
    p = await leasing_proxy(world, 3, seconds=0.05)
    for _ in range(3):
        answer(await p.proxy.call(p.key, openai_call(max_tokens=1_000)))
    assert ledger(world).released == []
    await asyncio.sleep(0.2)
    assert await used(world) == (0, 0, 3 * 37)
    assert [tokens for _, tokens in ledger(world).released] == [32_000 - 2 * 1_000]


async def test_calls_far_apart_reserve_alone(world: World) -> None:
    p = await leasing_proxy(world, 2, seconds=0.01)
    answer(await p.proxy.call(p.key, openai_call()))
    await asyncio.sleep(0.05)
    answer(await p.proxy.call(p.key, openai_call()))
    assert reserved_ids(world) == ["call", "call"]


async def test_a_lease_takes_a_quarter_of_the_budget_left_at_most(world: World) -> None:
    """Starter: 500,000 tokens. 32 calls of 16,000 would be 512,000; after the first call
    holds 16,000, a lease may take (500,000 - 16,000) / 4 = 121,000."""
    p = await leasing_proxy(world, 3)
    for _ in range(3):
        answer(await p.proxy.call(p.key, openai_call(max_tokens=16_000)))
    assert [r.reserve_tokens for r in ledger(world).reserved] == [16_000, 121_000]
    assert HEADROOM == 4


async def test_near_the_end_of_the_budget_every_call_reserves_alone_and_is_refused_exactly(
    world: World,
) -> None:
    """With 100,000 tokens per call, a quarter of what is left never covers two calls: each
    call reserves alone, and the sixth (500,000 held) is refused by the ledger."""
    p = await leasing_proxy(world, 5)
    for _ in range(5):
        answer(await p.proxy.call(p.key, openai_call(max_tokens=100_000)))
    refused = refusal(await p.proxy.call(p.key, openai_call(max_tokens=100_000)))
    assert refused.code == "token_budget_exhausted"
    assert reserved_ids(world) == ["call"] * 6
    await p.proxy.drain()
    assert ledger(world).released == []
    assert await used(world) == (0, 0, 5 * 37)


async def test_concurrent_calls_share_one_lease_asked_once(world: World) -> None:
    p = await leasing_proxy(world, 21)
    answer(await p.proxy.call(p.key, openai_call(max_tokens=1_000)))
    results = await asyncio.gather(
        *(p.proxy.call(p.key, openai_call(max_tokens=1_000)) for _ in range(20))
    )
    assert all(answer(r).status_code == 200 for r in results)
    assert reserved_ids(world) == ["call", "lease"]
    await asyncio.sleep(0)
    await p.proxy.drain()
    assert await used(world) == (0, 0, 21 * 37)


async def test_a_spent_lease_makes_way_for_the_next(world: World) -> None:
    p = await leasing_proxy(world, 70)
    for _ in range(70):
        answer(await p.proxy.call(p.key, openai_call(max_tokens=1_000)))
    # 1 alone, then leases of 32 calls each: 32 + 32 + 5
    assert reserved_ids(world) == ["call", "lease", "lease", "lease"]
    await asyncio.sleep(0)
    await p.proxy.drain()
    assert await used(world) == (0, 0, 70 * 37)
    # each spent lease was given back as it was closed: nothing left in it
    assert sorted(tokens for _, tokens in ledger(world).released) == [0, 0, 27_000]


async def test_a_change_to_the_tenant_is_not_served_from_the_lease_it_had(
    world: World,
) -> None:
    p = await leasing_proxy(world, 4)
    for _ in range(2):
        answer(await p.proxy.call(p.key, openai_call(max_tokens=1_000)))
    tenant = world.tenant_repo.tenants[T]
    world.tenant_repo.tenants[T] = attrs.evolve(tenant, revision=tenant.revision + 1)
    # the kept copy still names the old revision: its terms' lease serves the next call,
    # whose settlement the ledger then checks against the stored revision
    answer(await p.proxy.call(p.key, openai_call(max_tokens=1_000)))
    await asyncio.sleep(0)
    await p.proxy.drain()
    # the settlements re-read the tenant; the next call is reserved on the new revision alone
    answer(await p.proxy.call(p.key, openai_call(max_tokens=1_000)))
    assert reserved_ids(world) == ["call", "lease", "call"]
    assert ledger(world).reserved[-1].tenant_revision == tenant.revision + 1
    await p.proxy.drain()
    assert await used(world) == (0, 0, 4 * 37)


async def test_calls_naming_their_message_never_draw_from_a_lease(world: World) -> None:
    p = await leasing_proxy(world, 4)
    for number in range(4):
        await world.metering.admit(T, MessageId(f"m-{number}"), max_tokens=1_000)
        answer(await p.proxy.call(p.key, openai_call(max_tokens=1_000, message_id=f"m-{number}")))
    assert reserved_ids(world) == ["call"] * 4
    assert await used(world) == (4, 0, 4 * 37)


async def test_a_failed_settlement_still_lets_its_lease_be_given_back(world: World) -> None:
    p = await leasing_proxy(world, 3, seconds=0.05)
    for _ in range(2):
        answer(await p.proxy.call(p.key, openai_call(max_tokens=1_000)))
    await asyncio.sleep(0.01)  # the whole answers settle in their own tasks
    ledger(world).down = True
    answer(await p.proxy.call(p.key, openai_call(max_tokens=1_000)))
    await asyncio.sleep(0.2)
    # the failed call's tokens go back with the lease: its reservation was never taken out
    assert [tokens for _, tokens in ledger(world).released] == [32_000 - 1_000]
    assert await used(world) == (0, 0, 2 * 37)


def admission_request() -> AdmissionRequest:
    return AdmissionRequest(
        tenant_id=T, message_id=MessageId("call-1"), day=windows(T0)[0],
        period=windows(T0)[1], message_cap=50, token_budget=500_000,
        reserve_tokens=1_000, now=T0, reservation_expires_at=T0 + timedelta(minutes=15),
        tenant_revision=3, route=OfferedRoute((ModelRef("moonshot/kimi-k2.5"),), None, Decimal(1)),
    )  # fmt: skip


def lease_terms(budget: int | None = 1_000_000) -> LeaseTerms:
    route = OfferedRoute((ModelRef("moonshot/kimi-k2.5"),), None, Decimal(1))
    return LeaseTerms(TenantId("t-1"), 3, date(2026, 3, 15), date(2026, 3, 1), budget, route)


def test_a_lease_is_worth_asking_only_after_a_recent_answer_with_room() -> None:
    """By default a lease holds 32 calls, for 2 s, and at most a quarter of the budget
    left (here 1,000,000: 250,000), and is not asked for below two calls."""
    leases = BudgetLeases()
    terms = lease_terms()
    assert not leases.worth_asking(terms, 1_000, now=10.0)
    leases.observe(terms, Counters(0, 0, 0), now=10.0)
    assert leases.worth_asking(terms, 1_000, now=11.99)
    assert not leases.worth_asking(terms, 1_000, now=12.0)
    assert leases.size(terms, 1_000) == 32_000
    assert leases.size(terms, 100_000) == 250_000
    assert leases.worth_asking(terms, 125_000, now=10.5)  # exactly two calls
    assert not leases.worth_asking(terms, 125_001, now=10.5)
    leases.refused(terms, now=10.5)
    assert not leases.worth_asking(terms, 1, now=10.6)


def test_a_lease_holds_a_whole_number_of_tokens_rounded_down() -> None:
    leases = BudgetLeases()
    terms = lease_terms(budget=1_000_003)
    assert leases.size(terms, 1_000) == 0  # no ledger answer yet: nothing to go by
    leases.observe(terms, Counters(0, 0, 0), now=0.0)
    assert leases.size(terms, 100_000) == 250_000
    assert isinstance(leases.size(terms, 100_000), int)


def test_a_refused_lease_leaves_room_for_calls_that_reserve_nothing_only() -> None:
    leases = BudgetLeases()
    terms = lease_terms()
    leases.observe(terms, Counters(0, 0, 0), now=5.0)
    leases.refused(terms, now=6.0)
    assert leases.size(terms, 1) == 0
    assert not leases.worth_asking(terms, 1, now=7.9)
    assert leases.worth_asking(terms, 0, now=7.9)  # from the refusal's time: still recent
    assert not leases.worth_asking(terms, 0, now=8.0)


def test_lease_terms_are_what_a_call_shares_with_the_lease_it_draws_from() -> None:
    request = admission_request()
    terms = LeaseTerms.of(request)
    assert terms == LeaseTerms(
        request.tenant_id, request.tenant_revision, request.day.key, request.period.key,
        request.token_budget, request.route,
    )  # fmt: skip
    next_day = attrs.evolve(request, day=windows(T0 + timedelta(days=1))[0])
    assert LeaseTerms.of(next_day) != terms
    # the call's own id, reservation and times are not terms: every call differs in them
    other_call = attrs.evolve(
        request, message_id=MessageId("call-2"), reserve_tokens=5, now=T0 + timedelta(1)
    )
    assert LeaseTerms.of(other_call) == terms


def test_a_budget_spent_past_its_end_leaves_no_room_for_a_lease() -> None:
    leases = BudgetLeases()
    terms = lease_terms(budget=1_000)
    leases.observe(terms, Counters(0, 900, 300), now=0.0)
    assert leases.size(terms, 1) == 0
    assert not leases.worth_asking(terms, 1, now=0.0)


def test_the_memory_of_recent_calls_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budget_leases, "MAX_LEASE_TERMS", 2)
    leases = BudgetLeases()
    first, second, third = lease_terms(1_000_000), lease_terms(2_000_000), lease_terms(None)
    for terms in (first, second):
        leases.observe(terms, Counters(0, 0, 0), now=0.0)
    assert leases.worth_asking(first, 1, now=0.0)
    leases.observe(third, Counters(0, 0, 0), now=0.0)  # the memory was full: emptied first
    assert not leases.worth_asking(first, 1, now=0.0)
    assert leases.worth_asking(third, 1, now=0.0)


def test_without_a_budget_a_lease_holds_its_calls_whatever_they_reserve() -> None:
    leases = BudgetLeases(calls=8)
    terms = lease_terms(budget=None)
    leases.observe(terms, Counters(0, 10**12, 0), now=0.0)
    assert leases.size(terms, 16_000) == 128_000
    assert leases.worth_asking(terms, 0, now=0.0)


def test_draws_come_out_of_a_lease_while_it_is_open_and_holds_them() -> None:
    leases = BudgetLeases()
    terms = lease_terms()
    assert leases.opened(terms) is None
    lease = BudgetLease(MessageId("lease-1"), terms, 2_500, granted=None)  # type: ignore[arg-type]
    leases.open(lease)
    assert leases.opened(terms) is lease
    assert [leases.draw(lease, 1_000) is not None for _ in range(3)] == [True, True, False]
    assert (lease.free, lease.drawing, lease.closed) == (500, 2, False)
    assert not leases.close(lease)
    assert leases.opened(terms) is None and leases.draw(lease, 1) is None


def test_a_lease_is_given_back_once_when_closed_and_its_calls_settled() -> None:
    leases = BudgetLeases()
    terms = lease_terms()
    lease = BudgetLease(MessageId("lease-1"), terms, 3_000, granted=None)  # type: ignore[arg-type]
    leases.open(lease)
    first = leases.draw(lease, 1_000)
    second = leases.draw(lease, 1_000)
    assert first is not None and second is not None
    assert not leases.settled(first)  # still open
    assert not leases.close(lease)  # a call is still drawing
    assert leases.settled(second)
    assert not leases.close(lease) and not lease.give_back()


def test_closing_every_lease_names_those_to_give_back_now() -> None:
    leases = BudgetLeases()
    idle = BudgetLease(MessageId("lease-1"), lease_terms(1), 10, granted=None)  # type: ignore[arg-type]
    busy = BudgetLease(MessageId("lease-2"), lease_terms(2), 10, granted=None)  # type: ignore[arg-type]
    leases.open(idle)
    leases.open(busy)
    assert leases.draw(busy, 1) is not None
    assert leases.close_all() == [idle]
    assert idle.closed and busy.closed
    assert leases.close_all() == []


async def test_a_drawn_call_that_fails_on_its_way_still_lets_its_lease_be_given_back(
    world: World,
) -> None:
    p = await leasing_proxy(world, 2, seconds=0.05)
    for _ in range(2):
        answer(await p.proxy.call(p.key, openai_call(max_tokens=1_000)))
    failing = attrs.evolve(p.proxy, upstream=FailingUpstream(error=RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        await failing.call(p.key, openai_call(max_tokens=1_000))
    await asyncio.sleep(0.2)
    # the failed call was charged its reservation, taken out of the lease like the other
    assert [tokens for _, tokens in ledger(world).released] == [32_000 - 2 * 1_000]
    assert await used(world) == (0, 0, 37 * 2 + 1_000)


async def test_calls_on_an_optional_fallback_hold_never_draw_from_a_lease(world: World) -> None:
    """A BYOK tenant's own key serves; the platform fallback's hold is optional."""
    world.ledger = CountingLedger(tenants=world.tenant_repo, outbox=world.outbox)
    p = await make_proxy(world, {OPENAI: [Reply(200, (openai_answer(),))] * 3}, tier="byok")
    await world.add_key()
    for _ in range(3):
        answer(await p.proxy.call(p.key, openai_call("gpt-4.1")))
    assert reserved_ids(world) == ["call"] * 3
    assert all(request.reservation_optional for request in ledger(world).reserved)


async def test_a_lease_asked_on_a_stale_tenant_copy_is_not_granted(world: World) -> None:
    p = await leasing_proxy(world, 2)
    answer(await p.proxy.call(p.key, openai_call(max_tokens=1_000)))
    tenant = world.tenant_repo.tenants[T]
    world.tenant_repo.tenants[T] = attrs.evolve(tenant, revision=tenant.revision + 1)
    answer(await p.proxy.call(p.key, openai_call(max_tokens=1_000)))
    # the lease and the call on the kept copy: tenant changed; the call again, read afresh
    assert reserved_ids(world) == ["call", "lease", "call", "call"]
    assert [r.tenant_revision for r in ledger(world).reserved][-1] == tenant.revision + 1


async def test_a_lease_the_budget_cannot_hold_is_not_asked_for_again(world: World) -> None:
    """Another process took most of the budget after the first call: the lease is refused,
    and the tenant's next calls reserve alone (a quarter of the 3,963 left after the second
    call holds less than two calls)."""
    p = await leasing_proxy(world, 3)
    answer(await p.proxy.call(p.key, openai_call(max_tokens=1_000)))
    other = attrs.evolve(world.metering, leases=BudgetLeases())
    await other.reserve_call(  # 495,000 of the 500,000
        T, MessageId("call-other"), None, 495_000, lambda tenant, route: ("upstream",)
    )
    for _ in range(2):
        answer(await p.proxy.call(p.key, openai_call(max_tokens=1_000)))
    assert reserved_ids(world) == ["call", "call", "lease", "call", "call"]
    lease_id = ledger(world).reserved[2].message_id
    assert re.fullmatch("lease-[0-9a-f]{24}", lease_id)  # 96 random bits


async def test_a_lease_refused_with_its_call_is_not_asked_for_again(world: World) -> None:
    """The budget can hold neither the lease nor the call: the next call is reserved alone
    (and refused) without asking for a lease first."""
    p = await leasing_proxy(world, 1)
    answer(await p.proxy.call(p.key, openai_call(max_tokens=1_000)))
    other = attrs.evolve(world.metering, leases=BudgetLeases())
    await other.reserve_call(
        T, MessageId("call-other"), None, 499_900, lambda tenant, route: ("upstream",)
    )
    for _ in range(2):
        refused = refusal(await p.proxy.call(p.key, openai_call(max_tokens=1_000)))
        assert refused.code == "token_budget_exhausted"
    assert reserved_ids(world) == ["call", "call", "lease", "call", "call"]


async def test_tenants_calling_at_once_each_ask_their_own_lease(world: World) -> None:
    world.ledger = CountingLedger(tenants=world.tenant_repo, outbox=world.outbox)
    await world.add_tenant("t-1")
    await world.add_tenant("t-2")
    metering = world.metering
    tenants = [TenantId("t-1"), TenantId("t-2")]

    async def reserve(tenant: TenantId, call: str) -> CallAdmission[str]:
        plan = lambda tenant, route: ("upstream",)  # noqa: E731
        return await metering.reserve_call(tenant, MessageId(call), None, 1_000, plan)

    for tenant in tenants:
        await reserve(tenant, f"call-{tenant}-first")
    drawn = await asyncio.gather(*(reserve(tenant, f"call-{tenant}") for tenant in tenants))
    leases = [admission.drawn.lease for admission in drawn if admission.drawn]
    assert [lease.terms.tenant_id for lease in leases] == tenants
    # a drawn call's admission holds its own tokens, on the tenant's route
    admission = drawn[0].admission
    assert isinstance(admission, Admission)
    assert admission.decision.held_tokens == 1_000
    assert [choice.ref for choice in admission.route.choices()] == [
        "moonshot/kimi-k2.5",
        "minimax/MiniMax-M2.1",
    ]


async def test_a_lease_that_cannot_be_given_back_is_logged_and_lapses(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    p = await leasing_proxy(world, 2)
    for _ in range(2):
        answer(await p.proxy.call(p.key, openai_call(max_tokens=1_000)))
    ledger(world).release_fails = True
    with caplog.at_level(logging.ERROR, logger="tierkeeper.metering"):
        await p.proxy.drain()
    assert [r.getMessage() for r in caplog.records] == [
        "a budget lease could not be given back; it lapses at its expiry"
    ]


async def test_ending_the_leases_waits_for_those_being_given_back(world: World) -> None:
    p = await leasing_proxy(world, 2, seconds=0.01)
    for _ in range(2):
        answer(await p.proxy.call(p.key, openai_call(max_tokens=1_000)))
    ledger(world).gate = gate = asyncio.Event()
    await asyncio.sleep(0.05)  # the lease's time is up: it is being given back
    ending = asyncio.ensure_future(p.proxy.metering.end_leases())
    await asyncio.sleep(0.01)
    assert not ending.done()
    gate.set()
    await ending
    assert len(ledger(world).released) == 1
