"""Render and write tenants' OpenClaw configurations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import attrs

from domain.byok import StoredCredential
from domain.catalog import BYOK, Catalog
from domain.errors import DomainError, NotFound
from domain.ids import TenantId
from domain.metering import Credential
from domain.openclaw_model import TenantConfig, build_tenant_config
from domain.ports import ConfigWriter, CredentialRepository, KeyStore, TenantRepository
from domain.routing import decide_route
from domain.secrets import Secret
from domain.tenants import Tenant


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
        return await self.config_for(tenant, credential)

    async def config_for(
        self, tenant: Tenant, credential: StoredCredential | None, api_key: Secret | None = None
    ) -> TenantConfig:
        """The config of ``tenant`` with ``credential``; its key is ``api_key`` when the
        caller holds it in plaintext, else decrypted, and only when the route uses it."""
        route = decide_route(self.catalog, tenant, credential)
        uses_key = (
            credential is not None
            and route.primary is not None
            and route.primary.credential is Credential.TENANT
        )
        if not uses_key:
            api_key = None
        elif api_key is None:
            assert credential is not None
            api_key = await self.key_store.decrypt(credential.ciphertext)
        return build_tenant_config(self.catalog, tenant, credential, api_key)

    async def write(self, tenant_id: TenantId) -> bool:
        """Write one tenant's config; False when the files were already up to date."""
        return await self.writer.write(await self.build(tenant_id))

    async def regenerate(
        self,
        tenant_ids: list[TenantId] | None = None,
        progress: Callable[[TenantId, str], None] | None = None,
        concurrency: int = 8,
    ) -> RegenerationSummary:
        """Write every tenant's config (or the ones named), counting written, unchanged and
        failed; one tenant's failure never stops the others. For every tenant, first the
        temporary files of crashed writes are removed: this brings the files back in line
        with the database after a crash (run by ``serve`` at start-up). Up to
        ``concurrency`` tenants are written at once, since each first write waits on its own
        fsync."""
        outcomes: dict[TenantId, str] = {}
        failed: dict[TenantId, str] = {}
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(tenant_id: TenantId) -> None:
            async with gate:
                try:
                    changed = await self.write(tenant_id)
                except (DomainError, OSError) as exc:
                    failed[tenant_id] = _describe(exc)
                    outcome = "failed"
                else:
                    outcome = "written" if changed else "unchanged"
                outcomes[tenant_id] = outcome
                if progress is not None:
                    progress(tenant_id, outcome)

        ids = tenant_ids
        if ids is None:
            await self.writer.remove_leftovers()
            ids = [t async for t in self.tenants.iter_tenant_ids()]
        await asyncio.gather(*(one(tenant_id) for tenant_id in ids))
        counted = list(outcomes.values())
        return RegenerationSummary(
            written=counted.count("written"),
            unchanged=counted.count("unchanged"),
            failed=tuple((t, failed[t]) for t in ids if t in failed),
        )


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return str(exc)
