"""Admit and settle through the use case, on in-memory ports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import attrs
import pytest

from domain.byok import KeyStatus
from domain.ids import MessageId, TenantId
from domain.metering import (
    Admitted,
    Anomaly,
    Credential,
    RefusalReason,
    Refused,
    TokenUsage,
)
from domain.notifications import Channel, NotificationFacts, NotificationId, NotificationKind
from domain.tenants import SubscriptionStatus
from tests.fakes import InMemoryOutbox
from tests.unit.conftest import World

T = TenantId("t-1")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def mid(n: int | str) -> MessageId:
    return MessageId(f"m-{n}")


async def test_an_unknown_tenant_is_refused(world: World) -> None:
    admission = await world.metering.admit(TenantId("nobody"), mid(1))
    assert isinstance(admission.decision, Refused)
    assert admission.decision.reason is RefusalReason.TENANT_UNKNOWN


@pytest.mark.parametrize("status", [SubscriptionStatus.INCOMPLETE, SubscriptionStatus.CANCELED])
async def test_an_inactive_subscription_is_refused(
    world: World, status: SubscriptionStatus
) -> None:
    await world.add_tenant(status=status)
    decision = (await world.metering.admit(T, mid(1))).decision
    assert isinstance(decision, Refused) and decision.reason is RefusalReason.SUBSCRIPTION_INACTIVE


async def test_past_due_is_admitted_within_grace_and_refused_after(world: World) -> None:
    await world.add_tenant(status=SubscriptionStatus.PAST_DUE, past_due_since=world.clock.now())
    assert isinstance((await world.metering.admit(T, mid(1))).decision, Admitted)
    world.clock.advance(days=3)
    decision = (await world.metering.admit(T, mid(2))).decision
    assert isinstance(decision, Refused) and decision.reason is RefusalReason.SUBSCRIPTION_INACTIVE


async def test_the_50th_starter_message_is_admitted_and_the_51st_refused(world: World) -> None:
    await world.add_tenant(tier="starter")
    for n in range(50):
        admission = await world.metering.admit(T, mid(n), max_tokens=100)
        assert isinstance(admission.decision, Admitted), n
    assert admission.messages_remaining == 0
    refused = (await world.metering.admit(T, mid(50), max_tokens=100)).decision
    assert isinstance(refused, Refused)
    assert refused.reason is RefusalReason.MESSAGE_CAP_REACHED
    assert refused.resets_at is not None and refused.resets_at > world.clock.now()


async def test_the_cap_resets_at_local_midnight(world: World) -> None:
    await world.add_tenant(tier="starter", timezone="Asia/Tokyo")
    for n in range(50):
        await world.metering.admit(T, mid(n), max_tokens=10)
    refused = (await world.metering.admit(T, mid("x"), max_tokens=10)).decision
    assert isinstance(refused, Refused) and refused.resets_at is not None
    world.clock.instant = refused.resets_at
    assert isinstance((await world.metering.admit(T, mid("y"), max_tokens=10)).decision, Admitted)


async def test_a_repeated_message_id_returns_the_first_answer_and_counts_once(world: World) -> None:
    await world.add_tenant()
    first = await world.metering.admit(T, mid(1))
    again = await world.metering.admit(T, mid(1))
    assert isinstance(first.decision, Admitted) and isinstance(again.decision, Admitted)
    assert again.decision.replayed and not first.decision.replayed
    assert again.decision.reservation_id == first.decision.reservation_id
    assert (await world.metering.usage(T)).messages_used == 1


async def test_reservations_bound_admissions_by_the_token_budget(world: World) -> None:
    await world.add_tenant(tier="starter")  # 500,000 tokens
    admitted = 0
    for n in range(50):
        if isinstance(
            (await world.metering.admit(T, mid(n), max_tokens=100_000)).decision, Admitted
        ):
            admitted += 1
    assert admitted == 5
    refused = (await world.metering.admit(T, mid(99), max_tokens=1)).decision
    assert isinstance(refused, Refused) and refused.reason is RefusalReason.TOKEN_BUDGET_EXHAUSTED


async def test_settlement_replaces_the_reservation_by_the_weighted_actual(world: World) -> None:
    await world.add_tenant(tier="premium", model_preference="anthropic/claude-opus-4-6")
    admission = await world.metering.admit(T, mid(1), max_tokens=16_000)
    assert admission.tokens_remaining == 2_000_000 - 16_000
    assert await world.metering.settle(
        T, mid(1), "anthropic/claude-opus-4-6", TokenUsage(1000, 500, 0), Credential.PLATFORM
    )
    usage = await world.metering.usage(T)
    assert usage.tokens_used == 2505  # 1,500 × 1.67, rounded up
    assert usage.token_budget == 2_000_000
    assert world.ledger.records[0].weighted_tokens == 2505


async def test_settlement_is_idempotent_on_the_message_id(world: World) -> None:
    await world.add_tenant()
    await world.metering.admit(T, mid(1))
    usage = TokenUsage(100, 50)
    first = await world.metering.settle(T, mid(1), "moonshot/kimi-k2.5", usage, Credential.PLATFORM)
    again = await world.metering.settle(T, mid(1), "moonshot/kimi-k2.5", usage, Credential.PLATFORM)
    assert (first.replayed, again.replayed) == (False, True)
    assert again.counted_as is Credential.PLATFORM
    assert (await world.metering.usage(T)).tokens_used == 150


async def test_an_unknown_message_settles_without_a_reservation(world: World) -> None:
    await world.add_tenant()
    assert await world.metering.settle(T, mid("late"), "minimax/MiniMax-M2.1",
                                       TokenUsage(10, 10), Credential.PLATFORM)  # fmt: skip
    assert (await world.metering.usage(T)).tokens_used == 20


async def test_an_unsettled_reservation_expires_after_15_minutes(world: World) -> None:
    await world.add_tenant(tier="starter")
    for n in range(5):
        await world.metering.admit(T, mid(n), max_tokens=100_000)
    assert isinstance((await world.metering.admit(T, mid(5), max_tokens=1)).decision, Refused)
    world.clock.advance(minutes=15)
    assert isinstance(
        (await world.metering.admit(T, mid(6), max_tokens=100_000)).decision, Admitted
    )


async def test_message_thresholds_notify_once_per_day(world: World) -> None:
    await world.add_tenant(tier="starter")
    for n in range(52):
        await world.metering.admit(T, mid(n), max_tokens=10)
    await world.metering.admit(T, mid(3), max_tokens=10)  # a replay never notifies
    assert [(t.kind, t.percent, t.used) for t in world.thresholds()] == [
        (NotificationKind.MESSAGES, 80, 40), (NotificationKind.MESSAGES, 100, 50),
    ]  # fmt: skip


async def test_token_thresholds_notify_when_settlements_cross_them(world: World) -> None:
    await world.add_tenant(tier="starter")
    await world.metering.admit(T, mid(1), max_tokens=10)
    await world.metering.settle(T, mid(1), "moonshot/kimi-k2.5", TokenUsage(400_000, 0),
                                Credential.PLATFORM)  # fmt: skip
    await world.metering.settle(T, mid(2), "moonshot/kimi-k2.5", TokenUsage(100_000, 0),
                                Credential.PLATFORM)  # fmt: skip
    assert [(t.kind, t.percent) for t in world.thresholds()] == [
        (NotificationKind.TOKENS, 80), (NotificationKind.TOKENS, 100),
    ]  # fmt: skip


async def test_a_tier_change_takes_effect_at_once_and_spent_counts_stay(world: World) -> None:
    await world.add_tenant(tier="starter")
    for n in range(50):
        await world.metering.admit(T, mid(n), max_tokens=10)
    assert isinstance((await world.metering.admit(T, mid(50), max_tokens=10)).decision, Refused)
    await world.tenants.change_tier(T, "plus")
    admission = await world.metering.admit(T, mid(51), max_tokens=10)
    assert isinstance(admission.decision, Admitted)
    assert admission.messages_remaining == 200 - 51


async def test_byok_own_key_traffic_holds_its_fallback_reservation_until_settled(
    world: World,
) -> None:
    """The platform fallbacks an admission offers hold their reservation on the starter
    budget; the tenant's key serving the message releases it (spec §3)."""
    await world.add_tenant(tier="byok")
    await world.add_key()
    admission = await world.metering.admit(T, mid(1), max_tokens=16_000)
    assert isinstance(admission.decision, Admitted)
    assert admission.route is not None and admission.route.refs()[0] == "byok-openai/gpt-4.1"
    assert admission.tokens_remaining == 500_000 - 16_000
    assert (await world.metering.usage(T)).fallback_tokens_reserved == 16_000
    await world.metering.settle(T, mid(1), "byok-openai/gpt-4.1", TokenUsage(10**6, 0),
                                Credential.TENANT)  # fmt: skip
    usage = await world.metering.usage(T)
    assert (usage.tokens_used, usage.token_budget) == (10**6, None)
    assert (usage.fallback_tokens_used, usage.fallback_token_budget) == (0, 500_000)
    assert usage.fallback_tokens_reserved == 0


