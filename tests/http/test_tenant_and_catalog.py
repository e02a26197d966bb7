"""The public catalogs, the caller's tenant and its usage."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from litestar.testing import AsyncTestClient

from domain.catalog import Catalog
from entrypoints.bootstrap import Services
from entrypoints.http.app import create_app
from tests.http.conftest import Customer, make_active

pytestmark = pytest.mark.http


async def test_tiers_are_the_catalogs_tiers(client: AsyncTestClient[Any], catalog: Catalog) -> None:
    response = await client.get("/api/v1/tiers")
    assert response.status_code == 200
    tiers = response.json()
    assert [t["id"] for t in tiers] == [t.id for t in catalog.tiers]
    for wire, tier in zip(tiers, catalog.tiers, strict=True):
        assert wire["price"] == {
            "amount_cents": tier.price.amount_cents,
            "currency": tier.price.currency,
            "interval": tier.price.interval,
        }
        assert wire["primary_model"] == tier.primary_model
        assert wire["message_cap_per_day"] == tier.messages_per_day
        assert wire["token_budget_per_period"] == tier.tokens_per_period
        assert wire["tool_profile"] == catalog.tool_policy(tier.tool_policy).profile.value
    byok = next(t for t in tiers if t["id"] == "byok")
    assert byok["token_budget_per_period"] is None


async def test_an_app_on_another_catalog_serves_that_catalog_not_an_earlier_body(
    client: AsyncTestClient[Any], services: Services, catalog: Catalog
) -> None:
    """The encoded catalog answers are kept per catalog object, never across catalogs."""
    shipped = (await client.get("/api/v1/tiers")).json()
    starter = catalog.tier("starter")
    repriced = attrs.evolve(
        catalog,
        tiers=tuple(
            attrs.evolve(t, price=attrs.evolve(t.price, amount_cents=123)) if t is starter else t
            for t in catalog.tiers
        ),
        byok_providers=catalog.byok_providers[:1],
    )
    other = attrs.evolve(services, catalog=repriced)
    async with AsyncTestClient(create_app(other)) as other_client:
        tiers = (await other_client.get("/api/v1/tiers")).json()
        providers = (await other_client.get("/api/v1/providers")).json()
    assert next(t for t in tiers if t["id"] == "starter")["price"]["amount_cents"] == 123
    assert [p["id"] for p in providers] == [catalog.byok_providers[0].id]
    assert (await client.get("/api/v1/tiers")).json() == shipped
    assert len((await client.get("/api/v1/providers")).json()) == len(catalog.byok_providers)


async def test_providers_are_the_catalogs_byok_providers_without_internals(
    client: AsyncTestClient[Any], catalog: Catalog
) -> None:
    response = await client.get("/api/v1/providers/")
    assert response.status_code == 200
    providers = response.json()
    assert [p["id"] for p in providers] == [p.id for p in catalog.byok_providers]
    assert set(providers[0]) == {
        "id", "name", "key_hint", "models", "accepts_any_model", "unlisted_model",
    }  # fmt: skip
    openrouter = next(p for p in providers if p["id"] == "openrouter")
    assert openrouter["accepts_any_model"] is True


async def test_provider_models_say_what_each_model_can_do_and_what_is_assumed(
    client: AsyncTestClient[Any], catalog: Catalog
) -> None:
    """Each listed model with its inputs, reasoning and limits; for OpenRouter, the
    assumption for a model it does not list; null where every model is listed."""
    providers = {p["id"]: p for p in (await client.get("/api/v1/providers")).json()}
    anthropic = providers["anthropic"]
    assert anthropic["models"][0] == {
        "id": "claude-sonnet-4-6", "name": "Claude Sonnet 4.6", "input": ["text", "image"],
        "reasoning": True, "context_window": 200000, "max_tokens": 128000,
    }  # fmt: skip
    assert anthropic["unlisted_model"] is None
    assert providers["groq"]["models"][0] == {
        "id": "openai/gpt-oss-120b", "name": "GPT-OSS 120B", "input": ["text"],
        "reasoning": True, "context_window": 131072, "max_tokens": 65536,
    }  # fmt: skip
    assert providers["openrouter"]["unlisted_model"] == {
        "input": ["text"], "reasoning": False, "context_window": 65536, "max_tokens": 8192,
    }  # fmt: skip
    for provider in catalog.byok_providers:
        written = providers[provider.id]["models"]
        assert [(m["id"], m["input"], m["reasoning"], m["max_tokens"]) for m in written] == [
            (m.id, list(m.capabilities.input_modalities), m.capabilities.reasoning,
             m.capabilities.max_tokens)
            for m in provider.models
        ]  # fmt: skip


async def test_the_tenant_shows_tier_route_and_welcome(
    client: AsyncTestClient[Any], customer: Customer, catalog: Catalog
) -> None:
    response = await client.get("/api/v1/tenant", headers=customer.headers)
    assert response.status_code == 200
    body = response.json()
    starter = catalog.tier("starter")
    assert body == {
        "id": customer.tenant_id,
        "tier": "starter",
        "status": "incomplete",
        "timezone": "UTC",
        "billing_anchor_day": 1,
        "model": {
            "primary": starter.primary_model,
            "fallbacks": list(starter.fallback_models),
        },
        "welcome_message": body["welcome_message"],
        "pending_timezone": None,
    }
    assert starter.name in body["welcome_message"]


async def test_a_time_zone_change_applies_when_the_current_day_ends(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    """Windows never overlap (spec §2): the UTC day keeps its bounds, the new zone is shown
    as pending until the day ends."""
    response = await client.patch(
        "/api/v1/tenant", json={"timezone": "America/New_York"}, headers=customer.headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body["timezone"] == "UTC"
    assert body["pending_timezone"]["timezone"] == "America/New_York"
    assert body["pending_timezone"]["applies_at"].endswith("T00:00:00Z")
    usage = (await client.get("/api/v1/usage", headers=customer.headers)).json()
    assert usage["day"]["resets_at"] == body["pending_timezone"]["applies_at"]


async def test_a_premium_tenant_may_choose_a_selectable_model_and_restore_the_default(
    client: AsyncTestClient[Any], customer: Customer, services: Services, catalog: Catalog
) -> None:
    await make_active(services, customer.tenant_id, "premium")
    premium = catalog.tier("premium")
    choice = next(m for m in premium.selectable_models if m != premium.primary_model)
    chosen = await client.patch(
        "/api/v1/tenant", json={"model_preference": choice}, headers=customer.headers
    )
    assert chosen.status_code == 200
    assert chosen.json()["model"]["primary"] == choice
    restored = await client.patch(
        "/api/v1/tenant", json={"model_preference": None}, headers=customer.headers
    )
    assert restored.json()["model"]["primary"] == premium.primary_model


async def test_a_starter_tenant_cannot_choose_a_premium_model(
    client: AsyncTestClient[Any], customer: Customer, catalog: Catalog
) -> None:
    premium = catalog.tier("premium")
    response = await client.patch(
        "/api/v1/tenant",
        json={"model_preference": premium.selectable_models[-1]},
        headers=customer.headers,
    )
    assert response.status_code == 422
    assert response.json()["field"] == "model_preference"


async def test_usage_starts_empty_with_the_tiers_limits(
    client: AsyncTestClient[Any], customer: Customer, catalog: Catalog
) -> None:
    response = await client.get("/api/v1/usage", headers=customer.headers)
    assert response.status_code == 200
    body = response.json()
    starter = catalog.tier("starter")
    assert body["day"]["messages_used"] == 0
    assert body["day"]["message_cap"] == starter.messages_per_day
    assert body["period"]["tokens_used"] == 0
    assert body["period"]["token_budget"] == starter.tokens_per_period
    assert body["period"]["starts_at"] < body["period"]["resets_at"]
    assert body["platform_fallback"] is None


async def test_a_customer_never_sees_another_tenants_usage(
    client: AsyncTestClient[Any],
    customer: Customer,
    services: Services,
    service_headers: dict[str, str],
) -> None:
    from tests.http.conftest import sign_up

    other = await sign_up(client)
    await make_active(services, other.tenant_id)
    await client.post(
        "/api/v1/gateway/admit",
        json={"tenant_id": other.tenant_id, "message_id": "theirs"},
        headers=service_headers,
    )
    mine = (await client.get("/api/v1/usage", headers=customer.headers)).json()
    theirs = (await client.get("/api/v1/usage", headers=other.headers)).json()
    assert mine["day"]["messages_used"] == 0
    assert theirs["day"]["messages_used"] == 1
