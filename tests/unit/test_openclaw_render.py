"""The renderer turns a tenant's config into OpenClaw 2026.9.6 JSON: only references to
credentials, the route, the tool policy, byte-for-byte deterministic."""

from __future__ import annotations

import json

import attrs
import pytest

from adapters.catalog.toml_loader import load_catalog
from adapters.openclaw.render import (
    OPENCLAW_PROVIDER_ENV,
    digest,
    env_ref,
    literal,
    render,
    render_json,
)
from domain.catalog import Catalog
from domain.openclaw_model import TenantConfig
from domain.secrets import Secret
from tests.support.openclaw_variants import Variant, all_variants

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def variants(shipped: Catalog) -> dict[str, Variant]:
    return {v.name: v for v in all_variants(shipped)}


def config_of(shipped: Catalog, variants: dict[str, Variant], name: str) -> TenantConfig:
    return variants[name].config(shipped)


def test_every_variant_is_covered(variants: dict[str, Variant]) -> None:
    """Starter, premium default and Opus, and 5 BYOK providers x 4 key states x fallback."""
    assert len(variants) == 1 + 2 + 5 * 4 * 2


def test_starter_renders_gateway_providers_route_and_messaging_tools(
    shipped: Catalog, variants: dict[str, Variant]
) -> None:
    doc = render(config_of(shipped, variants, "starter"))
    assert doc["gateway"] == {
        "mode": "local",
        "bind": "loopback",
        "auth": {
            "mode": "token",
            "token": {"source": "env", "provider": "default", "id": "OPENCLAW_GATEWAY_TOKEN"},
        },
    }
    assert doc["models"]["mode"] == "replace"
    assert doc["models"]["catalogRefresh"] == {"enabled": False}
    providers = doc["models"]["providers"]
    assert sorted(providers) == ["minimax", "moonshot"]
    assert providers["moonshot"]["apiKey"] == {
        "source": "env",
        "provider": "default",
        "id": "MOONSHOT_API_KEY",
    }
    assert providers["moonshot"]["models"] == [
        {
            "id": "kimi-k2.5",
            "name": "Kimi K2.5",
            "reasoning": True,
            "input": ["text", "image"],
            "contextWindow": 262144,
            "maxTokens": 32768,
            "cost": {"input": 0.6, "output": 3, "cacheRead": 0.1},
        }
    ]
    assert providers["minimax"]["api"] == "anthropic-messages"
    defaults = doc["agents"]["defaults"]
    assert defaults["model"] == {
        "primary": "moonshot/kimi-k2.5",
        "fallbacks": ["minimax/MiniMax-M2.1"],
    }
    assert defaults["modelPolicy"] == {"allow": ["minimax/MiniMax-M2.1", "moonshot/kimi-k2.5"]}
    assert "models" not in defaults
    assert defaults["sandbox"] == {"mode": "off", "scope": "agent", "workspaceAccess": "none"}
    assert doc["tools"] == {
        "profile": "messaging",
        "deny": ["group:runtime", "group:fs", "group:ui", "group:nodes", "group:automation"],
        "elevated": {"enabled": False},
        "fs": {"workspaceOnly": True},
    }


def test_premium_may_select_opus_and_runs_sandboxed_with_coding_tools(
    shipped: Catalog, variants: dict[str, Variant]
) -> None:
    default = render(config_of(shipped, variants, "premium-default"))["agents"]["defaults"]
    opus = render(config_of(shipped, variants, "premium-claude-opus-4-6"))["agents"]["defaults"]
    assert default["model"]["primary"] == "anthropic/claude-sonnet-4-6"
    assert opus["model"]["primary"] == "anthropic/claude-opus-4-6"
    for defaults in (default, opus):
        assert defaults["modelPolicy"]["allow"] == [
            "anthropic/claude-opus-4-6",
            "anthropic/claude-sonnet-4-6",
            "moonshot/kimi-k2.5",
        ]
        assert defaults["models"] == {
            "anthropic/claude-opus-4-6": {"alias": "claude-opus-4-6"},
            "anthropic/claude-sonnet-4-6": {"alias": "claude-sonnet-4-6"},
        }
        assert defaults["sandbox"] == {"mode": "all", "scope": "session", "workspaceAccess": "rw"}


@pytest.mark.parametrize("provider", ["openai", "anthropic", "groq", "google", "openrouter"])
def test_byok_with_a_usable_key_names_the_tenant_variable_on_a_custom_provider(
    shipped: Catalog, variants: dict[str, Variant], provider: str
) -> None:
    config = config_of(shipped, variants, f"byok-{provider}-valid-fallback")
    byok = shipped.byok_provider(provider)
    doc = render(config)
    entry = doc["models"]["providers"][byok.openclaw_provider_id]
    assert entry["apiKey"] == {"source": "env", "provider": "default", "id": byok.env_var}
    assert entry["baseUrl"] == byok.base_url
    assert entry["api"] == byok.api
    assert "cost" not in entry["models"][0]
    assert doc["agents"]["defaults"]["model"] == {
        "primary": f"{byok.openclaw_provider_id}/{byok.models[0].id}",
        "fallbacks": ["moonshot/kimi-k2.5", "minimax/MiniMax-M2.1"],
    }
    assert [s.env_name for s in config.secrets] == [byok.env_var]


