"""The operator's view of tenants: find them by tier, status or email, and show one with
its usage, its key's state (never the key), its recent audit trail and its recent
notifications with the outcome of each channel."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import attrs

from domain.audit import AuditEntry
from domain.byok import KeyStatus, StoredCredential
from domain.catalog import Catalog
from domain.errors import NotFound, ValidationError
from domain.ids import TenantId
from domain.notifications import StoredNotification
from domain.ports import AuditLog, CredentialRepository, Outbox, TenantDirectory
from domain.tenants import SubscriptionStatus, TenantListing
from domain.use_cases.metering import Metering, UsageView

MAX_LISTED = 1000
RECENT_AUDIT_ENTRIES = 10
RECENT_NOTIFICATIONS = 10


@attrs.frozen
class KeySummary:
    """What the operator may see of a stored key: never the key or its ciphertext."""

    provider: str
    key_mask: str
    status: KeyStatus
    store: str
    key_version: int
    allow_platform_fallback: bool
    last_verified_at: datetime | None


def key_summary(stored: StoredCredential) -> KeySummary:
    return KeySummary(
        provider=stored.provider,
        key_mask=stored.key_mask,
        status=stored.status,
        store=stored.ciphertext.store,
        key_version=stored.ciphertext.key_version,
        allow_platform_fallback=stored.allow_platform_fallback,
        last_verified_at=stored.last_verified_at,
    )


@attrs.frozen
class SentNotification:
    """One notification and, per channel, its delivery status and attempts so far."""

    note: StoredNotification
    deliveries: tuple[tuple[str, str, int], ...]


@attrs.frozen
class TenantReport:
    listing: TenantListing
    usage: UsageView
    key: KeySummary | None
    recent_audit: tuple[AuditEntry, ...]
    recent_notifications: tuple[SentNotification, ...]


def normalise_search(text: str | None) -> str | None:
    """An email search is a case-insensitive substring; blank means no filter."""
    if text is None or not text.strip():
        return None
    return text.strip().lower()


@attrs.frozen
class Operations:
    catalog: Catalog
    directory: TenantDirectory
    credentials: CredentialRepository
    metering: Metering
    audit: AuditLog
    outbox: Outbox

    async def list_tenants(
        self,
        tier: str | None = None,
        status: SubscriptionStatus | None = None,
        search: str | None = None,
        limit: int = 100,
    ) -> Sequence[TenantListing]:
        """Tenants matching every filter given; a tier is named by id (legacy ids accepted),
        an unknown one is refused rather than matching nothing."""
        if not 1 <= limit <= MAX_LISTED:
            raise ValidationError(f"limit must be between 1 and {MAX_LISTED}", field="limit")
        tier_id = self.catalog.normalise_tier_id(tier) if tier is not None else None
        return await self.directory.find(tier_id, status, normalise_search(search), limit)

    async def show(self, tenant_id: TenantId) -> TenantReport:
        listing = await self.directory.listing(tenant_id)
        if listing is None:
            raise NotFound(f"tenant {tenant_id!r} is unknown")
        stored = await self.credentials.get(tenant_id)
        entries = await self.audit.entries(tenant_id, limit=RECENT_AUDIT_ENTRIES)
        return TenantReport(
            listing=listing,
            usage=await self.metering.usage(tenant_id),
            key=key_summary(stored) if stored is not None else None,
            recent_audit=tuple(entries),
            recent_notifications=await self._recent_notifications(tenant_id),
        )

    async def _recent_notifications(self, tenant_id: TenantId) -> tuple[SentNotification, ...]:
        """The newest notifications, account mail included, with each channel's outcome."""
        notes = await self.outbox.for_tenant(tenant_id, RECENT_NOTIFICATIONS)
        return tuple(
            [SentNotification(n, tuple(await self.outbox.deliveries(n.id))) for n in notes]
        )
