"""How a settlement counts, rule by rule: an unadmitted message in full on the platform, an
offered model at its own weight, an unoffered or unknown model at the route's dearest, the
tenant's key only when the admission routed there."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from domain.ids import MessageId, ModelRef, TenantId
from domain.metering import (
    Anomaly,
    Credential,
    OfferedRoute,
    SettlementRequest,
    SettlementTerms,
    TokenUsage,
    settlement_terms,
)
from domain.windows import Window

AT = datetime(2026, 3, 15, 12, tzinfo=UTC)
WINDOW = Window(
    date(2026, 3, 15), datetime(2026, 3, 15, tzinfo=UTC), datetime(2026, 3, 16, tzinfo=UTC)
)
SONNET = ModelRef("anthropic/claude-sonnet-4-6")
KIMI = ModelRef("moonshot/kimi-k2.5")
OWN = ModelRef("byok-openai/gpt-4.1")
ROUTE = OfferedRoute((SONNET, KIMI), None, Decimal(3))


def request(model: ModelRef = KIMI, **fields: Any) -> SettlementRequest:
    base: dict[str, Any] = {
        "credential": Credential.PLATFORM, "usage": TokenUsage(100, 0),
        "reported_weight": Decimal(1), "unadmitted_weight": Decimal(5),
    }  # fmt: skip
    return SettlementRequest(
        TenantId("t-1"), MessageId("m-1"), model, period=WINDOW, day=WINDOW, at=AT,
        **(base | fields),
    )  # fmt: skip


def test_a_settlement_without_an_admission_counts_in_full_on_the_platform() -> None:
    assert settlement_terms(None, request()) == SettlementTerms(
        Credential.PLATFORM, 100, Anomaly.NOT_ADMITTED
    )
    assert settlement_terms(None, request(reported_weight=None)) == SettlementTerms(
        Credential.PLATFORM, 500, Anomaly.NOT_ADMITTED
    )


def test_an_offered_model_counts_at_its_own_weight() -> None:
    assert settlement_terms(ROUTE, request(KIMI)) == SettlementTerms(Credential.PLATFORM, 100, None)


def test_an_offered_model_the_catalog_does_not_rate_counts_at_the_dearest() -> None:
    assert settlement_terms(ROUTE, request(KIMI, reported_weight=None)) == SettlementTerms(
        Credential.PLATFORM, 300, Anomaly.MODEL_NOT_OFFERED
    )


def test_a_model_the_route_did_not_offer_counts_at_the_dearest() -> None:
    assert settlement_terms(ROUTE, request(ModelRef("acme/cheap"))) == SettlementTerms(
        Credential.PLATFORM, 300, Anomaly.MODEL_NOT_OFFERED
    )


def test_the_tenants_key_counts_as_such_only_when_the_admission_routed_there() -> None:
    routed = OfferedRoute((OWN, KIMI), OWN, Decimal(1))
    own = request(OWN, credential=Credential.TENANT, reported_weight=None)
    assert settlement_terms(routed, own) == SettlementTerms(Credential.TENANT, 100, None)
    assert settlement_terms(ROUTE, own) == SettlementTerms(
        Credential.PLATFORM, 300, Anomaly.TENANT_KEY_NOT_ROUTED
    )
