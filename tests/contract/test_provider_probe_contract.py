"""The ``ProviderProbe`` contract: the fake and the httpx adapter (against the local provider
stub, which speaks each BYOK provider's key-check endpoint and auth header) classify a key
alike: accepted, rejected, rate limited, provider failing or out of reach; the answer always
says what happened and never holds the key."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from adapters.catalog.toml_loader import default_catalog_text
from adapters.probe.httpx_probe import HttpxProviderProbe
from domain.byok import ProbeOutcome, ProbeResult
from domain.catalog import ByokProvider, Catalog, build_catalog
from domain.secrets import Secret
from tests.fakes import FixedProviderProbe
from tests.support.provider_stub import refused_url, running_provider_stub

pytestmark = pytest.mark.contract

CATALOG: Catalog = build_catalog(tomllib.loads(default_catalog_text()))
PROVIDER_IDS = tuple(p.id for p in CATALOG.byok_providers)
STATUS_OF_MARKER = {"unauthorized": 401, "forbidden": 403, "ratelimited": 429, "broken": 500}
"""The provider stub's key markers and the status it answers them with."""


@attrs.frozen
class World:
    probe: Any
    provider: Callable[[str], ByokProvider]
    """A catalog provider as the probe reaches it."""
    key: Callable[[ByokProvider, str], Secret]
    """A key the provider answers as the marker says (``valid``, ``slow`` or a status marker)."""
    unreachable: Callable[[ByokProvider], ByokProvider]
    """The provider with nothing listening where the probe calls it."""


def _fake() -> World:
    fake = FixedProviderProbe()

    def key(provider: ByokProvider, marker: str) -> Secret:
        raw = f"{provider.key_prefix}{marker}-contract-0123456789abcdef"
        if marker != "valid":
            fake.answers[raw] = STATUS_OF_MARKER.get(marker)
        return Secret(raw)

    def unreachable(provider: ByokProvider) -> ByokProvider:
        fake.down.add(provider.id)
        return provider

    return World(fake, CATALOG.byok_provider, key, unreachable)


@pytest.fixture(params=("fake", "httpx"))
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    if request.param == "fake":
        yield _fake()
        return
    with running_provider_stub(CATALOG, slow_s=1.5) as stub:

        def provider(provider_id: str) -> ByokProvider:
            return attrs.evolve(
                CATALOG.byok_provider(provider_id), base_url=stub.base_url(provider_id)
            )

        def key(provider: ByokProvider, marker: str) -> Secret:
            return Secret(f"{provider.key_prefix}{marker}-contract-0123456789abcdef")

        def unreachable(provider: ByokProvider) -> ByokProvider:
            return attrs.evolve(provider, base_url=refused_url())

        yield World(HttpxProviderProbe(timeout_s=0.5), provider, key, unreachable)


def _keeps_the_key_out(outcome: ProbeOutcome, key: Secret) -> None:
    assert outcome.detail.strip()
    assert key.reveal() not in outcome.detail
    assert key.reveal() not in repr(outcome)
    assert outcome.latency_ms >= 0


@pytest.mark.parametrize("provider_id", PROVIDER_IDS)
async def test_a_key_the_provider_accepts_is_valid(world: World, provider_id: str) -> None:
    provider = world.provider(provider_id)
    key = world.key(provider, "valid")
    outcome = await world.probe.test_key(provider, key)
    assert outcome.result is ProbeResult.VALID
    _keeps_the_key_out(outcome, key)


@pytest.mark.parametrize("provider_id", PROVIDER_IDS)
async def test_a_key_the_provider_rejects_is_invalid(world: World, provider_id: str) -> None:
    provider = world.provider(provider_id)
    for marker in ("unauthorized", "forbidden"):
        key = world.key(provider, marker)
        outcome = await world.probe.test_key(provider, key)
        assert outcome.result is ProbeResult.INVALID_KEY
        assert str(STATUS_OF_MARKER[marker]) in outcome.detail
        _keeps_the_key_out(outcome, key)


@pytest.mark.parametrize(
    ("marker", "expected"),
    [("ratelimited", ProbeResult.RATE_LIMITED), ("broken", ProbeResult.UNREACHABLE)],
)
async def test_a_rate_limit_or_a_failing_provider_proves_nothing_about_the_key(
    world: World, marker: str, expected: ProbeResult
) -> None:
    provider = world.provider("openai")
    key = world.key(provider, marker)
    outcome = await world.probe.test_key(provider, key)
    assert outcome.result is expected
    assert str(STATUS_OF_MARKER[marker]) in outcome.detail
    _keeps_the_key_out(outcome, key)


async def test_a_provider_that_does_not_answer_in_time_is_unreachable(world: World) -> None:
    provider = world.provider("anthropic")
    key = world.key(provider, "slow")
    outcome = await world.probe.test_key(provider, key)
    assert outcome.result is ProbeResult.UNREACHABLE
    assert provider.name in outcome.detail and "did not answer" in outcome.detail
    _keeps_the_key_out(outcome, key)


async def test_a_provider_out_of_reach_is_unreachable(world: World) -> None:
    provider = world.unreachable(world.provider("openai"))
    key = world.key(provider, "valid")
    outcome = await world.probe.test_key(provider, key)
    assert outcome.result is ProbeResult.UNREACHABLE
    assert provider.name in outcome.detail
    _keeps_the_key_out(outcome, key)
