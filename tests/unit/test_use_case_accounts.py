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
from tests.fakes import InMemoryAuthTokenRepository
from tests.unit.conftest import World

PASSWORD = Secret("ten chars!")


@pytest.fixture
def tokens() -> InMemoryAuthTokenRepository:
    return InMemoryAuthTokenRepository()


@pytest.fixture
def accounts(world: World, tokens: InMemoryAuthTokenRepository) -> Accounts:
    return world.accounts(tokens)


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
    assert principal.customer_tenant() == signed.tenant.id


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


@pytest.mark.parametrize("name", ["", " ", "a b", "x" * 65, "gateway/1", "gäteway", "gate\nway"])
def test_service_names_are_short_and_plain(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_service_name(name)
    assert caught.value.field == "service"


async def test_signup_stamps_the_tenant_user_and_token_with_the_clocks_time(
    accounts: Accounts, world: World, tokens: InMemoryAuthTokenRepository
) -> None:
    signed = await accounts.signup("a@example.com", PASSWORD)
    now = world.clock.now()
    assert (signed.tenant.created_at, signed.user.created_at) == (now, now)
    stored = tokens.tokens[hash_token(signed.token.reveal())]
    assert (stored.kind, stored.subject, stored.created_at) == ("customer", signed.user.id, now)


async def test_each_signup_gets_its_own_tenant_and_user_ids(
    accounts: Accounts, world: World
) -> None:
    first = await accounts.signup("a@example.com", PASSWORD)
    second = await accounts.signup("b@example.com", PASSWORD)
    assert first.tenant.id != second.tenant.id
    assert first.user.id != second.user.id
    assert world.tenant_repo.tenants[first.tenant.id] == first.tenant
    assert world.tenant_repo.users[second.user.id] == second.user
    assert (await accounts.customer(first.token.reveal())).customer_tenant() == first.tenant.id


async def test_a_customer_token_stands_for_its_user(accounts: Accounts) -> None:
    signed = await accounts.signup("a@example.com", PASSWORD)
    raw = signed.token.reveal()
    principal = await accounts.authenticate(raw)
    assert (principal.kind, principal.subject, principal.token_hash, principal.user) == (
        TokenKind.CUSTOMER, signed.user.id, hash_token(raw), signed.user,
    )  # fmt: skip


async def test_a_service_token_stands_for_its_trimmed_service_name(
    accounts: Accounts, tokens: InMemoryAuthTokenRepository, world: World
) -> None:
    raw = (await accounts.create_service_token(" gateway ")).reveal()
    principal = await accounts.service(raw)
    assert (principal.kind, principal.subject, principal.token_hash, principal.user) == (
        TokenKind.SERVICE, "gateway", hash_token(raw), None,
    )  # fmt: skip
    assert principal.customer_tenant() is None
    assert tokens.tokens[hash_token(raw)].created_at == world.clock.now()


@pytest.mark.parametrize(
    ("token", "detail"),
    [("", "a bearer token or session is required"),
     ("tkc_unknown", "the token is unknown or revoked")],
)  # fmt: skip
async def test_an_unusable_token_is_refused_saying_why(
    accounts: Accounts, token: str, detail: str
) -> None:
    with pytest.raises(Unauthorized) as caught:
        await accounts.authenticate(token)
    assert (caught.value.code, caught.value.detail) == ("unauthorized", detail)


async def test_a_revoked_token_is_refused_as_unknown_or_revoked(accounts: Accounts) -> None:
    signed = await accounts.signup("a@example.com", PASSWORD)
    await accounts.logout(await accounts.customer(signed.token.reveal()))
    with pytest.raises(Unauthorized) as caught:
        await accounts.authenticate(signed.token.reveal())
    assert caught.value.detail == "the token is unknown or revoked"


async def test_the_token_of_a_removed_user_is_refused(accounts: Accounts, world: World) -> None:
    signed = await accounts.signup("a@example.com", PASSWORD)
    del world.tenant_repo.users[signed.user.id]
    with pytest.raises(Unauthorized) as caught:
        await accounts.authenticate(signed.token.reveal())
    assert caught.value.detail == "the token's user no longer exists"


async def test_a_token_of_the_wrong_kind_is_forbidden_saying_which_kind_is_needed(
    accounts: Accounts,
) -> None:
    signed = await accounts.signup("a@example.com", PASSWORD)
    service = (await accounts.create_service_token("gateway")).reveal()
    with pytest.raises(Forbidden) as as_customer:
        await accounts.customer(service)
    with pytest.raises(Forbidden) as as_service:
        await accounts.service(signed.token.reveal())
    assert (as_customer.value.code, as_customer.value.detail) == (
        "forbidden", "a service token cannot act as a customer",
    )  # fmt: skip
    assert (as_service.value.code, as_service.value.detail) == (
        "forbidden", "this endpoint takes a service token",
    )  # fmt: skip


@pytest.mark.parametrize("endpoint", ["customer", "service"])
async def test_no_token_at_all_is_unauthorized_on_every_kind_of_endpoint(
    accounts: Accounts, endpoint: str
) -> None:
    with pytest.raises(Unauthorized) as caught:
        await getattr(accounts, endpoint)("")
    assert caught.value.detail == "a bearer token or session is required"
