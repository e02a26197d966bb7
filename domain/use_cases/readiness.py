"""Whether this instance can serve: the database answers and takes writes, and the key store
answers."""

from __future__ import annotations

import enum

import attrs

from domain.ports import KeyStore, TenantRepository, UsageLedger


class Dependency(enum.Enum):
    DATABASE = "database"
    KEY_STORE = "key_store"


@attrs.frozen
class Readiness:
    tenants: TenantRepository
    ledger: UsageLedger
    key_store: KeyStore

    async def first_unavailable(self) -> Dependency | None:
        """The first dependency that fails its check, database first (a read-only database
        admits nothing, so it counts as unavailable); None when all answer."""
        try:
            await self.tenants.count()
            await self.ledger.check_writable()
        except Exception:  # any failure means: not ready
            return Dependency.DATABASE
        try:
            await self.key_store.check()
        except Exception:  # any failure means: not ready
            return Dependency.KEY_STORE
        return None
