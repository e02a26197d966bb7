"""Config regeneration and tenant changes through the use cases."""

from __future__ import annotations

import asyncio

import attrs
import pytest

from domain.errors import NotFound, ValidationError
from domain.ids import TenantId
from domain.notifications import NotificationKind
from domain.openclaw_model import TenantConfig
from domain.tenants import SubscriptionStatus, Tenant
from domain.use_cases.notifications import Notifications
from tests.fakes import InMemoryConfigWriter
from tests.unit.conftest import World


async def test_regenerate_counts_written_unchanged_and_failed(world: World) -> None:
    for n in range(3):
        await world.add_tenant(f"t-{n}", tier="starter")
    first = await world.configs.regenerate()
    assert (first.written, first.unchanged, first.failed) == (3, 0, ())
    seen: list[tuple[str, str]] = []
    again = await world.configs.regenerate(progress=lambda t, outcome: seen.append((t, outcome)))
    assert (again.written, again.unchanged, again.ok()) == (0, 3, True)
    assert seen == [("t-0", "unchanged"), ("t-1", "unchanged"), ("t-2", "unchanged")]


async def test_one_failing_tenant_does_not_stop_the_others(world: World) -> None:
    await world.add_tenant("t-0", tier="byok")
    await world.add_key("t-0")
    await world.add_tenant("t-1", tier="starter")
    world.key_store.available = False
    world.writer.written.clear()
    summary = await world.configs.regenerate([TenantId("t-0"), TenantId("t-1"), TenantId("t-9")])
    assert summary.written == 1 and not summary.ok()
    assert [t for t, _ in summary.failed] == ["t-0", "t-9"]
    assert "down" in summary.failed[0][1]


