"""Throttled logins, expiring sessions, session lists and revocation, service tokens, and the
account changes (password, reset, verification, email, deletion), on in-memory doubles."""

from __future__ import annotations

import attrs
import pytest

from domain.accounts import AccountMailKind
from domain.byok import KeyStatus
from domain.errors import (
    Conflict,
    NotFound,
    PaymentProviderError,
    TooManyAttempts,
    Unauthorized,
    ValidationError,
)
from domain.ids import TenantId
from domain.secrets import Secret
from domain.sessions import ABSOLUTE_LIMIT, IDLE_LIMIT
from domain.tenants import SubscriptionStatus
from domain.throttle import FREE_FAILURES, KEY_TESTS_PER_WINDOW
from domain.use_cases.account_changes import AccountChanges
from domain.use_cases.accounts import Accounts, SignedUp, hash_token
from tests.fakes import InMemoryAuthTokenRepository
from tests.unit.conftest import World

PASSWORD = Secret("ten chars!")
NEW_PASSWORD = Secret("a new password")
WRONG = Secret("wrong password")
EMAIL = "ada@example.com"


@pytest.fixture
def tokens() -> InMemoryAuthTokenRepository:
    return InMemoryAuthTokenRepository()


@pytest.fixture
def accounts(world: World, tokens: InMemoryAuthTokenRepository) -> Accounts:
    return world.accounts(tokens)


@pytest.fixture
def changes(world: World, tokens: InMemoryAuthTokenRepository) -> AccountChanges:
    return world.account_changes(tokens)


@pytest.fixture
async def signed(accounts: Accounts) -> SignedUp:
    return await accounts.signup(EMAIL, PASSWORD)


async def fail_logins(accounts: Accounts, times: int, address: str | None = None) -> None:
    for _ in range(times):
        with pytest.raises(Unauthorized):
            await accounts.login(EMAIL, WRONG, address)


# --- throttling -----------------------------------------------------------------------------


async def test_after_the_free_failures_even_the_right_password_must_wait(
    accounts: Accounts, signed: SignedUp, world: World
) -> None:
    await fail_logins(accounts, FREE_FAILURES)
    with pytest.raises(TooManyAttempts) as caught:
        await accounts.login(EMAIL, PASSWORD)
    assert caught.value.retry_after_s == 1
    world.clock.advance(seconds=1)
    user, _ = await accounts.login(EMAIL, PASSWORD)
    assert user.id == signed.user.id


async def test_the_wait_grows_with_every_further_failure(
    accounts: Accounts, signed: SignedUp, world: World
) -> None:
    await fail_logins(accounts, FREE_FAILURES)
    for expected in (1, 2, 4, 8):
        with pytest.raises(TooManyAttempts) as caught:
            await accounts.login(EMAIL, WRONG)
        assert caught.value.retry_after_s == expected
        world.clock.advance(seconds=expected)
        await fail_logins(accounts, 1)


async def test_a_throttled_login_hashes_nothing(
    accounts: Accounts, signed: SignedUp, world: World
) -> None:
    await fail_logins(accounts, FREE_FAILURES)
    calls: list[str] = []
    hasher = accounts.hasher

    class Watching:
        async def hash(self, password: Secret) -> str:
            calls.append("hash")
            return await hasher.hash(password)

        async def verify(self, password_hash: str, password: Secret) -> bool:
            calls.append("verify")
            return await hasher.verify(password_hash, password)

    watched = attrs.evolve(accounts, hasher=Watching())
    with pytest.raises(TooManyAttempts):
        await watched.login(EMAIL, PASSWORD)
    assert calls == []


async def test_a_success_clears_the_accounts_count(
    accounts: Accounts, signed: SignedUp, world: World
) -> None:
    await fail_logins(accounts, FREE_FAILURES - 1)
    await accounts.login(EMAIL, PASSWORD)
    await fail_logins(accounts, FREE_FAILURES - 1)
    await accounts.login(EMAIL, PASSWORD)


async def test_one_address_guessing_many_accounts_is_throttled(
    accounts: Accounts, signed: SignedUp
) -> None:
    for n in range(FREE_FAILURES):
        with pytest.raises(Unauthorized):
            await accounts.login(f"victim{n}@example.com", WRONG, "203.0.113.9")
    with pytest.raises(TooManyAttempts):
        await accounts.login("another@example.com", WRONG, "203.0.113.9")
    user, _ = await accounts.login(EMAIL, PASSWORD, "198.51.100.1")
    assert user.email == EMAIL


