"""The shipped catalog holds the spec's defaults, and bad catalogs are refused clearly."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import pytest

from domain.catalog import Catalog, build_catalog, split_model_ref
from domain.errors import CatalogError, ValidationError
from tests.unit.conftest import catalog_data


def test_the_three_tiers_have_the_spec_defaults(catalog: Catalog) -> None:
    starter, premium, byok = (catalog.tier(t) for t in ("starter", "premium", "byok"))
    assert (starter.name, starter.price.amount_cents, starter.price.currency) == (
        "Starter", 700, "usd",
    )  # fmt: skip
    assert (starter.primary_model, starter.fallback_models) == (
        "moonshot/kimi-k2.5", ("minimax/MiniMax-M2.1",),
    )  # fmt: skip
    assert (starter.messages_per_day, starter.tokens_per_period) == (50, 500_000)
    assert (premium.name, premium.price.amount_cents) == ("Premium", 2500)
    assert premium.primary_model == "anthropic/claude-sonnet-4-6"
    assert "anthropic/claude-opus-4-6" in premium.selectable_models
    assert premium.fallback_models == ("moonshot/kimi-k2.5",)
    assert (premium.messages_per_day, premium.tokens_per_period) == (200, 2_000_000)
    assert (byok.name, byok.price.amount_cents) == ("Bring Your Own Key", 600)
    assert (byok.messages_per_day, byok.tokens_per_period) == (200, None)
    assert byok.platform_fallback_tier == "starter"
    assert catalog.tool_policy(starter.tool_policy).profile.value == "messaging"
    assert catalog.tool_policy(premium.tool_policy).profile.value == "coding"
    assert catalog.tool_policy(premium.tool_policy).sandboxed()
    assert byok.tool_policy == premium.tool_policy


def test_model_rates_and_weights_match_the_spec(catalog: Catalog) -> None:
    def rates(ref: str) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        model = catalog.model(ref)
        r = model.rates
        return (r.usd_per_mtok_input, r.usd_per_mtok_output, r.usd_per_mtok_cache_read,
                model.budget_weight)  # fmt: skip

    d = Decimal
    assert rates("moonshot/kimi-k2.5") == (d("0.60"), d("3.00"), d("0.10"), d("1.0"))
    assert rates("minimax/MiniMax-M2.1") == (d("0.30"), d("1.20"), d("0.03"), d("1.0"))
    assert rates("anthropic/claude-sonnet-4-6") == (d("3.00"), d("15.00"), d("0.30"), d("1.0"))
    assert rates("anthropic/claude-opus-4-6") == (d("5.00"), d("25.00"), d("0.50"), d("1.67"))


def test_metering_defaults(catalog: Catalog) -> None:
    assert catalog.reservation_tokens_default == 16_000
    assert catalog.reservation_ttl_seconds == 15 * 60
    assert catalog.past_due_grace_days == 3


@pytest.mark.parametrize(
    ("given", "expected"),
    [("basic", "starter"), ("plus", "premium"), ("PLUS", "premium"), (" starter ", "starter"),
     ("byok", "byok"), ("premium", "premium")],
)  # fmt: skip
def test_legacy_and_current_tier_ids_normalise(catalog: Catalog, given: str, expected: str) -> None:
    assert catalog.normalise_tier_id(given) == expected
    assert catalog.tier(given).id == expected


def test_an_unknown_tier_is_a_field_error(catalog: Catalog) -> None:
    with pytest.raises(ValidationError) as raised:
        catalog.tier("gold")
    assert raised.value.field == "tier"
    assert "gold" in raised.value.detail


def test_an_unknown_tier_error_lists_the_known_ones(catalog: Catalog) -> None:
    with pytest.raises(ValidationError) as raised:
        catalog.normalise_tier_id("gold")
    assert raised.value.detail == "unknown tier 'gold'; expected one of starter, premium, byok"


def test_models_are_found_by_ref_and_an_unknown_ref_is_a_field_error(catalog: Catalog) -> None:
    for model in catalog.models:
        assert catalog.model(model.ref) is model
        assert catalog.find_model(model.ref) is model
    assert catalog.find_model("moonshot/nope") is None
    with pytest.raises(ValidationError) as raised:
        catalog.model("moonshot/nope")
    assert raised.value.field == "model"
    assert raised.value.detail == "unknown model 'moonshot/nope'"


def test_a_changed_catalog_looks_up_its_own_tiers_and_models(catalog: Catalog) -> None:
    """Lookups are built from the values a catalog holds, so an evolved copy answers its own."""
    renamed = attrs.evolve(catalog.tier("premium"), name="Gold", legacy_ids=("gold",))
    changed = attrs.evolve(
        catalog,
        tiers=tuple(renamed if t.id == "premium" else t for t in catalog.tiers),
        models=catalog.models[:1],
    )
    assert changed.tier("gold") is renamed
    assert changed.tier("premium").name == "Gold"
    assert catalog.tier("premium").name == "Premium"
    assert changed.find_model(catalog.models[1].ref) is None
    assert changed == attrs.evolve(changed)


def test_model_refs_split_on_the_first_slash() -> None:
    assert split_model_ref("openrouter/anthropic/claude") == ("openrouter", "anthropic/claude")
    for bad in ("kimi", "/kimi", "moonshot/"):
        with pytest.raises(ValidationError):
            split_model_ref(bad)


def test_platform_env_vars_are_the_platform_providers_vars(catalog: Catalog) -> None:
    assert catalog.platform_env_vars() == {
        "MOONSHOT_API_KEY", "MINIMAX_API_KEY", "ANTHROPIC_API_KEY",
    }  # fmt: skip


def test_unknown_provider_error_lists_the_known_ones(catalog: Catalog) -> None:
    with pytest.raises(ValidationError) as raised:
        catalog.byok_provider("mistral")
    assert raised.value.field == "provider"
    assert "openai" in raised.value.detail


def broken(mutate: Any) -> dict[str, Any]:
    data = catalog_data()
    mutate(data)
    return data


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["tiers"]["starter"].update(primary_model="moonshot/nope"), "unknown model"),
        (lambda d: d["tiers"]["starter"].update(messages_per_day=-1), "non-negative"),
        (lambda d: d["tiers"]["premium"].update(tokens_per_period=-5), "non-negative"),
        (lambda d: d["tiers"]["premium"].update(legacy_ids=["basic"]), "duplicate tier id"),
        (lambda d: d["tiers"].pop("byok"), "no 'byok' tier"),
        (lambda d: d["tiers"]["byok"].pop("platform_fallback_tier"), "platform_fallback_tier"),
        (lambda d: d["tiers"]["byok"].update(platform_fallback_tier="gold"), "unknown tier"),
        (lambda d: d["tiers"]["starter"].update(tool_policy="admin"), "unknown tool policy"),
        (lambda d: d["tiers"]["premium"].update(selectable_models=["anthropic/claude-opus-4-6"]),
         "must be selectable"),
        (lambda d: d["models"]["moonshot/kimi-k2.5"].update(budget_weight="0"), "positive"),
        (lambda d: d["models"]["moonshot/kimi-k2.5"].update(usd_per_mtok_input="-1"),
         "must not be negative"),
        (lambda d: d["models"].update({"acme/x": dict(d["models"]["moonshot/kimi-k2.5"])}),
         "unknown platform provider"),
        (lambda d: d["byok_providers"]["openai"].update(env_var="MOONSHOT_API_KEY"),
         "platform name"),
        (lambda d: d["byok_providers"]["openai"].update(openclaw_provider_id="anthropic"),
         "platform name"),
        (lambda d: d["byok_providers"]["openai"].update(env_var="lower_case"), "upper-case"),
        (lambda d: d["tool_policies"]["coding"].update(deny=["group:bogus"]), "unknown tool"),
        (lambda d: d["tool_policies"]["coding"].update(allow=["shell"]), "unknown tool"),
        (lambda d: d["tool_policies"]["coding"].update(profile="pro"), "tool policy 'coding'"),
        (lambda d: d["tool_policies"]["coding"]["sandbox"].update(scope="tenant"), "scope"),
        (lambda d: d["metering"].update(reservation_tokens_default=0), "positive integer"),
        (lambda d: d["metering"].update(past_due_grace_days=-1), "non-negative"),
        (lambda d: d.pop("metering"), "[metering]"),
        (lambda d: d["tiers"]["starter"].pop("name"), "malformed"),
    ],
)  # fmt: skip
def test_a_broken_catalog_is_refused_with_a_clear_error(mutate: Any, message: str) -> None:
    with pytest.raises(CatalogError) as raised:
        build_catalog(broken(mutate))
    assert message in raised.value.detail


def test_a_tier_without_token_budget_means_no_platform_limit() -> None:
    data = broken(lambda d: d["tiers"]["premium"].pop("tokens_per_period"))
    assert build_catalog(data).tier("premium").tokens_per_period is None
