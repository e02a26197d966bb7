"""Contracts of the tenant, credential, token, event and notifier ports: the fakes, SQLite
and PostgreSQL behave the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from domain.byok import Ciphertext, KeyStatus, StoredCredential
from domain.errors import Conflict, NotFound
from domain.ids import ModelRef, ProviderId, TenantId, TierId, UserId
from domain.metering import LimitKind, Threshold
from domain.sessions import AuthToken
from domain.tenants import SubscriptionStatus, Tenant, User
from tests.contract.conftest import Storage

pytestmark = pytest.mark.contract

T0 = datetime(2026, 3, 15, 12, 0, 0, 123456, tzinfo=UTC)


def a_tenant(n: int = 1, **changes: object) -> Tenant:
    tenant = Tenant(
        id=TenantId(f"t{n:03d}"),
        tier=TierId("starter"),
        status=SubscriptionStatus.ACTIVE,
        timezone="Europe/Berlin",
        billing_anchor_day=15,
        created_at=T0,
    )
    return attrs.evolve(tenant, **changes)


def a_user(n: int = 1, email: str | None = None) -> User:
    return User(
        id=UserId(f"u{n:03d}"),
        email=email or f"user{n}@example.com",
        password_hash="argon2$hash",
        tenant_id=TenantId(f"t{n:03d}"),
        created_at=T0,
    )


def a_credential(n: int = 1, **changes: object) -> StoredCredential:
    credential = StoredCredential(
        tenant_id=TenantId(f"t{n:03d}"),
        user_id=UserId(f"u{n:03d}"),
        provider=ProviderId("anthropic"),
        model_preference="claude-sonnet-4-6",
        ciphertext=Ciphertext("fernet", 1, "gAAAA-token"),
        key_mask="sk-ant-…x9Qa",
        status=KeyStatus.UNVERIFIED,
        allow_platform_fallback=True,
        created_at=T0,
        updated_at=T0,
    )
    return attrs.evolve(credential, **changes)


async def test_an_added_tenant_and_its_user_read_back_equal(storage: Storage) -> None:
    tenant = a_tenant(
        model_preference=ModelRef("anthropic/claude-opus-4-6"),
        stripe_customer_id="cus_1",
        stripe_subscription_id="sub_1",
        subscription_updated_at=T0 + timedelta(seconds=5),
    )
    await storage.tenants.add(tenant, a_user())
    assert await storage.tenants.get(tenant.id) == tenant
    assert await storage.tenants.user(UserId("u001")) == a_user()
    assert await storage.tenants.user_by_email("user1@example.com") == a_user()


async def test_unknown_tenants_and_users_read_as_none(storage: Storage) -> None:
    assert await storage.tenants.get(TenantId("nobody")) is None
    assert await storage.tenants.user(UserId("nobody")) is None
    assert await storage.tenants.user_by_email("nobody@example.com") is None
    assert await storage.tenants.tenant_by_stripe_customer("cus_none") is None


async def test_a_tenant_has_an_account_while_a_user_holds_it(storage: Storage) -> None:
    await storage.tenants.add(a_tenant(1), a_user(1))
    assert await storage.tenants.has_account(TenantId("t001")) is True
    assert await storage.tenants.has_account(TenantId("t002")) is False


async def test_a_taken_email_is_a_conflict_and_stores_nothing(storage: Storage) -> None:
    await storage.tenants.add(a_tenant(1), a_user(1))
    with pytest.raises(Conflict) as raised:
        await storage.tenants.add(a_tenant(2), a_user(2, email="user1@example.com"))
    assert raised.value.code == "conflict"
    assert await storage.tenants.get(TenantId("t002")) is None
    assert await storage.tenants.count() == 1


async def test_every_save_gives_the_stored_tenant_the_next_revision(storage: Storage) -> None:
    await storage.tenants.add(a_tenant(), a_user())
    added = await storage.tenants.get(TenantId("t001"))
    assert added is not None and added.revision == 0
    await storage.tenants.save(attrs.evolve(added, tier=TierId("premium")))
    await storage.tenants.save(attrs.evolve(added, tier=TierId("byok")))
    saved = await storage.tenants.get(TenantId("t001"))
    assert saved is not None
    assert (saved.tier, saved.revision) == ("byok", 2)


async def test_save_replaces_the_tenant(storage: Storage) -> None:
    await storage.tenants.add(a_tenant(), a_user())
    changed = a_tenant(
        tier=TierId("byok"),
        status=SubscriptionStatus.PAST_DUE,
        past_due_since=T0 + timedelta(days=1),
        timezone="America/New_York",
        billing_anchor_day=31,
    )
    await storage.tenants.save(changed)
    assert await storage.tenants.get(changed.id) == changed


async def test_saving_an_unknown_tenant_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFound):
        await storage.tenants.save(a_tenant(9))


async def test_a_tenant_is_found_by_its_stripe_customer(storage: Storage) -> None:
    await storage.tenants.add(a_tenant(1, stripe_customer_id="cus_a"), a_user(1))
    await storage.tenants.add(a_tenant(2, stripe_customer_id="cus_b"), a_user(2))
    found = await storage.tenants.tenant_by_stripe_customer("cus_b")
    assert found is not None and found.id == "t002"


async def test_tenant_ids_iterate_in_order_across_batches(storage: Storage) -> None:
    for n in (5, 3, 1, 4, 2):
        await storage.tenants.add(a_tenant(n), a_user(n))
    ids = [tenant_id async for tenant_id in storage.tenants.iter_tenant_ids(batch_size=2)]
    assert ids == ["t001", "t002", "t003", "t004", "t005"]
    assert await storage.tenants.count() == 5


async def test_a_credential_reads_back_equal_and_put_replaces_it(storage: Storage) -> None:
    await storage.tenants.add(a_tenant(), a_user())
    first = a_credential()
    await storage.credentials.put(first)
    assert await storage.credentials.get(first.tenant_id) == first
    second = a_credential(
        status=KeyStatus.INVALID,
        last_verified_at=T0 + timedelta(minutes=1),
        last_error="invalid_key",
        allow_platform_fallback=False,
        ciphertext=Ciphertext("vault", 3, "vault:v3:abc"),
        updated_at=T0 + timedelta(minutes=1),
    )
    await storage.credentials.put(second)
    assert await storage.credentials.get(first.tenant_id) == second


async def test_deleting_a_credential_says_whether_there_was_one(storage: Storage) -> None:
    await storage.tenants.add(a_tenant(), a_user())
    await storage.credentials.put(a_credential())
    assert await storage.credentials.delete(TenantId("t001")) is True
    assert await storage.credentials.delete(TenantId("t001")) is False
    assert await storage.credentials.get(TenantId("t001")) is None


async def test_ciphertext_is_replaced_only_if_still_the_expected_one(storage: Storage) -> None:
    await storage.tenants.add(a_tenant(), a_user())
    credential = a_credential()
    await storage.credentials.put(credential)
    new = Ciphertext("vault", 1, "vault:v1:xyz")
    stale = Ciphertext("fernet", 1, "other")
    assert await storage.credentials.replace_ciphertext(credential.tenant_id, stale, new) is False
    assert await storage.credentials.replace_ciphertext(
        credential.tenant_id, credential.ciphertext, new
    )
    assert await storage.credentials.get(credential.tenant_id) == attrs.evolve(
        credential, ciphertext=new
    )
    assert not await storage.credentials.replace_ciphertext(TenantId("t404"), new, stale)


async def test_all_credentials_iterate_in_tenant_order(storage: Storage) -> None:
    for n in (3, 1, 2):
        await storage.tenants.add(a_tenant(n), a_user(n))
        await storage.credentials.put(a_credential(n))
    seen = [c.tenant_id async for c in storage.credentials.iter_all(batch_size=2)]
    assert seen == ["t001", "t002", "t003"]


async def test_a_token_is_found_until_revoked_once(storage: Storage) -> None:
    token = AuthToken("h" * 64, "service", "gateway", T0)
    await storage.auth_tokens.add(token)
    assert await storage.auth_tokens.find(token.token_hash) == token
    assert await storage.auth_tokens.revoke(token.token_hash, T0 + timedelta(hours=1)) is True
    assert await storage.auth_tokens.revoke(token.token_hash, T0 + timedelta(hours=2)) is False
    assert await storage.auth_tokens.find(token.token_hash) is None
    assert await storage.auth_tokens.revoke("unknown", T0) is False


async def test_a_provider_event_is_remembered_once(storage: Storage) -> None:
    events = storage.processed_events
    assert await events.remember("evt_1", "invoice.paid", "applied", T0) is True
    assert await events.remember("evt_1", "invoice.paid", "ignored", T0) is False
    assert await events.outcome("evt_1") == "applied"
    assert await events.outcome("evt_2") is None


async def test_a_threshold_is_notified_once_per_tenant_kind_window_and_percent(
    storage: Storage,
) -> None:
    crossed = Threshold(TenantId("t001"), LimitKind.MESSAGES, 80, "2026-03-15", 40, 50)
    notify = storage.notifier.threshold_crossed
    assert await notify(crossed) is True
    assert await notify(attrs.evolve(crossed, used=41)) is False
    assert await notify(attrs.evolve(crossed, percent=100, used=50)) is True
    assert await notify(attrs.evolve(crossed, window_key="2026-03-16")) is True
    assert await notify(attrs.evolve(crossed, kind=LimitKind.TOKENS)) is True
    assert await notify(attrs.evolve(crossed, tenant_id=TenantId("t002"))) is True


async def test_every_key_invalidation_is_recorded(storage: Storage) -> None:
    await storage.notifier.key_invalidated(TenantId("t001"), "openai")
    await storage.notifier.key_invalidated(TenantId("t001"), "openai")
    await storage.notifier.key_invalidated(TenantId("t002"), "groq")
    assert await storage.key_invalidations("t001") == ["openai", "openai"]
