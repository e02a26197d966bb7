"""Metering's settlement in detail: an offered model is counted at its catalog weight, and an
anomaly is logged once, naming the tenant, message, reported key, model and what it counted as."""

from __future__ import annotations

import logging

import pytest

from domain.catalog import Catalog
from domain.ids import MessageId, TenantId
from domain.metering import Anomaly, Credential, TokenUsage
from tests.unit.conftest import World

T = TenantId("t-1")


async def test_an_offered_fallback_is_counted_at_its_own_weight_not_the_dearest(
    catalog: Catalog,
) -> None:
    world = World(catalog)
    await world.add_tenant(tier="premium", model_preference="anthropic/claude-opus-4-6")
    await world.metering.admit(T, MessageId("m-1"), max_tokens=10)
    await world.metering.settle(T, MessageId("m-1"), "moonshot/kimi-k2.5", TokenUsage(1000, 0),
                                Credential.PLATFORM)  # fmt: skip
    assert (await world.metering.usage(T)).tokens_used == 1000


async def test_an_anomaly_is_logged_once_with_its_facts(
    catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    world = World(catalog)
    await world.add_tenant(tier="premium")
    usage = TokenUsage(10, 0)
    with caplog.at_level(logging.WARNING, logger="tierkeeper.metering"):
        first = await world.metering.settle(T, MessageId("m-9"), "moonshot/kimi-k2.5", usage,
                                            Credential.PLATFORM)  # fmt: skip
        assert len(caplog.records) == 1
        again = await world.metering.settle(T, MessageId("m-9"), "moonshot/kimi-k2.5", usage,
                                            Credential.PLATFORM)  # fmt: skip
    assert first.anomaly is again.anomaly is Anomaly.NOT_ADMITTED
    assert [r.getMessage() for r in caplog.records] == [
        "settlement anomaly not_admitted: tenant t-1 message m-9 reported platform on "
        "moonshot/kimi-k2.5, counted as platform"
    ]


async def test_an_anomaly_of_a_settlement_that_counts_nothing_is_not_logged(
    catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    """A proxied call every upstream refused releases its reservation with no tokens under
    the model the caller named: nothing is counted, so nothing is worth a warning (it is
    still answered as the anomaly it is)."""
    world = World(catalog)
    await world.add_tenant(tier="premium")
    with caplog.at_level(logging.WARNING, logger="tierkeeper.metering"):
        settled = await world.metering.settle(T, MessageId("m-9"), "kimi-k2.5", TokenUsage(0, 0),
                                              Credential.PLATFORM)  # fmt: skip
    assert settled.anomaly is Anomaly.NOT_ADMITTED
    assert caplog.records == []
