"""What ``Metering.admit`` answers besides the decision: the route of a refusal, a BYOK
tenant's platform fallbacks kept while the starter budget holds the reservation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.catalog import Catalog, Model
from domain.ids import MessageId, ModelRef, TenantId
from domain.metering import Admitted, Credential, RefusalReason, Refused, TokenUsage
from domain.routing import decide_route
from domain.use_cases.metering import Refusal
from tests.unit.conftest import World

T = TenantId("t-1")
M = MessageId("m-1")


async def test_a_byok_message_with_no_usable_model_is_refused_with_no_route(
    world: World,
) -> None:
    """As for a call (``reserve_call``): a refusal offers no route, so it carries none."""
    await world.add_tenant(tier="byok")
    await world.add_key(allow_platform_fallback=False)
    await world.credentials.report_key_failure(T, "openai", 401)
    admission = await world.metering.admit(T, M)
    route = decide_route(world.catalog, world.tenant_repo.tenants[T], world.credential_repo.rows[T])
    assert route.primary is None
    assert admission == Refusal(Refused(RefusalReason.BYOK_KEY_INVALID, None))


async def test_a_message_beyond_the_budget_is_refused_until_the_period_resets(
    world: World,
) -> None:
    await world.add_tenant(tier="starter")
    await world.metering.settle(T, MessageId("spent"), "moonshot/kimi-k2.5",
                                TokenUsage(499_500, 0), Credential.PLATFORM)  # fmt: skip
    admission = await world.metering.admit(T, M, max_tokens=1_000)
    resets = datetime(2026, 4, 1, tzinfo=UTC)
    assert admission == Refusal(Refused(RefusalReason.TOKEN_BUDGET_EXHAUSTED, resets))


async def test_a_byok_message_keeps_its_platform_fallbacks_while_the_budget_holds_them(
    world: World,
) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    admission = await world.metering.admit(T, M, max_tokens=1_000)
    decision = admission.decision
    assert isinstance(decision, Admitted) and decision.held_tokens == 1_000
    assert admission.route is not None
    primary, fallbacks = admission.route.refs()
    assert primary == ModelRef("byok-openai/gpt-4.1")
    assert fallbacks and all(not ref.startswith("byok-") for ref in fallbacks)


async def test_a_routes_highest_weight_is_looked_up_in_the_catalog_once_per_process(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog never changes while the process runs: the weight is kept
    (``MeteringCaches.weights``), and the hot path does not scan the catalog again."""
    looked_up: list[str] = []
    find_model = Catalog.find_model

    def counting(catalog: Catalog, ref: str) -> Model | None:
        looked_up.append(ref)
        return find_model(catalog, ref)

    monkeypatch.setattr(Catalog, "find_model", counting)
    await world.add_tenant(tier="starter")
    metering = world.metering
    first = await metering.admit(T, M)
    assert first.route is not None
    assert sorted(looked_up) == sorted(first.route.platform_refs())
    await metering.admit(T, MessageId("m-2"))
    assert sorted(looked_up) == sorted(first.route.platform_refs())
