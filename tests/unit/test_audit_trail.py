"""The audit trail (spec §12): every listed event is recorded by the use case that does it,
with its actor and source, and no entry ever holds a key, a password or a token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from domain.audit import (
    GATEWAY,
    OPERATOR,
    PAYMENT_PROVIDER,
    Actor,
    AuditAction,
    AuditEntry,
    AuditSource,
    tenant_change_entries,
    token_id,
)
from domain.billing import EventKind, SubscriptionEvent, build_price_book
from domain.byok import CredentialInput
from domain.ids import TenantId, UserId
from domain.secrets import Secret
from domain.tenants import SubscriptionStatus
from domain.use_cases.accounts import hash_token
from domain.use_cases.billing import Billing
from domain.use_cases.key_maintenance import KeyMaintenance
from domain.use_cases.key_store_set import KeyStoreSet
from tests.fakes import (
    FakeBillingGateway,
    FakeKeyStore,
    InMemoryAuditLog,
    InMemoryAuthTokenRepository,
    InMemoryPaidInvoiceRepository,
    InMemoryProcessedEventRepository,
)
from tests.unit.conftest import ANTHROPIC_KEY, OPENAI_KEY, World, make_tenant

pytestmark = pytest.mark.unit

PASSWORD = "correct horse battery staple"
WRONG_PASSWORD = "wrong horse battery staple"


@attrs.define
class Audited:
    world: World
    audit: InMemoryAuditLog = attrs.Factory(InMemoryAuditLog)
    tokens: InMemoryAuthTokenRepository = attrs.Factory(InMemoryAuthTokenRepository)

    @property
    def credentials(self):
        return attrs.evolve(self.world.credentials, audit=self.audit)

    @property
    def tenants(self):
        return attrs.evolve(self.world.tenants, audit=self.audit)

    @property
    def accounts(self):
        return attrs.evolve(self.world.accounts(self.tokens), audit=self.audit)

    def actions(self) -> list[AuditAction]:
        return [entry.action for entry in self.audit.recorded]


@pytest.fixture
def audited(world: World) -> Audited:
    return Audited(world)


def assert_no_secret(entries: list[AuditEntry], *secrets: str) -> None:
    """No field of any entry holds any of ``secrets`` or a long piece of one."""
    for entry in entries:
        text = repr(entry) + entry.detail + entry.actor.name
        for secret in secrets:
            assert secret not in text
            assert secret[-12:] not in text


async def test_a_saved_then_replaced_then_removed_key_is_three_entries_by_the_user(
    audited: Audited,
) -> None:
    await audited.world.add_tenant("t-1", tier="byok")
    user = UserId("u-t-1")
    await audited.credentials.put(
        TenantId("t-1"), user, CredentialInput("openai", "gpt-4.1", Secret(OPENAI_KEY), None)
    )
    await audited.credentials.put(
        TenantId("t-1"),
        user,
        CredentialInput("anthropic", "claude-sonnet-4-6", Secret(ANTHROPIC_KEY), None),
    )
    await audited.credentials.put(
        TenantId("t-1"), user, CredentialInput("anthropic", "claude-sonnet-4-6", None, False)
    )
    await audited.credentials.delete(TenantId("t-1"), user)

    assert audited.actions() == [
        AuditAction.KEY_SAVED,
        AuditAction.KEY_REPLACED,
        AuditAction.KEY_SETTINGS_CHANGED,
        AuditAction.KEY_REMOVED,
    ]
    assert {entry.actor for entry in audited.audit.recorded} == {Actor(AuditSource.API, user)}
    assert all(entry.tenant_id == "t-1" for entry in audited.audit.recorded)
    assert "provider anthropic" in audited.audit.recorded[1].detail
    assert "fallback off" in audited.audit.recorded[2].detail
    assert_no_secret(audited.audit.recorded, OPENAI_KEY, ANTHROPIC_KEY)


async def test_a_key_the_gateway_reports_rejected_is_an_invalidation_by_the_gateway(
    audited: Audited,
) -> None:
    await audited.world.add_tenant("t-1", tier="byok")
    await audited.credentials.put(
        TenantId("t-1"),
        UserId("u-t-1"),
        CredentialInput("openai", "gpt-4.1", Secret(OPENAI_KEY), None),
    )
    await audited.credentials.report_key_failure(TenantId("t-1"), "openai", 401)
    await audited.credentials.report_key_failure(TenantId("t-1"), "openai", 401)

    invalidations = [e for e in audited.audit.recorded if e.action is AuditAction.KEY_INVALIDATED]
    assert len(invalidations) == 1
    assert invalidations[0].actor == GATEWAY
    assert invalidations[0].detail == "provider openai answered 401"


async def test_rotated_and_moved_keys_are_one_entry_each_by_the_operator(world: World) -> None:
    old, new = FakeKeyStore("old", 1), FakeKeyStore("new", 1)
    await world.add_tenant("t-1", tier="byok")
    await world.add_tenant("t-2", tier="byok")
    world.key_store = old
    await world.add_key("t-1")
    await world.add_key("t-2", "anthropic", ANTHROPIC_KEY, "claude-sonnet-4-6")
    audit = InMemoryAuditLog()
    operator = Actor(AuditSource.CLI, "alice")
    old.version = 2
    rotate = KeyMaintenance(world.credential_repo, KeyStoreSet(old, (new,)), audit=audit,
                            clock=world.clock, actor=operator)  # fmt: skip
    await rotate.rotate()
    move = KeyMaintenance(world.credential_repo, KeyStoreSet(new, (old,)), audit=audit,
                          clock=world.clock, actor=operator)  # fmt: skip
    await move.migrate("new")

    assert [(e.action, e.tenant_id, e.detail) for e in audit.recorded] == [
        (AuditAction.KEY_ROTATED, "t-1", "from old v1"),
        (AuditAction.KEY_ROTATED, "t-2", "from old v1"),
        (AuditAction.KEY_MOVED, "t-1", "from old v2"),
        (AuditAction.KEY_MOVED, "t-2", "from old v2"),
    ]
    assert {e.actor for e in audit.recorded} == {operator}
    assert_no_secret(audit.recorded, OPENAI_KEY, ANTHROPIC_KEY)


async def test_a_rotated_key_is_recorded_at_the_time_of_the_rotation(world: World) -> None:
    old = FakeKeyStore("old", 1)
    await world.add_tenant("t-1", tier="byok")
    world.key_store = old
    await world.add_key("t-1")
    old.version = 2
    world.clock.advance(hours=5)
    audit = InMemoryAuditLog()
    await KeyMaintenance(world.credential_repo, KeyStoreSet(old, ()), audit=audit,
                         clock=world.clock).rotate()  # fmt: skip
    assert [entry.at for entry in audit.recorded] == [world.clock.now()]


async def test_a_tier_and_status_change_by_the_operator_names_both_values(
    audited: Audited,
) -> None:
    await audited.world.add_tenant("t-1", tier="starter", status=SubscriptionStatus.INCOMPLETE)
    operator = Actor(AuditSource.CLI, "alice")
    await audited.tenants.change_tier(TenantId("t-1"), "premium", SubscriptionStatus.ACTIVE,
                                      actor=operator)  # fmt: skip
    await audited.tenants.change_tier(TenantId("t-1"), "premium")

    assert [(e.action, e.detail, e.actor) for e in audited.audit.recorded] == [
        (AuditAction.TIER_CHANGED, "tier starter -> premium", operator),
        (AuditAction.STATUS_CHANGED, "status incomplete -> active", operator),
    ]


async def test_a_subscription_event_that_changes_the_tier_is_recorded_from_the_webhook(
    world: World,
) -> None:
    await world.add_tenant("t-1", tier="starter", status=SubscriptionStatus.INCOMPLETE)
    audit = InMemoryAuditLog()
    book = build_price_book(world.catalog, (("price_premium", "premium"),))
    events = InMemoryProcessedEventRepository()
    billing = Billing(world.catalog, book, world.tenant_repo, events, FakeBillingGateway(),
                      world.configs, world.clock, "http://x", audit=audit,
                      subscriptions=world.subscriptions,
                      invoices=InMemoryPaidInvoiceRepository(),
                      unit_of_work=world.unit_of_work)  # fmt: skip
    event = SubscriptionEvent(
        event_id="evt_1",
        event_type="customer.subscription.updated",
        kind=EventKind.SUBSCRIPTION_UPDATED,
        occurred_at=world.clock.now(),
        customer_id="cus_1",
        subscription_id="sub_1",
        price_id="price_premium",
        provider_status="active",
        tenant_id=TenantId("t-1"),
    )
    await billing.handle_event(event)

    assert {(e.action, e.actor) for e in audit.recorded} >= {
        (AuditAction.TIER_CHANGED, PAYMENT_PROVIDER),
        (AuditAction.STATUS_CHANGED, PAYMENT_PROVIDER),
    }


async def test_signup_login_a_failed_login_and_logout_are_recorded_without_the_password(
    audited: Audited,
) -> None:
    signed = await audited.accounts.signup("Ann@Example.com", Secret(PASSWORD))
    user, token = await audited.accounts.login("ann@example.com", Secret(PASSWORD))
    with pytest.raises(Exception, match="wrong"):
        await audited.accounts.login("ann@example.com", Secret(WRONG_PASSWORD))
    with pytest.raises(Exception, match="wrong"):
        await audited.accounts.login("nobody@example.com", Secret(WRONG_PASSWORD))
    principal = await audited.accounts.customer(token.reveal())
    await audited.accounts.logout(principal)

    assert audited.actions() == [
        AuditAction.SIGNED_UP,
        AuditAction.TOKEN_CREATED,
        AuditAction.LOGIN,
        AuditAction.TOKEN_CREATED,
        AuditAction.LOGIN_FAILED,
        AuditAction.LOGIN_FAILED,
        AuditAction.TOKEN_REVOKED,
    ]
    failed = [e for e in audited.audit.recorded if e.action is AuditAction.LOGIN_FAILED]
    assert [(e.tenant_id, e.actor.name, e.detail) for e in failed] == [
        (signed.tenant.id, user.id, "email ann@example.com"),
        (None, "anonymous", "email nobody@example.com"),
    ]
    revoked = audited.audit.recorded[-1]
    assert revoked.detail == f"customer token {token_id(hash_token(token.reveal()))}"
    assert_no_secret(
        audited.audit.recorded, PASSWORD, WRONG_PASSWORD, token.reveal(), signed.token.reveal()
    )


async def test_a_service_token_created_by_the_operator_is_named_by_a_hash_prefix_only(
    audited: Audited,
) -> None:
    token = await audited.accounts.create_service_token("gateway-1")
    (entry,) = audited.audit.recorded
    assert entry.action is AuditAction.TOKEN_CREATED
    assert entry.actor == OPERATOR
    assert entry.detail == f"service token {token_id(hash_token(token.reveal()))} for gateway-1"
    assert_no_secret([entry], token.reveal())


def test_tenant_change_entries_are_empty_when_nothing_changed() -> None:
    tenant = make_tenant()
    assert tenant_change_entries(tenant, tenant, OPERATOR, tenant.created_at) == []


def test_a_token_is_named_by_twelve_hex_digits_of_its_hash() -> None:
    assert token_id("ab" * 32) == "ab" * 6


async def test_entries_are_answered_newest_first_per_tenant_and_since(world: World) -> None:
    log = InMemoryAuditLog()
    t0 = world.clock.now()
    for minutes, tenant in ((0, "t-1"), (1, "t-2"), (2, "t-1")):
        await log.record(AuditEntry(t0 + timedelta(minutes=minutes), AuditAction.LOGIN,
                                    OPERATOR, TenantId(tenant)))  # fmt: skip
    assert [e.at.minute - t0.minute for e in await log.entries(TenantId("t-1"))] == [2, 0]
    assert len(await log.entries(since=t0 + timedelta(minutes=1))) == 2
    assert len(await log.entries(limit=1)) == 1


def test_a_tier_and_status_change_are_two_entries_at_the_time_for_the_tenant() -> None:
    at = datetime(2026, 3, 15, 12, tzinfo=UTC)
    before = make_tenant("t-9", tier="starter")
    after = make_tenant("t-9", tier="premium", status=SubscriptionStatus.PAST_DUE)
    t9 = TenantId("t-9")
    assert tenant_change_entries(before, after, OPERATOR, at) == [
        AuditEntry(at, AuditAction.TIER_CHANGED, OPERATOR, t9, "tier starter -> premium"),
        AuditEntry(at, AuditAction.STATUS_CHANGED, OPERATOR, t9, "status active -> past_due"),
    ]