async def test_unknown_accounts_count_failures_too(accounts: Accounts) -> None:
    for _ in range(FREE_FAILURES):
        with pytest.raises(Unauthorized):
            await accounts.login("nobody@example.com", WRONG)
    with pytest.raises(TooManyAttempts):
        await accounts.login("nobody@example.com", WRONG)


async def test_the_attempt_log_holds_no_email_or_address(
    accounts: Accounts, signed: SignedUp, world: World
) -> None:
    await fail_logins(accounts, 1, "203.0.113.9")
    assert len(world.attempts.attempts) == 2
    assert not any(EMAIL in k or "203.0.113" in k for k in world.attempts.attempts)


# --- sessions -------------------------------------------------------------------------------


async def test_a_session_expires_when_idle(
    accounts: Accounts, signed: SignedUp, world: World
) -> None:
    token = signed.token.reveal()
    world.clock.advance(seconds=IDLE_LIMIT.total_seconds() - 60)
    await accounts.customer(token)
    world.clock.advance(seconds=IDLE_LIMIT.total_seconds() - 60)
    await accounts.customer(token)
    world.clock.advance(seconds=IDLE_LIMIT.total_seconds())
    with pytest.raises(Unauthorized) as caught:
        await accounts.customer(token)
    assert "expired" in caught.value.detail


async def test_a_session_in_constant_use_still_ends_at_the_absolute_limit(
    accounts: Accounts, signed: SignedUp, world: World
) -> None:
    token = signed.token.reveal()
    for _ in range(int(ABSOLUTE_LIMIT / IDLE_LIMIT * 2)):
        world.clock.advance(seconds=IDLE_LIMIT.total_seconds() / 2 - 60)
        if world.clock.now() >= signed.user.created_at + ABSOLUTE_LIMIT:
            break
        await accounts.customer(token)
    world.clock.instant = signed.user.created_at + ABSOLUTE_LIMIT
    with pytest.raises(Unauthorized):
        await accounts.customer(token)


async def test_service_tokens_do_not_expire(accounts: Accounts, world: World) -> None:
    token = (await accounts.create_service_token("gateway")).reveal()
    world.clock.advance(days=365)
    assert (await accounts.service(token)).subject == "gateway"


async def test_the_customer_lists_its_live_sessions_and_which_is_current(
    accounts: Accounts, signed: SignedUp, world: World
) -> None:
    world.clock.advance(minutes=5)
    _, second = await accounts.login(EMAIL, PASSWORD)
    other = await accounts.signup("other@example.com", PASSWORD)
    principal = await accounts.customer(second.reveal())
    sessions = await accounts.sessions(principal)
    assert [s.current for s in sessions] == [False, True]
    assert sessions[0].id == hash_token(signed.token.reveal())[:16]
    assert sessions[1].expires_at == world.clock.now() + IDLE_LIMIT
    assert hash_token(other.token.reveal())[:16] not in {s.id for s in sessions}


async def test_expired_sessions_are_not_listed(
    accounts: Accounts, signed: SignedUp, world: World
) -> None:
    world.clock.advance(seconds=IDLE_LIMIT.total_seconds() + 1)
    _, fresh = await accounts.login(EMAIL, PASSWORD)
    sessions = await accounts.sessions(await accounts.customer(fresh.reveal()))
    assert [s.current for s in sessions] == [True]


async def test_revoking_a_session_ends_it_and_only_it(accounts: Accounts, signed: SignedUp) -> None:
    _, second = await accounts.login(EMAIL, PASSWORD)
    principal = await accounts.customer(second.reveal())
    first_id = hash_token(signed.token.reveal())[:16]
    await accounts.revoke_session(principal, first_id)
    with pytest.raises(Unauthorized):
        await accounts.customer(signed.token.reveal())
    assert (await accounts.customer(second.reveal())).subject == signed.user.id


async def test_another_customers_session_cannot_be_revoked(
    accounts: Accounts, signed: SignedUp
) -> None:
    other = await accounts.signup("other@example.com", PASSWORD)
    principal = await accounts.customer(signed.token.reveal())
    with pytest.raises(NotFound):
        await accounts.revoke_session(principal, hash_token(other.token.reveal())[:16])
    with pytest.raises(NotFound):
        await accounts.revoke_session(principal, "")
    assert (await accounts.customer(other.token.reveal())).subject == other.user.id


