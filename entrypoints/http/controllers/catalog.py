"""The public tier and provider catalogs, straight from the one catalog.

A catalog never changes while a process runs, so each answer is encoded once per catalog
object and then served as bytes: the catalog is the most requested unauthenticated page,
and building and encoding its models was a large share of it (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from litestar import Controller, MediaType, Response, get
from litestar.openapi import ResponseSpec
from litestar.serialization import encode_json

from domain.catalog import Catalog
from domain.model_capabilities import ModelCapabilities
from entrypoints.http.auth import ServicesDep
from entrypoints.http.schemas import (
    CapabilitiesOut,
    PriceOut,
    ProviderModelOut,
    ProviderOut,
    TierOut,
)


def tiers_out(catalog: Catalog) -> list[TierOut]:
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


def capabilities_out(capabilities: ModelCapabilities) -> dict[str, Any]:
    return {
        "input": list(capabilities.input_modalities),
        "reasoning": capabilities.reasoning,
        "context_window": capabilities.context_window,
        "max_tokens": capabilities.max_tokens,
    }


def providers_out(catalog: Catalog) -> list[ProviderOut]:
    return [
        ProviderOut(
            id=provider.id,
            name=provider.name,
            key_hint=provider.key_hint,
            models=[
                ProviderModelOut(id=m.id, name=m.name, **capabilities_out(m.capabilities))
                for m in provider.models
            ],
            accepts_any_model=provider.accepts_any_model,
            unlisted_model=(
                None
                if provider.unlisted_model is None
                else CapabilitiesOut(**capabilities_out(provider.unlisted_model))
            ),
        )
        for provider in catalog.byok_providers
    ]


@attrs.define
class EncodedOnce:
    """The JSON body of ``build(catalog)``, encoded again only when another catalog object
    comes (a test app, a restarted composition root): catalogs are compared by identity."""

    build: Callable[[Catalog], object]
    _catalog: Catalog | None = None
    _body: bytes = b""

    def body(self, catalog: Catalog) -> bytes:
        if catalog is not self._catalog:
            self._body = encode_json(self.build(catalog))
            self._catalog = catalog
        return self._body


_TIERS = EncodedOnce(tiers_out)
_PROVIDERS = EncodedOnce(providers_out)


class CatalogController(Controller):
    path = "/api/v1"
    tags = ("catalog",)

    @get(
        "/tiers",
        security=[],
        responses={
            200: ResponseSpec(list[TierOut], generate_examples=False, description="Every tier")
        },
    )
    async def tiers(self, services: ServicesDep) -> Response[bytes]:
        """Every tier with its price, models, limits and tool profile (no auth)."""
        return Response(_TIERS.body(services.catalog), media_type=MediaType.JSON)

    @get(
        "/providers",
        security=[],
        responses={
            200: ResponseSpec(
                list[ProviderOut], generate_examples=False, description="Every BYOK provider"
            )
        },
    )
    async def providers(self, services: ServicesDep) -> Response[bytes]:
        """The providers whose key a customer may bring, with their models (no auth)."""
        return Response(_PROVIDERS.body(services.catalog), media_type=MediaType.JSON)
