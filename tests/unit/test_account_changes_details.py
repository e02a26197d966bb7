"""AccountChanges in detail: who may act, reset and verification codes whose user changed or
went, per-address limits on reset and verification mails, and what deleting an account
does; refusals checked word for word."""

from __future__ import annotations

import attrs
import pytest

from domain.accounts import AccountMailKind
from domain.errors import PaymentProviderError, Unauthorized, ValidationError
from domain.secrets import Secret
from domain.throttle import FREE_FAILURES
from domain.use_cases.account_changes import INVALID_CODE, AccountChanges
from domain.use_cases.accounts import Principal, SignedUp, TokenKind
from tests.fakes import InMemoryAuthTokenRepository
from tests.unit.conftest import World

PASSWORD = Secret("ten chars!")
NEW_PASSWORD = Secret("a new password")
WRONG = Secret("wrong password")
ADA = "ada@example.com"
BOB = "bob@example.com"


@attrs.define
class Setup:
    world: World
    tokens: InMemoryAuthTokenRepository
    changes: AccountChanges

    async def signup(self, email: str = ADA) -> tuple[SignedUp, Principal]:
        signed = await self.changes.accounts.signup(email, PASSWORD)
        return signed, await self.changes.accounts.customer(signed.token.reveal())

    def mails(self, kind: AccountMailKind, to: str) -> int:
        return sum(1 for m in self.world.mailer.sent if m.kind is kind and m.to == to)


@pytest.fixture
def setup(world: World) -> Setup:
    tokens = InMemoryAuthTokenRepository()
    return Setup(world, tokens, world.account_changes(tokens))


# --- who may act -------------------------------------------------------------------------------


async def test_a_service_token_cannot_change_an_account(setup: Setup) -> None:
    service = Principal(TokenKind.SERVICE, "gateway-1", "h" * 64)
    with pytest.raises(Unauthorized) as raised:
        await setup.changes.email_verified_at(service)
    assert raised.value.detail == "a customer session is required"


async def test_a_session_of_a_deleted_user_cannot_change_the_account(setup: Setup) -> None:
    signed, principal = await setup.signup()
    await setup.world.account_repo(setup.tokens).delete_user(signed.user.id)
    with pytest.raises(Unauthorized) as raised:
        await setup.changes.email_verified_at(principal)
    assert raised.value.detail == "the account no longer exists"


# --- reset codes ----------------------------------------------------------------------------


async def test_a_reset_verifies_the_address_now(setup: Setup) -> None:
    signed, _ = await setup.signup()
    await setup.changes.request_password_reset(ADA)
    setup.world.clock.advance(minutes=3)
    await setup.changes.confirm_password_reset(
        setup.world.mailer.last_code(AccountMailKind.PASSWORD_RESET), NEW_PASSWORD
    )
    repo = setup.world.account_repo(setup.tokens)
    assert await repo.email_verified_at(signed.user.id) == setup.world.clock.now()


async def test_a_reset_code_for_an_address_the_user_left_is_refused(setup: Setup) -> None:
    signed, _ = await setup.signup()
    await setup.changes.request_password_reset(ADA)
    await setup.world.account_repo(setup.tokens).set_email(signed.user.id, "ada@new.example")
    with pytest.raises(ValidationError) as raised:
        await setup.changes.confirm_password_reset(
            setup.world.mailer.last_code(AccountMailKind.PASSWORD_RESET), NEW_PASSWORD
        )
    assert (raised.value.field, raised.value.detail) == ("token", INVALID_CODE)


async def test_a_reset_code_of_a_deleted_user_is_refused(setup: Setup) -> None:
    signed, _ = await setup.signup()
    await setup.changes.request_password_reset(ADA)
    await setup.world.account_repo(setup.tokens).delete_user(signed.user.id)
    with pytest.raises(ValidationError) as raised:
        await setup.changes.confirm_password_reset(
            setup.world.mailer.last_code(AccountMailKind.PASSWORD_RESET), NEW_PASSWORD
        )
    assert (raised.value.field, raised.value.detail) == ("token", INVALID_CODE)