async def test_logging_out_everywhere_ends_every_session(
    accounts: Accounts, signed: SignedUp
) -> None:
    _, second = await accounts.login(EMAIL, PASSWORD)
    other = await accounts.signup("other@example.com", PASSWORD)
    assert await accounts.logout_everywhere(await accounts.customer(second.reveal())) == 2
    for token in (signed.token, second):
        with pytest.raises(Unauthorized):
            await accounts.customer(token.reveal())
    await accounts.customer(other.token.reveal())


async def test_service_tokens_are_listed_and_revoked_by_id_or_name(
    accounts: Accounts, world: World
) -> None:
    first = (await accounts.create_service_token("gateway")).reveal()
    world.clock.advance(seconds=1)
    second = (await accounts.create_service_token("gateway")).reveal()
    world.clock.advance(seconds=1)
    batch = (await accounts.create_service_token("batch")).reveal()
    listed = await accounts.service_tokens()
    assert [t.name for t in listed] == ["gateway", "gateway", "batch"]
    assert all(first not in repr(t) for t in listed)
    assert await accounts.revoke_service_tokens(hash_token(first)[:16]) == 1
    assert [t.name for t in await accounts.service_tokens()] == ["gateway", "batch"]
    assert await accounts.revoke_service_tokens("gateway") == 1
    assert await accounts.revoke_service_tokens("nothing") == 0
    for revoked in (first, second):
        with pytest.raises(Unauthorized):
            await accounts.authenticate(revoked)
    assert (await accounts.service(batch)).subject == "batch"


# --- signup ---------------------------------------------------------------------------------


async def test_signup_mails_a_verification_code(
    signed: SignedUp, world: World, changes: AccountChanges
) -> None:
    mail = world.mailer.sent[-1]
    assert (mail.kind, mail.to) == (AccountMailKind.VERIFY_EMAIL, EMAIL)
    assert mail.link == "https://tierkeeper.example/verify-email"
    await changes.verify_email(world.mailer.last_code(AccountMailKind.VERIFY_EMAIL))
    assert await world.account_repo(changes.auth_tokens).email_verified_at(signed.user.id)


async def test_a_second_signup_does_not_say_the_account_exists_and_tells_its_owner(
    accounts: Accounts, signed: SignedUp, world: World
) -> None:
    with pytest.raises(Conflict) as caught:
        await accounts.signup(EMAIL, Secret("another password"))
    assert "already" not in caught.value.detail and "exists" not in caught.value.detail
    assert world.mailer.sent[-1].kind is AccountMailKind.SIGNUP_ATTEMPT
    assert world.mailer.sent[-1].to == EMAIL


# --- password change and reset --------------------------------------------------------------


async def test_changing_the_password_ends_the_other_sessions_only(
    accounts: Accounts, changes: AccountChanges, signed: SignedUp, world: World
) -> None:
    _, second = await accounts.login(EMAIL, PASSWORD)
    here = await accounts.customer(second.reveal())
    await changes.change_password(here, PASSWORD, NEW_PASSWORD)
    with pytest.raises(Unauthorized):
        await accounts.customer(signed.token.reveal())
    await accounts.customer(second.reveal())
    await accounts.login(EMAIL, NEW_PASSWORD)
    with pytest.raises(Unauthorized):
        await accounts.login(EMAIL, PASSWORD)
    assert world.mailer.sent[-1].kind is AccountMailKind.PASSWORD_CHANGED


async def test_a_wrong_current_password_changes_nothing(
    accounts: Accounts, changes: AccountChanges, signed: SignedUp
) -> None:
    here = await accounts.customer(signed.token.reveal())
    with pytest.raises(ValidationError) as caught:
        await changes.change_password(here, WRONG, NEW_PASSWORD)
    assert caught.value.field == "current_password"
    await accounts.login(EMAIL, PASSWORD)


