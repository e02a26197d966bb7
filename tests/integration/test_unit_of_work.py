"""Changes and the notifications they cause, in one transaction (issue #15), on SQLite and
PostgreSQL:

- an error raised after the change and its notification were written, before the commit,
  leaves neither (the unit of work's outbox writer is made to fail right after writing),
  account changes and their mail included (a password and its notice, a reset code and its
  mail); a key store outage still makes the change without its mail;
- a server killed with SIGKILL after a key invalidation committed (status and
  notification) still delivers the notification after a restart.
"""

from __future__ import annotations

import asyncio
import os
import tomllib
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from adapters.catalog.toml_loader import default_catalog_text
from adapters.sql.accounts import SqlAccountRepository, SqlAttemptLog
from adapters.sql.connections import EngineConnections
from adapters.sql.database import SqlDatabase, upgrade
from domain.billing import EventKind, SubscriptionEvent, build_price_book
from domain.byok import CredentialInput, KeyStatus
from domain.catalog import build_catalog
from domain.ids import TenantId, TierId, UserId
from domain.notifications import Channel, NotificationFacts, NotificationId
from domain.secrets import Secret
from domain.sessions import AuthToken
from domain.tenants import SubscriptionStatus
from domain.use_cases.account_changes import AccountChanges
from domain.use_cases.account_mail import NotificationsAccountMailer
from domain.use_cases.accounts import Accounts, Principal, TokenKind
from domain.use_cases.billing import Billing
from domain.use_cases.configs import Configs
from domain.use_cases.credentials import Credentials
from domain.use_cases.notifications import Notifications
from domain.use_cases.tenants import Tenants
from tests.contract.test_repositories_contract import T0, a_tenant, a_user
from tests.fakes import (
    FakeBillingGateway,
    FakeKeyStore,
    FakePasswordHasher,
    FixedClock,
    FixedProviderProbe,
    InMemoryConfigRemover,
    InMemoryConfigWriter,
    InMemoryPaidInvoiceRepository,
    InMemoryProcessedEventRepository,
)
from tests.integration.test_notifications_delivery import (
    QUIET_S,
    environ,
    hooks_for,
    mails_to,
    receiver,
    seed,
    services_for,
    sink,
    verified,
)
from tests.support import postgres
from tests.support.app_server import running_app
from tests.support.recording_server import Recorder
from tests.support.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration

__all__ = ["receiver", "services_for", "sink"]

OPENAI_KEY = "sk-test-unit-of-work-0123456789abcdef"
T = TenantId("t001")


class Crash(Exception):
    """Stands for anything failing between the last write and the commit."""


@attrs.frozen
class CrashingOutbox:
    """Writes the notification for real, then fails before the block can commit."""

    inner: Any

    async def enqueue(
        self, facts: NotificationFacts, channels: Sequence[Channel], at: datetime
    ) -> NotificationId | None:
        await self.inner.enqueue(facts, channels, at)
        raise Crash("after the change and its notification, before the commit")


@attrs.frozen
class CrashingTransaction:
    inner: Any

    @property
    def tenants(self) -> Any:
        return self.inner.tenants

    @property
    def credentials(self) -> Any:
        return self.inner.credentials

    @property
    def subscriptions(self) -> Any:
        return self.inner.subscriptions

    @property
    def accounts(self) -> Any:
        return self.inner.accounts

    @property
    def auth_tokens(self) -> Any:
        return self.inner.auth_tokens

    @property
    def outbox(self) -> CrashingOutbox:
        return CrashingOutbox(self.inner.outbox)


@attrs.frozen
class CrashingUnitOfWork:
    inner: Any

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[CrashingTransaction]:
        async with self.inner.begin() as tx:
            yield CrashingTransaction(tx)


def credentials_on(db: SqlDatabase, unit_of_work: Any) -> Credentials:
    catalog = build_catalog(tomllib.loads(default_catalog_text()))
    keys = FakeKeyStore()
    configs = Configs(catalog, db.tenants, db.credentials, keys, InMemoryConfigWriter())
    return Credentials(
        catalog, db.tenants, db.credentials, keys, FixedProviderProbe(), unit_of_work, configs,
        FixedClock(),
    )  # fmt: skip


