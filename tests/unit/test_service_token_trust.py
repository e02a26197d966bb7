"""A verified service token is trusted for a few seconds without another lookup (it is checked
on every gateway request); customers' tokens and failed checks are never remembered."""

from __future__ import annotations

import asyncio

import attrs
import pytest

from domain.errors import Forbidden, Unauthorized
from domain.secrets import Secret
from domain.use_cases.accounts import (
    MAX_TRUSTED_SERVICE_TOKENS,
    SERVICE_TOKEN_TRUST_SECONDS,
    Accounts,
    TokenKind,
    hash_token,
)
from tests.fakes import InMemoryAuthTokenRepository
from tests.unit.conftest import World

PASSWORD = Secret("ten chars!")


@attrs.define
class CountingTokens(InMemoryAuthTokenRepository):
    lookups: int = 0

    async def find(self, token_hash: str):  # type: ignore[no-untyped-def]
        self.lookups += 1
        return await super().find(token_hash)


@pytest.fixture
def tokens() -> CountingTokens:
    return CountingTokens()


@pytest.fixture
def accounts(world: World, tokens: CountingTokens) -> Accounts:
    return world.accounts(tokens)


async def test_a_verified_service_token_is_not_looked_up_again_within_the_trust_window(
    accounts: Accounts, tokens: CountingTokens, world: World
) -> None:
    token = (await accounts.create_service_token("gateway")).reveal()
    first = await accounts.service(token)
    world.clock.advance(seconds=SERVICE_TOKEN_TRUST_SECONDS - 0.001)
    again = await accounts.service(token)
    assert tokens.lookups == 1
    assert again == first
    assert (again.kind, again.subject) == (TokenKind.SERVICE, "gateway")


async def test_a_service_token_removed_from_the_store_stops_working_when_the_window_ends(
    accounts: Accounts, tokens: CountingTokens, world: World
) -> None:
    token = (await accounts.create_service_token("gateway")).reveal()
    await accounts.service(token)
    del tokens.tokens[hash_token(token)]
    world.clock.advance(seconds=SERVICE_TOKEN_TRUST_SECONDS)
    with pytest.raises(Unauthorized):
        await accounts.service(token)
    assert tokens.lookups == 2


async def test_an_unknown_token_is_looked_up_every_time(
    accounts: Accounts, tokens: CountingTokens
) -> None:
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await accounts.service("tks_not-a-real-token")
    assert tokens.lookups == 3


async def test_a_customer_token_on_a_gateway_endpoint_is_refused_every_time(
    accounts: Accounts, tokens: CountingTokens
) -> None:
    customer = (await accounts.signup("ada@example.com", PASSWORD)).token.reveal()
    for _ in range(2):
        with pytest.raises(Forbidden):
            await accounts.service(customer)
    assert tokens.lookups == 2


async def test_a_trusted_service_token_still_cannot_act_as_a_customer(
    accounts: Accounts,
) -> None:
    token = (await accounts.create_service_token("gateway")).reveal()
    await accounts.service(token)
    with pytest.raises(Forbidden):
        await accounts.customer(token)


async def test_an_empty_token_is_unauthorized_without_a_lookup(
    accounts: Accounts, tokens: CountingTokens
) -> None:
    with pytest.raises(Unauthorized):
        await accounts.service("")
    assert tokens.lookups == 0


async def test_the_trusted_tokens_are_bounded_and_forgotten_all_at_once_when_full(
    accounts: Accounts, tokens: CountingTokens
) -> None:
    issued = [
        (await accounts.create_service_token(f"gw-{i}")).reveal()
        for i in range(MAX_TRUSTED_SERVICE_TOKENS + 1)
    ]
    for token in issued:
        await accounts.service(token)
    assert tokens.lookups == MAX_TRUSTED_SERVICE_TOKENS + 1
    await accounts.service(issued[-1])
    assert tokens.lookups == MAX_TRUSTED_SERVICE_TOKENS + 1
    await accounts.service(issued[0])
    assert tokens.lookups == MAX_TRUSTED_SERVICE_TOKENS + 2


async def test_a_trust_window_of_zero_looks_every_token_up(
    accounts: Accounts, tokens: CountingTokens
) -> None:
    accounts = attrs.evolve(accounts, service_trust_s=0)
    token = (await accounts.create_service_token("gateway")).reveal()
    await accounts.service(token)
    await accounts.service(token)
    assert tokens.lookups == 2


@attrs.define
class HeldTokens(CountingTokens):
    """Lookups wait until the test lets them answer, so requests overlap as under load."""

    answer: asyncio.Event = attrs.Factory(asyncio.Event)

    async def find(self, token_hash: str):  # type: ignore[no-untyped-def]
        self.lookups += 1
        await self.answer.wait()
        return await InMemoryAuthTokenRepository.find(self, token_hash)


async def test_gateway_requests_arriving_while_the_token_is_checked_share_that_check(
    world: World,
) -> None:
    tokens = HeldTokens()
    accounts = world.accounts(tokens)
    token = (await accounts.create_service_token("gateway")).reveal()
    checks = [asyncio.ensure_future(accounts.service(token)) for _ in range(64)]
    await asyncio.sleep(0)
    tokens.answer.set()
    principals = await asyncio.gather(*checks)
    assert tokens.lookups == 1
    assert {(p.kind, p.subject) for p in principals} == {(TokenKind.SERVICE, "gateway")}


async def test_a_failed_shared_check_fails_every_request_that_waited_and_is_not_kept(
    world: World,
) -> None:
    tokens = HeldTokens()
    accounts = world.accounts(tokens)
    checks = [asyncio.ensure_future(accounts.service("tks_not-a-real-token")) for _ in range(8)]
    await asyncio.sleep(0)
    tokens.answer.set()
    outcomes = await asyncio.gather(*checks, return_exceptions=True)
    assert all(isinstance(outcome, Unauthorized) for outcome in outcomes)
    assert tokens.lookups == 1
    with pytest.raises(Unauthorized):
        await accounts.service("tks_not-a-real-token")
    assert tokens.lookups == 2


async def test_tokens_checked_at_the_same_time_share_only_their_own_check(
    accounts: Accounts, tokens: CountingTokens
) -> None:
    """Requests with the same token while it is checked share one lookup; a request with
    another token at the same moment never rides on that check (a wrong token stays
    refused however it is timed)."""
    token = (await accounts.create_service_token("gateway")).reveal()
    other = (await accounts.create_service_token("other-gateway")).reveal()
    answers = await asyncio.gather(
        accounts.service(token), accounts.service(token), accounts.service(other),
        accounts.service("tks_not-a-real-token"), return_exceptions=True,
    )  # fmt: skip
    first, again, second, wrong = answers
    assert first == again and not isinstance(first, BaseException)
    assert (first.subject, getattr(second, "subject", None)) == ("gateway", "other-gateway")
    assert isinstance(wrong, Unauthorized)
    assert tokens.lookups == 3