async def test_guessing_the_current_password_is_throttled(
    accounts: Accounts, changes: AccountChanges, signed: SignedUp
) -> None:
    here = await accounts.customer(signed.token.reveal())
    for _ in range(FREE_FAILURES):
        with pytest.raises(ValidationError):
            await changes.change_password(here, WRONG, NEW_PASSWORD)
    with pytest.raises(TooManyAttempts):
        await changes.change_password(here, PASSWORD, NEW_PASSWORD)


async def test_a_reset_code_works_once_and_ends_every_session(
    accounts: Accounts, changes: AccountChanges, signed: SignedUp, world: World
) -> None:
    await changes.request_password_reset(" ADA@example.com")
    mail = world.mailer.sent[-1]
    assert (mail.kind, mail.to, mail.link) == (
        AccountMailKind.PASSWORD_RESET, EMAIL, "https://tierkeeper.example/reset-password"
    )  # fmt: skip
    code = world.mailer.last_code(AccountMailKind.PASSWORD_RESET)
    await changes.confirm_password_reset(code, NEW_PASSWORD)
    with pytest.raises(Unauthorized):
        await accounts.customer(signed.token.reveal())
    await accounts.login(EMAIL, NEW_PASSWORD)
    with pytest.raises(ValidationError) as caught:
        await changes.confirm_password_reset(code, Secret("a third password"))
    assert caught.value.field == "token"
    await accounts.login(EMAIL, NEW_PASSWORD)


async def test_a_reset_code_expires_after_thirty_minutes(
    accounts: Accounts, changes: AccountChanges, signed: SignedUp, world: World
) -> None:
    await changes.request_password_reset(EMAIL)
    code = world.mailer.last_code(AccountMailKind.PASSWORD_RESET)
    world.clock.advance(minutes=30)
    with pytest.raises(ValidationError):
        await changes.confirm_password_reset(code, NEW_PASSWORD)
    await accounts.login(EMAIL, PASSWORD)


async def test_a_reset_code_still_works_just_before_thirty_minutes(
    accounts: Accounts, changes: AccountChanges, signed: SignedUp, world: World
) -> None:
    await changes.request_password_reset(EMAIL)
    world.clock.advance(minutes=29, seconds=59)
    await changes.confirm_password_reset(
        world.mailer.last_code(AccountMailKind.PASSWORD_RESET), NEW_PASSWORD
    )
    await accounts.login(EMAIL, NEW_PASSWORD)


async def test_a_too_short_new_password_does_not_use_the_code_up(
    changes: AccountChanges, accounts: Accounts, signed: SignedUp, world: World
) -> None:
    await changes.request_password_reset(EMAIL)
    code = world.mailer.last_code(AccountMailKind.PASSWORD_RESET)
    with pytest.raises(ValidationError):
        await changes.confirm_password_reset(code, Secret("short"))
    await changes.confirm_password_reset(code, NEW_PASSWORD)
    await accounts.login(EMAIL, NEW_PASSWORD)


async def test_a_reset_for_an_unknown_address_mails_nothing(
    changes: AccountChanges, world: World
) -> None:
    await changes.request_password_reset("nobody@example.com")
    await changes.request_password_reset("not an address")
    assert world.mailer.sent == []


async def test_a_verification_code_is_not_a_reset_code(
    changes: AccountChanges, signed: SignedUp, world: World
) -> None:
    code = world.mailer.last_code(AccountMailKind.VERIFY_EMAIL)
    with pytest.raises(ValidationError):
        await changes.confirm_password_reset(code, NEW_PASSWORD)


# --- email change ---------------------------------------------------------------------------


async def test_the_email_changes_when_the_code_mailed_to_the_new_address_comes_back(
    accounts: Accounts, changes: AccountChanges, signed: SignedUp, world: World
) -> None:
    here = await accounts.customer(signed.token.reveal())
    await changes.request_email_change(here, PASSWORD, "New@Example.com")
    mail = world.mailer.sent[-1]
    assert (mail.kind, mail.to) == (AccountMailKind.VERIFY_EMAIL, "new@example.com")
    assert (await world.tenant_repo.user(signed.user.id)).email == EMAIL  # type: ignore[union-attr]
    await changes.verify_email(world.mailer.last_code(AccountMailKind.VERIFY_EMAIL))
    assert (await world.tenant_repo.user(signed.user.id)).email == "new@example.com"  # type: ignore[union-attr]
    await accounts.login("new@example.com", PASSWORD)