async def test_byok_with_the_fallback_budget_spent_is_admitted_without_platform_fallbacks(
    world: World,
) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    await world.metering.settle(T, mid("spent"), "moonshot/kimi-k2.5", TokenUsage(600_400, 0),
                                Credential.PLATFORM)  # fmt: skip
    admission = await world.metering.admit(T, mid(1))
    assert isinstance(admission.decision, Admitted) and admission.decision.held_tokens == 0
    assert admission.route is not None
    assert admission.route.refs() == ("byok-openai/gpt-4.1", ())
    # a platform settlement of that message is counted, at the route's dearest model
    settled = await world.metering.settle(T, mid(1), "moonshot/kimi-k2.5", TokenUsage(10, 0),
                                          Credential.PLATFORM)  # fmt: skip
    assert (settled.counted_as, settled.anomaly) == (Credential.PLATFORM, Anomaly.MODEL_NOT_OFFERED)


async def test_byok_with_an_invalid_key_and_the_fallback_budget_spent_is_refused(
    world: World,
) -> None:
    await world.add_tenant(tier="byok")
    await world.metering.settle(T, mid("spent"), "moonshot/kimi-k2.5", TokenUsage(600_400, 0),
                                Credential.PLATFORM)  # fmt: skip
    refused = (await world.metering.admit(T, mid(1))).decision
    assert isinstance(refused, Refused) and refused.reason is RefusalReason.TOKEN_BUDGET_EXHAUSTED


