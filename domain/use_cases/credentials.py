"""Put, get, delete and test a tenant's BYOK credential; react to provider key failures."""

from __future__ import annotations

import contextlib

import attrs

from domain.audit import GATEWAY, Actor, AuditAction, AuditEntry, AuditSource, NoAuditLog
from domain.byok import (
    CredentialInput,
    KeyStatus,
    ProbeOutcome,
    StoredCredential,
    is_auth_failure,
    mask_key,
    status_after_probe,
    validate_api_key,
    validate_credential_input,
    validate_model,
)
from domain.catalog import BYOK, Catalog
from domain.errors import NotFound, ValidationError
from domain.ids import TenantId, UserId
from domain.notifications import key_invalidated_facts
from domain.ports import (
    AuditLog,
    Clock,
    CredentialRepository,
    KeyStore,
    ProviderProbe,
    TenantRepository,
    UnitOfWork,
)
from domain.secrets import Secret
from domain.use_cases.configs import Configs


@attrs.frozen
class Credentials:
    catalog: Catalog
    tenants: TenantRepository
    credentials: CredentialRepository
    key_store: KeyStore
    probe: ProviderProbe
    unit_of_work: UnitOfWork
    configs: Configs
    clock: Clock
    audit: AuditLog = attrs.field(factory=NoAuditLog, kw_only=True)

    async def get(self, tenant_id: TenantId) -> StoredCredential:
        stored = await self.credentials.get(tenant_id)
        if stored is None:
            raise NotFound("no AI provider key is stored")
        return stored

    async def put(
        self, tenant_id: TenantId, user_id: UserId, submitted: CredentialInput
    ) -> StoredCredential:
        """Validate, encrypt and store; a new key starts unverified. Changing only the model
        keeps the stored key. Stored for every tier; the config changes only for BYOK."""
        stored = await self.credentials.get(tenant_id)
        valid = validate_credential_input(self.catalog, submitted, stored)
        now = self.clock.now()
        if valid.api_key is not None:
            ciphertext = await self.key_store.encrypt(valid.api_key)
            mask, status, verified_at, error = (
                mask_key(valid.provider, valid.api_key),
                (KeyStatus.UNVERIFIED),
                None,
                None,
            )
        else:
            assert stored is not None
            ciphertext, mask = stored.ciphertext, stored.key_mask
            status, verified_at, error = stored.status, stored.last_verified_at, stored.last_error
        allow = valid.allow_platform_fallback
        if allow is None:
            allow = stored.allow_platform_fallback if stored is not None else True
        credential = StoredCredential(
            tenant_id=tenant_id,
            user_id=user_id,
            provider=valid.provider.id,
            model_preference=valid.model_preference,
            ciphertext=ciphertext,
            key_mask=mask,
            status=status,
            allow_platform_fallback=allow,
            created_at=stored.created_at if stored is not None else now,
            updated_at=now,
            last_verified_at=verified_at,
            last_error=error,
        )
        await self._store_with_config(credential, valid.api_key)
        action = AuditAction.KEY_SAVED if stored is None else AuditAction.KEY_REPLACED
        if valid.api_key is None:
            action = AuditAction.KEY_SETTINGS_CHANGED
        await self.audit.record(
            AuditEntry(
                now,
                action,
                Actor(AuditSource.API, user_id),
                tenant_id,
                f"provider {credential.provider}, store {ciphertext.store} "
                f"v{ciphertext.key_version}, fallback {'on' if allow else 'off'}",
            )
        )
        return credential

    async def _store_with_config(
        self, credential: StoredCredential, api_key: Secret | None
    ) -> None:
        """Saving is all or nothing (spec §3): a BYOK tenant's files are written with the
        new key first (the plaintext in hand, so nothing is decrypted again), then the
        credential is stored; if storing fails the files are written back from what is
        stored. A crash between the two is repaired at start-up (``configs regenerate``)."""
        tenant = await self.tenants.get(credential.tenant_id)
        if tenant is None or self.catalog.tier(tenant.tier).id != BYOK:
            await self.credentials.put(credential)
            return
        config = await self.configs.config_for(tenant, credential, api_key)
        await self.configs.writer.write(config)
        try:
            await self.credentials.put(credential)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.configs.write(credential.tenant_id)
            raise

    async def delete(self, tenant_id: TenantId, user_id: UserId | None = None) -> None:
        """Remove the tenant's key; ``user_id`` names who did it in the audit trail."""
        if not await self.credentials.delete(tenant_id):
            raise NotFound("no AI provider key is stored")
        actor = Actor(AuditSource.API, user_id or "customer")
        await self.audit.record(
            AuditEntry(self.clock.now(), AuditAction.KEY_REMOVED, actor, tenant_id)
        )
        await self._refresh_config(tenant_id)

    async def test(
        self,
        tenant_id: TenantId,
        provider_id: str | None = None,
        api_key: Secret | None = None,
        model: str | None = None,
    ) -> ProbeOutcome:
        """Test a key before saving it, or the stored one; testing the stored key records
        the result on it (valid or invalid; rate limits and outages change nothing)."""
        if api_key is not None:
            if provider_id is None:
                raise ValidationError("provider is required to test a new key", field="provider")
            provider = self.catalog.byok_provider(provider_id.strip().lower())
            validate_api_key(provider, api_key)
            if model is not None:
                validate_model(provider, model)
            return await self.probe.test_key(provider, api_key)
        stored = await self.get(tenant_id)
        if provider_id is not None and provider_id.strip().lower() != stored.provider:
            raise ValidationError(
                "api_key is required to test a provider other than the stored one",
                field="api_key",
            )
        provider = self.catalog.byok_provider(stored.provider)
        outcome = await self.probe.test_key(
            provider, await self.key_store.decrypt(stored.ciphertext)
        )
        status = status_after_probe(stored.status, outcome.result)
        now = self.clock.now()
        updated = attrs.evolve(
            stored,
            status=status,
            last_verified_at=now
            if status is not stored.status or status is KeyStatus.VALID
            else stored.last_verified_at,
            last_error=None if status is KeyStatus.VALID else outcome.detail,
            updated_at=now,
        )
        await self.credentials.put(updated)
        if updated.status is not stored.status:
            await self._refresh_config(tenant_id)
        return outcome

    async def report_key_failure(
        self, tenant_id: TenantId, provider_id: str, status_code: int
    ) -> KeyStatus | None:
        """A gateway saw the provider reject the tenant's key: 401/403 mark it invalid and
        tell the user in one unit of work (the notification commits with the status, or
        neither does), then regenerate the config (platform fallback takes over)."""
        tenant = await self.tenants.get(tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id!r} is unknown", code="tenant_unknown")
        stored = await self.credentials.get(tenant_id)
        if stored is None or stored.provider != provider_id.strip().lower():
            raise NotFound(f"tenant has no stored {provider_id!r} key")
        if not is_auth_failure(status_code) or stored.status is KeyStatus.INVALID:
            return stored.status
        now = self.clock.now()
        async with self.unit_of_work.begin() as tx:
            current = await tx.credentials.get(tenant_id)
            if current is None or current.status is KeyStatus.INVALID:
                return current.status if current is not None else None
            await tx.credentials.put(
                attrs.evolve(
                    current,
                    status=KeyStatus.INVALID,
                    last_error=f"provider answered {status_code} to the gateway",
                    updated_at=now,
                )
            )
            facts = key_invalidated_facts(tenant_id, current.provider)
            await tx.outbox.enqueue(facts, facts.channels(), now)
        await self.audit.record(
            AuditEntry(
                now,
                AuditAction.KEY_INVALIDATED,
                GATEWAY,
                tenant_id,
                f"provider {stored.provider} answered {status_code}",
            )
        )
        await self._refresh_config(tenant_id)
        return KeyStatus.INVALID

    async def _refresh_config(self, tenant_id: TenantId) -> None:
        tenant = await self.tenants.get(tenant_id)
        if tenant is not None and self.catalog.tier(tenant.tier).id == BYOK:
            await self.configs.write(tenant_id)
