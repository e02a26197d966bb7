"""The Accounts use case in detail: one throttle per account shared by logins and password
confirmations, what the audit trail records and when, the session and service-token views,
and the words of its refusals."""

from __future__ import annotations

import hashlib

import attrs
import pytest

from domain.accounts import AccountMailKind
from domain.audit import Actor, AuditAction, AuditEntry, AuditSource
from domain.errors import NotFound, TooManyAttempts, Unauthorized, ValidationError
from domain.ids import TenantId
from domain.secrets import Secret
from domain.sessions import IDLE_LIMIT
from domain.throttle import FREE_FAILURES, KEY_TESTS_PER_WINDOW
from domain.use_cases.accounts import Accounts, hash_token, public_id
from tests.fakes import InMemoryAuditLog, InMemoryAuthTokenRepository
from tests.unit.conftest import World

PASSWORD = Secret("ten chars!")
WRONG = Secret("wrong password")
EMAIL = "ada@example.com"


@pytest.fixture
def audit() -> InMemoryAuditLog:
    return InMemoryAuditLog()


@pytest.fixture
def accounts(world: World, audit: InMemoryAuditLog) -> Accounts:
    return attrs.evolve(world.accounts(InMemoryAuthTokenRepository()), audit=audit)


# --- one throttle per account ----------------------------------------------------------------


async def test_failed_logins_make_a_password_confirmation_wait_too(accounts: Accounts) -> None:
    signed = await accounts.signup(EMAIL, PASSWORD)
    for _ in range(FREE_FAILURES):
        with pytest.raises(Unauthorized):
            await accounts.login(EMAIL, WRONG)
    with pytest.raises(TooManyAttempts):
        await accounts.confirm_password(signed.user, PASSWORD, "password")


async def test_wrong_password_confirmations_make_the_login_wait_too(accounts: Accounts) -> None:
    signed = await accounts.signup(EMAIL, PASSWORD)
    for _ in range(FREE_FAILURES):
        with pytest.raises(ValidationError) as raised:
            await accounts.confirm_password(signed.user, WRONG, "current_password")
        assert (raised.value.field, raised.value.detail) == (
            "current_password", "the password is wrong",
        )  # fmt: skip
    with pytest.raises(TooManyAttempts):
        await accounts.login(EMAIL, PASSWORD)


async def test_failures_from_one_client_address_make_that_address_wait(
    accounts: Accounts,
) -> None:
    await accounts.signup(EMAIL, PASSWORD)
    await accounts.signup("bob@example.com", PASSWORD)
    for _ in range(FREE_FAILURES):
        with pytest.raises(Unauthorized):
            await accounts.login(EMAIL, WRONG, "203.0.113.9")
    with pytest.raises(TooManyAttempts):
        await accounts.login("bob@example.com", PASSWORD, "203.0.113.9")
    assert (await accounts.login("bob@example.com", PASSWORD, "198.51.100.1"))[0].email == (
        "bob@example.com"
    )


async def test_failures_are_stored_under_their_scope_and_the_hash_never_the_address(
    accounts: Accounts, world: World
) -> None:
    """The keys outlive a deploy in the attempt log: their form is part of the stored data."""
    await accounts.signup(EMAIL, PASSWORD)
    with pytest.raises(Unauthorized):
        await accounts.login(EMAIL, WRONG, "203.0.113.9")
    assert set(world.attempts.attempts) == {
        "account:" + hashlib.sha256(EMAIL.encode()).hexdigest(),
        "address:" + hashlib.sha256(b"203.0.113.9").hexdigest(),
    }


# --- the audit trail ----------------------------------------------------------------------------


async def test_a_login_is_recorded_now_by_the_user_for_its_tenant_with_its_token(
    accounts: Accounts, audit: InMemoryAuditLog, world: World
) -> None:
    signed = await accounts.signup(EMAIL, PASSWORD)
    audit.recorded.clear()
    user, token = await accounts.login(EMAIL, PASSWORD)
    by_user = Actor(AuditSource.API, user.id)
    login, created = audit.recorded
    assert login == AuditEntry(world.clock.now(), AuditAction.LOGIN, by_user, signed.tenant.id)
    assert (created.action, created.actor, created.tenant_id) == (
        AuditAction.TOKEN_CREATED, by_user, signed.tenant.id,
    )  # fmt: skip
    assert token.reveal() not in created.detail


