"""Signup and tokens in detail: the conflict a taken address gets, what the trail records at
signup and for each token, the verification mail's tenant and code lifetime, and sessions
touched at most once a minute; the words of a throttled or expired login."""

from __future__ import annotations

import attrs
import pytest

from domain.accounts import AccountMailKind
from domain.audit import Actor, AuditAction, AuditEntry, AuditSource
from domain.errors import Conflict, TooManyAttempts, Unauthorized
from domain.secrets import Secret
from domain.sessions import ABSOLUTE_LIMIT
from domain.throttle import FREE_FAILURES
from domain.use_cases.accounts import Accounts, hash_token
from tests.fakes import InMemoryAuditLog, InMemoryAuthTokenRepository
from tests.unit.conftest import World

PASSWORD = Secret("ten chars!")
EMAIL = "ada@example.com"


@attrs.define
class Setup:
    world: World
    tokens: InMemoryAuthTokenRepository
    audit: InMemoryAuditLog
    accounts: Accounts


@pytest.fixture
def setup(world: World) -> Setup:
    tokens, audit = InMemoryAuthTokenRepository(), InMemoryAuditLog()
    return Setup(world, tokens, audit, attrs.evolve(world.accounts(tokens), audit=audit))


async def test_a_taken_address_is_a_conflict_in_words_that_do_not_say_it_exists(
    setup: Setup,
) -> None:
    await setup.accounts.signup(EMAIL, PASSWORD)
    with pytest.raises(Conflict) as raised:
        await setup.accounts.signup(EMAIL, PASSWORD)
    assert (raised.value.code, raised.value.detail) == (
        "conflict",
        "this email cannot be used to sign up; if it is yours, log in or reset the password",
    )


async def test_signup_is_recorded_now_by_the_new_user_with_its_first_token(
    setup: Setup,
) -> None:
    signed = await setup.accounts.signup(EMAIL, PASSWORD)
    by_user = Actor(AuditSource.API, signed.user.id)
    now = setup.world.clock.now()
    signed_up, created = setup.audit.recorded
    assert signed_up == AuditEntry(now, AuditAction.SIGNED_UP, by_user, signed.tenant.id)
    assert (created.action, created.at, created.actor, created.tenant_id) == (
        AuditAction.TOKEN_CREATED, now, by_user, signed.tenant.id,
    )  # fmt: skip


async def test_the_login_token_is_created_by_the_user(setup: Setup) -> None:
    await setup.accounts.signup(EMAIL, PASSWORD)
    setup.audit.recorded.clear()
    user, _ = await setup.accounts.login(EMAIL, PASSWORD)
    assert setup.audit.recorded[-1].actor == Actor(AuditSource.API, user.id)


async def test_the_verification_mail_is_for_the_users_tenant(setup: Setup) -> None:
    signed = await setup.accounts.signup(EMAIL, PASSWORD)
    mail = setup.world.mailer.sent[-1]
    assert (mail.kind, mail.tenant_id) == (AccountMailKind.VERIFY_EMAIL, signed.tenant.id)


async def test_a_one_time_code_is_issued_now_for_its_lifetime(setup: Setup) -> None:
    signed = await setup.accounts.signup(EMAIL, PASSWORD)
    code = setup.world.mailer.last_code(AccountMailKind.VERIFY_EMAIL)
    stored = setup.world.account_repo(setup.tokens).one_time[hash_token(code.reveal())]
    assert stored.user_id == signed.user.id
    assert stored.created_at == setup.world.clock.now()


async def test_a_throttled_login_is_refused_in_words(setup: Setup) -> None:
    await setup.accounts.signup(EMAIL, PASSWORD)
    for _ in range(FREE_FAILURES):
        with pytest.raises(Unauthorized):
            await setup.accounts.login(EMAIL, Secret("wrong password"))
    with pytest.raises(TooManyAttempts) as raised:
        await setup.accounts.login(EMAIL, PASSWORD)
    assert raised.value.detail == "too many failed attempts; wait before trying again"


async def test_an_expired_session_is_refused_in_words(setup: Setup) -> None:
    signed = await setup.accounts.signup(EMAIL, PASSWORD)
    setup.world.clock.advance(seconds=ABSOLUTE_LIMIT.total_seconds())
    with pytest.raises(Unauthorized) as raised:
        await setup.accounts.authenticate(signed.token.reveal())
    assert raised.value.detail == "the session has expired; log in again"


async def test_a_session_is_touched_at_most_once_a_minute(setup: Setup) -> None:
    signed = await setup.accounts.signup(EMAIL, PASSWORD)
    digest = hash_token(signed.token.reveal())
    await setup.accounts.authenticate(signed.token.reveal())
    first = setup.tokens.tokens[digest].last_used_at
    setup.world.clock.advance(seconds=30)
    await setup.accounts.authenticate(signed.token.reveal())
    assert setup.tokens.tokens[digest].last_used_at == first
