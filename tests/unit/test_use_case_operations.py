"""The operator's view of tenants over in-memory ports: the search filters and their limits,
and one tenant's report with its usage, its key's state (never the key), recent audit and
recent notifications."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.audit import OPERATOR, AuditAction, AuditEntry
from domain.byok import Ciphertext, KeyStatus, StoredCredential
from domain.catalog import Catalog
from domain.errors import NotFound, ValidationError
from domain.ids import ProviderId, TenantId, UserId
from domain.notifications import Channel, NotificationFacts, NotificationKind
from domain.tenants import SubscriptionStatus
from domain.use_cases.operations import (
    MAX_LISTED,
    RECENT_AUDIT_ENTRIES,
    RECENT_NOTIFICATIONS,
    KeySummary,
    Operations,
    SentNotification,
    normalise_search,
)
from tests.fakes import InMemoryAuditLog, InMemoryOutbox, InMemoryTenantDirectory
from tests.unit.conftest import World


def operations(
    world: World, audit: InMemoryAuditLog | None = None, outbox: InMemoryOutbox | None = None
) -> Operations:
    return Operations(
        world.catalog, InMemoryTenantDirectory(world.tenant_repo), world.credential_repo,
        world.metering, audit or InMemoryAuditLog(), outbox or InMemoryOutbox(),
    )  # fmt: skip


async def three_tenants(world: World) -> Operations:
    await world.add_tenant("t-a", tier="starter")
    await world.add_tenant("t-b", tier="premium", status=SubscriptionStatus.PAST_DUE)
    await world.add_tenant("t-c", tier="premium")
    return operations(world)


def ids(listings: object) -> list[str]:
    return [listing.tenant.id for listing in listings]  # type: ignore[attr-defined]


# --- search --------------------------------------------------------------------------------


def test_an_email_search_is_a_trimmed_lower_case_substring() -> None:
    assert normalise_search("  T-B@Example ") == "t-b@example"


def test_a_blank_or_missing_search_is_no_filter() -> None:
    assert normalise_search(None) is None
    assert normalise_search("   ") is None
    assert normalise_search("") is None


async def test_listing_filters_by_tier_status_and_email(catalog: Catalog) -> None:
    ops = await three_tenants(World(catalog))
    assert ids(await ops.list_tenants()) == ["t-a", "t-b", "t-c"]
    assert ids(await ops.list_tenants(tier="premium")) == ["t-b", "t-c"]
    assert ids(await ops.list_tenants(status=SubscriptionStatus.PAST_DUE)) == ["t-b"]
    assert ids(await ops.list_tenants(search=" T-C@")) == ["t-c"]
    assert ids(await ops.list_tenants(tier="premium", status=SubscriptionStatus.ACTIVE)) == ["t-c"]


async def test_a_legacy_tier_id_finds_the_tier_it_became(catalog: Catalog) -> None:
    ops = await three_tenants(World(catalog))
    assert ids(await ops.list_tenants(tier="plus")) == ["t-b", "t-c"]


async def test_an_unknown_tier_is_refused_rather_than_matching_nothing(catalog: Catalog) -> None:
    ops = await three_tenants(World(catalog))
    with pytest.raises(ValidationError):
        await ops.list_tenants(tier="platinum")


async def test_the_limit_caps_the_listing(catalog: Catalog) -> None:
    ops = await three_tenants(World(catalog))
    assert ids(await ops.list_tenants(limit=1)) == ["t-a"]
    assert ids(await ops.list_tenants(limit=2)) == ["t-a", "t-b"]


async def test_a_hundred_tenants_are_listed_when_no_limit_is_given(catalog: Catalog) -> None:
    world = World(catalog)
    for n in range(101):
        await world.add_tenant(f"t-{n:03}")
    assert len(await operations(world).list_tenants()) == 100


@pytest.mark.parametrize("limit", [0, -1, MAX_LISTED + 1])
async def test_a_limit_outside_one_to_a_thousand_is_refused_naming_the_field(
    catalog: Catalog, limit: int
) -> None:
    with pytest.raises(ValidationError) as raised:
        await operations(World(catalog)).list_tenants(limit=limit)
    assert raised.value.field == "limit"
    assert raised.value.detail == "limit must be between 1 and 1000"


@pytest.mark.parametrize("limit", [1, MAX_LISTED])
async def test_the_limits_one_and_a_thousand_are_accepted(catalog: Catalog, limit: int) -> None:
    ops = await three_tenants(World(catalog))
    assert len(await ops.list_tenants(limit=limit)) == min(limit, 3)


# --- one tenant's report ---------------------------------------------------------------------


async def test_an_unknown_tenant_is_not_found_in_words_naming_it(catalog: Catalog) -> None:
    with pytest.raises(NotFound) as raised:
        await operations(World(catalog)).show(TenantId("t-none"))
    assert raised.value.detail == "tenant 't-none' is unknown"


async def test_the_report_shows_the_tenant_its_usage_and_no_key(catalog: Catalog) -> None:
    world = World(catalog)
    await world.add_tenant("t-a", tier="starter")
    await world.add_tenant("t-b", tier="premium")
    await world.add_key("t-b", provider="openai")
    report = await operations(world).show(TenantId("t-a"))
    assert report.listing.tenant.id == "t-a"
    assert report.listing.emails == ("t-a@example.com",)
    assert report.usage == await world.metering.usage(TenantId("t-a"))
    assert report.key is None
    assert report.recent_audit == ()


async def test_the_report_shows_the_keys_state_but_never_the_key(catalog: Catalog) -> None:
    world = World(catalog)
    await world.add_tenant("t-b", tier="byok")
    now = world.clock.now()
    await world.credential_repo.put(
        StoredCredential(
            tenant_id=TenantId("t-b"), user_id=UserId("u-t-b"), provider=ProviderId("anthropic"),
            model_preference="claude-opus-4-6", ciphertext=Ciphertext("vault", 3, "vault:v3:x"),
            key_mask="sk-ant-…x9Qa", status=KeyStatus.INVALID, allow_platform_fallback=True,
            created_at=now, updated_at=now, last_verified_at=now - timedelta(hours=2),
        )
    )  # fmt: skip
    report = await operations(world).show(TenantId("t-b"))
    assert report.key == KeySummary(
        provider="anthropic",
        key_mask="sk-ant-…x9Qa",
        status=KeyStatus.INVALID,
        store="vault",
        key_version=3,
        allow_platform_fallback=True,
        last_verified_at=now - timedelta(hours=2),
    )
    assert "vault:v3:x" not in repr(report)


async def test_the_report_shows_the_tenants_last_ten_audit_entries(catalog: Catalog) -> None:
    world = World(catalog)
    await world.add_tenant("t-a")
    await world.add_tenant("t-b")
    audit = InMemoryAuditLog()
    start = world.clock.now()
    for n in range(12):
        at = start + timedelta(minutes=n)
        await audit.record(AuditEntry(at, AuditAction.TIER_CHANGED, OPERATOR, TenantId("t-a")))
        await audit.record(AuditEntry(at, AuditAction.TIER_CHANGED, OPERATOR, TenantId("t-b")))
    report = await operations(world, audit).show(TenantId("t-a"))
    assert len(report.recent_audit) == RECENT_AUDIT_ENTRIES == 10
    assert {entry.tenant_id for entry in report.recent_audit} == {"t-a"}
    assert report.recent_audit[0].at == start + timedelta(minutes=11)


async def test_the_report_shows_the_tenants_last_ten_notifications_with_their_channels(
    catalog: Catalog,
) -> None:
    world = World(catalog)
    await world.add_tenant("t-a")
    outbox = InMemoryOutbox()
    start = world.clock.now()
    for n in range(12):
        for tenant in ("t-a", "t-b"):
            facts = NotificationFacts(TenantId(tenant), NotificationKind.WELCOME, f"w{n}")
            await outbox.enqueue(facts, (Channel.EMAIL, Channel.WEBHOOK), start)
    newest = (await outbox.for_tenant(TenantId("t-a"), 1))[0]
    report = await operations(world, outbox=outbox).show(TenantId("t-a"))
    assert len(report.recent_notifications) == RECENT_NOTIFICATIONS == 10
    assert {sent.note.facts.tenant_id for sent in report.recent_notifications} == {"t-a"}
    assert report.recent_notifications[0] == SentNotification(
        newest, (("email", "pending", 0), ("webhook", "pending", 0))
    )
    assert newest.facts.window_key == "w11"
