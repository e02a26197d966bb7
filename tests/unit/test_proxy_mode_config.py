"""A proxy-mode config, provider by provider: every provider points at the proxy, speaks the
style the proxy relays (Gemini as OpenAI), and is keyed by the tenant's virtual key."""

from __future__ import annotations

import attrs

from domain.catalog import Catalog
from domain.openclaw_model import ProxyEndpoint, TenantSecret, proxied_document, through_proxy
from domain.secrets import Secret
from domain.virtual_keys import VIRTUAL_KEY_ENV
from tests.support.openclaw_variants import all_variants


def test_every_proxied_provider_is_tenant_owned_and_gemini_speaks_openai(
    catalog: Catalog,
) -> None:
    variant = next(v for v in all_variants(catalog) if v.name == "byok-google-valid-fallback")
    direct = variant.config(catalog)
    proxied = through_proxy(direct, ProxyEndpoint("http://tk:8000/", Secret("tkv_abc")))
    assert [
        (p.id, p.api, p.base_url, p.api_key_env, p.tenant_owned) for p in proxied.providers
    ] == [
        ("moonshot", "openai-completions", "http://tk:8000/v1", VIRTUAL_KEY_ENV, True),
        ("minimax", "anthropic-messages", "http://tk:8000", VIRTUAL_KEY_ENV, True),
        ("byok-google", "openai-completions", "http://tk:8000/v1", VIRTUAL_KEY_ENV, True),
    ]
    assert [p.models for p in proxied.providers] == [p.models for p in direct.providers]


def test_the_proxied_document_holds_no_secret_even_from_a_keyed_config(
    catalog: Catalog,
) -> None:
    variant = next(v for v in all_variants(catalog) if v.name == "byok-google-valid-fallback")
    keyed = attrs.evolve(
        variant.config(catalog), secrets=(TenantSecret("GEMINI_API_KEY", Secret("g-key")),)
    )
    assert proxied_document(keyed, "http://tk:8000/").secrets == ()
