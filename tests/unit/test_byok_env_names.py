"""A tenant's own key lives under a variable no platform key and no OpenClaw built-in
provider uses, on a custom provider id of its own: it can never be shadowed by, or bill,
the platform (OpenClaw never lets a .env value override the process environment)."""

from __future__ import annotations

import attrs
import pytest

from adapters.catalog.toml_loader import load_catalog
from adapters.openclaw.render import OPENCLAW_PROVIDER_ENV
from adapters.openclaw.writer import check_secret_names, reserved_env_names
from domain.catalog import Catalog
from domain.errors import ValidationError
from domain.openclaw_model import GATEWAY_TOKEN_ENV
from tests.support.openclaw_variants import all_variants

pytestmark = pytest.mark.unit

BUILTIN_PROVIDER_ENV = {
    "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GROQ_API_KEY",
    "OPENROUTER_API_KEY", "MOONSHOT_API_KEY", "MINIMAX_API_KEY", "KIMI_API_KEY",
}  # fmt: skip
BUILTIN_PROVIDER_IDS = {
    "openai", "anthropic", "google", "groq", "openrouter", "moonshot", "minimax", "kimi",
}  # fmt: skip


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    return load_catalog()


def test_the_catalog_offers_all_five_byok_providers(shipped: Catalog) -> None:
    assert {p.id for p in shipped.byok_providers} == {
        "openai", "anthropic", "groq", "google", "openrouter",
    }  # fmt: skip


def test_no_byok_variable_equals_a_platform_or_builtin_provider_variable(
    shipped: Catalog,
) -> None:
    platform = {p.env_var for p in shipped.platform_providers}
    for provider in shipped.byok_providers:
        assert provider.env_var not in platform, provider.id
        assert provider.env_var not in BUILTIN_PROVIDER_ENV, provider.id
        assert provider.env_var not in OPENCLAW_PROVIDER_ENV, provider.id
        assert provider.env_var != GATEWAY_TOKEN_ENV
        assert not provider.env_var.startswith("OPENCLAW_")


def test_byok_variables_are_distinct_per_provider(shipped: Catalog) -> None:
    names = [p.env_var for p in shipped.byok_providers]
    assert len(set(names)) == len(names)


def test_byok_providers_are_custom_provider_ids_not_builtin_or_platform_ones(
    shipped: Catalog,
) -> None:
    platform = {p.id for p in shipped.platform_providers}
    for provider in shipped.byok_providers:
        assert provider.openclaw_provider_id not in BUILTIN_PROVIDER_IDS | platform
        assert provider.openclaw_provider_id.startswith("byok-")


def test_every_rendered_tenant_secret_uses_its_providers_byok_variable(shipped: Catalog) -> None:
    seen = 0
    for variant in all_variants(shipped):
        config = variant.config(shipped)
        reserved = reserved_env_names(config)
        for secret in config.secrets:
            seen += 1
            assert secret.env_name not in reserved
            owned = [p for p in config.providers if p.tenant_owned]
            assert [p.api_key_env for p in owned] == [secret.env_name]
    assert seen == 5 * 2 * 2  # providers x (valid, unverified) x fallback on/off


@pytest.mark.parametrize(
    "name", sorted(BUILTIN_PROVIDER_ENV | {"OPENCLAW_GATEWAY_TOKEN", "OPENCLAW_ANYTHING"})
)
def test_the_writer_refuses_a_tenant_key_under_a_reserved_name(shipped: Catalog, name: str) -> None:
    variant = next(v for v in all_variants(shipped) if v.name == "byok-openai-valid-fallback")
    config = variant.config(shipped)
    clashing = attrs.evolve(config, secrets=(attrs.evolve(config.secrets[0], env_name=name),))
    with pytest.raises(ValidationError) as raised:
        check_secret_names(clashing)
    assert raised.value.field == "env_name"
    assert config.secrets[0].value.reveal() not in str(raised.value)
