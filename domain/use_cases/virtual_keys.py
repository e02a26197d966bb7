"""Issue, rotate and recognise tenants' virtual keys (spec §13)."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from domain.bounded_memory import remember
from domain.ids import TenantId
from domain.ports import Clock, KeyStore, VirtualKeyRepository
from domain.secrets import Secret
from domain.virtual_keys import (
    StoredVirtualKey,
    looks_like_virtual_key,
    new_virtual_key,
    virtual_key_hash,
)

VIRTUAL_KEY_TRUST_SECONDS = 5.0
"""How long one proxy process trusts a key it found, so a rotated key stops working within
this time everywhere."""
MAX_TRUSTED_VIRTUAL_KEYS = 100_000


@attrs.frozen
class VirtualKeys:
    keys: VirtualKeyRepository
    key_store: KeyStore
    clock: Clock
    trust_s: float = VIRTUAL_KEY_TRUST_SECONDS
    _trusted: dict[str, tuple[datetime, TenantId]] = attrs.field(
        factory=dict, init=False, repr=False, eq=False
    )

    async def current(self, tenant_id: TenantId, rotate: bool = False) -> Secret:
        """The tenant's key for its config: the stored one, or a new one when it has none
        or ``rotate`` asks for it (the previous key stops working)."""
        stored = await self.keys.get(tenant_id)
        if stored is not None and not rotate:
            return await self.key_store.decrypt(stored.ciphertext)
        key = new_virtual_key()
        await self.keys.put(
            StoredVirtualKey(
                tenant_id=tenant_id,
                key_hash=virtual_key_hash(key),
                ciphertext=await self.key_store.encrypt(key),
                created_at=self.clock.now(),
            )
        )
        return key

    async def tenant_for(self, presented: str) -> TenantId | None:
        """The tenant a presented key belongs to, or None. A key found is trusted for
        ``trust_s`` seconds; a key not found is never remembered."""
        if not looks_like_virtual_key(presented):
            return None
        digest = virtual_key_hash(Secret(presented))
        now = self.clock.now()
        trusted = self._trusted.get(digest)
        if trusted is not None and now < trusted[0]:
            return trusted[1]
        tenant_id = await self.keys.tenant_for(digest)
        if tenant_id is None:
            return None
        until = now + timedelta(seconds=self.trust_s)
        remember(self._trusted, digest, (until, tenant_id), MAX_TRUSTED_VIRTUAL_KEYS)
        return tenant_id
