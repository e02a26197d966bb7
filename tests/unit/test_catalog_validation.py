"""Building a catalog from plain data: each field lands where it belongs, omitted fields take
their documented defaults, and bad numbers and names are refused to the letter."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from domain.catalog import (
    AuthStyle,
    ByokProvider,
    Catalog,
    Model,
    ModelRates,
    PlatformProvider,
    Price,
    ProviderModelOption,
    Tier,
    build_catalog,
    split_model_ref,
)
from domain.errors import CatalogError, ValidationError
from domain.ids import ModelRef, ProviderId, TierId
from domain.model_capabilities import ModelCapabilities
from tests.unit.conftest import catalog_data


def small_catalog_data() -> dict[str, Any]:
    """The least a catalog may say: only required keys, so every default applies."""
    return {
        "metering": {
            "reservation_tokens_default": 1000,
            "reservation_ttl_seconds": 60,
            "past_due_grace_days": 2,
        },
        "tiers": {
            "starter": {"name": "S", "price_cents": 100, "primary_model": "acme/small",
                        "messages_per_day": 5, "tool_policy": "p"},
            "premium": {"name": "P", "price_cents": 200, "messages_per_day": 10,
                        "tool_policy": "p"},
            "byok": {"name": "B", "price_cents": 300, "messages_per_day": 20, "tool_policy": "p",
                     "platform_fallback_tier": "starter"},
        },
        "tool_policies": {"p": {"profile": "minimal"}},
        "platform_providers": {
            "acme": {"name": "Acme", "api": "openai-completions", "base_url": "https://acme.test",
                     "env_var": "ACME_API_KEY"},
        },
        "models": {
            "acme/small": {"name": "Small", "usd_per_mtok_input": "0.5",
                           "usd_per_mtok_output": "1.5", "usd_per_mtok_cache_read": "0.05",
                           "context_window": 1000, "max_tokens": 100},
        },
        "byok_providers": {
            "own": {"name": "Own AI", "openclaw_provider_id": "byok-own",
                    "api": "openai-completions", "base_url": "https://own.test/v1",
                    "env_var": "TIERKEEPER_BYOK_OWN_KEY", "key_prefix": "own-",
                    "key_hint": "Starts with own-", "test_path": "/models", "auth_style": "bearer",
                    "models": []},
        },
    }  # fmt: skip


def changed(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    data = small_catalog_data()
    change(data)
    return data


def test_a_model_is_built_with_every_field_and_its_defaults() -> None:
    """No ``budget_weight``, ``reasoning`` or ``input``: weight 1.0, no reasoning, text only."""
    (model,) = build_catalog(small_catalog_data()).models
    assert model == Model(
        ref=ModelRef("acme/small"),
        name="Small",
        rates=ModelRates(Decimal("0.5"), Decimal("1.5"), Decimal("0.05")),
        budget_weight=Decimal("1.0"),
        capabilities=ModelCapabilities(
            input_modalities=("text",), reasoning=False, context_window=1000, max_tokens=100
        ),
    )


def test_a_model_keeps_its_given_weight_reasoning_and_inputs() -> None:
    model = build_catalog(
        changed(
            lambda d: d["models"]["acme/small"].update(
                budget_weight="2.5", reasoning=True, input=["text", "image"]
            )
        )
    ).model("acme/small")
    assert (model.budget_weight, model.capabilities) == (
        Decimal("2.5"), ModelCapabilities(("text", "image"), True, 1000, 100),
    )  # fmt: skip


def test_a_platform_provider_is_built_with_every_field() -> None:
    catalog = build_catalog(small_catalog_data())
    assert catalog.platform_providers == (
        PlatformProvider("acme", "Acme", "openai-completions", "https://acme.test", "ACME_API_KEY"),
    )
    assert catalog.platform_provider("acme") is catalog.platform_providers[0]


def test_the_platform_provider_asked_for_is_the_one_answered(catalog: Catalog) -> None:
    assert [catalog.platform_provider(p).name for p in ("moonshot", "minimax", "anthropic")] == [
        "Moonshot AI", "MiniMax", "Anthropic",
    ]  # fmt: skip


def test_a_byok_provider_without_optional_fields_gets_their_defaults() -> None:
    (provider,) = build_catalog(small_catalog_data()).byok_providers
    assert provider == ByokProvider(
        id=ProviderId("own"),
        name="Own AI",
        openclaw_provider_id="byok-own",
        api="openai-completions",
        base_url="https://own.test/v1",
        env_var="TIERKEEPER_BYOK_OWN_KEY",
        key_prefix="own-",
        key_hint="Starts with own-",
        test_path="/models",
        auth_style=AuthStyle.BEARER,
        extra_headers=(),
        models=(),
        accepts_any_model=False,
        unlisted_model=None,
    )


def test_a_byok_provider_keeps_its_headers_sorted_its_models_and_any_model_flag() -> None:
    def more(data: dict[str, Any]) -> None:
        data["byok_providers"]["own"].update(
            headers={"x-b": "2", "x-a": 1},
            models=[
                {"id": "m-1", "name": "Model One", "context_window": 50, "max_tokens": 5},
                {"id": "m-2", "name": "Model Two", "same_model_as": "acme/small"},
            ],
            accepts_any_model=True,
            unlisted_model={"context_window": 20, "max_tokens": 2},
            auth_style="x-goog-api-key",
        )

    (provider,) = build_catalog(changed(more)).byok_providers
    assert provider.extra_headers == (("x-a", "1"), ("x-b", "2"))
    assert provider.models == (
        ProviderModelOption("m-1", "Model One", ModelCapabilities(("text",), False, 50, 5)),
        ProviderModelOption("m-2", "Model Two", ModelCapabilities(("text",), False, 1000, 100)),
    )  # fmt: skip
    assert provider.unlisted_model == ModelCapabilities(("text",), False, 20, 2)
    assert (provider.accepts_any_model, provider.auth_style) == (True, AuthStyle.X_GOOG_API_KEY)


def test_a_tier_is_built_with_every_field_and_its_defaults() -> None:
    """No currency, interval, budget or model lists: usd per month, no limit, none listed."""
    catalog = build_catalog(small_catalog_data())
    assert catalog.tier("starter") == Tier(
        id=TierId("starter"),
        name="S",
        price=Price(amount_cents=100, currency="usd", interval="month"),
        primary_model=ModelRef("acme/small"),
        fallback_models=(),
        selectable_models=(),
        messages_per_day=5,
        tokens_per_period=None,
        tool_policy="p",
        legacy_ids=(),
        platform_fallback_tier=None,
    )
    assert catalog.tier("premium").primary_model is None
    assert catalog.tier("byok").platform_fallback_tier == "starter"


def test_a_tier_keeps_its_given_currency_interval_budget_and_model_lists() -> None:
    def more(data: dict[str, Any]) -> None:
        data["tiers"]["premium"].update(
            currency="eur", interval="year", tokens_per_period=0, legacy_ids=["gold"],
            primary_model="acme/small", fallback_models=["acme/small"],
            selectable_models=["acme/small"],
        )  # fmt: skip

    premium = build_catalog(changed(more)).tier("gold")
    assert (premium.id, premium.price, premium.tokens_per_period) == (
        "premium", Price(200, "eur", "year"), 0,
    )  # fmt: skip
    assert (premium.fallback_models, premium.selectable_models) == (
        ("acme/small",), ("acme/small",),
    )  # fmt: skip


def test_an_empty_platform_fallback_tier_counts_as_none_named() -> None:
    data = changed(lambda d: d["tiers"]["byok"].update(platform_fallback_tier=""))
    with pytest.raises(CatalogError) as raised:
        build_catalog(data)
    assert raised.value.detail == "the byok tier must name its platform_fallback_tier"


def test_metering_settings_are_read_from_the_metering_table() -> None:
    catalog = build_catalog(small_catalog_data())
    assert (
        catalog.reservation_tokens_default,
        catalog.reservation_ttl_seconds,
        catalog.past_due_grace_days,
    ) == (1000, 60, 2)


def test_the_shipped_catalogs_metering_defaults_are_built_from_its_file() -> None:
    catalog = build_catalog(catalog_data())
    assert (catalog.reservation_ttl_seconds, catalog.past_due_grace_days) == (900, 3)


def test_the_smallest_allowed_numbers_are_accepted() -> None:
    """One for a positive setting, zero for a non-negative one."""

    def smallest(data: dict[str, Any]) -> None:
        data["metering"].update(reservation_ttl_seconds=1, past_due_grace_days=0)
        data["models"]["acme/small"].update(context_window=1, max_tokens=1)
        data["tiers"]["starter"].update(price_cents=0, messages_per_day=0)

    catalog = build_catalog(changed(smallest))
    assert (catalog.reservation_ttl_seconds, catalog.past_due_grace_days) == (1, 0)
    capabilities = catalog.model("acme/small").capabilities
    assert (capabilities.context_window, capabilities.max_tokens) == (1, 1)
    starter = catalog.tier("starter")
    assert (starter.price.amount_cents, starter.messages_per_day) == (0, 0)


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (lambda d: d["metering"].update(reservation_ttl_seconds=True),
         "reservation_ttl_seconds must be a positive integer, got True"),
        (lambda d: d["metering"].update(reservation_ttl_seconds="60"),
         "reservation_ttl_seconds must be a positive integer, got '60'"),
        (lambda d: d["metering"].update(reservation_ttl_seconds=0),
         "reservation_ttl_seconds must be a positive integer, got 0"),
        (lambda d: d["models"]["acme/small"].update(max_tokens=1.5),
         "model 'acme/small': max_tokens must be a positive integer, got 1.5"),
        (lambda d: d["metering"].update(past_due_grace_days=False),
         "past_due_grace_days must be a non-negative integer, got False"),
        (lambda d: d["metering"].update(past_due_grace_days="3"),
         "past_due_grace_days must be a non-negative integer, got '3'"),
        (lambda d: d["tiers"]["starter"].update(price_cents=-1),
         "price_cents must be a non-negative integer, got -1"),
        (lambda d: d["models"]["acme/small"].pop("usd_per_mtok_input"),
         "usd_per_mtok_input is required"),
        (lambda d: d["models"]["acme/small"].update(budget_weight="-0.5"),
         "budget_weight must not be negative, got '-0.5'"),
        (lambda d: d["platform_providers"]["acme"].update(env_var="acme_key"),
         "platform provider 'acme': env_var 'acme_key' must be an upper-case variable name"),
        (lambda d: d["byok_providers"]["own"].update(env_var="TIERKEEPER-OWN"),
         "BYOK provider 'own': env_var 'TIERKEEPER-OWN' must be an upper-case variable name"),
    ],
)  # fmt: skip
def test_a_bad_value_is_refused_naming_the_key_and_the_value(
    change: Callable[[dict[str, Any]], object], detail: str
) -> None:
    with pytest.raises(CatalogError) as raised:
        build_catalog(changed(change))
    assert (raised.value.code, raised.value.detail) == ("catalog_error", detail)


@pytest.mark.parametrize("ref", ["kimi", "/kimi", "moonshot/"])
def test_a_model_ref_without_provider_and_model_is_a_field_error_on_the_model(ref: str) -> None:
    with pytest.raises(ValidationError) as raised:
        split_model_ref(ref)
    assert (raised.value.field, raised.value.detail) == (
        "model",
        f"model ref {ref!r} must be 'provider/model'",
    )


def test_an_unknown_tier_lists_every_known_tier_id(catalog: Catalog) -> None:
    with pytest.raises(ValidationError) as raised:
        catalog.normalise_tier_id("Gold")
    assert raised.value.detail == "unknown tier 'Gold'; expected one of starter, premium, byok"


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (
            lambda d: d["tool_policies"]["p"].update(elevated="false"),
            "tool policy 'p': elevated must be true or false, got 'false'",
        ),
        (
            lambda d: d["tool_policies"]["p"].update(fs_workspace_only=0),
            "tool policy 'p': fs_workspace_only must be true or false, got 0",
        ),
        (
            lambda d: d["models"]["acme/small"].update(reasoning="no"),
            "model 'acme/small': reasoning must be true or false, got 'no'",
        ),
        (
            lambda d: d["byok_providers"]["own"].update(accepts_any_model="true"),
            "BYOK provider 'own': accepts_any_model must be true or false, got 'true'",
        ),
    ],
)
def test_a_switch_that_is_not_a_toml_boolean_is_refused(
    change: Callable[[dict[str, Any]], object], detail: str
) -> None:
    """A quoted "false" would otherwise read as true (and could switch elevated exec on)."""
    with pytest.raises(CatalogError) as raised:
        build_catalog(changed(change))
    assert raised.value.detail == detail


def test_a_sandbox_that_is_not_a_table_is_refused_naming_the_policy() -> None:
    with pytest.raises(CatalogError) as raised:
        build_catalog(changed(lambda d: d["tool_policies"]["p"].update(sandbox="all")))
    assert raised.value.detail == "tool policy 'p': sandbox must be a table, got 'all'"


def test_a_wrongly_shaped_table_is_a_catalog_error_not_a_crash() -> None:
    with pytest.raises(CatalogError) as raised:
        build_catalog(changed(lambda d: d["byok_providers"]["own"].update(headers=["x"])))
    assert raised.value.detail.startswith("catalog is malformed: AttributeError(")


@pytest.mark.parametrize("rate", ["Infinity", "-Infinity", "NaN"])
@pytest.mark.parametrize("key", ["budget_weight", "usd_per_mtok_input"])
def test_a_rate_or_weight_that_is_not_a_finite_number_is_refused(rate: str, key: str) -> None:
    with pytest.raises(CatalogError) as raised:
        build_catalog(changed(lambda d: d["models"]["acme/small"].update({key: rate})))
    assert raised.value.detail == f"{key} must be a finite number, got {rate!r}"


@pytest.mark.parametrize(
    "bad", ["http://own.test/keys", "own.test/keys", "https://own.test/a b", 7]
)
def test_a_byok_providers_key_url_must_be_an_https_address(bad: object) -> None:
    data = small_catalog_data()
    data["byok_providers"]["own"]["key_url"] = bad
    with pytest.raises(CatalogError) as raised:
        build_catalog(data)
    assert "key_url" in str(raised.value)
    data["byok_providers"]["own"]["key_url"] = "https://own.test/keys"
    assert build_catalog(data).byok_providers[0].key_url == "https://own.test/keys"


def test_a_bad_key_url_is_refused_in_words_naming_the_provider() -> None:
    data = small_catalog_data()
    data["byok_providers"]["own"]["key_url"] = "http://own.test/keys"
    with pytest.raises(CatalogError) as raised:
        build_catalog(data)
    assert raised.value.detail == (
        "BYOK provider 'own': key_url 'http://own.test/keys' must be an https:// address"
    )
