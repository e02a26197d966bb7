"""An offered route once its platform fallbacks are withdrawn: the tenant's key alone, or
nothing when the route had no tenant key."""

from __future__ import annotations

from decimal import Decimal

from domain.ids import ModelRef
from domain.metering import OfferedRoute

KIMI = ModelRef("moonshot/kimi-k2.5")
OWN = ModelRef("byok-openai/gpt-4.1")


def test_withdrawing_the_platform_leaves_the_tenants_key_alone() -> None:
    route = OfferedRoute((OWN, KIMI), OWN, Decimal(2))
    assert route.without_platform() == OfferedRoute((OWN,), OWN, Decimal(2))


def test_withdrawing_the_platform_from_a_route_without_a_tenant_key_leaves_nothing() -> None:
    route = OfferedRoute((KIMI,), None, Decimal(1))
    assert route.without_platform() == OfferedRoute((), None, Decimal(1))
