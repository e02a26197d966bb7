"""One LLM call's reservation through ``Metering.reserve_call`` (spec §13), on in-memory
ports: the budget is held without counting a message, the plan is made before anything is
reserved, and a BYOK tenant's withdrawn fallbacks leave the plan."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from domain.ids import MessageId, ModelRef, TenantId
from domain.metering import (
    Admitted,
    Credential,
    TokenUsage,
)
from domain.routing import Route
from domain.tenants import SubscriptionStatus, Tenant
from domain.use_cases.metering import CallAdmission
from tests.unit.conftest import World

T = TenantId("t-1")
CALL = MessageId("call-1")


def route_refs(_tenant: Tenant, route: Route) -> Sequence[ModelRef]:
    """A plan that serves every model of the route."""
    return [choice.ref for choice in route.choices()]


def no_upstream(_tenant: Tenant, _route: Route) -> Sequence[ModelRef]:
    return ()


def any_model(_tenant: Tenant, _route: Route) -> Sequence[ModelRef]:
    """A plan that would serve a model whatever the route offers."""
    return [ModelRef("moonshot/kimi-k2.5")]


async def test_a_call_holds_its_reservation_and_counts_no_message(world: World) -> None:
    await world.add_tenant(tier="starter")
    reserved = await world.metering.reserve_call(T, CALL, None, 1_000, route_refs)
    assert reserved.admission is not None
    assert isinstance(reserved.admission.decision, Admitted)
    assert reserved.ledger_id == CALL
    assert reserved.admission.messages_remaining == 50
    assert reserved.admission.tokens_remaining == 500_000 - 1_000
    usage = await world.metering.usage(T)
    assert (usage.messages_used, usage.tokens_reserved) == (0, 1_000)
    await world.metering.settle(T, CALL, "moonshot/kimi-k2.5", TokenUsage(300, 0),
                                Credential.PLATFORM)  # fmt: skip
    usage = await world.metering.usage(T)
    assert (usage.messages_used, usage.tokens_reserved, usage.tokens_used) == (0, 0, 300)


async def test_a_call_nothing_serves_is_refused_having_reserved_nothing(world: World) -> None:
    await world.add_tenant(tier="starter")
    reserved = await world.metering.reserve_call(T, CALL, None, 1_000, no_upstream)
    assert reserved == CallAdmission(None, CALL, ())
    usage = await world.metering.usage(T)
    assert (usage.messages_used, usage.tokens_reserved) == (0, 0)


async def test_a_call_naming_its_held_message_settles_against_it(world: World) -> None:
    await world.add_tenant(tier="starter")
    await world.metering.admit(T, MessageId("m-1"), max_tokens=2_000)
    reserved = await world.metering.reserve_call(T, CALL, MessageId("m-1"), 1_000, route_refs)
    assert reserved.ledger_id == MessageId("m-1")
    usage = await world.metering.usage(T)
    assert (usage.messages_used, usage.tokens_reserved) == (1, 2_000)


async def test_a_second_call_naming_the_same_message_holds_its_own_and_both_count(
    world: World,
) -> None:
    """Only one call may use a message's reservation: the other reserves under its own id,
    and the period counts both calls' usage (none settles as a replay of the other)."""
    await world.add_tenant(tier="starter")
    await world.metering.admit(T, MessageId("m-1"), max_tokens=2_000)
    first = await world.metering.reserve_call(T, CALL, MessageId("m-1"), 1_000, route_refs)
    other = MessageId("call-2")
    second = await world.metering.reserve_call(T, other, MessageId("m-1"), 1_000, route_refs)
    assert (first.ledger_id, second.ledger_id) == (MessageId("m-1"), other)
    assert second.admission is not None
    assert second.admission.tokens_remaining == 500_000 - 3_000
    for ledger_id, used in ((first.ledger_id, 400), (second.ledger_id, 700)):
        settled = await world.metering.settle(
            T, ledger_id, "moonshot/kimi-k2.5", TokenUsage(used, 0), Credential.PLATFORM
        )
        assert not settled.replayed
    usage = await world.metering.usage(T)
    assert (usage.messages_used, usage.tokens_reserved, usage.tokens_used) == (1, 0, 1_100)


async def test_a_past_due_tenant_within_its_grace_days_may_call(world: World) -> None:
    since = world.clock.now() - timedelta(days=1)
    await world.add_tenant(tier="starter", status=SubscriptionStatus.PAST_DUE,
                           past_due_since=since)  # fmt: skip
    reserved = await world.metering.reserve_call(T, CALL, None, 1_000, route_refs)
    assert reserved.admission is not None
    assert isinstance(reserved.admission.decision, Admitted)


async def test_a_byok_call_beyond_the_fallback_budget_is_planned_on_the_tenants_key_alone(
    world: World,
) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    await world.metering.settle(T, MessageId("spent"), "moonshot/kimi-k2.5",
                                TokenUsage(600_400, 0), Credential.PLATFORM)  # fmt: skip
    reserved = await world.metering.reserve_call(T, CALL, None, 1_000, route_refs)
    assert reserved.admission is not None
    decision = reserved.admission.decision
    assert isinstance(decision, Admitted) and decision.held_tokens == 0
    assert reserved.plan == [ModelRef("byok-openai/gpt-4.1")]
    # the admission offers the route the plan was drawn from: the withdrawn one
    assert reserved.admission.route.refs() == ("byok-openai/gpt-4.1", ())
