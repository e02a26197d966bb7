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
from domain.openclaw_model import (
    ProxyEndpoint,
    TenantConfig,
    build_tenant_config,
    through_proxy,
)
from domain.ports import ConfigWriter, CredentialRepository, KeyStore, TenantRepository
from domain.routing import decide_route
from domain.secrets import Secret
from domain.tenants import Tenant
from domain.use_cases.virtual_keys import VirtualKeys


@attrs.frozen
class RegenerationSummary:
    written: int
    unchanged: int
    failed: tuple[tuple[TenantId, str], ...]

    def ok(self) -> bool:
        return not self.failed


@attrs.frozen
class ProxyMode:
    """``TIERKEEPER_OPENCLAW_MODE=proxy``: configs point at the LLM proxy (spec §13)."""

    url: str
    virtual_keys: VirtualKeys


@attrs.frozen
class Configs:
    catalog: Catalog
    tenants: TenantRepository
    credentials: CredentialRepository
    key_store: KeyStore
    writer: ConfigWriter
    proxy: ProxyMode | None = None
    """Set in proxy mode; None writes direct configs."""

    async def build(self, tenant_id: TenantId) -> TenantConfig:
        """The tenant's config; the key is decrypted only when its route uses it. In proxy
        mode the config carries the tenant's virtual key (a new one when it has none)
        instead of any provider key."""
        return await self._stored_config(await self._tenant(tenant_id))

    async def _tenant(self, tenant_id: TenantId) -> Tenant:
        tenant = await self.tenants.get(tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id!r} is unknown")
        return tenant

    async def _stored_config(
        self, tenant: Tenant, rotate_virtual_key: bool = False
    ) -> TenantConfig:
        """The config of ``tenant`` with its stored credential, read only on the BYOK tier."""
        byok = self.catalog.tier(tenant.tier).id == BYOK
        credential = await self.credentials.get(tenant.id) if byok else None
        return await self.config_for(tenant, credential, rotate_virtual_key=rotate_virtual_key)

    async def config_for(
        self,
        tenant: Tenant,
        credential: StoredCredential | None,
        api_key: Secret | None = None,
        rotate_virtual_key: bool = False,
    ) -> TenantConfig:
        """The config of ``tenant`` with ``credential``; its key is ``api_key`` when the
        caller holds it in plaintext, else decrypted, and only when the route uses it. In
        proxy mode the virtual key replaces every provider key."""
        route = decide_route(self.catalog, tenant, credential)
        uses_key = (
            credential is not None
            and route.primary is not None
            and route.primary.credential is Credential.TENANT
        )
        if uses_key and api_key is None:
            assert credential is not None
            api_key = await self.key_store.decrypt(credential.ciphertext)
        config = build_tenant_config(self.catalog, tenant, credential, api_key)
        if self.proxy is None:
            return config
        key = await self.proxy.virtual_keys.current(tenant.id, rotate=rotate_virtual_key)
        return through_proxy(config, ProxyEndpoint(self.proxy.url, key))

    async def write(self, tenant_id: TenantId, rotate_virtual_key: bool = False) -> bool:
        """Write one tenant's config; False when the files were already up to date, and for
        a tenant whose account was deleted: its config went with the account and is never
        written again (not by a late webhook, a tier change, nor a regeneration)."""
        tenant = await self._tenant(tenant_id)
        if not await self.tenants.has_account(tenant_id):
            return False
        return await self.writer.write(await self._stored_config(tenant, rotate_virtual_key))

    async def regenerate(
        self,
        tenant_ids: list[TenantId] | None = None,
        progress: Callable[[TenantId, str], None] | None = None,
        concurrency: int = 8,
        rotate_virtual_keys: bool = False,
    ) -> RegenerationSummary:
        """Write every tenant's config (or the ones named), counting written, unchanged and
        failed; one tenant's failure never stops the others. For every tenant, first the
        temporary files of crashed writes are removed: this brings the files back in line
        with the database after a crash (run by ``serve`` at start-up). Up to
        ``concurrency`` tenants are written at once, since each first write waits on its own
        fsync. In proxy mode ``rotate_virtual_keys`` gives every tenant a new virtual key."""
        outcomes: dict[TenantId, str] = {}
        failed: dict[TenantId, str] = {}
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(tenant_id: TenantId) -> None:
            async with gate:
                try:
                    changed = await self.write(tenant_id, rotate_virtual_keys)
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
