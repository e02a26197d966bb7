"""The OpenClaw document a tenant's gateway fetches: built from the tenant, its tier and its
stored credential, with every secret only named. Serving it decrypts nothing and writes
nothing (in proxy mode the virtual key is named, never looked up or created)."""

from __future__ import annotations

from datetime import datetime

import attrs

from domain.catalog import BYOK, Catalog
from domain.errors import NotFound
from domain.ids import TenantId
from domain.openclaw_model import config_document, proxied_document
from domain.ports import Clock, ConfigWriter, CredentialRepository, TenantRepository


@attrs.frozen
class ConfigDocument:
    openclaw: dict[str, object]
    env_names: tuple[str, ...]
    """The variables the gateway needs at run time; their values are never in the document."""
    generated_at: datetime


@attrs.frozen
class ConfigDocuments:
    catalog: Catalog
    tenants: TenantRepository
    credentials: CredentialRepository
    writer: ConfigWriter
    clock: Clock
    proxy_url: str | None = None
    """Set in proxy mode: the document points every provider at the LLM proxy."""

    async def document(self, tenant_id: TenantId) -> ConfigDocument:
        """The tenant's document as its config files would hold it, secrets excluded."""
        tenant = await self.tenants.get(tenant_id)
        if tenant is None:
            raise NotFound("the tenant is unknown", code="tenant_unknown")
        byok = self.catalog.tier(tenant.tier).id == BYOK
        credential = await self.credentials.get(tenant_id) if byok else None
        config = config_document(self.catalog, tenant, credential)
        if self.proxy_url is not None:
            config = proxied_document(config, self.proxy_url)
        return ConfigDocument(self.writer.render(config), config.env_names(), self.clock.now())