async def test_an_email_change_needs_the_password(
    accounts: Accounts, changes: AccountChanges, signed: SignedUp, world: World
) -> None:
    here = await accounts.customer(signed.token.reveal())
    sent = len(world.mailer.sent)
    with pytest.raises(ValidationError) as caught:
        await changes.request_email_change(here, WRONG, "new@example.com")
    assert caught.value.field == "password"
    assert len(world.mailer.sent) == sent


async def test_an_address_taken_meanwhile_is_a_conflict(
    accounts: Accounts, changes: AccountChanges, signed: SignedUp, world: World
) -> None:
    here = await accounts.customer(signed.token.reveal())
    await changes.request_email_change(here, PASSWORD, "taken@example.com")
    code = world.mailer.last_code(AccountMailKind.VERIFY_EMAIL)
    await accounts.signup("taken@example.com", PASSWORD)
    with pytest.raises(Conflict):
        await changes.verify_email(code)


# --- deletion -------------------------------------------------------------------------------


async def paying_with_a_key(world: World, signed: SignedUp) -> TenantId:
    tenant_id = signed.tenant.id
    tenant = await world.tenant_repo.get(tenant_id)
    assert tenant is not None
    await world.tenant_repo.save(
        attrs.evolve(
            tenant,
            tier="byok",
            status=SubscriptionStatus.ACTIVE,
            stripe_customer_id="cus_1",
            stripe_subscription_id="sub_1",
        )
    )
    await world.add_key(tenant_id)
    assert world.credential_repo.rows[tenant_id].status in set(KeyStatus)
    return tenant_id


async def test_deleting_the_account_cancels_billing_and_removes_key_configs_and_user(
    accounts: Accounts, changes: AccountChanges, signed: SignedUp, world: World
) -> None:
    tenant_id = await paying_with_a_key(world, signed)
    assert tenant_id in world.writer.written
    here = await accounts.customer(signed.token.reveal())
    await changes.delete_account(here, PASSWORD)
    assert world.canceler.canceled == ["sub_1"]
    assert tenant_id not in world.credential_repo.rows
    assert tenant_id not in world.writer.written
    assert await world.tenant_repo.user(signed.user.id) is None
    assert await world.tenant_repo.user_by_email(EMAIL) is None
    kept = await world.tenant_repo.get(tenant_id)
    assert kept is not None and kept.status is SubscriptionStatus.CANCELED
    assert kept.stripe_customer_id == "cus_1"
    assert EMAIL not in repr(kept)
    with pytest.raises(Unauthorized):
        await accounts.customer(signed.token.reveal())


async def test_deleting_the_account_removes_every_token_of_the_user(
    accounts: Accounts,
    changes: AccountChanges,
    signed: SignedUp,
    world: World,
    tokens: InMemoryAuthTokenRepository,
) -> None:
    """Every session of the user, not only the asking one, is gone from the store."""
    _, other = await accounts.login(EMAIL, PASSWORD)
    here = await accounts.customer(signed.token.reveal())
    await changes.delete_account(here, PASSWORD)
    assert [t for t in tokens.tokens.values() if t.subject == signed.user.id] == []
    for token in (signed.token, other):
        assert await tokens.find(hash_token(token.reveal())) is None
        with pytest.raises(Unauthorized):
            await accounts.customer(token.reveal())


async def test_deletion_with_a_wrong_password_deletes_nothing(
    accounts: Accounts, changes: AccountChanges, signed: SignedUp, world: World
) -> None:
    tenant_id = await paying_with_a_key(world, signed)
    here = await accounts.customer(signed.token.reveal())
    with pytest.raises(ValidationError):
        await changes.delete_account(here, WRONG)
    assert world.canceler.canceled == []
    assert tenant_id in world.credential_repo.rows
    assert await world.tenant_repo.user(signed.user.id) is not None


async def test_a_failed_cancellation_deletes_nothing(
    accounts: Accounts, changes: AccountChanges, signed: SignedUp, world: World
) -> None:
    tenant_id = await paying_with_a_key(world, signed)

    class Refusing:
        async def cancel_now(self, subscription_id: str) -> None:
            raise PaymentProviderError("down")

    here = await accounts.customer(signed.token.reveal())
    with pytest.raises(PaymentProviderError):
        await attrs.evolve(changes, canceler=Refusing()).delete_account(here, PASSWORD)
    assert tenant_id in world.credential_repo.rows
    assert tenant_id in world.writer.written
    assert await world.tenant_repo.user(signed.user.id) is not None