async def test_tenant_credential_counts_as_platform_unless_the_admission_routed_to_the_key(
    world: World,
) -> None:
    """A premium tenant has no key of its own: 2,000,000 Opus tokens reported as ``tenant``
    are counted as platform usage at Opus's weight, and the anomaly is named."""
    await world.add_tenant(tier="premium", model_preference="anthropic/claude-opus-4-6")
    await world.metering.admit(T, mid(1))
    settled = await world.metering.settle(T, mid(1), "anthropic/claude-opus-4-6",
                                          TokenUsage(2_000_000, 0), Credential.TENANT)  # fmt: skip
    assert (settled.counted_as, settled.anomaly) == (
        Credential.PLATFORM, Anomaly.TENANT_KEY_NOT_ROUTED
    )  # fmt: skip
    assert (await world.metering.usage(T)).tokens_used == 3_340_000
    refused = (await world.metering.admit(T, mid(2))).decision
    assert isinstance(refused, Refused) and refused.reason is RefusalReason.TOKEN_BUDGET_EXHAUSTED


async def test_an_unoffered_model_is_rated_at_the_routes_dearest_model(world: World) -> None:
    await world.add_tenant(tier="starter")
    await world.metering.admit(T, mid(1))
    settled = await world.metering.settle(T, mid(1), "anthropic/claude-opus-4-6",
                                          TokenUsage(1000, 0), Credential.PLATFORM)  # fmt: skip
    assert settled.anomaly is Anomaly.MODEL_NOT_OFFERED
    assert (await world.metering.usage(T)).tokens_used == 1000  # starter's dearest weighs 1.0


