"""What the pages show, built from the catalog and the tenant's state: plain values for
templates. Every price, cap and model name comes from the catalog handed in here; the
templates only lay the values out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from domain.byok import StoredCredential
from domain.catalog import BYOK, Catalog, Price, Tier
from domain.routing import Route, platform_fallback_tier, tier_models
from domain.tenants import SubscriptionStatus, Tenant
from domain.tool_policy import ToolPolicy
from domain.use_cases.metering import UsageView
from domain.welcome import format_price, model_name
from domain.windows import parse_timezone
from entrypoints.http.pages import capabilities

STATUS_LABELS = {
    SubscriptionStatus.INCOMPLETE: "Awaiting payment",
    SubscriptionStatus.ACTIVE: "Active",
    SubscriptionStatus.PAST_DUE: "Payment overdue",
    SubscriptionStatus.CANCELED: "Canceled",
}

KEY_STATUS_LABELS = {
    "unverified": "Not yet verified",
    "valid": "Working",
    "invalid": "Rejected by the provider",
}


@attrs.frozen
class TierCard:
    """One plan as the onboarding page and the terms page show it."""

    id: str
    name: str
    price: str
    model: str
    model_note: str
    messages: str
    tokens: str
    tools: str
    is_current: bool


@attrs.frozen
class Meter:
    """One limit as a meter: ``limit`` None means no platform limit."""

    id: str
    label: str
    used: int
    limit: int | None
    unit: str
    resets_at: str
    resets_at_iso: str

    @property
    def percent(self) -> int:
        if not self.limit:
            return 0
        return min(100, round(100 * self.used / self.limit))

    @property
    def percent_label(self) -> str:
        """Some use never reads as nothing: under one percent shows as "<1%"."""
        return "<1%" if self.used and self.percent == 0 else f"{self.percent}%"

    @property
    def level(self) -> str:
        """``ok`` below 80 %, ``warn`` from 80 %, ``full`` at the limit (the notification
        thresholds of the metering rules)."""
        if self.limit is None:
            return "ok"
        if self.used >= self.limit:
            return "full"
        return "warn" if self.percent >= 80 else "ok"


@attrs.frozen
class PlanView:
    tier_id: str
    tier_name: str
    price: str
    status: str
    status_id: str
    is_byok: bool
    model: str
    fallbacks: tuple[str, ...]
    meters: tuple[Meter, ...]
    timezone: str
    model_choices: tuple[tuple[str, str], ...]
    """(model ref, name) the tier lets the tenant choose among; empty when there is no choice."""
    model_choice: str


def price_label(price: Price) -> str:
    return f"{format_price(price.amount_cents, price.currency)} / {price.interval}"


def tools_label(policy: ToolPolicy) -> str:
    label = f"{policy.profile.value.capitalize()} tools"
    return f"{label}, sandboxed" if policy.sandboxed else label


def model_names(catalog: Catalog, refs: Sequence[str]) -> tuple[str, ...]:
    return tuple(model_name(catalog, ref) for ref in refs)


def tier_card(catalog: Catalog, tier: Tier, current_tier: str | None) -> TierCard:
    """The BYOK card names the models that serve when the customer's own key cannot."""
    interval = tier.price.interval
    if tier.id == BYOK:
        fallback = platform_fallback_tier(catalog, tier)
        model = "Your own provider and model"
        note = "Fallback on our keys: " + ", ".join(model_names(catalog, tier_models(fallback)))
        tokens = "No platform limit on your own key"
    else:
        model = model_name(catalog, tier.primary_model or "")
        choices = [m for m in tier.selectable_models if m != tier.primary_model]
        parts = []
        if choices:
            parts.append("Or choose " + ", ".join(model_names(catalog, choices)))
        if tier.fallback_models:
            parts.append("Fallback: " + ", ".join(model_names(catalog, tier.fallback_models)))
        note = ". ".join(parts)
        tokens = (
            "No platform token limit"
            if tier.tokens_per_period is None
            else f"{tier.tokens_per_period:,} tokens / {interval}"
        )
    return TierCard(
        id=tier.id,
        name=tier.name,
        price=price_label(tier.price),
        model=model,
        model_note=note,
        messages=f"{tier.messages_per_day:,} messages / day",
        tokens=tokens,
        tools=tools_label(catalog.tool_policy(tier.tool_policy)),
        is_current=current_tier is not None and tier.id == current_tier,
    )