async def test_an_invalid_byok_key_is_not_decrypted_for_the_config(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    await world.credentials.report_key_failure(TenantId("t-1"), "openai", 401)
    world.key_store.available = False
    config = await world.configs.build(TenantId("t-1"))
    assert config.secrets == ()


async def test_change_tier_accepts_legacy_ids_and_rewrites_the_config(world: World) -> None:
    await world.add_tenant(tier="starter", status=SubscriptionStatus.INCOMPLETE)
    changed = await world.tenants.change_tier(TenantId("t-1"), "plus", SubscriptionStatus.ACTIVE)
    assert (changed.tier, changed.status) == ("premium", SubscriptionStatus.ACTIVE)
    assert world.writer.written[TenantId("t-1")].route.refs()[0] == "anthropic/claude-sonnet-4-6"


async def test_change_tier_of_an_unknown_tenant_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        await world.tenants.change_tier(TenantId("ghost"), "starter")


async def test_update_validates_the_time_zone_and_the_model(world: World) -> None:
    await world.add_tenant(tier="premium")
    tenant = await world.tenants.update(TenantId("t-1"), timezone="Asia/Tokyo")
    assert tenant.timezone == "Asia/Tokyo" and world.writer.writes == 0
    with pytest.raises(ValidationError) as raised:
        await world.tenants.update(TenantId("t-1"), timezone="Mars/Base")
    assert raised.value.field == "timezone"
    chosen = await world.tenants.update(
        TenantId("t-1"), model_preference="anthropic/claude-opus-4-6"
    )
    assert world.writer.written[TenantId("t-1")].route.refs()[0] == "anthropic/claude-opus-4-6"
    cleared = await world.tenants.update(TenantId("t-1"), clear_model_preference=True)
    assert chosen.model_preference and cleared.model_preference is None


async def test_the_overview_carries_the_route_and_welcome(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    overview = await world.tenants.overview(TenantId("t-1"))
    assert overview.route.refs()[0] == "byok-openai/gpt-4.1"
    assert "GPT-4.1 on your OpenAI key" in overview.welcome_message


@attrs.define
class SlowWriter(InMemoryConfigWriter):
    """Counts how many writes are in flight at once."""

    in_flight: int = 0
    peak: int = 0

    async def write(self, config: TenantConfig) -> bool:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0.001)
        self.in_flight -= 1
        return await super().write(config)


async def test_regenerate_writes_several_tenants_at_once_but_no_more_than_asked(
    world: World,
) -> None:
    for n in range(10):
        await world.add_tenant(f"t-{n}", tier="starter")
    world.writer = SlowWriter()
    summary = await world.configs.regenerate(concurrency=3)
    assert (summary.written, world.writer.peak) == (10, 3)


async def test_regenerate_writes_eight_tenants_at_once_unless_told(world: World) -> None:
    for n in range(10):
        await world.add_tenant(f"t-{n}", tier="starter")
    world.writer = SlowWriter()
    summary = await world.configs.regenerate()
    assert (summary.written, world.writer.peak) == (10, 8)


@pytest.mark.parametrize("concurrency", [1, 0])
async def test_regenerate_with_a_concurrency_of_one_or_less_writes_one_tenant_at_a_time(
    world: World, concurrency: int
) -> None:
    for n in range(3):
        await world.add_tenant(f"t-{n}", tier="starter")
    world.writer = SlowWriter()
    summary = await world.configs.regenerate(concurrency=concurrency)
    assert (summary.written, world.writer.peak) == (3, 1)


async def test_a_write_failing_in_the_os_is_reported_by_error_class_and_reason(
    world: World,
) -> None:
    class ReadOnly(InMemoryConfigWriter):
        async def write(self, config: TenantConfig) -> bool:
            raise PermissionError(13, "Permission denied", "/var/tenants/t-1/openclaw.json")

    await world.add_tenant("t-1", tier="starter")
    world.writer = ReadOnly()
    summary = await world.configs.regenerate()
    assert summary.failed == ((TenantId("t-1"), "PermissionError: Permission denied"),)


async def test_an_unknown_tenant_is_not_found_by_its_id(world: World) -> None:
    with pytest.raises(NotFound) as raised:
        await world.tenants.get(TenantId("ghost"))
    assert (raised.value.code, raised.value.detail) == ("not_found", "tenant 'ghost' is unknown")


async def test_the_overview_carries_the_tenant(world: World) -> None:
    tenant = await world.add_tenant(tier="premium")
    overview = await world.tenants.overview(TenantId("t-1"))
    assert overview.tenant == tenant


async def test_a_tier_change_into_past_due_starts_the_grace_clock_now(world: World) -> None:
    await world.add_tenant(tier="starter")
    changed = await world.tenants.change_tier(
        TenantId("t-1"), "premium", SubscriptionStatus.PAST_DUE
    )
    assert (changed.status, changed.past_due_since) == (
        SubscriptionStatus.PAST_DUE, world.clock.now(),
    )  # fmt: skip
    assert await world.tenant_repo.get(TenantId("t-1")) == changed


async def test_changing_only_the_time_zone_keeps_the_model_choice(world: World) -> None:
    await world.add_tenant(tier="premium", model_preference="anthropic/claude-opus-4-6")
    tenant = await world.tenants.update(TenantId("t-1"), timezone="Asia/Tokyo")
    assert (tenant.timezone, tenant.model_preference) == ("Asia/Tokyo", "anthropic/claude-opus-4-6")
    assert world.writer.writes == 0


async def test_an_activation_by_the_operator_welcomes_in_the_catalogs_words(
    world: World,
) -> None:
    await world.add_tenant(tier="starter", status=SubscriptionStatus.INCOMPLETE)
    await world.tenants.change_tier(TenantId("t-1"), "premium", SubscriptionStatus.ACTIVE)
    overview = await world.tenants.overview(TenantId("t-1"))
    welcomes = [n for n in world.outbox.notes if n.facts.kind is NotificationKind.WELCOME]
    assert [(n.facts.window_key, n.facts.detail, n.created_at) for n in welcomes] == [
        ("tier:premium", {"text": overview.welcome_message}, world.clock.now())
    ]
    assert "Premium plan" in overview.welcome_message


async def test_a_change_that_is_no_activation_welcomes_nobody(world: World) -> None:
    await world.add_tenant(tier="starter", status=SubscriptionStatus.INCOMPLETE)
    await world.tenants.change_tier(TenantId("t-1"), "premium")
    assert await world.written() == []


@attrs.frozen
class CountingWelcomes(Notifications):
    """Notifications that note each tenant a welcome is worded for."""

    worded: list[Tenant] = attrs.Factory(list)

    async def welcome_text(self, tenant: Tenant) -> str:
        self.worded.append(tenant)
        return await Notifications.welcome_text(self, tenant)


async def test_a_tier_change_words_a_welcome_only_when_it_writes_one(world: World) -> None:
    await world.add_tenant(tier="starter", status=SubscriptionStatus.INCOMPLETE)
    notifications = CountingWelcomes(*attrs.astuple(world.notifications, recurse=False))
    tenants = attrs.evolve(world.tenants, notifications=notifications)
    await tenants.change_tier(TenantId("t-1"), "starter", SubscriptionStatus.PAST_DUE)
    assert (await world.written(), notifications.worded) == ([("payment_failed", None)], [])
    active = await tenants.change_tier(TenantId("t-1"), "premium", SubscriptionStatus.ACTIVE)
    assert [kind for kind, _ in await world.written()] == ["payment_failed", "welcome"]
    assert notifications.worded == [active]