@pytest.mark.parametrize("purpose", ["reset", "verify"])
async def test_a_code_whose_user_went_after_it_was_mailed_is_refused_in_words(
    setup: Setup, purpose: str
) -> None:
    """The user row is gone while its code is still stored (deleted between the code's use
    and the user's lookup): the code is refused, not an error."""
    signed, _ = await setup.signup()
    await setup.changes.request_password_reset(ADA)
    del setup.world.tenant_repo.users[signed.user.id]
    with pytest.raises(ValidationError) as raised:
        if purpose == "reset":
            await setup.changes.confirm_password_reset(
                setup.world.mailer.last_code(AccountMailKind.PASSWORD_RESET), NEW_PASSWORD
            )
        else:
            await setup.changes.verify_email(
                setup.world.mailer.last_code(AccountMailKind.VERIFY_EMAIL)
            )
    assert (raised.value.field, raised.value.detail) == ("token", INVALID_CODE)


async def test_reset_requests_are_limited_per_address(setup: Setup) -> None:
    await setup.signup(ADA)
    await setup.signup(BOB)
    for _ in range(FREE_FAILURES + 2):
        await setup.changes.request_password_reset(ADA)
    await setup.changes.request_password_reset(BOB)
    assert setup.mails(AccountMailKind.PASSWORD_RESET, ADA) == FREE_FAILURES
    assert setup.mails(AccountMailKind.PASSWORD_RESET, BOB) == 1


# --- verification codes --------------------------------------------------------------------


async def test_resent_verifications_are_limited_per_address(setup: Setup) -> None:
    _, ada = await setup.signup(ADA)
    _, bob = await setup.signup(BOB)
    for _ in range(FREE_FAILURES + 2):
        await setup.changes.resend_verification(ada)
    await setup.changes.resend_verification(bob)
    assert setup.mails(AccountMailKind.VERIFY_EMAIL, ADA) == 1 + FREE_FAILURES
    assert setup.mails(AccountMailKind.VERIFY_EMAIL, BOB) == 2


async def test_a_resend_is_allowed_again_once_the_wait_is_over(setup: Setup) -> None:
    _, ada = await setup.signup(ADA)
    for _ in range(FREE_FAILURES + 1):
        await setup.changes.resend_verification(ada)
    setup.world.clock.advance(seconds=2)
    await setup.changes.resend_verification(ada)
    assert setup.mails(AccountMailKind.VERIFY_EMAIL, ADA) == 2 + FREE_FAILURES


async def test_a_wrong_verification_code_is_refused_on_the_token_field(setup: Setup) -> None:
    with pytest.raises(ValidationError) as raised:
        await setup.changes.verify_email(Secret("not-a-code"))
    assert (raised.value.field, raised.value.detail) == ("token", INVALID_CODE)


async def test_a_verification_code_of_a_deleted_user_is_refused(setup: Setup) -> None:
    signed, _ = await setup.signup()
    code = setup.world.mailer.last_code(AccountMailKind.VERIFY_EMAIL)
    await setup.world.account_repo(setup.tokens).delete_user(signed.user.id)
    with pytest.raises(ValidationError) as raised:
        await setup.changes.verify_email(code)
    assert (raised.value.field, raised.value.detail) == ("token", INVALID_CODE)


# --- password change and deletion ------------------------------------------------------------


async def test_the_password_changed_mail_goes_to_the_users_tenant(setup: Setup) -> None:
    signed, principal = await setup.signup()
    await setup.changes.change_password(principal, PASSWORD, NEW_PASSWORD)
    mail = setup.world.mailer.sent[-1]
    assert (mail.kind, mail.tenant_id, mail.link) == (
        AccountMailKind.PASSWORD_CHANGED, signed.tenant.id, "https://tierkeeper.example/login",
    )  # fmt: skip


async def test_deleting_with_a_wrong_password_is_refused_on_the_password_field(
    setup: Setup,
) -> None:
    _, principal = await setup.signup()
    with pytest.raises(ValidationError) as raised:
        await setup.changes.delete_account(principal, WRONG)
    assert raised.value.field == "password"


async def test_deleting_a_subscribed_account_without_a_canceler_is_refused_in_words(
    setup: Setup,
) -> None:
    signed, principal = await setup.signup()
    repo = setup.world.tenant_repo
    await repo.save(attrs.evolve(signed.tenant, stripe_subscription_id="sub_1"))
    changes = attrs.evolve(setup.changes, canceler=None)
    with pytest.raises(PaymentProviderError) as raised:
        await changes.delete_account(principal, PASSWORD)
    assert raised.value.detail == "the subscription cannot be canceled now; try again later"
