"""What the pages show, built from the catalog and the tenant's state: plain values for
templates. Every price, cap and model name comes from the catalog handed in here; the
templates only lay the values out."""

from __future__ import annotations

import functools
import zoneinfo
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
from entrypoints.http.pages import capabilities, wording

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
    """One limit as a meter: ``limit`` None means no platform limit. ``reserved`` is held
    for messages being answered; ``headroom`` is what one more message needs (one message,
    or a message's token reservation)."""

    id: str
    label: str
    used: int
    limit: int | None
    unit: str
    resets_at: str
    resets_at_iso: str
    reserved: int = 0
    headroom: int = 1

    def committed(self) -> int:
        return self.used + self.reserved

    def left(self) -> int:
        """What remains of the limit after use and reservations (0 at or past it)."""
        return max(0, (self.limit or 0) - self.committed())

    def refusing(self) -> bool:
        """The agent refuses the next message: what is left cannot hold one more."""
        return self.limit is not None and self.left() < max(1, self.headroom)

    @property
    def percent(self) -> int:
        if not self.limit:
            return 0
        if self.refusing():
            return 100
        return min(99, round(100 * self.committed() / self.limit))

    @property
    def percent_label(self) -> str:
        """Some use never reads as nothing: under one percent shows as "<1%"."""
        return "<1%" if self.committed() and self.percent == 0 else f"{self.percent}%"

    @property
    def level(self) -> str:
        """``ok`` below 80 %, ``warn`` from 80 %, ``full`` once the agent refuses (the
        notification thresholds of the metering rules)."""
        if self.limit is None:
            return "ok"
        if self.refusing():
            return "full"
        return "warn" if self.percent >= 80 else "ok"


@attrs.frozen
class Upgrade:
    """The plan a paused customer can move to, with what it adds."""

    tier_id: str
    label: str


@attrs.frozen
class Paused:
    """Why the agent refuses messages now, until when, and the way out."""

    reason: str
    until: str
    upgrade: Upgrade | None
    limit: str = "messages"
    """The limit that ran out: ``messages`` (the day's cap) or ``tokens`` (the budget)."""


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
    paused: Paused | None = None


def price_label(price: Price) -> str:
    return f"{format_price(price.amount_cents, price.currency)} / {price.interval}"


def tools_label(policy: ToolPolicy) -> str:
    label = f"{policy.profile.value.capitalize()} tools"
    return f"{label}, sandboxed" if policy.sandboxed() else label


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
            parts.append("Or choose " + ", ".join(model_choice_label(catalog, c) for c in choices))
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
            "key_words": wording.key_shape_words(p),
            "key_url": p.key_url,
            "results": wording.probe_words_by_result(p),
            "errors": wording.script_error_words(p),
            "accepts_any_model": p.accepts_any_model,
            "models": capabilities.model_options(p),
            "unlisted_note": capabilities.unlisted_model_note(p),
        }
        for p in catalog.byok_providers
    ]


ZONE_AREAS = (
    "Africa/", "America/", "Antarctica/", "Asia/", "Atlantic/", "Australia/", "Europe/",
    "Indian/", "Pacific/",
)  # fmt: skip


@functools.cache
def timezone_choices() -> tuple[str, ...]:
    """The time zones a customer picks from when the browser cannot tell its own: UTC, then
    every current ``Area/City`` name (no legacy aliases such as ``US/Eastern``), sorted."""
    zones = (z for z in zoneinfo.available_timezones() if z.startswith(ZONE_AREAS))
    return ("UTC", *sorted(zones))


def local_time(instant: datetime, timezone: str) -> str:
    """A reset time as the tenant reads it: local date and time with the zone's name."""
    local = instant.astimezone(parse_timezone(timezone))
    return f"{local:%a %d %b %Y, %H:%M} {local.tzname()}"


def plan_view(
    catalog: Catalog, tenant: Tenant, usage: UsageView, route: Route, tokens_reserved: int = 0
) -> PlanView:
    """The Plan & usage tab: messages today against the cap, tokens this period (used and
    reserved for messages being answered) against the budget, and for BYOK the
    platform-fallback tokens against the fallback tier's budget. A meter whose limit cannot
    hold one more message shows the agent paused, until when, and the plan that adds room."""
    tier = catalog.tier(tenant.tier)
    primary, fallbacks = route.refs()
    tz = tenant.timezone
    day_reset = local_time(usage.day.resets_at, tz)
    period_reset = local_time(usage.period.resets_at, tz)
    is_byok = tier.id == BYOK
    reservation = catalog.reservation_tokens_default
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
            label="Tokens on your own key this period" if is_byok else "Tokens this period",
            used=usage.tokens_used,
            limit=usage.token_budget,
            unit="tokens",
            resets_at=period_reset,
            resets_at_iso=usage.period.resets_at.isoformat(),
            reserved=0 if is_byok else tokens_reserved,
            headroom=reservation,
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
                reserved=tokens_reserved,
                headroom=reservation,
            )
        )
    return PlanView(
        tier_id=tier.id,
        tier_name=tier.name,
        price=price_label(tier.price),
        status=STATUS_LABELS[tenant.status],
        status_id=tenant.status.value,
        is_byok=is_byok,
        model=_route_model_name(catalog, primary, is_byok),
        fallbacks=tuple(_route_model_name(catalog, ref, is_byok) for ref in fallbacks),
        meters=tuple(meters),
        timezone=tz,
        model_choices=tuple(
            (ref, model_choice_label(catalog, ref)) for ref in tier.selectable_models
        ),
        model_choice=tenant.model_preference or tier.primary_model or "",
        paused=paused_state(catalog, tier, meters),
    )


