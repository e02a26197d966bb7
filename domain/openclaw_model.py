"""A tenant's OpenClaw configuration as the domain sees it: which providers, which route,
which tools, and which environment variable holds which credential.

Rendering it to OpenClaw's JSON is the config writer's job; this model holds no format.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from domain.byok import StoredCredential
from domain.catalog import ByokProvider, Catalog, Model
from domain.ids import TenantId
from domain.model_capabilities import ModelCapabilities
from domain.proxy import proxied_api, proxy_base_url
from domain.routing import Route, decide_route
from domain.secrets import Secret
from domain.tenants import Tenant
from domain.tool_policy import ToolPolicy
from domain.virtual_keys import VIRTUAL_KEY_ENV

GATEWAY_TOKEN_ENV = "OPENCLAW_GATEWAY_TOKEN"


@attrs.frozen
class ModelEntry:
    """One model row of a provider block: what the catalog says the model can do, and its
    list prices when the platform pays for it."""

    id: str
    name: str
    capabilities: ModelCapabilities
    usd_per_mtok_input: Decimal | None
    usd_per_mtok_output: Decimal | None
    usd_per_mtok_cache_read: Decimal | None


@attrs.frozen
class ProviderEntry:
    """One ``models.providers.<id>`` block. The key is only ever named by ``api_key_env``."""

    id: str
    base_url: str
    api: str
    api_key_env: str
    models: tuple[ModelEntry, ...]
    tenant_owned: bool


@attrs.frozen
class TenantSecret:
    """A value for the tenant's secrets file (``.env``); only the tenant's own key."""

    env_name: str
    value: Secret


@attrs.frozen
class TenantConfig:
    tenant_id: TenantId
    providers: tuple[ProviderEntry, ...]
    route: Route
    selectable_models: tuple[str, ...]
    tool_policy: ToolPolicy
    gateway_token_env: str
    secrets: tuple[TenantSecret, ...]

    def env_names(self) -> tuple[str, ...]:
        """Every variable the gateway needs at run time, platform and tenant alike."""
        names = {p.api_key_env for p in self.providers} | {self.gateway_token_env}
        return tuple(sorted(names))


def _platform_model_entry(model: Model) -> ModelEntry:
    return ModelEntry(
        id=model.model_id(),
        name=model.name,
        capabilities=model.capabilities,
        usd_per_mtok_input=model.rates.usd_per_mtok_input,
        usd_per_mtok_output=model.rates.usd_per_mtok_output,
        usd_per_mtok_cache_read=model.rates.usd_per_mtok_cache_read,
    )


def _byok_provider_entry(provider: ByokProvider, model_id: str) -> ProviderEntry:
    """The tenant's model as capable as the catalog says it is, the same as the platform's
    entry for the same model; a model the catalog does not list gets the provider's
    conservative assumption. The tenant pays its provider, so no rates are written."""
    entry = ModelEntry(
        id=model_id,
        name=provider.model_name(model_id),
        capabilities=provider.model_capabilities(model_id),
        usd_per_mtok_input=None,
        usd_per_mtok_output=None,
        usd_per_mtok_cache_read=None,
    )
    return ProviderEntry(
        id=provider.openclaw_provider_id,
        base_url=provider.base_url,
        api=provider.api,
        api_key_env=provider.env_var,
        models=(entry,),
        tenant_owned=True,
    )


def config_document(
    catalog: Catalog, tenant: Tenant, credential: StoredCredential | None
) -> TenantConfig:
    """The providers the tier's route needs, the route itself and the tool policy, with no
    secret: what the gateway's config document shows. Building it decrypts nothing."""
    tier = catalog.tier(tenant.tier)
    route = decide_route(catalog, tenant, credential)
    platform_refs = [c.ref for c in route.choices() if c.credential.value == "platform"]
    platform_refs += [r for r in tier.selectable_models if r not in platform_refs]
    providers: list[ProviderEntry] = []
    for provider in catalog.platform_providers:
        models = tuple(
            _platform_model_entry(catalog.model(ref))
            for ref in platform_refs
            if catalog.model(ref).provider() == provider.id
        )
        if models:
            providers.append(
                ProviderEntry(
                    id=provider.id,
                    base_url=provider.base_url,
                    api=provider.api,
                    api_key_env=provider.env_var,
                    models=models,
                    tenant_owned=False,
                )
            )
    if _uses_own_key(route):
        assert credential is not None  # a route runs on the tenant's key only when it has one
        byok_provider = catalog.byok_provider(credential.provider)
        providers.append(_byok_provider_entry(byok_provider, credential.model_preference))
    return TenantConfig(
        tenant_id=tenant.id,
        providers=tuple(providers),
        route=route,
        selectable_models=tuple(tier.selectable_models),
        tool_policy=catalog.tool_policy(tier.tool_policy),
        gateway_token_env=GATEWAY_TOKEN_ENV,
        secrets=(),
    )


def _uses_own_key(route: Route) -> bool:
    return route.primary is not None and route.primary.credential.value == "tenant"


def build_tenant_config(
    catalog: Catalog,
    tenant: Tenant,
    credential: StoredCredential | None,
    api_key: Secret | None,
) -> TenantConfig:
    """The config document plus the tenant's own key as a secret, only when the route uses
    it."""
    config = config_document(catalog, tenant, credential)
    if not _uses_own_key(config.route):
        return config
    if credential is None or api_key is None:
        raise ValueError("a route on the tenant's own key needs the decrypted key")
    env_name = catalog.byok_provider(credential.provider).env_var
    return attrs.evolve(config, secrets=(TenantSecret(env_name, api_key),))


@attrs.frozen
class ProxyEndpoint:
    """Where proxy-mode gateways reach tierkeeper's LLM proxy, and the tenant's virtual key."""

    url: str
    virtual_key: Secret = attrs.field(repr=False)


def through_proxy(config: TenantConfig, endpoint: ProxyEndpoint) -> TenantConfig:
    """The same config for proxy mode (spec §13): the proxied document, and the tenant's
    virtual key as the only secret its ``.env`` holds; neither a platform key nor the
    tenant's own key is named or written."""
    secret = TenantSecret(VIRTUAL_KEY_ENV, endpoint.virtual_key)
    return attrs.evolve(proxied_document(config, endpoint.url), secrets=(secret,))


def proxied_document(config: TenantConfig, proxy_url: str) -> TenantConfig:
    """The document for proxy mode, with no secret: every provider's base URL is the
    proxy's at ``proxy_url`` and its key is named as the tenant's virtual key."""
    providers = tuple(
        attrs.evolve(
            p,
            base_url=proxy_base_url(proxy_url, p.api),
            api=proxied_api(p.api),
            api_key_env=VIRTUAL_KEY_ENV,
            tenant_owned=True,
        )
        for p in config.providers
    )
    return attrs.evolve(config, providers=providers, secrets=())