async def test_a_crash_before_the_commit_leaves_the_key_valid_and_no_notification(
    db: SqlDatabase,
) -> None:
    await db.tenants.add(a_tenant(1, tier=TierId("byok")), a_user(1))
    crashing = credentials_on(db, CrashingUnitOfWork(db.unit_of_work))
    submitted = CredentialInput("openai", "gpt-4.1", Secret(OPENAI_KEY), None)
    await crashing.put(T, UserId("u001"), submitted)

    with pytest.raises(Crash):
        await crashing.report_key_failure(T, "openai", 401)
    stored = await db.credentials.get(T)
    assert stored is not None and stored.status is KeyStatus.UNVERIFIED
    assert await db.outbox.for_tenant(T, 10) == []

    working = credentials_on(db, db.unit_of_work)
    assert await working.report_key_failure(T, "openai", 401) is KeyStatus.INVALID
    stored = await db.credentials.get(T)
    assert stored is not None and stored.status is KeyStatus.INVALID
    (note,) = await db.outbox.for_tenant(T, 10)
    assert note.api_kind() == "key_invalidated" and note.facts.provider == "openai"


def account_changes_on(db: SqlDatabase, unit_of_work: Any, hasher: Any) -> AccountChanges:
    """The account use cases on ``db``, their mail through the real mailer and outbox."""
    catalog = build_catalog(tomllib.loads(default_catalog_text()))
    keys, clock = FakeKeyStore(), FixedClock()
    configs = Configs(catalog, db.tenants, db.credentials, keys, InMemoryConfigWriter())
    notifications = Notifications(
        catalog, db.outbox, db.notification_settings, db.tenants, db.credentials, keys, clock
    )
    store = SqlAccountRepository(EngineConnections(db.engine))
    accounts = Accounts(
        catalog, db.tenants, db.auth_tokens, hasher, configs, clock,
        SqlAttemptLog(EngineConnections(db.engine)), store,
        NotificationsAccountMailer(notifications, db.tenants), "https://tk.example",
        unit_of_work=unit_of_work,
    )  # fmt: skip
    return AccountChanges(
        accounts, db.tenants, db.auth_tokens, store, hasher, db.credentials,
        InMemoryConfigRemover(InMemoryConfigWriter()), None, clock, "https://tk.example",
    )  # fmt: skip


async def test_a_crash_before_the_commit_leaves_the_old_password_the_sessions_and_no_notice(
    db: SqlDatabase,
) -> None:
    hasher = FakePasswordHasher()
    user = attrs.evolve(a_user(1), password_hash=await hasher.hash(Secret("old password 1")))
    await db.tenants.add(a_tenant(1), user)
    principal = Principal(TokenKind.CUSTOMER, user.id, "h" * 64, user)
    new = Secret("new password 22")
    for session in ("h", "o"):  # this one and another session
        await db.auth_tokens.add(AuthToken(session * 64, "customer", user.id, T0))

    crashing = account_changes_on(db, CrashingUnitOfWork(db.unit_of_work), hasher)
    with pytest.raises(Crash):
        await crashing.change_password(principal, Secret("old password 1"), new)
    stored = await db.tenants.user(user.id)
    assert stored is not None and stored.password_hash == user.password_hash
    assert await db.auth_tokens.find("o" * 64) is not None, "the other session goes on"
    assert await db.outbox.for_tenant(T, 10) == []

    working = account_changes_on(db, db.unit_of_work, hasher)
    await working.change_password(principal, Secret("old password 1"), new)
    stored = await db.tenants.user(user.id)
    assert stored is not None and await hasher.verify(stored.password_hash, new)
    (note,) = await db.outbox.for_tenant(T, 10)
    assert note.api_kind() == "password_changed" and note.facts.user_id == user.id
    assert await db.auth_tokens.find("o" * 64) is None
    assert await db.auth_tokens.find("h" * 64) is not None


