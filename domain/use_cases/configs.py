"""Render and write tenants' OpenClaw configurations."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from domain.catalog import BYOK, Catalog
from domain.errors import DomainError, NotFound
from domain.ids import TenantId
from domain.metering import Credential
from domain.openclaw_model import TenantConfig, build_tenant_config
from domain.ports import ConfigWriter, CredentialRepository, KeyStore, TenantRepository
from domain.routing import decide_route


@attrs.frozen
class RegenerationSummary:
    written: int
    unchanged: int
    failed: tuple[tuple[TenantId, str], ...]

    @property
    def ok(self) -> bool:
        return not self.failed


@attrs.frozen
class Configs:
    catalog: Catalog
    tenants: TenantRepository
    credentials: CredentialRepository
    key_store: KeyStore
    writer: ConfigWriter

    async def build(self, tenant_id: TenantId) -> TenantConfig:
        """The tenant's config; the key is decrypted only when its route uses it."""
        tenant = await self.tenants.get(tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id!r} is unknown")
        credential = None
        if self.catalog.tier(tenant.tier).id == BYOK:
            credential = await self.credentials.get(tenant_id)
        route = decide_route(self.catalog, tenant, credential)
        api_key = None
        if (
            credential is not None
            and route.primary
            and route.primary.credential is Credential.TENANT
        ):
            api_key = await self.key_store.decrypt(credential.ciphertext)
        return build_tenant_config(self.catalog, tenant, credential, api_key)

    async def write(self, tenant_id: TenantId) -> bool:
        """Write one tenant's config; False when the files were already up to date."""
        return await self.writer.write(await self.build(tenant_id))

    async def regenerate(
        self,
        tenant_ids: list[TenantId] | None = None,
        progress: Callable[[TenantId, str], None] | None = None,
    ) -> RegenerationSummary:
        """Write every tenant's config (or the ones named), counting written, unchanged and
        failed; one tenant's failure never stops the others."""
        written = unchanged = 0
        failed: list[tuple[TenantId, str]] = []
        ids = (
            tenant_ids
            if tenant_ids is not None
            else [t async for t in self.tenants.iter_tenant_ids()]
        )
        for tenant_id in ids:
            try:
                changed = await self.write(tenant_id)
            except (DomainError, OSError) as exc:
                failed.append((tenant_id, _describe(exc)))
                outcome = "failed"
            else:
                written += changed
                unchanged += not changed
                outcome = "written" if changed else "unchanged"
            if progress is not None:
                progress(tenant_id, outcome)
        return RegenerationSummary(written, unchanged, tuple(failed))


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return str(exc)
