"""The unit of work, the same on the in-memory fake, SQLite and PostgreSQL: a change and the
notification it causes are written together when the block ends, and neither is when it
raises after both were written; inside the block its own writes are visible. Account
changes (a password, a mailed code) are kept or dropped with their mail the same way."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest

from domain.accounts import OneTimePurpose, OneTimeToken
from domain.byok import KeyStatus
from domain.ids import TenantId
from domain.notifications import RECIPIENT, Channel, NotificationFacts, NotificationKind
from domain.sessions import AuthToken
from domain.subscription_records import Subscription
from domain.tenants import SubscriptionStatus
from tests.contract.conftest import Storage
from tests.contract.test_repositories_contract import T0, a_credential, a_tenant, a_user

pytestmark = pytest.mark.contract

T = TenantId("t001")
CHANNELS = (Channel.EMAIL, Channel.WEBHOOK)


class Boom(Exception):
    """Raised inside the block, after the writes and before the commit."""


def key_rejected() -> NotificationFacts:
    return NotificationFacts(T, NotificationKind.KEY_INVALIDATED, provider="openai")


async def stored(storage: Storage) -> Storage:
    await storage.tenants.add(a_tenant(1), a_user(1))
    await storage.credentials.put(a_credential(1))
    return storage


async def kinds(storage: Storage) -> list[str]:
    return [n.api_kind() for n in await storage.outbox.for_tenant(T, 10)]


async def test_a_change_and_its_notification_commit_together(storage: Storage) -> None:
    await stored(storage)
    async with storage.unit_of_work.begin() as tx:
        credential = await tx.credentials.get(T)
        await tx.credentials.put(attrs.evolve(credential, status=KeyStatus.INVALID))
        written = await tx.outbox.enqueue(key_rejected(), CHANNELS, T0)
        assert written is not None
    stored_credential = await storage.credentials.get(T)
    assert stored_credential is not None and stored_credential.status is KeyStatus.INVALID
    assert await kinds(storage) == ["key_invalidated"]
    assert sorted(await storage.outbox.deliveries(written)) == [
        ("email", "pending", 0),
        ("webhook", "pending", 0),
    ]


async def test_an_error_before_the_commit_leaves_neither_the_change_nor_the_notification(
    storage: Storage,
) -> None:
    await stored(storage)
    before_tenant = await storage.tenants.get(T)
    with pytest.raises(Boom):
        async with storage.unit_of_work.begin() as tx:
            tenant = await tx.tenants.get(T)
            await tx.tenants.save(attrs.evolve(tenant, status=SubscriptionStatus.PAST_DUE))
            credential = await tx.credentials.get(T)
            await tx.credentials.put(attrs.evolve(credential, status=KeyStatus.INVALID))
            assert await tx.outbox.enqueue(key_rejected(), CHANNELS, T0) is not None
            raise Boom
    assert await storage.tenants.get(T) == before_tenant
    credential = await storage.credentials.get(T)
    assert credential is not None and credential.status is a_credential(1).status
    assert await kinds(storage) == []
    claimed = await storage.outbox.claim(T0, timedelta(minutes=5), 10)
    assert claimed == []


async def test_inside_the_block_its_own_writes_are_read_back(storage: Storage) -> None:
    await stored(storage)
    async with storage.unit_of_work.begin() as tx:
        tenant = await tx.tenants.get(T)
        await tx.tenants.save(attrs.evolve(tenant, tier="premium"))
        again = await tx.tenants.get(T)
        assert again is not None and again.tier == "premium"
        assert again.revision == tenant.revision + 1
    after = await storage.tenants.get(T)
    assert after is not None and after.tier == "premium"


async def test_a_notification_already_stored_is_not_written_twice_in_a_unit_of_work(
    storage: Storage,
) -> None:
    await stored(storage)
    once = NotificationFacts(T, NotificationKind.PAYMENT_FAILED, "2026-03-15", 0)
    async with storage.unit_of_work.begin() as tx:
        assert await tx.outbox.enqueue(once, CHANNELS, T0) is not None
    async with storage.unit_of_work.begin() as tx:
        assert await tx.outbox.enqueue(once, CHANNELS, T0) is None
    assert await kinds(storage) == ["payment_failed"]


async def test_a_subscription_record_is_kept_or_dropped_with_its_notice(storage: Storage) -> None:
    """A scheduled end is written with its notice; a crash before the commit leaves the
    record as it was (read back through a new unit of work, as the fake and SQL share no
    other subscription view here)."""
    await stored(storage)
    record = Subscription(T, "sub_1", T0, T0 + timedelta(days=30))
    async with storage.unit_of_work.begin() as tx:
        await tx.subscriptions.save(record)
    ends = NotificationFacts(
        T, NotificationKind.CANCELLATION_SCHEDULED, (T0 + timedelta(days=30)).isoformat(), 0
    )
    with pytest.raises(Boom):
        async with storage.unit_of_work.begin() as tx:
            await tx.subscriptions.save(attrs.evolve(record, cancel_at_period_end=True))
            await tx.outbox.enqueue(ends, CHANNELS, T0)
            raise Boom
    async with storage.unit_of_work.begin() as tx:
        assert await tx.subscriptions.get(T) == record
    assert await kinds(storage) == []
    async with storage.unit_of_work.begin() as tx:
        await tx.subscriptions.save(attrs.evolve(record, cancel_at_period_end=True))
        await tx.outbox.enqueue(ends, CHANNELS, T0)
    async with storage.unit_of_work.begin() as tx:
        kept = await tx.subscriptions.get(T)
    assert kept is not None and kept.cancel_at_period_end
    assert await kinds(storage) == ["cancellation_scheduled"]


def password_changed() -> NotificationFacts:
    return NotificationFacts(
        T, NotificationKind.PASSWORD_CHANGED, detail={RECIPIENT: "user1@example.com"}
    )


async def password_hash(storage: Storage) -> str:
    user = await storage.tenants.user(a_user(1).id)
    assert user is not None
    return user.password_hash


async def test_a_password_change_its_ended_sessions_and_its_notice_are_kept_or_dropped_together(
    storage: Storage,
) -> None:
    await stored(storage)
    user_id = a_user(1).id
    await storage.auth_tokens.add(AuthToken("o" * 64, "customer", user_id, T0))
    with pytest.raises(Boom):
        async with storage.unit_of_work.begin() as tx:
            await tx.accounts.set_password_hash(user_id, "argon2$new")
            assert await tx.auth_tokens.revoke_subject(user_id, T0) == 1
            assert await tx.outbox.enqueue(password_changed(), (Channel.EMAIL,), T0) is not None
            raise Boom
    assert await password_hash(storage) == a_user(1).password_hash
    assert await storage.auth_tokens.find("o" * 64) is not None
    assert await kinds(storage) == []
    async with storage.unit_of_work.begin() as tx:
        await tx.accounts.set_password_hash(user_id, "argon2$new")
        await tx.auth_tokens.revoke_subject(user_id, T0)
        await tx.outbox.enqueue(password_changed(), (Channel.EMAIL,), T0)
    assert await password_hash(storage) == "argon2$new"
    assert await storage.auth_tokens.find("o" * 64) is None
    assert await kinds(storage) == ["password_changed"]


async def test_a_mailed_code_is_kept_or_dropped_with_its_mail(storage: Storage) -> None:
    await stored(storage)
    code = OneTimeToken(
        "c" * 64, OneTimePurpose.PASSWORD_RESET, a_user(1).id, "user1@example.com", T0,
        T0 + timedelta(minutes=30),
    )  # fmt: skip
    reset = NotificationFacts(T, NotificationKind.PASSWORD_RESET, user_id=a_user(1).id)
    with pytest.raises(Boom):
        async with storage.unit_of_work.begin() as tx:
            await tx.accounts.add_one_time_token(code)
            assert await tx.outbox.enqueue(reset, (Channel.EMAIL,), T0) is not None
            raise Boom
    assert await kinds(storage) == []
    async with storage.unit_of_work.begin() as tx:
        purpose = OneTimePurpose.PASSWORD_RESET
        assert await tx.accounts.consume_one_time_token("c" * 64, purpose, T0) is None
        await tx.accounts.add_one_time_token(code)
        await tx.outbox.enqueue(reset, (Channel.EMAIL,), T0)
    assert await kinds(storage) == ["password_reset"]
    async with storage.unit_of_work.begin() as tx:
        used = await tx.accounts.consume_one_time_token("c" * 64, OneTimePurpose.PASSWORD_RESET, T0)
        assert used is not None and used.user_id == a_user(1).id
