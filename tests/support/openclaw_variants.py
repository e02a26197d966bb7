"""Every kind of tenant config the shipped catalog can produce, for the writer's tests.

Starter; premium on its default model and with each other selectable model chosen; BYOK for
every provider x key status (valid, unverified, invalid, missing) x platform fallback on/off.
"""

from __future__ import annotations

from datetime import UTC, datetime

import attrs

from domain.byok import Ciphertext, KeyStatus, StoredCredential
from domain.catalog import BYOK, PREMIUM, STARTER, ByokProvider, Catalog
from domain.ids import ModelRef, TenantId, UserId
from domain.openclaw_model import TenantConfig, build_tenant_config
from domain.routing import decide_route
from domain.secrets import Secret
from domain.tenants import SubscriptionStatus, Tenant, User
from tests.fakes import FakeKeyStore, InMemoryCredentialRepository, InMemoryTenantRepository

CREATED = datetime(2026, 3, 1, tzinfo=UTC)
KEY_STATUSES = ("valid", "unverified", "invalid", "missing")


@attrs.frozen
class Variant:
    name: str
    tenant: Tenant
    credential: StoredCredential | None
    api_key: Secret | None

    def config(self, catalog: Catalog) -> TenantConfig:
        route = decide_route(catalog, self.tenant, self.credential)
        uses_key = route.primary is not None and route.primary.credential.value == "tenant"
        return build_tenant_config(
            catalog, self.tenant, self.credential, self.api_key if uses_key else None
        )


def fake_key(provider: ByokProvider, tenant_id: str) -> Secret:
    """A key of the provider's shape, unique per tenant, easy to search for in files."""
    return Secret(f"{provider.key_prefix}TESTKEY{tenant_id.replace('-', '')}x9Qa")


def tenant(tenant_id: str, tier: str, preference: str | None = None) -> Tenant:
    return Tenant(
        id=TenantId(tenant_id),
        tier=tier,  # type: ignore[arg-type]
        status=SubscriptionStatus.ACTIVE,
        timezone="UTC",
        billing_anchor_day=1,
        created_at=CREATED,
        model_preference=ModelRef(preference) if preference else None,
    )


def credential(
    tenant_id: str,
    provider: ByokProvider,
    status: KeyStatus,
    allow_fallback: bool,
    model: str | None = None,
) -> StoredCredential:
    return StoredCredential(
        tenant_id=TenantId(tenant_id),
        user_id=UserId(f"user-{tenant_id}"),
        provider=provider.id,
        model_preference=model if model is not None else provider.models[0].id,
        ciphertext=Ciphertext("fake", 1, "opaque"),
        key_mask=f"{provider.key_prefix}…x9Qa",
        status=status,
        allow_platform_fallback=allow_fallback,
        created_at=CREATED,
        updated_at=CREATED,
    )


def all_variants(catalog: Catalog) -> list[Variant]:
    variants = [Variant("starter", tenant("starter", STARTER), None, None)]
    premium = catalog.tier(PREMIUM)
    variants.append(Variant("premium-default", tenant("premium-default", PREMIUM), None, None))
    for ref in premium.selectable_models:
        if ref == premium.primary_model:
            continue
        name = f"premium-{ref.partition('/')[2]}"
        variants.append(Variant(name, tenant(name, PREMIUM, ref), None, None))
    for provider in catalog.byok_providers:
        for status in KEY_STATUSES:
            for allow in (True, False):
                name = f"byok-{provider.id}-{status}-{'fallback' if allow else 'nofallback'}"
                stored = (
                    None
                    if status == "missing"
                    else credential(name, provider, KeyStatus(status), allow)
                )
                if stored is None and not allow:
                    # "No key" with platform fallback switched off: the opt-out is stored on
                    # the credential, so model it as an invalid key the tenant opted out of.
                    stored = credential(name, provider, KeyStatus.INVALID, False)
                key = fake_key(provider, name) if stored is not None else None
                variants.append(Variant(name, tenant(name, BYOK), stored, key))
    return variants


UNLISTED_OPENROUTER_MODEL = "mistralai/mistral-large-2512"
"""A vendor/model id the catalog does not list, as a customer may type it for OpenRouter."""


def byok_model_variants(catalog: Catalog) -> list[Variant]:
    """A valid key with platform fallback for every model every BYOK provider lists, and for
    an unlisted model on each provider that accepts any: every capability row the catalog
    can put into a tenant's own provider entry."""
    variants = []
    for provider in catalog.byok_providers:
        models = [m.id for m in provider.models]
        if provider.accepts_any_model:
            models.append(UNLISTED_OPENROUTER_MODEL)
        for index, model in enumerate(models):
            name = f"byok-{provider.id}-model-{index}"
            stored = credential(name, provider, KeyStatus.VALID, True, model)
            variants.append(Variant(name, tenant(name, BYOK), stored, fake_key(provider, name)))
    return variants


async def store_variants(
    variants: list[Variant],
    tenants: InMemoryTenantRepository,
    credentials: InMemoryCredentialRepository,
    key_store: FakeKeyStore,
) -> None:
    """Put the variants' tenants, each with its account's user, and credentials (keys
    encrypted) into in-memory repos."""
    for variant in variants:
        tenant = variant.tenant
        tenants.tenants[tenant.id] = tenant
        tenants.users[UserId(f"u-{tenant.id}")] = User(
            UserId(f"u-{tenant.id}"), f"{tenant.id}@example.com", "argon2$hash", tenant.id,
            tenant.created_at,
        )  # fmt: skip
        if variant.credential is not None:
            stored = variant.credential
            if variant.api_key is not None:
                stored = attrs.evolve(stored, ciphertext=await key_store.encrypt(variant.api_key))
            await credentials.put(stored)
