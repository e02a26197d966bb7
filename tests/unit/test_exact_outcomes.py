"""Rules whose outcome matters to the letter: error codes and fields, the config model's
entries, the catalog's cross-checks, and what settlement records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import attrs
import pytest

from domain.byok import Ciphertext, KeyStatus, StoredCredential
from domain.catalog import Catalog, check_catalog
from domain.errors import CatalogError, NotFound, ValidationError
from domain.ids import MessageId, ProviderId, TenantId, UserId
from domain.metering import Credential, TokenUsage, check_token_usage
from domain.model_capabilities import ModelCapabilities
from domain.openclaw_model import ModelEntry, build_tenant_config
from domain.secrets import Secret
from tests.unit.conftest import OPENAI_KEY, World, make_tenant

T = TenantId("t-1")
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def byok_credential(provider: str, model: str) -> StoredCredential:
    return StoredCredential(
        tenant_id=T, user_id=UserId("u"), provider=ProviderId(provider), model_preference=model,
        ciphertext=Ciphertext("fake", 1, "x"), key_mask="m", status=KeyStatus.VALID,
        allow_platform_fallback=True, created_at=NOW, updated_at=NOW,
    )  # fmt: skip


def test_platform_model_entries_carry_the_catalog_data(catalog: Catalog) -> None:
    config = build_tenant_config(catalog, make_tenant(tier="premium"), None, None)
    anthropic = next(p for p in config.providers if p.id == "anthropic")
    assert anthropic.models[1] == ModelEntry(
        id="claude-opus-4-6", name="Claude Opus 4.6",
        capabilities=ModelCapabilities(("text", "image"), True, 200_000, 128_000),
        usd_per_mtok_input=Decimal("5.00"), usd_per_mtok_output=Decimal("25.00"),
        usd_per_mtok_cache_read=Decimal("0.50"),
    )  # fmt: skip
    assert (anthropic.base_url, anthropic.api, anthropic.tenant_owned) == (
        "https://api.anthropic.com", "anthropic-messages", False,
    )  # fmt: skip


def test_a_listed_byok_model_is_named_from_the_provider_listing(catalog: Catalog) -> None:
    config = build_tenant_config(
        catalog, make_tenant(tier="byok"), byok_credential("groq", "openai/gpt-oss-20b"),
        Secret("gsk_abc123"),
    )  # fmt: skip
    (own,) = [p for p in config.providers if p.tenant_owned]
    assert (own.id, own.base_url, own.api) == (
        "byok-groq", "https://api.groq.com/openai/v1", "openai-completions",
    )  # fmt: skip
    assert own.models == (
        ModelEntry(
            id="openai/gpt-oss-20b", name="GPT-OSS 20B",
            capabilities=ModelCapabilities(("text",), True, 131_072, 65_536),
            usd_per_mtok_input=None, usd_per_mtok_output=None, usd_per_mtok_cache_read=None,
        ),
    )  # fmt: skip


def test_an_unlisted_openrouter_model_is_named_by_its_id(catalog: Catalog) -> None:
    config = build_tenant_config(
        catalog, make_tenant(tier="byok"), byok_credential("openrouter", "mistralai/large"),
        Secret("sk-or-abc123"),
    )  # fmt: skip
    (own,) = [p for p in config.providers if p.tenant_owned]
    assert [(m.id, m.name) for m in own.models] == [("mistralai/large", "mistralai/large")]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: attrs.evolve(c, models=c.models + c.models[:1]), "duplicate model ref"),
        (lambda c: attrs.evolve(c, platform_providers=c.platform_providers * 2),
         "duplicate platform provider"),
        (lambda c: attrs.evolve(c, byok_providers=c.byok_providers * 2),
         "duplicate BYOK provider"),
        (lambda c: attrs.evolve(c, tool_policies=c.tool_policies * 2), "duplicate tool policy"),
        (lambda c: attrs.evolve(c, tiers=c.tiers[:1] + c.tiers), "duplicate tier id"),
    ],
)  # fmt: skip
def test_duplicates_in_a_catalog_are_named(
    catalog: Catalog, mutate: Callable[[Catalog], Catalog], message: str
) -> None:
    with pytest.raises(CatalogError) as raised:
        check_catalog(mutate(catalog))
    assert raised.value.detail.startswith(message)


def test_an_unknown_model_is_a_field_error_naming_it(catalog: Catalog) -> None:
    with pytest.raises(ValidationError) as raised:
        catalog.model("acme/x")
    assert (raised.value.field, raised.value.detail) == ("model", "unknown model 'acme/x'")


def test_token_counts_out_of_range_say_the_range() -> None:
    with pytest.raises(ValidationError) as raised:
        check_token_usage(TokenUsage(0, -1, 0))
    assert raised.value.detail == "output_tokens must be between 0 and 20000000"


async def test_settling_for_an_unknown_tenant_is_tenant_unknown(world: World) -> None:
    with pytest.raises(NotFound) as raised:
        await world.metering.settle(TenantId("ghost"), MessageId("m"), "moonshot/kimi-k2.5",
                                    TokenUsage(1, 1), Credential.PLATFORM)  # fmt: skip
    assert (raised.value.code, raised.value.detail) == (
        "tenant_unknown",
        "tenant 'ghost' is unknown",
    )
    with pytest.raises(NotFound) as raised:
        await world.metering.usage(TenantId("ghost"))
    assert raised.value.detail == "tenant 'ghost' is unknown"


async def test_settlement_records_model_credential_and_weight(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    await world.metering.admit(T, MessageId("m"))
    await world.metering.admit(T, MessageId("n"))
    await world.metering.settle(T, MessageId("m"), "byok-openai/gpt-4.1", TokenUsage(7, 3, 1),
                                Credential.TENANT)  # fmt: skip
    await world.metering.settle(T, MessageId("n"), "acme/unknown", TokenUsage(5, 5),
                                Credential.PLATFORM)  # fmt: skip
    records = [(r.model, r.credential, r.cache_read_tokens, r.weighted_tokens)
               for r in world.ledger.records]  # fmt: skip
    assert records == [
        ("byok-openai/gpt-4.1", Credential.TENANT, 1, 11),
        # a model the route did not offer weighs its dearest platform model (kimi: 1.0)
        ("acme/unknown", Credential.PLATFORM, 0, 10),
    ]


async def test_own_key_settlements_never_notify_thresholds(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    await world.metering.admit(T, MessageId("m"))
    await world.metering.settle(T, MessageId("m"), "byok-openai/gpt-4.1",
                                TokenUsage(10**7, 0), Credential.TENANT)  # fmt: skip
    assert world.thresholds() == []


async def test_a_token_threshold_names_the_tenant(world: World) -> None:
    await world.add_tenant(tier="starter")
    await world.metering.settle(T, MessageId("m"), "moonshot/kimi-k2.5",
                                TokenUsage(400_000, 0), Credential.PLATFORM)  # fmt: skip
    assert [(t.tenant_id, t.limit) for t in world.thresholds()] == [(T, 500_000)]


async def test_usage_of_a_non_byok_tenant_has_no_fallback_pool(world: World) -> None:
    await world.add_tenant(tier="premium")
    usage = await world.metering.usage(T)
    assert (usage.message_cap, usage.fallback_tokens_used, usage.fallback_token_budget) == (
        200, None, None,
    )  # fmt: skip


async def test_missing_credentials_say_so(world: World) -> None:
    await world.add_tenant(tier="byok")
    for call in (world.credentials.get(T), world.credentials.delete(T)):
        with pytest.raises(NotFound) as raised:
            await call
        assert raised.value.detail == "no AI provider key is stored"


async def test_a_stored_credential_records_who_stored_it_and_when(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    stored = await world.credentials.get(T)
    assert (stored.user_id, stored.created_at, stored.updated_at) == (
        "u-t-1", world.clock.now(), world.clock.now(),
    )  # fmt: skip
    assert (stored.last_verified_at, stored.last_error) == (None, None)


async def test_replacing_a_key_resets_its_verification(world: World) -> None:
    await world.add_tenant(tier="byok")
    await world.add_key()
    await world.credentials.report_key_failure(T, "openai", 401)
    world.clock.advance(hours=1)
    await world.add_key(key=OPENAI_KEY + "new")
    stored = await world.credentials.get(T)
    assert (stored.status, stored.last_error, stored.last_verified_at) == (
        KeyStatus.UNVERIFIED, None, None,
    )  # fmt: skip
    assert stored.created_at < stored.updated_at


async def test_regenerate_reports_each_outcome(world: World) -> None:
    await world.add_tenant("t-0", tier="starter")
    seen: list[tuple[str, str]] = []
    await world.configs.regenerate(
        [TenantId("t-0"), TenantId("t-9")], progress=lambda t, o: seen.append((t, o))
    )
    assert seen == [("t-0", "written"), ("t-9", "failed")]


def test_a_byok_provider_is_built_with_every_field(catalog: Catalog) -> None:
    from domain.catalog import AuthStyle, ByokProvider, ProviderModelOption

    claude = ModelCapabilities(("text", "image"), True, 200_000, 128_000)
    assert catalog.byok_provider("anthropic") == ByokProvider(
        id=ProviderId("anthropic"), name="Anthropic", openclaw_provider_id="byok-anthropic",
        api="anthropic-messages", base_url="https://api.anthropic.com",
        env_var="TIERKEEPER_BYOK_ANTHROPIC_KEY", key_prefix="sk-ant-",
        key_hint="Starts with sk-ant-", test_path="/v1/models", auth_style=AuthStyle.X_API_KEY,
        extra_headers=(("anthropic-version", "2023-06-01"),),
        models=(ProviderModelOption("claude-sonnet-4-6", "Claude Sonnet 4.6", claude),
                ProviderModelOption("claude-opus-4-6", "Claude Opus 4.6", claude)),
        accepts_any_model=False, unlisted_model=None,
        key_url="https://console.anthropic.com/settings/keys",
    )  # fmt: skip


def test_the_unknown_provider_message_lists_known_ids(catalog: Catalog) -> None:
    with pytest.raises(ValidationError) as raised:
        catalog.byok_provider("x")
    assert raised.value.detail == (
        "unknown provider 'x'; expected one of openai, anthropic, groq, google, openrouter"
    )


def test_vendor_model_ids_are_bounded(catalog: Catalog) -> None:
    from domain.byok import validate_model

    openrouter = catalog.byok_provider("openrouter")
    at_limit = "v/" + "m" * 198
    assert validate_model(openrouter, at_limit) == at_limit
    for bad in (at_limit + "m", "/a/b"):
        with pytest.raises(ValidationError):
            validate_model(openrouter, bad)


def test_a_tier_without_a_primary_has_only_its_fallbacks(catalog: Catalog) -> None:
    from domain.routing import tier_models

    assert tier_models(catalog.tier("byok")) == ()
    assert tier_models(catalog.tier("starter")) == ("moonshot/kimi-k2.5", "minimax/MiniMax-M2.1")


@pytest.mark.parametrize(
    ("key", "detail"),
    [("", "api_key must not be empty"),
     ("sk-a b", "api_key must not contain spaces, newlines or control characters")],
)  # fmt: skip
def test_key_errors_read_exactly(catalog: Catalog, key: str, detail: str) -> None:
    from domain.byok import validate_api_key

    with pytest.raises(ValidationError) as raised:
        validate_api_key(catalog.byok_provider("openai"), Secret(key))
    assert raised.value.detail == detail


def test_model_errors_say_what_to_choose(catalog: Catalog) -> None:
    from domain.byok import validate_model

    with pytest.raises(ValidationError) as raised:
        validate_model(catalog.byok_provider("groq"), "x")
    assert raised.value.detail == (
        "model_preference 'x' is not a Groq model; choose one of its listed models"
    )
    with pytest.raises(ValidationError) as raised:
        validate_model(catalog.byok_provider("openrouter"), "x")
    assert raised.value.detail.endswith("choose a vendor/model id")


def test_catalog_collisions_name_the_rule(catalog: Catalog) -> None:
    byok = catalog.tier("byok")
    no_fallback = attrs.evolve(
        catalog,
        tiers=tuple(attrs.evolve(t, platform_fallback_tier=None) if t is byok else t
                    for t in catalog.tiers),
    )  # fmt: skip
    with pytest.raises(CatalogError) as raised:
        check_catalog(no_fallback)
    assert raised.value.detail == "the byok tier must name its platform_fallback_tier"
    openai = catalog.byok_provider("openai")
    clash = attrs.evolve(
        catalog,
        byok_providers=tuple(attrs.evolve(p, env_var="MOONSHOT_API_KEY") if p is openai else p
                             for p in catalog.byok_providers),
    )  # fmt: skip
    with pytest.raises(CatalogError) as raised:
        check_catalog(clash)
    assert raised.value.detail == (
        "BYOK provider 'openai' reuses a platform name; its key would be billed to the platform"
    )