def tier_cards(catalog: Catalog, current_tier: str | None = None) -> tuple[TierCard, ...]:
    current = catalog.tier(current_tier).id if current_tier else None
    return tuple(tier_card(catalog, tier, current) for tier in catalog.tiers)


def providers_data(catalog: Catalog) -> list[dict[str, Any]]:
    """What the AI Provider tab's script needs to fill the model selector per provider."""
    return [
        {
            "id": p.id,
            "name": p.name,
            "key_hint": p.key_hint,
            "accepts_any_model": p.accepts_any_model,
            "models": capabilities.model_options(p),
            "unlisted_note": capabilities.unlisted_model_note(p),
        }
        for p in catalog.byok_providers
    ]


def local_time(instant: datetime, timezone: str) -> str:
    """A reset time as the tenant reads it: local date and time with the zone's name."""
    local = instant.astimezone(parse_timezone(timezone))
    return f"{local:%a %d %b %Y, %H:%M} {local.tzname()}"


def plan_view(catalog: Catalog, tenant: Tenant, usage: UsageView, route: Route) -> PlanView:
    """The Plan & usage tab: messages today against the cap, tokens this period against the
    budget, and for BYOK the platform-fallback tokens against the fallback tier's budget."""
    tier = catalog.tier(tenant.tier)
    primary, fallbacks = route.refs()
    tz = tenant.timezone
    day_reset = local_time(usage.day.resets_at, tz)
    period_reset = local_time(usage.period.resets_at, tz)
    meters = [
        Meter(
            id="messages",
            label="Messages today",
            used=usage.messages_used,
            limit=usage.message_cap,
            unit="messages",
            resets_at=day_reset,
            resets_at_iso=usage.day.resets_at.isoformat(),
        ),
        Meter(
            id="tokens",
            label="Tokens on your own key this period" if tier.id == BYOK else "Tokens this period",
            used=usage.tokens_used,
            limit=usage.token_budget,
            unit="tokens",
            resets_at=period_reset,
            resets_at_iso=usage.period.resets_at.isoformat(),
        ),
    ]
    if usage.fallback_tokens_used is not None:
        meters.append(
            Meter(
                id="fallback",
                label="Platform fallback tokens this period",
                used=usage.fallback_tokens_used,
                limit=usage.fallback_token_budget,
                unit="tokens",
                resets_at=period_reset,
                resets_at_iso=usage.period.resets_at.isoformat(),
            )
        )
    return PlanView(
        tier_id=tier.id,
        tier_name=tier.name,
        price=price_label(tier.price),
        status=STATUS_LABELS[tenant.status],
        status_id=tenant.status.value,
        is_byok=tier.id == BYOK,
        model=_route_model_name(catalog, primary, tier.id == BYOK),
        fallbacks=tuple(_route_model_name(catalog, ref, tier.id == BYOK) for ref in fallbacks),
        meters=tuple(meters),
        timezone=tz,
        model_choices=tuple((ref, model_name(catalog, ref)) for ref in tier.selectable_models),
        model_choice=tenant.model_preference or tier.primary_model or "",
    )


def _route_model_name(catalog: Catalog, ref: str | None, byok: bool) -> str:
    """Platform models by their catalog name (marked as ours for a BYOK tenant); a tenant's
    own model by its name at its provider."""
    if ref is None:
        return "No usable model: add a working key or allow platform fallback"
    if catalog.find_model(ref) is not None:
        name = model_name(catalog, ref)
        return f"{name} on our key" if byok else name
    provider_id, _, model = ref.partition("/")
    for provider in catalog.byok_providers:
        if provider.openclaw_provider_id == provider_id:
            known = next((m.name for m in provider.models if m.id == model), model)
            return f"{known} on your {provider.name} key"
    return ref


@attrs.frozen
class CredentialView:
    provider: str
    provider_name: str
    model_preference: str
    key_mask: str
    status: str
    status_label: str
    last_verified_at: str | None
    last_error: str | None
    allow_platform_fallback: bool


def credential_view(
    catalog: Catalog, credential: StoredCredential | None, timezone: str
) -> CredentialView | None:
    if credential is None:
        return None
    provider = catalog.byok_provider(credential.provider)
    verified = credential.last_verified_at
    return CredentialView(
        provider=provider.id,
        provider_name=provider.name,
        model_preference=credential.model_preference,
        key_mask=credential.key_mask,
        status=credential.status.value,
        status_label=KEY_STATUS_LABELS[credential.status.value],
        last_verified_at=local_time(verified, timezone) if verified else None,
        last_error=credential.last_error,
        allow_platform_fallback=credential.allow_platform_fallback,
    )
