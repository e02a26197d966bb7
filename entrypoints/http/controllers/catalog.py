"""The public tier and provider catalogs, straight from the one catalog."""

from __future__ import annotations

from litestar import Controller, get

from entrypoints.http.auth import ServicesDep
from entrypoints.http.schemas import PriceOut, ProviderModelOut, ProviderOut, TierOut


class CatalogController(Controller):
    path = "/api/v1"
    tags = ("catalog",)

    @get("/tiers", security=[])
    async def tiers(self, services: ServicesDep) -> list[TierOut]:
        """Every tier with its price, models, limits and tool profile (no auth)."""
        catalog = services.catalog
        return [
            TierOut(
                id=tier.id,
                name=tier.name,
                price=PriceOut(
                    amount_cents=tier.price.amount_cents,
                    currency=tier.price.currency,
                    interval=tier.price.interval,
                ),
                primary_model=tier.primary_model,
                fallback_models=list(tier.fallback_models),
                selectable_models=list(tier.selectable_models),
                message_cap_per_day=tier.messages_per_day,
                token_budget_per_period=tier.tokens_per_period,
                tool_profile=catalog.tool_policy(tier.tool_policy).profile.value,
            )
            for tier in catalog.tiers
        ]

    @get("/providers", security=[])
    async def providers(self, services: ServicesDep) -> list[ProviderOut]:
        """The providers whose key a customer may bring, with their models (no auth)."""
        return [
            ProviderOut(
                id=provider.id,
                name=provider.name,
                key_hint=provider.key_hint,
                models=[ProviderModelOut(id=m.id, name=m.name) for m in provider.models],
                accepts_any_model=provider.accepts_any_model,
            )
            for provider in services.catalog.byok_providers
        ]
