"""Accounts: signup, login, token kinds and revocation, on in-memory doubles."""

from __future__ import annotations

import pytest

from domain.errors import Conflict, Forbidden, Unauthorized, ValidationError
from domain.secrets import Secret
from domain.tenants import SubscriptionStatus
from domain.use_cases.accounts import (
    Accounts,
    TokenKind,
    check_service_name,
    hash_token,
    normalise_email,
)
from tests.fakes import FakePasswordHasher, InMemoryAuthTokenRepository
from tests.unit.conftest import World

PASSWORD = Secret("ten chars!")


@pytest.fixture
def tokens() -> InMemoryAuthTokenRepository:
    return InMemoryAuthTokenRepository()


@pytest.fixture
def accounts(world: World, tokens: InMemoryAuthTokenRepository) -> Accounts:
    return Accounts(
        world.catalog, world.tenant_repo, tokens, FakePasswordHasher(), world.configs, world.clock
    )


async def test_signup_creates_an_incomplete_starter_tenant_with_its_config(
    accounts: Accounts, world: World
) -> None:
    signed = await accounts.signup(" Ada@Example.COM", PASSWORD, "Europe/Berlin")
    assert signed.user.email == "ada@example.com"
    assert signed.tenant.tier == "starter"
    assert signed.tenant.status is SubscriptionStatus.INCOMPLETE
    assert signed.tenant.timezone == "Europe/Berlin"
    assert signed.tenant.billing_anchor_day == 1
    assert signed.user.tenant_id == signed.tenant.id
    assert signed.tenant.id in world.writer.written
    assert signed.user.password_hash != PASSWORD.reveal()


async def test_signup_stores_only_the_tokens_hash(
    accounts: Accounts, tokens: InMemoryAuthTokenRepository
) -> None:
    signed = await accounts.signup("a@example.com", PASSWORD)
    raw = signed.token.reveal()
    assert raw.startswith("tkc_")
    assert list(tokens.tokens) == [hash_token(raw)]
    assert raw not in repr(tokens.tokens)


@pytest.mark.parametrize(
    ("email", "password", "timezone", "field"),
    [
        ("a@example.com", "nine char", None, "password"),
        ("a@example.com", "x" * 1025, None, "password"),
        ("no-at-sign", "ten chars!", None, "email"),
        ("a@nodot", "ten chars!", None, "email"),
        ("a b@example.com", "ten chars!", None, "email"),
        ("a@example.com", "ten chars!", "Not/AZone", "timezone"),
    ],
)
async def test_signup_refuses_bad_input_naming_the_field(
    accounts: Accounts, email: str, password: str, timezone: str | None, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        await accounts.signup(email, Secret(password), timezone)
    assert caught.value.field == field


async def test_an_email_signs_up_once(accounts: Accounts) -> None:
    await accounts.signup("a@example.com", PASSWORD)
    with pytest.raises(Conflict):
        await accounts.signup("A@example.com", PASSWORD)


async def test_login_answers_a_new_customer_token(accounts: Accounts) -> None:
    signed = await accounts.signup("a@example.com", PASSWORD)
    user, token = await accounts.login("A@EXAMPLE.com", PASSWORD)
    assert user.id == signed.user.id
    assert token.reveal() != signed.token.reveal()
    principal = await accounts.customer(token.reveal())
    assert principal.tenant_id == signed.tenant.id


@pytest.mark.parametrize(
    ("email", "password"),
    [("a@example.com", "wrong password"), ("b@example.com", "ten chars!"), ("bad", "x")],
)
async def test_login_refuses_the_same_way_whatever_is_wrong(
    accounts: Accounts, email: str, password: str
) -> None:
    await accounts.signup("a@example.com", PASSWORD)
    with pytest.raises(Unauthorized) as caught:
        await accounts.login(email, Secret(password))
    assert caught.value.detail == "email or password is wrong"


async def test_service_and_customer_tokens_are_never_interchangeable(accounts: Accounts) -> None:
    signed = await accounts.signup("a@example.com", PASSWORD)
    service = (await accounts.create_service_token("gateway")).reveal()
    assert service.startswith("tks_")
    assert (await accounts.service(service)).kind is TokenKind.SERVICE
    with pytest.raises(Forbidden):
        await accounts.customer(service)
    with pytest.raises(Forbidden):
        await accounts.service(signed.token.reveal())


@pytest.mark.parametrize("token", ["", "tkc_unknown"])
async def test_unknown_tokens_are_unauthorized(accounts: Accounts, token: str) -> None:
    with pytest.raises(Unauthorized):
        await accounts.authenticate(token)


async def test_logout_revokes_only_the_token_used(accounts: Accounts) -> None:
    signed = await accounts.signup("a@example.com", PASSWORD)
    _, second = await accounts.login("a@example.com", PASSWORD)
    await accounts.logout(await accounts.customer(signed.token.reveal()))
    with pytest.raises(Unauthorized):
        await accounts.customer(signed.token.reveal())
    assert (await accounts.customer(second.reveal())).user is not None


def test_emails_are_normalised() -> None:
    assert normalise_email("  Ada@Example.Org ") == "ada@example.org"


@pytest.mark.parametrize("name", ["", " ", "a b", "x" * 65, "gateway/1"])
def test_service_names_are_short_and_plain(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_service_name(name)
    assert caught.value.field == "service"
