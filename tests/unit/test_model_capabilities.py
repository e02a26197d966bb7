"""Every written model entry can do what the catalog says the model can do: platform and BYOK
alike, the same model the same on either key, and an unlisted OpenRouter model on the
documented conservative assumption."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from adapters.catalog.toml_loader import load_catalog
from adapters.openclaw.render import render
from domain.catalog import Catalog, build_catalog
from domain.errors import CatalogError, ValidationError
from domain.model_capabilities import ModelCapabilities, build_capabilities
from tests.support.openclaw_variants import (
    UNLISTED_OPENROUTER_MODEL,
    Variant,
    all_variants,
    byok_model_variants,
)
from tests.unit.test_catalog_validation import changed

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def variants(shipped: Catalog) -> dict[str, Variant]:
    return {v.name: v for v in all_variants(shipped) + byok_model_variants(shipped)}


def written(capabilities: ModelCapabilities) -> dict[str, Any]:
    """The four keys OpenClaw reads, as the catalog's capabilities should appear."""
    return {
        "input": list(capabilities.input_modalities),
        "reasoning": capabilities.reasoning,
        "contextWindow": capabilities.context_window,
        "maxTokens": capabilities.max_tokens,
    }


def capability_keys(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in ("input", "reasoning", "contextWindow", "maxTokens")}


def rows_of(shipped: Catalog, variant: Variant) -> dict[str, dict[str, Any]]:
    """Every model row of a variant's written config, by ``provider/model`` ref."""
    providers = render(variant.config(shipped))["models"]["providers"]
    return {
        f"{provider_id}/{row['id']}": row
        for provider_id, provider in providers.items()
        for row in provider["models"]
    }


def test_every_platform_model_is_written_with_the_catalogs_capabilities(
    shipped: Catalog, variants: dict[str, Variant]
) -> None:
    """Across every variant, each platform model row matches its catalog model, and every
    catalog model is written somewhere."""
    seen: set[str] = set()
    platform_ids = {p.id for p in shipped.platform_providers}
    for variant in variants.values():
        for ref, row in rows_of(shipped, variant).items():
            if ref.partition("/")[0] in platform_ids:
                assert capability_keys(row) == written(shipped.model(ref).capabilities), ref
                seen.add(ref)
    assert seen == {m.ref for m in shipped.models}


def test_every_listed_byok_model_is_written_with_the_catalogs_capabilities(
    shipped: Catalog, variants: dict[str, Variant]
) -> None:
    expected = {
        f"{provider.openclaw_provider_id}/{option.id}": written(option.capabilities)
        for provider in shipped.byok_providers
        for option in provider.models
    }
    found: dict[str, dict[str, Any]] = {}
    for variant in variants.values():
        for ref, row in rows_of(shipped, variant).items():
            if ref in expected:
                found[ref] = capability_keys(row)
    assert found == expected
    assert len(found) == sum(len(p.models) for p in shipped.byok_providers) == 13


@pytest.mark.parametrize(
    ("premium", "platform_ref", "byok_variant", "byok_ref"),
    [
        ("premium-default", "anthropic/claude-sonnet-4-6",
         "byok-anthropic-model-0", "byok-anthropic/claude-sonnet-4-6"),
        ("premium-claude-opus-4-6", "anthropic/claude-opus-4-6",
         "byok-anthropic-model-1", "byok-anthropic/claude-opus-4-6"),
        ("premium-default", "anthropic/claude-sonnet-4-6",
         "byok-openrouter-model-0", "byok-openrouter/anthropic/claude-sonnet-4.6"),
    ],
)  # fmt: skip
def test_a_premium_and_a_byok_config_on_the_same_model_write_the_same_capabilities(
    shipped: Catalog,
    variants: dict[str, Variant],
    premium: str,
    platform_ref: str,
    byok_variant: str,
    byok_ref: str,
) -> None:
    """The customer's own Claude thinks and reads images exactly as ours does."""
    ours = rows_of(shipped, variants[premium])[platform_ref]
    theirs = rows_of(shipped, variants[byok_variant])[byok_ref]
    assert (
        render(variants[byok_variant].config(shipped))["agents"]["defaults"]["model"]["primary"]
        == byok_ref
    )
    assert capability_keys(theirs) == capability_keys(ours)
    assert (theirs["reasoning"], theirs["input"]) == (True, ["text", "image"])
    assert "cost" in ours and "cost" not in theirs


def test_an_unlisted_openrouter_model_gets_the_documented_conservative_assumption(
    shipped: Catalog, variants: dict[str, Variant]
) -> None:
    """Text only, no reasoning, 65,536 tokens of context and 8,192 of answer."""
    rows = rows_of(shipped, variants["byok-openrouter-model-3"])
    row = rows[f"byok-openrouter/{UNLISTED_OPENROUTER_MODEL}"]
    assert row["name"] == UNLISTED_OPENROUTER_MODEL
    assert capability_keys(row) == {
        "input": ["text"], "reasoning": False, "contextWindow": 65536, "maxTokens": 8192,
    }  # fmt: skip
    assert shipped.byok_provider("openrouter").unlisted_model == ModelCapabilities(
        ("text",), False, 65536, 8192
    )


