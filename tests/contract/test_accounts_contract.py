"""The accounts' ports on every backend: the in-memory doubles, SQLite and PostgreSQL (token
listing and bulk revocation, the attempt log, account changes and single-use codes, the
account mail written to the notifications outbox), and the config remover on files and in memory."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from adapters.openclaw.remover import FileConfigRemover
from adapters.sql.accounts import SqlAccountRepository, SqlAttemptLog
from adapters.sql.connections import EngineConnections
from adapters.sql.database import open_database
from domain.accounts import AccountMail, AccountMailKind, OneTimePurpose, OneTimeToken
from domain.errors import Conflict
from domain.ids import TenantId, UserId
from domain.notifications import NotificationKind, channels_for
from domain.secrets import Secret
from domain.sessions import AuthToken
from domain.throttle import Attempts
from domain.use_cases.account_mail import NotificationsAccountMailer
from tests.contract.conftest import BACKENDS, notifications_on
from tests.contract.test_repositories_contract import T0, a_tenant, a_user
from tests.fakes import (
    InMemoryAccountMailer,
    InMemoryAccountRepository,
    InMemoryAttemptLog,
    InMemoryAuthTokenRepository,
    InMemoryConfigRemover,
    InMemoryConfigWriter,
    InMemoryOutbox,
    InMemoryTenantRepository,
)
from tests.support import postgres

pytestmark = pytest.mark.contract


@attrs.frozen
class AccountStorage:
    backend: str
    tenants: Any
    auth_tokens: Any
    attempts: Any
    accounts: Any
    mailer: Any
    outbox: Any = None


async def write_mail(storage: AccountStorage, mail: AccountMail) -> None:
    """Prepare ``mail`` and write it to the outbox, as the accounts use cases do."""
    facts = await storage.mailer.prepare(mail)
    assert facts is not None
    await storage.outbox.enqueue(facts, channels_for(facts.kind), T0)


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AccountStorage]:
    if request.param == "memory":
        tenants = InMemoryTenantRepository()
        tokens = InMemoryAuthTokenRepository()
        outbox = InMemoryOutbox()
        yield AccountStorage(
            "memory",
            tenants,
            tokens,
            InMemoryAttemptLog(),
            InMemoryAccountRepository(tenants, tokens),
            InMemoryAccountMailer(outbox),
            outbox,
        )
        return
    if request.param == "sqlite":
        path = tmp_path / "tierkeeper.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_url")
        postgres.truncate_all(url)
    db = await open_database(url, pool_size=4)
    try:
        yield AccountStorage(
            request.param,
            db.tenants,
            db.auth_tokens,
            SqlAttemptLog(EngineConnections(db.engine)),
            SqlAccountRepository(EngineConnections(db.engine)),
            NotificationsAccountMailer(
                notifications_on(db.tenants, db.credentials, db.outbox, db.notification_settings),
                db.tenants,
            ),
            db.outbox,
        )
    finally:
        await db.close()


async def test_tokens_are_listed_by_kind_and_subject_oldest_first(storage: AccountStorage) -> None:
    tokens = storage.auth_tokens
    await tokens.add(AuthToken("b" * 64, "customer", "u-1", T0 + timedelta(minutes=1)))
    await tokens.add(AuthToken("a" * 64, "customer", "u-1", T0))
    await tokens.add(AuthToken("c" * 64, "customer", "u-2", T0))
    await tokens.add(AuthToken("d" * 64, "service", "gateway", T0))
    await tokens.revoke("c" * 64, T0)
    listed = await tokens.live_for_subject("customer", "u-1")
    assert [x.token_hash[0] for x in listed] == ["a", "b"]
    assert [x.subject for x in await tokens.live_for_subject("service")] == ["gateway"]
    assert await tokens.live_for_subject("customer", "u-2") == []


async def test_a_touched_token_reads_back_its_last_use(storage: AccountStorage) -> None:
    token = AuthToken("a" * 64, "customer", "u-1", T0)
    await storage.auth_tokens.add(token)
    await storage.auth_tokens.touch(token.token_hash, T0 + timedelta(hours=2))
    found = await storage.auth_tokens.find(token.token_hash)
    assert found == attrs.evolve(token, last_used_at=T0 + timedelta(hours=2))


async def test_revoking_a_subject_keeps_the_one_named_and_others_subjects(
    storage: AccountStorage,
) -> None:
    tokens = storage.auth_tokens
    for name, subject in (("a", "u-1"), ("b", "u-1"), ("c", "u-1"), ("d", "u-2")):
        await tokens.add(AuthToken(name * 64, "customer", subject, T0))
    assert await tokens.revoke_subject("u-1", T0, keep="b" * 64) == 2
    assert await tokens.find("a" * 64) is None
    assert await tokens.find("b" * 64) is not None
    assert await tokens.find("d" * 64) is not None
    assert await tokens.revoke_subject("u-1", T0) == 1
    assert await tokens.revoke_subject("u-1", T0) == 0


async def test_failures_count_up_per_key_until_cleared(storage: AccountStorage) -> None:
    log = storage.attempts
    assert await log.get("k1") == Attempts()
    assert await log.record_failure("k1", T0) == Attempts(1, T0)
    later = T0 + timedelta(seconds=5)
    assert await log.record_failure("k1", later) == Attempts(2, later)
    assert await log.get("k1") == Attempts(2, later)
    assert await log.get("k2") == Attempts()
    await log.clear("k1")
    await log.clear("never-seen")
    assert await log.get("k1") == Attempts()


async def test_counts_older_than_an_instant_are_forgotten(storage: AccountStorage) -> None:
    log = storage.attempts
    await log.record_failure("old", T0)
    await log.record_failure("new", T0 + timedelta(hours=2))
    assert await log.forget_before(T0 + timedelta(hours=1)) == 1
    assert await log.get("old") == Attempts()
    assert await log.get("new") == Attempts(1, T0 + timedelta(hours=2))


async def add_user(storage: AccountStorage, n: int = 1) -> UserId:
    user = a_user(n)
    await storage.tenants.add(a_tenant(n), user)
    return user.id


def a_code(user_id: UserId, purpose: OneTimePurpose, digest: str = "h" * 64) -> OneTimeToken:
    return OneTimeToken(
        digest, purpose, user_id, "code@example.com", T0, T0 + timedelta(minutes=30)
    )


async def test_a_code_is_consumed_once_for_its_purpose_before_it_expires(
    storage: AccountStorage,
) -> None:
    user_id = await add_user(storage)
    code = a_code(user_id, OneTimePurpose.PASSWORD_RESET)
    await storage.accounts.add_one_time_token(code)
    assert (
        await storage.accounts.consume_one_time_token(
            code.token_hash, OneTimePurpose.VERIFY_EMAIL, T0
        )
        is None
    )
    used = await storage.accounts.consume_one_time_token(
        code.token_hash, OneTimePurpose.PASSWORD_RESET, T0 + timedelta(minutes=1)
    )
    assert used == attrs.evolve(code, used_at=T0 + timedelta(minutes=1))
    assert (
        await storage.accounts.consume_one_time_token(
            code.token_hash, OneTimePurpose.PASSWORD_RESET, T0 + timedelta(minutes=2)
        )
        is None
    )


async def test_an_expired_code_is_not_consumed(storage: AccountStorage) -> None:
    user_id = await add_user(storage)
    code = a_code(user_id, OneTimePurpose.PASSWORD_RESET)
    await storage.accounts.add_one_time_token(code)
    assert (
        await storage.accounts.consume_one_time_token(
            code.token_hash, OneTimePurpose.PASSWORD_RESET, code.expires_at
        )
        is None
    )
    assert (
        await storage.accounts.consume_one_time_token("unknown", OneTimePurpose.PASSWORD_RESET, T0)
        is None
    )


async def test_password_and_email_changes_read_back_through_the_tenant_repository(
    storage: AccountStorage,
) -> None:
    user_id = await add_user(storage, 1)
    other = await add_user(storage, 2)
    await storage.accounts.set_password_hash(user_id, "new-hash")
    await storage.accounts.mark_email_verified(user_id, T0)
    assert await storage.accounts.email_verified_at(user_id) == T0
    await storage.accounts.set_email(user_id, "renamed@example.com")
    user = await storage.tenants.user(user_id)
    assert (user.password_hash, user.email) == ("new-hash", "renamed@example.com")
    assert await storage.accounts.email_verified_at(user_id) is None
    taken = (await storage.tenants.user(other)).email
    with pytest.raises(Conflict):
        await storage.accounts.set_email(user_id, taken)
    assert (await storage.tenants.user(user_id)).email == "renamed@example.com"


async def test_deleting_a_user_removes_it_its_tokens_codes_and_mail_but_keeps_the_tenant(
    storage: AccountStorage,
) -> None:
    user_id = await add_user(storage, 1)
    kept = await add_user(storage, 2)
    email = (await storage.tenants.user(user_id)).email
    await storage.auth_tokens.add(AuthToken("a" * 64, "customer", user_id, T0))
    await storage.auth_tokens.add(AuthToken("b" * 64, "customer", kept, T0))
    await storage.accounts.add_one_time_token(a_code(user_id, OneTimePurpose.VERIFY_EMAIL))
    for who, tenant in (
        (email, a_tenant(1).id),
        ((await storage.tenants.user(kept)).email, a_tenant(2).id),
    ):
        reset = AccountMail(AccountMailKind.PASSWORD_RESET, who, tenant, "https://tk.example/r")
        await write_mail(storage, reset)
    await storage.accounts.delete_user(user_id)
    if storage.backend != "memory":  # the real account store also forgets the user's mail
        assert await storage.outbox.for_tenant(a_tenant(1).id, 10) == []
        assert len(await storage.outbox.for_tenant(a_tenant(2).id, 10)) == 1
    assert await storage.tenants.user(user_id) is None
    assert await storage.tenants.user_by_email(email) is None
    assert await storage.tenants.get(a_tenant(1).id) is not None
    assert await storage.auth_tokens.find("a" * 64) is None
    assert await storage.auth_tokens.find("b" * 64) is not None
    assert (
        await storage.accounts.consume_one_time_token("h" * 64, OneTimePurpose.VERIFY_EMAIL, T0)
        is None
    )
    assert await storage.tenants.user(kept) is not None


async def test_account_mail_is_queued_with_its_link_and_code(storage: AccountStorage) -> None:
    mail = AccountMail(
        AccountMailKind.PASSWORD_RESET,
        "ada@example.com",
        TenantId("t-1"),
        "https://tk.example/reset-password",
        Secret("tkm_code123"),
    )
    await write_mail(storage, mail)
    if isinstance(storage.mailer, InMemoryAccountMailer):
        assert storage.mailer.sent == [mail]
        return
    (note,) = await storage.outbox.for_tenant(TenantId("t-1"), 10)
    facts = note.facts
    assert (facts.kind, facts.mail_to(None)) == (NotificationKind.PASSWORD_RESET, "ada@example.com")
    assert facts.secret_link is not None and "tkm_code123" not in repr(note)
    link = await storage.mailer.notifications.key_store.decrypt(facts.secret_link)
    assert link.reveal() == "https://tk.example/reset-password#code=tkm_code123"
    assert not note.in_app()


@pytest.fixture(params=["memory", "files"])
def remover(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Any, Any]:
    """A config remover and a way to create the tenant's files it should remove."""
    if request.param == "memory":
        writer = InMemoryConfigWriter()

        def make(tenant_id: TenantId) -> None:
            writer.written[tenant_id] = object()  # type: ignore[assignment]

        return InMemoryConfigRemover(writer), make

    def make_files(tenant_id: TenantId) -> None:
        directory = tmp_path / tenant_id
        directory.mkdir()
        (directory / "openclaw.json").write_text("{}")
        (directory / ".env").write_text("KEY=secret")

    return FileConfigRemover(tmp_path), make_files


async def test_a_tenants_configs_are_removed_once_and_only_theirs(
    remover: tuple[Any, Any],
) -> None:
    port, make = remover
    make(TenantId("t-1"))
    make(TenantId("t-2"))
    assert await port.remove(TenantId("t-1")) is True
    assert await port.remove(TenantId("t-1")) is False
    assert await port.remove(TenantId("t-2")) is True