async def test_byok_platform_fallback_tokens_count_against_the_starter_budget(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    await world.metering.admit(T, mid(1))
    await world.metering.settle(T, mid(1), "moonshot/kimi-k2.5", TokenUsage(1000, 0),
                                Credential.PLATFORM)  # fmt: skip
    usage = await world.metering.usage(T)
    assert (usage.tokens_used, usage.fallback_tokens_used) == (0, 1000)


async def test_byok_with_an_invalid_key_reserves_against_the_starter_budget(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    world.credential_repo.rows[T] = attrs.evolve(
        world.credential_repo.rows[T], status=KeyStatus.INVALID
    )
    admission = await world.metering.admit(T, mid(1), max_tokens=16_000)
    assert admission.route is not None and admission.route.refs()[0] == "moonshot/kimi-k2.5"
    assert admission.tokens_remaining == 500_000 - 16_000


async def test_byok_invalid_key_without_fallback_is_refused(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key(allow_platform_fallback=False)
    await world.credentials.report_key_failure(T, "openai", 401)
    decision = (await world.metering.admit(T, mid(1))).decision
    assert isinstance(decision, Refused) and decision.reason is RefusalReason.BYOK_KEY_INVALID


async def test_usage_shows_the_windows(world: World) -> None:
    await world.add_tenant(timezone="Europe/Berlin", anchor=10)
    usage = await world.metering.usage(T)
    assert usage.day.starts_at <= world.clock.now() < usage.day.resets_at
    assert usage.period.key.day == 10
    assert usage.period.resets_at - usage.period.starts_at > timedelta(days=27)


async def test_usage_windows_are_the_tenants_local_day_and_period(world: World) -> None:
    await world.add_tenant(timezone="Europe/Berlin", anchor=10)  # the clock reads 13:00 in Berlin
    usage = await world.metering.usage(T)
    assert (usage.day.key, usage.day.starts_at, usage.day.resets_at) == (
        date(2026, 3, 15), utc(2026, 3, 14, 23), utc(2026, 3, 15, 23),
    )  # fmt: skip
    assert (usage.period.key, usage.period.starts_at, usage.period.resets_at) == (
        date(2026, 3, 10), utc(2026, 3, 9, 23), utc(2026, 4, 9, 22),
    )  # fmt: skip


async def test_byok_own_key_traffic_is_admitted_after_the_fallback_budget_is_spent(
    world: World,
) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    await world.metering.admit(T, mid(1))
    await world.metering.settle(T, mid(1), "moonshot/kimi-k2.5", TokenUsage(600_000, 0),
                                Credential.PLATFORM)  # fmt: skip
    assert (await world.metering.usage(T)).fallback_tokens_used == 600_000
    admission = await world.metering.admit(T, mid(2))
    assert isinstance(admission.decision, Admitted)
    assert admission.route is not None and admission.route.refs()[0] == "byok-openai/gpt-4.1"
    assert admission.tokens_remaining == 0


@attrs.define
class CountingOutbox(InMemoryOutbox):
    """Counts every write, including the ones it turns down as already notified."""

    calls: int = 0

    async def enqueue(
        self, facts: NotificationFacts, channels: Sequence[Channel], at: datetime
    ) -> NotificationId | None:
        self.calls += 1
        return await super().enqueue(facts, channels, at)


async def test_the_ledger_writes_only_the_thresholds_admissions_cross(world: World) -> None:
    counting = world.ledger.outbox = CountingOutbox()
    await world.add_tenant(tier="starter")
    for n in range(50):
        await world.metering.admit(T, mid(n), max_tokens=10)
    assert counting.calls == 2
    assert [(n.facts.tenant_id, n.facts.percent, n.facts.used) for n in counting.notes] == [
        (T, 80, 40), (T, 100, 50),
    ]  # fmt: skip
