"""Contract of the outbox and notification-settings ports: the in-memory fakes, SQLite and
PostgreSQL store, deduplicate, claim, finish and list notifications alike."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.sql.database import open_database
from adapters.sql.outbox import enqueue_on_sqlite
from domain.byok import Ciphertext
from domain.ids import TenantId
from domain.notifications import (
    Channel,
    DeliveryOutcome,
    DeliveryStatus,
    NotificationFacts,
    NotificationKind,
    NotificationSettings,
)
from tests.contract.conftest import Storage
from tests.contract.test_repositories_contract import T0, a_tenant, a_user

pytestmark = pytest.mark.contract

BOTH = (Channel.EMAIL, Channel.WEBHOOK)
LEASE = timedelta(minutes=5)


async def _with_user(storage: Storage, n: int = 1) -> TenantId:
    tenant, user = a_tenant(n), a_user(n)
    await storage.tenants.add(tenant, user)
    if storage.backend == "memory":
        storage.outbox.emails[tenant.id] = user.email
    return tenant.id


def crossing(
    tenant_id: TenantId, window: str = "2026-03-15", percent: int = 80
) -> NotificationFacts:
    return NotificationFacts(
        tenant_id, NotificationKind.MESSAGES, window_key=window, percent=percent, used=40, limit=50
    )


async def test_a_notification_with_a_window_key_is_stored_once(storage: Storage) -> None:
    t = await _with_user(storage)
    first = await storage.outbox.enqueue(crossing(t), BOTH, T0)
    assert first is not None and first.startswith("msg_")
    assert await storage.outbox.enqueue(crossing(t), BOTH, T0) is None
    assert await storage.outbox.enqueue(crossing(t, percent=100), BOTH, T0) is not None
    assert await storage.outbox.enqueue(crossing(t, window="2026-03-16"), BOTH, T0) is not None
    facts = NotificationFacts(t, NotificationKind.KEY_INVALIDATED, provider="openai")
    assert await storage.outbox.enqueue(facts, BOTH, T0) != await storage.outbox.enqueue(
        facts, BOTH, T0
    )
    assert len(await storage.outbox.for_tenant(t, 50)) == 5


async def test_stored_facts_come_back_as_written_newest_first(storage: Storage) -> None:
    t = await _with_user(storage)
    link = Ciphertext("fernet", 1, "gAAAA-token")
    account = NotificationFacts(
        t,
        NotificationKind.PASSWORD_RESET,
        user_id=a_user(1).id,
        secret_link=link,
        detail={"reason": "asked"},
    )
    await storage.outbox.enqueue(crossing(t), BOTH, T0)
    await storage.outbox.enqueue(account, (Channel.EMAIL,), T0 + timedelta(seconds=1))
    newest, oldest = await storage.outbox.for_tenant(t, 50)
    assert newest.facts == account
    assert oldest.facts == crossing(t)
    assert oldest.created_at == T0
    assert oldest.read_at is None


async def test_a_claim_takes_each_due_delivery_once_and_counts_the_attempt(
    storage: Storage,
) -> None:
    t = await _with_user(storage)
    note = await storage.outbox.enqueue(crossing(t), BOTH, T0)
    claims = await storage.outbox.claim(T0, LEASE, 10)
    assert sorted(c.channel.value for c in claims) == ["email", "webhook"]
    assert {c.notification.id for c in claims} == {note}
    assert {c.attempts for c in claims} == {1}
    assert {c.email_to for c in claims} == {"user1@example.com"}
    assert await storage.outbox.claim(T0, LEASE, 10) == []
    assert await storage.outbox.claim(T0 + LEASE, LEASE, 10) != [], "a lapsed lease is retaken"


async def test_a_claim_respects_its_limit_and_the_retry_time(storage: Storage) -> None:
    t = await _with_user(storage)
    await storage.outbox.enqueue(crossing(t), BOTH, T0)
    await storage.outbox.enqueue(crossing(t, percent=100), BOTH, T0 + timedelta(hours=1))
    assert len(await storage.outbox.claim(T0, LEASE, 10)) == 2, "the later one is not due"
    assert len(await storage.outbox.claim(T0 + timedelta(hours=2), LEASE, 1)) == 1


async def test_finishing_records_the_outcome_and_a_retry_reschedules(storage: Storage) -> None:
    t = await _with_user(storage)
    note = await storage.outbox.enqueue(crossing(t), BOTH, T0)
    assert note is not None
    email, webhook = sorted(
        await storage.outbox.claim(T0, LEASE, 10), key=lambda c: c.channel.value
    )
    sent = DeliveryOutcome(DeliveryStatus.SENT)
    assert await storage.outbox.finish(email, sent, T0) is True
    retry = DeliveryOutcome(DeliveryStatus.PENDING, T0 + timedelta(minutes=1), "503")
    assert await storage.outbox.finish(webhook, retry, T0) is True
    assert await storage.outbox.finish(webhook, sent, T0) is False, "the claim was spent"
    assert await storage.outbox.claim(T0 + timedelta(seconds=59), LEASE, 10) == []
    (again,) = await storage.outbox.claim(T0 + timedelta(minutes=1), LEASE, 10)
    assert (again.channel, again.attempts) == (Channel.WEBHOOK, 2)
    assert await storage.outbox.deliveries(note) == [
        ("email", "sent", 1),
        ("webhook", "pending", 2),
    ]


async def test_mark_read_touches_only_the_tenants_own_notification(storage: Storage) -> None:
    t1 = await _with_user(storage, 1)
    t2 = await _with_user(storage, 2)
    note = await storage.outbox.enqueue(crossing(t1), BOTH, T0)
    assert note is not None
    assert await storage.outbox.mark_read(t2, note, T0) is False
    assert await storage.outbox.mark_read(t1, note, T0) is True
    assert await storage.outbox.mark_read(t1, note, T0 + timedelta(hours=1)) is True
    (stored,) = await storage.outbox.for_tenant(t1, 50)
    assert stored.read_at == T0, "the first read time stays"
    assert await storage.outbox.for_tenant(t2, 50) == []


async def test_notification_settings_default_to_mail_and_round_trip(storage: Storage) -> None:
    t = await _with_user(storage)
    repo = storage.notification_settings
    assert await repo.get(t) == NotificationSettings(t, True, None, None)
    chosen = NotificationSettings(
        t, False, "https://example.com/hook", Ciphertext("fernet", 2, "gAAAA-secret")
    )
    await repo.put(chosen)
    assert await repo.get(t) == chosen
    await repo.put(NotificationSettings(t, True, None, None))
    assert await repo.get(t) == NotificationSettings(t, True, None, None)


async def test_a_notification_written_on_the_sqlite_ledgers_own_connection_is_delivered(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """``enqueue_on_sqlite`` (for the SQLite ledger's transaction) writes what ``SqlOutbox``
    reads, claims and deduplicates, instants included."""
    path = tmp_path / "ledger.sqlite3"
    shutil.copyfile(sqlite_template, path)
    db = await open_database(f"sqlite:///{path}", pool_size=2)
    try:
        tenant, user = a_tenant(1), a_user(1)
        await db.tenants.add(tenant, user)
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            written = enqueue_on_sqlite(conn, crossing(tenant.id), BOTH, T0)
            again = enqueue_on_sqlite(conn, crossing(tenant.id), BOTH, T0)
            conn.execute("COMMIT")
        finally:
            conn.close()
        assert written is not None and again is None
        (stored,) = await db.outbox.for_tenant(tenant.id, 10)
        assert (stored.id, stored.facts, stored.created_at) == (written, crossing(tenant.id), T0)
        assert await db.outbox.claim(T0 - timedelta(microseconds=1), LEASE, 10) == []
        claims = await db.outbox.claim(T0, LEASE, 10)
        assert sorted(c.channel.value for c in claims) == ["email", "webhook"]
        assert {c.email_to for c in claims} == {user.email}
    finally:
        await db.close()