def paused_state(catalog: Catalog, tier: Tier, meters: Sequence[Meter]) -> Paused | None:
    """The first meter that refuses pauses the agent until it resets. The platform-fallback
    meter of a BYOK tenant only stops the fallback, not the agent: it is not a pause."""
    for meter in meters:
        if meter.id == "fallback" or not meter.refusing():
            continue
        if meter.id == "messages":
            reason = f"Your agent has used today's {meter.limit:,} messages."
        else:
            reason = f"Your agent has used this period's {meter.limit:,} tokens" + (
                f", counting {meter.reserved:,} held for messages being answered."
                if meter.reserved
                else "."
            )
        return Paused(
            reason=reason,
            until=meter.resets_at,
            upgrade=upgrade_for(catalog, tier, meter.id),
            limit="messages" if meter.id == "messages" else "tokens",
        )
    return None


def upgrade_for(catalog: Catalog, tier: Tier, limit_id: str) -> Upgrade | None:
    """The cheapest plan on our models with a higher limit of the kind that ran out."""

    def room(candidate: Tier) -> int:
        if limit_id == "messages":
            return candidate.messages_per_day
        return candidate.tokens_per_period or 0

    better = [t for t in catalog.tiers if t.id != BYOK and t.id != tier.id and room(t) > room(tier)]
    if not better:
        return None
    best = min(better, key=lambda t: (t.price.amount_cents, t.id))
    unit = "messages a day" if limit_id == "messages" else f"tokens a {best.price.interval}"
    return Upgrade(tier_id=best.id, label=f"Upgrade to {best.name} ({room(best):,} {unit})")


def weight_note(catalog: Catalog, ref: str) -> str:
    """A model that weighs more than one spends the token budget faster; say how much."""
    model = catalog.find_model(ref)
    if model is None or model.budget_weight == 1:
        return ""
    factor = f"{model.budget_weight.normalize():f}"
    return f"uses your token budget {factor}× faster"


def model_choice_label(catalog: Catalog, ref: str) -> str:
    note = weight_note(catalog, ref)
    return f"{model_name(catalog, ref)} ({note})" if note else model_name(catalog, ref)


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


@attrs.frozen
class KeyBanner:
    """The page state of a BYOK tenant whose key the provider rejected (``rejected``) or who
    has no key yet."""

    title: str
    body: str
    rejected: bool = False


def key_banner(
    catalog: Catalog, tenant: Tenant, credential: StoredCredential | None
) -> KeyBanner | None:
    """Shown while the tier is BYOK and the stored key is rejected (or missing): what the
    agent answers with now, and that the fix is a working key."""
    tier = catalog.tier(tenant.tier)
    if tier.id != BYOK:
        return None
    fallback = platform_fallback_tier(catalog, tier)
    models = ", ".join(model_names(catalog, tier_models(fallback)))
    budget = fallback.tokens_per_period
    budget_words = f"a {budget:,}-token budget" if budget is not None else "our budget"
    if credential is None:
        return KeyBanner(
            title="Your agent is not using your own key yet",
            body=f"Add a key below. Until then your agent answers with {models} on our keys, "
            f"from {budget_words}.",
        )
    if credential.status.value != "invalid":
        return None
    provider = catalog.byok_provider(credential.provider)
    if credential.allow_platform_fallback:
        now = f"Your agent now answers with {models} on our keys, from {budget_words}."
    else:
        now = "Fallback to our models is off, so your agent is paused."
    return KeyBanner(
        title=f"{provider.name} rejected your key",
        body=f"{now} Replace the key to go back to your own model.",
        rejected=True,
    )


def pricing_facts(catalog: Catalog) -> tuple[str, ...]:
    """What every visitor should know before choosing: when limits reset, what happens
    when a key fails on BYOK, and which models spend the budget faster."""
    facts = [
        "Message limits reset at midnight in your time zone; token budgets at the start of "
        "each billing month. When one runs out, your agent pauses until it resets.",
    ]
    byok = next((t for t in catalog.tiers if t.id == BYOK), None)
    if byok is not None:
        fallback = platform_fallback_tier(catalog, byok)
        models = ", ".join(model_names(catalog, tier_models(fallback)))
        budget = fallback.tokens_per_period
        budget_words = f" from a {budget:,}-token monthly budget" if budget is not None else ""
        facts.append(
            f"On {byok.name}, if your key stops working your agent answers with {models} "
            f"on our keys{budget_words}, unless you turn that off."
        )
    for tier in catalog.tiers:
        for ref in tier.selectable_models:
            note = weight_note(catalog, ref)
            if note:
                facts.append(
                    f"On {tier.name} you may choose {model_name(catalog, ref)}, which {note}."
                )
    return tuple(facts)


def history_model_name(catalog: Catalog, ref: str) -> str:
    """A model in the history table: its display name, and whose key served it for a
    customer's own provider."""
    return _route_model_name(catalog, ref, byok=False)