async def test_a_crash_before_the_commit_leaves_no_reset_code_and_no_mail(
    db: SqlDatabase,
) -> None:
    """The code is written with its mail: after the crash no code works and none was
    mailed; the next request writes both, and that code sets the password."""
    hasher = FakePasswordHasher()
    await db.tenants.add(a_tenant(1), a_user(1))
    crashing = account_changes_on(db, CrashingUnitOfWork(db.unit_of_work), hasher)
    with pytest.raises(Crash):
        await crashing.request_password_reset("user1@example.com")
    assert await db.outbox.for_tenant(T, 10) == []
    working = account_changes_on(db, db.unit_of_work, hasher)
    await working.request_password_reset("user1@example.com")
    (note,) = await db.outbox.for_tenant(T, 10)
    assert note.api_kind() == "password_reset" and note.facts.secret_link is not None
    link = await working.accounts.mailer.notifications.key_store.decrypt(note.facts.secret_link)
    code = Secret(link.reveal().partition("#code=")[2])
    await working.confirm_password_reset(code, Secret("brand new password"))
    stored = await db.tenants.user(a_user(1).id)
    assert stored is not None and await hasher.verify(
        stored.password_hash, Secret("brand new password")
    )


async def test_a_key_store_outage_changes_the_password_without_its_notice(
    db: SqlDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    """Today's rule, kept: the link cannot be encrypted, so the change is made and the mail
    dropped with a warning, rather than the change failing."""
    hasher = FakePasswordHasher()
    user = attrs.evolve(a_user(1), password_hash=await hasher.hash(Secret("old password 1")))
    await db.tenants.add(a_tenant(1), user)
    principal = Principal(TokenKind.CUSTOMER, user.id, "h" * 64, user)
    changes = account_changes_on(db, db.unit_of_work, hasher)
    changes.accounts.mailer.notifications.key_store.available = False
    await changes.change_password(principal, Secret("old password 1"), Secret("new password 22"))
    stored = await db.tenants.user(user.id)
    assert stored is not None and await hasher.verify(
        stored.password_hash, Secret("new password 22")
    )
    assert await db.outbox.for_tenant(T, 10) == []
    assert "password_changed mail for tenant t001 not queued" in caplog.text


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres.fresh_database("unit_of_work_kill", durable=False) as url:
        upgrade(url)
        yield url


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_server_killed_after_a_key_invalidation_committed_delivers_after_restart(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    sink: SmtpSink,
    receiver: Recorder,
    services_for: Any,
) -> None:
    """The first server's deliverer looks once an hour; the gateway reports the key
    rejected (status and notification commit in one unit of work), and the server is
    killed (SIGKILL: no shutdown runs). A second server delivers it: one mail, one signed
    webhook, with the notification's id."""
    if backend == "postgres":
        url = str(request.getfixturevalue("postgres_url"))
    else:
        url = f"sqlite:///{tmp_path / 'tierkeeper.sqlite3'}"
        upgrade(url)
    env = environ(tmp_path, url, sink)
    services = await services_for(env)
    tenant = await seed(services, receiver, "keykill")
    await services.tenants.change_tier(tenant.tenant_id, "byok")
    submitted = CredentialInput("openai", "gpt-4.1", Secret(OPENAI_KEY), None)
    await services.credentials.put(tenant.tenant_id, UserId("operator"), submitted)
    token = (await services.accounts.create_service_token("uow-kill")).reveal()
    before = {n.id for n in await services.ports.outbox.for_tenant(tenant.tenant_id, 50)}

    sleepy = {**os.environ, **env, "TIERKEEPER_NOTIFICATIONS_POLL_SECONDS": "3600"}
    with running_app(sleepy, tmp_path) as first:
        async with httpx.AsyncClient(
            base_url=first.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as client:
            response = await client.post(
                "/api/v1/gateway/key-failure",
                json={"tenant_id": tenant.tenant_id, "provider": "openai", "status_code": 401},
            )
        assert response.status_code == 200, response.text
        first.process.kill()
        first.process.wait(10)
    stored = await services.ports.credentials.get(tenant.tenant_id)
    assert stored is not None and stored.status is KeyStatus.INVALID
    (note,) = [
        n for n in await services.ports.outbox.for_tenant(tenant.tenant_id, 50)
        if n.id not in before
    ]  # fmt: skip
    assert note.api_kind() == "key_invalidated"
    assert await services.ports.outbox.deliveries(note.id) == [
        ("email", "pending", 0),
        ("webhook", "pending", 0),
    ]
    message_id = f"<{note.id}@tierkeeper.test>"
    assert [m for m in mails_to(sink, tenant.email) if m["Message-ID"] == message_id] == []
    assert [
        h for h in hooks_for(receiver, tenant.tenant_id) if h.headers["webhook-id"] == note.id
    ] == []

    with running_app({**os.environ, **env}, tmp_path):
        sink.wait_for(lambda mails: any(m["Message-ID"] == f"<{note.id}@tierkeeper.test>"
                                        for m in mails))  # fmt: skip
        receiver.wait_for(
            lambda requests: any(r.headers.get("webhook-id") == note.id for r in requests)
        )
        await asyncio.sleep(QUIET_S)

    mails = [
        m for m in mails_to(sink, tenant.email) if m["Message-ID"] == f"<{note.id}@tierkeeper.test>"
    ]
    assert len(mails) == 1
    assert mails[0]["Subject"] == "[tierkeeper] Your OpenAI key was rejected"
    hooks = [h for h in hooks_for(receiver, tenant.tenant_id) if h.headers["webhook-id"] == note.id]
    assert len(hooks) == 1
    assert verified(hooks[0], tenant.secret)["data"]["kind"] == "key_invalidated"
    assert OPENAI_KEY not in mails[0].as_string()


def tenants_on(db: SqlDatabase, unit_of_work: Any) -> Tenants:
    catalog = build_catalog(tomllib.loads(default_catalog_text()))
    keys, clock = FakeKeyStore(), FixedClock()
    configs = Configs(catalog, db.tenants, db.credentials, keys, InMemoryConfigWriter())
    notifications = Notifications(
        catalog, db.outbox, db.notification_settings, db.tenants, db.credentials, keys, clock
    )
    return Tenants(
        catalog, db.tenants, db.credentials, configs, clock, unit_of_work=unit_of_work,
        notifications=notifications,
    )  # fmt: skip


async def test_a_crash_before_the_commit_leaves_no_activation_and_no_welcome(
    db: SqlDatabase,
) -> None:
    """The operator activates a tenant: the tier, the status and the welcome commit
    together, or (crash before the commit) none of them."""
    await db.tenants.add(a_tenant(1, status=SubscriptionStatus.INCOMPLETE), a_user(1))
    with pytest.raises(Crash):
        await tenants_on(db, CrashingUnitOfWork(db.unit_of_work)).change_tier(
            T, "premium", SubscriptionStatus.ACTIVE
        )
    stored = await db.tenants.get(T)
    assert stored is not None
    assert (stored.tier, stored.status) == ("starter", SubscriptionStatus.INCOMPLETE)
    assert await db.outbox.for_tenant(T, 10) == []

    await tenants_on(db, db.unit_of_work).change_tier(T, "premium", SubscriptionStatus.ACTIVE)
    stored = await db.tenants.get(T)
    assert stored is not None
    assert (stored.tier, stored.status) == ("premium", SubscriptionStatus.ACTIVE)
    (welcome,) = await db.outbox.for_tenant(T, 10)
    assert welcome.api_kind() == "welcome" and welcome.facts.window_key == "tier:premium"


def billing_on(
    db: SqlDatabase, unit_of_work: Any, gateway: FakeBillingGateway | None = None
) -> Billing:
    catalog = build_catalog(tomllib.loads(default_catalog_text()))
    keys, clock = FakeKeyStore(), FixedClock()
    configs = Configs(catalog, db.tenants, db.credentials, keys, InMemoryConfigWriter())
    notifications = Notifications(
        catalog, db.outbox, db.notification_settings, db.tenants, db.credentials, keys, clock
    )
    return Billing(
        catalog, build_price_book(catalog, (("price_starter", "starter"),)), db.tenants,
        InMemoryProcessedEventRepository(), gateway or FakeBillingGateway(), configs, clock,
        "https://tk.example", subscriptions=db.subscriptions,
        invoices=InMemoryPaidInvoiceRepository(), unit_of_work=unit_of_work,
        notifications=notifications,
    )  # fmt: skip


def past_due_event(event_id: str) -> SubscriptionEvent:
    return SubscriptionEvent(
        event_id, "customer.subscription.updated", EventKind.SUBSCRIPTION_UPDATED,
        T0 + timedelta(hours=1), customer_id="cus_1", subscription_id="sub_1", tenant_id=T,
        price_id="price_starter", provider_status="past_due",
    )  # fmt: skip


async def test_a_crash_before_the_commit_leaves_no_past_due_and_no_payment_failed(
    db: SqlDatabase,
) -> None:
    """A webhook says the payment failed: past due and the notification commit together,
    or (crash before the commit) neither, and the event is not recorded as processed, so
    Stripe's redelivery applies it."""
    subscribed = a_tenant(
        1, stripe_customer_id="cus_1", stripe_subscription_id="sub_1",
        subscription_updated_at=T0,
    )  # fmt: skip
    await db.tenants.add(subscribed, a_user(1))
    with pytest.raises(Crash):
        await billing_on(db, CrashingUnitOfWork(db.unit_of_work)).handle_event(
            past_due_event("evt_1")
        )
    stored = await db.tenants.get(T)
    assert stored is not None and stored.status is SubscriptionStatus.ACTIVE
    assert await db.outbox.for_tenant(T, 10) == []

    result = await billing_on(db, db.unit_of_work).handle_event(past_due_event("evt_1"))
    assert not result.replayed
    stored = await db.tenants.get(T)
    assert stored is not None and stored.status is SubscriptionStatus.PAST_DUE
    (told,) = await db.outbox.for_tenant(T, 10)
    assert told.api_kind() == "payment_failed"


async def test_a_crash_before_the_commit_leaves_no_scheduled_end_and_no_notice(
    db: SqlDatabase,
) -> None:
    """Cancelling at the period end: the subscription record and the notice commit
    together, or (crash before the commit) neither; the customer can simply ask again."""
    await db.tenants.add(a_tenant(1, status=SubscriptionStatus.INCOMPLETE), a_user(1))
    gateway = FakeBillingGateway()
    billing = billing_on(db, db.unit_of_work, gateway)
    await billing.checkout(T, "starter")
    ends = T0 + timedelta(days=30)
    snapshot = gateway.subscribe("price_starter", T0, ends)
    tenant = await db.tenants.get(T)
    assert tenant is not None
    created = SubscriptionEvent(
        "evt_created", "customer.subscription.created", EventKind.SUBSCRIPTION_CREATED, T0,
        customer_id=tenant.stripe_customer_id, subscription_id=snapshot.subscription_id,
        price_id="price_starter", provider_status="active", tenant_id=T,
        current_period_start=T0, current_period_end=ends,
    )  # fmt: skip
    assert (await billing.handle_event(created)).outcome == "applied"
    told_before = {n.id for n in await db.outbox.for_tenant(T, 10)}

    with pytest.raises(Crash):
        await billing_on(db, CrashingUnitOfWork(db.unit_of_work), gateway).cancel(T)
    record = await db.subscriptions.get(T)
    assert record is not None and not record.cancel_at_period_end
    assert {n.id for n in await db.outbox.for_tenant(T, 10)} == told_before

    status = await billing_on(db, db.unit_of_work, gateway).cancel(T)
    assert status.cancel_at_period_end
    record = await db.subscriptions.get(T)
    assert record is not None and record.cancel_at_period_end
    (notice,) = [n for n in await db.outbox.for_tenant(T, 10) if n.id not in told_before]
    assert notice.api_kind() == "cancellation_scheduled"
    assert notice.facts.window_key == ends.isoformat()
