"""The welcome message a new tenant's agent sends, built from the catalog."""

from __future__ import annotations

from domain.catalog import BYOK, Catalog
from domain.routing import Route
from domain.tenants import Tenant


def format_price(amount_cents: int, currency: str) -> str:
    symbol = "$" if currency.lower() == "usd" else f"{currency.upper()} "
    return f"{symbol}{amount_cents // 100}.{amount_cents % 100:02d}"


def model_name(catalog: Catalog, ref: str) -> str:
    """A model's display name: the catalog's, or for a BYOK ref its provider's listing."""
    model = catalog.find_model(ref)
    if model is not None:
        return model.name
    provider_id, _, model_id = ref.partition("/")
    for provider in catalog.byok_providers:
        if provider.openclaw_provider_id == provider_id:
            listed = {m.id: m.name for m in provider.models}
            return f"{listed.get(model_id, model_id)} on your {provider.name} key"
    return model_id


def welcome_message(catalog: Catalog, tenant: Tenant, route: Route) -> str:
    """Names the tier, the model that will answer, and the limits, all from the catalog."""
    tier = catalog.tier(tenant.tier)
    lines = [f"Welcome to your agent on the {tier.name} plan."]
    if route.primary is None:
        lines.append("Add a working AI provider key in Settings → AI Provider to start.")
    else:
        lines.append(f"Your agent answers with {model_name(catalog, route.primary.ref)}.")
    lines.append(f"You can send up to {tier.messages_per_day} messages a day.")
    if tier.id == BYOK:
        lines.append("Tokens on your own key have no platform limit.")
    elif tier.tokens_per_period is not None:
        lines.append(f"Your plan includes {tier.tokens_per_period:,} tokens per billing month.")
    return " ".join(lines)