async def test_a_failed_login_is_recorded_now_from_the_api(
    accounts: Accounts, audit: InMemoryAuditLog, world: World
) -> None:
    with pytest.raises(Unauthorized):
        await accounts.login("nobody@example.com", WRONG)
    (entry,) = audit.recorded
    assert (entry.at, entry.actor) == (world.clock.now(), Actor(AuditSource.API, "anonymous"))


async def test_a_logout_is_recorded_now_by_the_user_for_its_tenant(
    accounts: Accounts, audit: InMemoryAuditLog, world: World
) -> None:
    signed = await accounts.signup(EMAIL, PASSWORD)
    principal = await accounts.customer(signed.token.reveal())
    world.clock.advance(minutes=5)
    await accounts.logout(principal)
    entry = audit.recorded[-1]
    assert (entry.action, entry.at, entry.actor, entry.tenant_id) == (
        AuditAction.TOKEN_REVOKED, world.clock.now(), Actor(AuditSource.API, signed.user.id),
        signed.tenant.id,
    )  # fmt: skip


# --- views ---------------------------------------------------------------------------------


async def test_a_session_used_since_its_creation_lives_on_from_its_last_use(
    accounts: Accounts, world: World
) -> None:
    signed = await accounts.signup(EMAIL, PASSWORD)
    created = world.clock.now()
    world.clock.advance(days=2)
    principal = await accounts.customer(signed.token.reveal())
    used = world.clock.now()
    world.clock.advance(days=2)
    (view,) = await accounts.sessions(principal)
    assert (view.id, view.created_at, view.last_used_at, view.expires_at, view.current) == (
        public_id(hash_token(signed.token.reveal())), created, used, used + IDLE_LIMIT, True,
    )  # fmt: skip


async def test_revoking_an_unknown_session_is_not_found_in_words(accounts: Accounts) -> None:
    signed = await accounts.signup(EMAIL, PASSWORD)
    principal = await accounts.customer(signed.token.reveal())
    with pytest.raises(NotFound) as raised:
        await accounts.revoke_session(principal, "0123456789ab")
    assert raised.value.detail == "no such session"


async def test_a_service_token_is_listed_with_its_creation_and_last_use(
    accounts: Accounts, world: World
) -> None:
    created = world.clock.now()
    token = await accounts.create_service_token("gateway-1")
    world.clock.advance(minutes=10)
    await accounts.authenticate(token.reveal())
    (view,) = await accounts.service_tokens()
    assert (view.id, view.name, view.created_at, view.last_used_at) == (
        public_id(hash_token(token.reveal())), "gateway-1", created, world.clock.now(),
    )  # fmt: skip


async def test_too_many_key_tests_are_refused_in_words(accounts: Accounts) -> None:
    for _ in range(KEY_TESTS_PER_WINDOW):
        await accounts.count_key_test(TenantId("t-1"))
    with pytest.raises(TooManyAttempts) as raised:
        await accounts.count_key_test(TenantId("t-1"))
    assert raised.value.detail == "too many key tests; wait a minute before testing again"


async def test_a_signup_with_a_taken_address_tells_its_owner_with_a_login_link(
    accounts: Accounts, world: World
) -> None:
    signed = await accounts.signup(EMAIL, PASSWORD)
    with pytest.raises(Exception, match="cannot be used to sign up"):
        await accounts.signup(EMAIL, PASSWORD)
    mail = world.mailer.sent[-1]
    assert (mail.kind, mail.to, mail.tenant_id, mail.link) == (
        AccountMailKind.SIGNUP_ATTEMPT, EMAIL, signed.tenant.id, "https://tierkeeper.example/login",
    )  # fmt: skip
