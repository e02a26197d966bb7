"""Which model and whose credential serve a tenant: the BYOK fallback rules of the spec.

The domain decides; the config writer only renders the route.
"""

from __future__ import annotations

import attrs

from domain.byok import StoredCredential
from domain.catalog import BYOK, Catalog, Tier
from domain.ids import ModelRef
from domain.metering import Credential
from domain.tenants import Tenant


@attrs.frozen
class ModelChoice:
    ref: ModelRef
    credential: Credential


@attrs.frozen
class Route:
    """The agent's primary model and fallbacks. ``primary`` None: no usable model."""

    primary: ModelChoice | None
    fallbacks: tuple[ModelChoice, ...]

    def choices(self) -> tuple[ModelChoice, ...]:
        return ((self.primary,) if self.primary else ()) + self.fallbacks

    def platform_refs(self) -> tuple[ModelRef, ...]:
        """The route's models served on platform keys."""
        return tuple(c.ref for c in self.choices() if c.credential is Credential.PLATFORM)

    def runs_on_platform(self) -> bool:
        """Whether any model of the route may bill the platform."""
        return bool(self.platform_refs())

    def without_platform(self) -> Route:
        """The route with its platform fallbacks withdrawn (the tenant's key alone)."""
        return Route(
            self.primary,
            tuple(c for c in self.fallbacks if c.credential is not Credential.PLATFORM),
        )

    def refs(self) -> tuple[str | None, tuple[str, ...]]:
        return (
            self.primary.ref if self.primary else None,
            tuple(c.ref for c in self.fallbacks),
        )


def byok_model_ref(catalog: Catalog, credential: StoredCredential) -> ModelRef:
    """A tenant's own model is addressed through its own custom OpenClaw provider."""
    provider = catalog.byok_provider(credential.provider)
    return ModelRef(f"{provider.openclaw_provider_id}/{credential.model_preference}")


def _platform(refs: tuple[ModelRef, ...]) -> tuple[ModelChoice, ...]:
    return tuple(ModelChoice(ref, Credential.PLATFORM) for ref in refs)


def tier_models(tier: Tier) -> tuple[ModelRef, ...]:
    primary = (tier.primary_model,) if tier.primary_model else ()
    return primary + tuple(m for m in tier.fallback_models if m != tier.primary_model)


def platform_fallback_tier(catalog: Catalog, tier: Tier) -> Tier:
    """The tier whose models and budget serve a tier's platform-credential traffic."""
    if tier.platform_fallback_tier is None:
        return tier
    return catalog.tier(tier.platform_fallback_tier)


def decide_route(catalog: Catalog, tenant: Tenant, credential: StoredCredential | None) -> Route:
    """Starter and premium run on platform keys (premium honours a selectable preference).

    BYOK with a valid or unverified key: the tenant's model on its key, the starter models
    as platform fallbacks unless the tenant opted out. BYOK with an invalid key or none: the
    starter models on platform keys, or no usable model if the tenant opted out.
    """
    tier = catalog.tier(tenant.tier)
    if tier.id != BYOK:
        primary = tier.primary_model
        if tenant.model_preference in tier.selectable_models:
            primary = tenant.model_preference
        assert primary is not None
        rest = tuple(m for m in tier.fallback_models if m != primary)
        return Route(ModelChoice(primary, Credential.PLATFORM), _platform(rest))
    starter_models = _platform(tier_models(platform_fallback_tier(catalog, tier)))
    allow_fallback = credential is None or credential.allow_platform_fallback
    if credential is not None and credential.usable():
        own = ModelChoice(byok_model_ref(catalog, credential), Credential.TENANT)
        return Route(own, starter_models if allow_fallback else ())
    if not allow_fallback:
        return Route(None, ())
    return Route(starter_models[0], starter_models[1:])


def platform_token_budget(catalog: Catalog, tier: Tier) -> int | None:
    """Platform-served tokens count against the tier's budget, or, for BYOK, against the
    budget of its platform fallback tier."""
    return platform_fallback_tier(catalog, tier).tokens_per_period