async def test_an_unpaid_account_is_deleted_without_billing(
    accounts: Accounts, changes: AccountChanges, signed: SignedUp, world: World
) -> None:
    here = await accounts.customer(signed.token.reveal())
    await attrs.evolve(changes, canceler=None).delete_account(here, PASSWORD)
    assert await world.tenant_repo.user(signed.user.id) is None


async def test_key_tests_are_limited_per_tenant_per_minute(
    accounts: Accounts, signed: SignedUp, world: World
) -> None:
    world.clock.instant = world.clock.instant.replace(second=0)
    other = await accounts.signup("other@example.com", PASSWORD)
    for _ in range(KEY_TESTS_PER_WINDOW):
        await accounts.count_key_test(signed.tenant.id)
    world.clock.advance(seconds=20)
    with pytest.raises(TooManyAttempts) as caught:
        await accounts.count_key_test(signed.tenant.id)
    assert caught.value.retry_after_s == 40
    await accounts.count_key_test(other.tenant.id)
    world.clock.advance(seconds=40)
    await accounts.count_key_test(signed.tenant.id)


async def test_probing_many_taken_emails_from_one_address_must_wait(
    accounts: Accounts, signed: SignedUp, world: World
) -> None:
    for _ in range(FREE_FAILURES):
        with pytest.raises(Conflict):
            await accounts.signup(EMAIL, PASSWORD, None, "203.0.113.7")
    with pytest.raises(TooManyAttempts):
        await accounts.signup("fresh@example.com", PASSWORD, None, "203.0.113.7")
    fresh = await accounts.signup("fresh@example.com", PASSWORD, None, "198.51.100.2")
    assert fresh.user.email == "fresh@example.com"


async def test_reset_requests_for_one_address_are_limited_silently(
    changes: AccountChanges, signed: SignedUp, world: World
) -> None:
    for _ in range(FREE_FAILURES + 3):
        await changes.request_password_reset(EMAIL)
    resets = [m for m in world.mailer.sent if m.kind is AccountMailKind.PASSWORD_RESET]
    assert len(resets) == FREE_FAILURES
    world.clock.advance(minutes=1)
    await changes.request_password_reset(EMAIL)
    assert len([m for m in world.mailer.sent if m.kind is AccountMailKind.PASSWORD_RESET]) == (
        FREE_FAILURES + 1
    )


async def test_a_mailed_code_is_never_in_a_repr(signed: SignedUp, world: World) -> None:
    mail = world.mailer.sent[-1]
    assert mail.code is not None
    assert mail.code.reveal() not in repr(mail)
    assert mail.code.reveal() not in str(mail)


async def test_the_one_click_link_carries_the_code_only_in_its_fragment(
    signed: SignedUp, world: World
) -> None:
    mail = world.mailer.sent[-1]
    assert mail.code is not None
    link = mail.link_with_code().reveal()
    assert link == f"https://tierkeeper.example/verify-email#code={mail.code.reveal()}"
    assert "?" not in link


async def test_counts_nobody_added_to_for_a_day_are_forgotten_when_a_new_key_fails(
    accounts: Accounts, signed: SignedUp, world: World
) -> None:
    await fail_logins(accounts, 3, "203.0.113.9")
    world.clock.advance(days=1, seconds=1)
    with pytest.raises(Unauthorized):
        await accounts.login("someone.else@example.com", WRONG)
    assert len(world.attempts.attempts) == 1


async def test_a_new_verification_code_is_sent_only_while_unconfirmed(
    accounts: Accounts, changes: AccountChanges, signed: SignedUp, world: World
) -> None:
    here = await accounts.customer(signed.token.reveal())
    assert await changes.email_verified_at(here) is None
    await changes.resend_verification(here)
    codes = [m for m in world.mailer.sent if m.kind is AccountMailKind.VERIFY_EMAIL]
    assert len(codes) == 2
    await changes.verify_email(world.mailer.last_code(AccountMailKind.VERIFY_EMAIL))
    assert await changes.email_verified_at(here) == world.clock.now()
    await changes.resend_verification(here)
    assert len([m for m in world.mailer.sent if m.kind is AccountMailKind.VERIFY_EMAIL]) == 2