def test_byok_without_platform_fallback_has_only_its_own_model(
    shipped: Catalog, variants: dict[str, Variant]
) -> None:
    doc = render(config_of(shipped, variants, "byok-groq-valid-nofallback"))
    assert sorted(doc["models"]["providers"]) == ["byok-groq"]
    assert doc["agents"]["defaults"]["model"]["fallbacks"] == []
    assert doc["agents"]["defaults"]["modelPolicy"] == {"allow": ["byok-groq/openai/gpt-oss-120b"]}


def test_byok_with_an_invalid_key_runs_the_starter_route_and_writes_no_secret(
    shipped: Catalog, variants: dict[str, Variant]
) -> None:
    config = config_of(shipped, variants, "byok-openai-invalid-fallback")
    doc = render(config)
    assert config.secrets == ()
    assert sorted(doc["models"]["providers"]) == ["minimax", "moonshot"]
    assert doc["agents"]["defaults"]["model"]["primary"] == "moonshot/kimi-k2.5"


def test_no_usable_model_omits_model_and_policy_and_offers_no_provider(
    shipped: Catalog, variants: dict[str, Variant]
) -> None:
    """With models.mode replace and no provider, the agent has nothing it could run."""
    doc = render(config_of(shipped, variants, "byok-anthropic-invalid-nofallback"))
    defaults = doc["agents"]["defaults"]
    assert "model" not in defaults
    assert "modelPolicy" not in defaults
    assert doc["models"]["providers"] == {}
    assert doc["models"]["mode"] == "replace"


def test_rendered_json_never_contains_the_tenant_key(
    shipped: Catalog, variants: dict[str, Variant]
) -> None:
    for variant in variants.values():
        config = variant.config(shipped)
        text = render_json(config).decode()
        for secret in config.secrets:
            assert secret.value.reveal() not in text
        if variant.api_key is not None:
            assert variant.api_key.reveal() not in text
            assert "TESTKEY" not in text


def test_rendering_is_deterministic_with_sorted_keys(
    shipped: Catalog, variants: dict[str, Variant]
) -> None:
    config = config_of(shipped, variants, "premium-default")
    first, second = render_json(config), render_json(config)
    assert first == second
    assert first.endswith(b"}\n")
    assert first == (json.dumps(json.loads(first), sort_keys=True, indent=2) + "\n").encode()
    assert digest(config) == digest(config)


def test_digest_changes_with_the_route_but_not_with_the_key_value(
    shipped: Catalog, variants: dict[str, Variant]
) -> None:
    config = config_of(shipped, variants, "byok-openai-valid-fallback")
    rotated = attrs.evolve(
        config,
        secrets=tuple(attrs.evolve(s, value=Secret("sk-rotated0000x9Qa")) for s in config.secrets),
    )
    assert digest(rotated) == digest(config)
    other = config_of(shipped, variants, "byok-openai-valid-nofallback")
    assert digest(attrs.evolve(other, tenant_id=config.tenant_id)) != digest(config)


def test_a_dollar_brace_in_catalog_text_stays_literal(
    shipped: Catalog, variants: dict[str, Variant]
) -> None:
    """OpenClaw substitutes ${VAR} in every string; text from the catalog must not."""
    config = config_of(shipped, variants, "starter")
    provider = attrs.evolve(config.providers[0], base_url="https://x/${MOONSHOT_API_KEY}")
    doc = render(attrs.evolve(config, providers=(provider, *config.providers[1:])))
    assert doc["models"]["providers"][provider.id]["baseUrl"] == "https://x/$${MOONSHOT_API_KEY}"
    assert literal("plain") == "plain"


def test_env_ref_refuses_names_openclaw_would_not_resolve() -> None:
    assert env_ref("TIERKEEPER_BYOK_OPENAI_KEY")["id"] == "TIERKEEPER_BYOK_OPENAI_KEY"
    for bad in ("lower_case", "1ABC", "A-B", ""):
        with pytest.raises(ValueError):
            env_ref(bad)


def test_openclaw_builtin_provider_variables_are_listed() -> None:
    assert {
        "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY",
        "GROQ_API_KEY", "OPENROUTER_API_KEY", "MOONSHOT_API_KEY", "MINIMAX_API_KEY",
        "KIMI_API_KEY",
    } <= OPENCLAW_PROVIDER_ENV  # fmt: skip


def test_the_config_and_its_secrets_never_show_the_key_in_a_repr(
    shipped: Catalog, variants: dict[str, Variant]
) -> None:
    config = config_of(shipped, variants, "byok-google-valid-fallback")
    key = config.secrets[0].value.reveal()
    assert key not in repr(config)
    assert key not in str(config.secrets)


def test_the_converter_refuses_to_render_a_secret() -> None:
    from adapters.openclaw import render as module

    with pytest.raises(TypeError, match="never rendered"):
        module._CONVERTER.unstructure(Secret("sk-x"), Secret)
