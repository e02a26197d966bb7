"""The fallback rules decide each tenant's route; the config model follows the route."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from domain.byok import Ciphertext, KeyStatus, StoredCredential
from domain.catalog import Catalog
from domain.ids import ProviderId, TenantId, UserId
from domain.metering import Credential
from domain.openclaw_model import GATEWAY_TOKEN_ENV, build_tenant_config
from domain.routing import decide_route, platform_token_budget
from domain.secrets import Secret
from tests.unit.conftest import make_tenant

NOW = datetime(2026, 3, 1, tzinfo=UTC)
STARTER_ROUTE = ("moonshot/kimi-k2.5", ("minimax/MiniMax-M2.1",))


def credential(
    status: KeyStatus = KeyStatus.VALID,
    allow: bool = True,
    provider: str = "openai",
    model: str = "gpt-4.1",
) -> StoredCredential:
    return StoredCredential(
        tenant_id=TenantId("t-1"), user_id=UserId("u"), provider=ProviderId(provider),
        model_preference=model, ciphertext=Ciphertext("fake", 1, "x"), key_mask="sk-…1234",
        status=status, allow_platform_fallback=allow, created_at=NOW, updated_at=NOW,
    )  # fmt: skip


def test_starter_runs_kimi_with_minimax_fallback_on_platform_keys(catalog: Catalog) -> None:
    route = decide_route(catalog, make_tenant(tier="starter"), None)
    assert route.refs() == STARTER_ROUTE
    assert all(c.credential is Credential.PLATFORM for c in route.choices())
    assert route.primary is not None
    assert route.primary.credential is Credential.PLATFORM and route.runs_on_platform()


def test_premium_defaults_to_sonnet_and_honours_opus_as_a_choice(catalog: Catalog) -> None:
    route = decide_route(catalog, make_tenant(tier="premium"), None)
    assert route.refs() == ("anthropic/claude-sonnet-4-6", ("moonshot/kimi-k2.5",))
    opus = make_tenant(tier="premium", model_preference="anthropic/claude-opus-4-6")
    assert decide_route(catalog, opus, None).refs() == (
        "anthropic/claude-opus-4-6", ("moonshot/kimi-k2.5",),
    )  # fmt: skip


def test_a_preference_the_tier_cannot_serve_is_ignored(catalog: Catalog) -> None:
    tenant = make_tenant(tier="starter", model_preference="anthropic/claude-opus-4-6")
    assert decide_route(catalog, tenant, None).refs() == STARTER_ROUTE


@pytest.mark.parametrize("status", [KeyStatus.VALID, KeyStatus.UNVERIFIED])
def test_byok_with_a_usable_key_runs_the_tenants_model_with_starter_fallbacks(
    catalog: Catalog, status: KeyStatus
) -> None:
    route = decide_route(catalog, make_tenant(tier="byok"), credential(status))
    assert route.primary is not None
    assert (route.primary.ref, route.primary.credential) == (
        "byok-openai/gpt-4.1",
        Credential.TENANT,
    )
    assert [c.ref for c in route.fallbacks] == ["moonshot/kimi-k2.5", "minimax/MiniMax-M2.1"]
    assert all(c.credential is Credential.PLATFORM for c in route.fallbacks)
    assert route.primary is not None and route.primary.credential is Credential.TENANT


def test_byok_opted_out_of_fallback_has_only_its_own_model(catalog: Catalog) -> None:
    route = decide_route(catalog, make_tenant(tier="byok"), credential(allow=False))
    assert route.refs() == ("byok-openai/gpt-4.1", ())
    assert not route.runs_on_platform()


@pytest.mark.parametrize("stored", [None, "invalid"])
def test_byok_with_an_invalid_key_or_none_runs_the_starter_models(
    catalog: Catalog, stored: str | None
) -> None:
    cred = credential(KeyStatus.INVALID) if stored else None
    route = decide_route(catalog, make_tenant(tier="byok"), cred)
    assert route.refs() == STARTER_ROUTE
    assert route.primary is not None and route.primary.credential is Credential.PLATFORM


def test_byok_with_an_invalid_key_and_no_fallback_has_no_usable_model(catalog: Catalog) -> None:
    route = decide_route(catalog, make_tenant(tier="byok"), credential(KeyStatus.INVALID, False))
    assert route.primary is None and route.fallbacks == ()
    assert route.refs() == (None, ())


def test_openrouter_models_keep_their_vendor_slash(catalog: Catalog) -> None:
    cred = credential(provider="openrouter", model="anthropic/claude-sonnet-4.6")
    route = decide_route(catalog, make_tenant(tier="byok"), cred)
    assert route.primary is not None
    assert route.primary.ref == "byok-openrouter/anthropic/claude-sonnet-4.6"


def test_platform_tokens_of_byok_count_against_the_starter_budget(catalog: Catalog) -> None:
    assert platform_token_budget(catalog, catalog.tier("byok")) == 500_000
    assert platform_token_budget(catalog, catalog.tier("premium")) == 2_000_000
    assert platform_token_budget(catalog, catalog.tier("starter")) == 500_000


def test_starter_config_has_moonshot_and_minimax_by_reference_only(catalog: Catalog) -> None:
    config = build_tenant_config(catalog, make_tenant(tier="starter"), None, None)
    assert [p.id for p in config.providers] == ["moonshot", "minimax"]
    assert [p.api_key_env for p in config.providers] == ["MOONSHOT_API_KEY", "MINIMAX_API_KEY"]
    assert config.secrets == ()
    assert config.env_names() == ("MINIMAX_API_KEY", "MOONSHOT_API_KEY", GATEWAY_TOKEN_ENV)
    assert config.tool_policy.name == "messaging"
    moonshot = config.providers[0]
    assert (moonshot.base_url, moonshot.api) == ("https://api.moonshot.ai/v1", "openai-completions")
    assert [m.id for m in moonshot.models] == ["kimi-k2.5"]


def test_premium_config_carries_both_anthropic_models_and_kimi(catalog: Catalog) -> None:
    config = build_tenant_config(catalog, make_tenant(tier="premium"), None, None)
    by_id = {p.id: [m.id for m in p.models] for p in config.providers}
    assert by_id == {"moonshot": ["kimi-k2.5"],
                     "anthropic": ["claude-sonnet-4-6", "claude-opus-4-6"]}  # fmt: skip
    assert config.selectable_models == ("anthropic/claude-sonnet-4-6", "anthropic/claude-opus-4-6")
    assert config.tool_policy.sandboxed()


def test_byok_config_adds_the_tenants_provider_and_its_secret(catalog: Catalog) -> None:
    key = Secret("sk-proj-abc1234")
    config = build_tenant_config(catalog, make_tenant(tier="byok"), credential(), key)
    own = [p for p in config.providers if p.tenant_owned]
    assert [(p.id, p.api_key_env) for p in own] == [("byok-openai", "TIERKEEPER_BYOK_OPENAI_KEY")]
    assert [m.id for m in own[0].models] == ["gpt-4.1"]
    assert [(s.env_name, s.value.reveal()) for s in config.secrets] == [
        ("TIERKEEPER_BYOK_OPENAI_KEY", "sk-proj-abc1234")
    ]
    assert "sk-proj-abc1234" not in repr(config)
    assert set(config.env_names()).isdisjoint({"OPENAI_API_KEY"})


def test_byok_config_without_usable_key_holds_no_secret(catalog: Catalog) -> None:
    config = build_tenant_config(
        catalog, make_tenant(tier="byok"), credential(KeyStatus.INVALID), None
    )
    assert config.secrets == ()
    assert not any(p.tenant_owned for p in config.providers)
    assert config.route.refs() == STARTER_ROUTE


def test_a_route_on_the_tenants_key_needs_the_key(catalog: Catalog) -> None:
    with pytest.raises(ValueError) as raised:
        build_tenant_config(catalog, make_tenant(tier="byok"), credential(), None)
    assert str(raised.value) == "a route on the tenant's own key needs the decrypted key"


def test_byok_env_names_never_collide_with_platform_names(catalog: Catalog) -> None:
    platform = catalog.platform_env_vars()
    for provider in catalog.byok_providers:
        assert provider.env_var not in platform
        assert provider.openclaw_provider_id not in {p.id for p in catalog.platform_providers}
        own = attrs.evolve(
            credential(), provider=provider.id, model_preference=provider.models[0].id
        )
        key = Secret(provider.key_prefix + "abcdef123456")
        config = build_tenant_config(catalog, make_tenant(tier="byok"), own, key)
        assert {s.env_name for s in config.secrets} == {provider.env_var}