def test_only_openrouter_accepts_unlisted_models_in_the_shipped_catalog(shipped: Catalog) -> None:
    assert [p.id for p in shipped.byok_providers if p.unlisted_model is not None] == ["openrouter"]


def test_a_provider_that_lists_its_models_refuses_capabilities_of_another(
    shipped: Catalog,
) -> None:
    with pytest.raises(ValidationError) as raised:
        shipped.byok_provider("groq").model_capabilities("llama-9")
    assert (raised.value.field, raised.value.detail) == (
        "model_preference",
        "Groq has no model 'llama-9' in the catalog",
    )


def test_a_listed_model_is_named_from_its_listing_and_an_unlisted_one_by_its_id(
    shipped: Catalog,
) -> None:
    openrouter = shipped.byok_provider("openrouter")
    assert openrouter.model_name("moonshotai/kimi-k2") == "Kimi K2 (via OpenRouter)"
    assert openrouter.model_name("x/y") == "x/y"


def test_inputs_are_kept_in_openclaws_order_and_reasoning_defaults_to_off() -> None:
    built = build_capabilities(
        {"input": ["video", "image", "text"], "context_window": 10, "max_tokens": 10}, "m"
    )
    assert built == ModelCapabilities(("text", "image", "video"), False, 10, 10)


@pytest.mark.parametrize(
    ("spec", "detail"),
    [
        ({"input": ["text", "pdf"]},
         "m: unknown input 'pdf'; expected some of text, image, video, audio"),
        ({"input": "text"}, "m: input must be a list of strings, got 'text'"),
        ({"input": [1]}, "m: input must be a list of strings, got [1]"),
        ({"input": ["image"]}, "m: input must list text once and each kind at most once"),
        ({"input": ["text", "text"]}, "m: input must list text once and each kind at most once"),
        ({"context_window": 100, "max_tokens": 101},
         "m: max_tokens must not exceed context_window"),
        ({"context_window": None}, "m: context_window must be a positive integer, got None"),
        ({"max_tokens": 0}, "m: max_tokens must be a positive integer, got 0"),
        ({"max_tokens": True}, "m: max_tokens must be a positive integer, got True"),
        ({"reasoning": "yes"}, "m: reasoning must be true or false, got 'yes'"),
    ],
)  # fmt: skip
def test_bad_capabilities_are_refused_naming_the_model_and_key(
    spec: dict[str, Any], detail: str
) -> None:
    with pytest.raises(CatalogError) as raised:
        build_capabilities({"context_window": 100, "max_tokens": 10, **spec}, "m")
    assert raised.value.detail == detail


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (lambda d: d["byok_providers"]["own"].update(
            models=[{"id": "m", "name": "M", "same_model_as": "acme/huge"}]),
         "BYOK provider 'own' model 'm': same_model_as names unknown model 'acme/huge'"),
        (lambda d: d["byok_providers"]["own"].update(
            models=[{"id": "m", "name": "M", "same_model_as": "acme/small", "reasoning": True}]),
         "BYOK provider 'own' model 'm': capabilities come from 'acme/small'; state them only"
         " there"),
        (lambda d: d["byok_providers"]["own"].update(
            models=[{"id": "m", "name": "M"}]),
         "BYOK provider 'own' model 'm': context_window must be a positive integer, got None"),
        (lambda d: d["byok_providers"]["own"].update(
            models=[{"id": "m", "name": "M", "same_model_as": "acme/small"}] * 2),
         "duplicate own model 'm'"),
        (lambda d: d["byok_providers"]["own"].update(accepts_any_model=True),
         "BYOK provider 'own': accepts any model, so it needs an [unlisted_model] table"),
        (lambda d: d["byok_providers"]["own"].update(
            unlisted_model={"context_window": 10, "max_tokens": 1}),
         "BYOK provider 'own': unlisted_model is only for a provider accepting any model"),
        (lambda d: d["byok_providers"]["own"].update(
            accepts_any_model=True, unlisted_model={"context_window": 10, "max_tokens": 11}),
         "BYOK provider 'own' unlisted_model: max_tokens must not exceed context_window"),
    ],
)  # fmt: skip
def test_a_byok_model_without_sound_capabilities_is_refused(
    change: Callable[[dict[str, Any]], object], detail: str
) -> None:
    with pytest.raises(CatalogError) as raised:
        build_catalog(changed(change))
    assert raised.value.detail == detail


def test_a_byok_model_named_as_a_platform_model_takes_its_capabilities() -> None:
    catalog = build_catalog(
        changed(
            lambda d: d["byok_providers"]["own"].update(
                models=[{"id": "s", "name": "S", "same_model_as": "acme/small"}]
            )
        )
    )
    assert catalog.byok_provider("own").model_capabilities("s") == (
        catalog.model("acme/small").capabilities
    )
