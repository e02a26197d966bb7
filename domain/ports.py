"""Ports: the capabilities the use cases need from the outside world.

I/O ports are async; adapters wrapping sync SDKs keep them off the event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol

import attrs

from domain.audit import AuditEntry
from domain.byok import Ciphertext, ProbeOutcome, StoredCredential
from domain.catalog import ByokProvider
from domain.ids import MessageId, TenantId, UserId
from domain.metering import (
    AdmissionDecision,
    AdmissionRequest,
    Counters,
    Credential,
    SettlementOutcome,
    SettlementRequest,
    Threshold,
)
from domain.openclaw_model import TenantConfig
from domain.secrets import Secret
from domain.subscription_records import PaidInvoice, Subscription, SubscriptionSnapshot
from domain.tenants import SubscriptionStatus, Tenant, User
from domain.windows import Window


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class TenantRepository(Protocol):
    async def add(self, tenant: Tenant, user: User) -> None:
        """Store a new tenant with its first user; a taken email raises ``Conflict``."""
        ...

    async def get(self, tenant_id: TenantId) -> Tenant | None: ...

    async def save(self, tenant: Tenant) -> None:
        """Replace the stored tenant; an unknown id raises ``NotFound``."""
        ...

    async def user_by_email(self, email: str) -> User | None: ...

    async def user(self, user_id: UserId) -> User | None: ...

    async def tenant_by_stripe_customer(self, customer_id: str) -> Tenant | None: ...

    def iter_tenant_ids(self, batch_size: int = 500) -> AsyncIterator[TenantId]: ...

    async def count(self) -> int: ...


class CredentialRepository(Protocol):
    async def get(self, tenant_id: TenantId) -> StoredCredential | None: ...

    async def put(self, credential: StoredCredential) -> None:
        """Insert or replace the tenant's one credential."""
        ...

    async def delete(self, tenant_id: TenantId) -> bool: ...

    async def replace_ciphertext(
        self, tenant_id: TenantId, expected: Ciphertext, new: Ciphertext
    ) -> bool:
        """Swap the ciphertext only if it is still ``expected`` (safe against a concurrent PUT)."""
        ...

    def iter_all(self, batch_size: int = 500) -> AsyncIterator[StoredCredential]: ...


@attrs.frozen
class UsageRecord:
    """One settled message, as the usage report reads it back."""

    tenant_id: TenantId
    message_id: MessageId
    model: str
    credential: Credential
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    weighted_tokens: int
    at: datetime


@attrs.frozen
class MessageCounts:
    """A tenant's messages admitted in a period, and of those how many were settled (usage
    reported) and how many expired (never settled, reservation let go)."""

    admitted: int = 0
    settled: int = 0
    expired: int = 0


class MessageCounter(Protocol):
    async def message_counts(
        self, starts_at: datetime, ends_at: datetime
    ) -> Mapping[TenantId, MessageCounts]:
        """Per tenant, the messages admitted in ``[starts_at, ends_at)`` by fate."""
        ...


class UsageLedger(Protocol):
    """Counts live here and only here; admit and settle are atomic in its storage."""

    async def admit(self, request: AdmissionRequest) -> AdmissionDecision:
        """Apply ``evaluate_admission`` atomically: count the message and hold the reservation,
        or refuse. A repeated ``message_id`` returns the first admission and counts once."""
        ...

    async def settle(self, request: SettlementRequest) -> SettlementOutcome:
        """Replace the message's reservation by its weighted actual tokens, once per message;
        ``TenantChanged`` (nothing written) when the request's tenant revision is outdated."""
        ...

    async def counters(
        self, tenant_id: TenantId, day: Window, period: Window, now: datetime
    ) -> Counters:
        """The standing in a day and a period; expired reservations do not count."""
        ...

    async def release_expired(self, now: datetime) -> int:
        """Drop reservations past their expiry; returns how many."""
        ...

    async def usage_records(
        self, starts_at: datetime, ends_at: datetime
    ) -> Sequence[UsageRecord]: ...


class KeyStore(Protocol):
    """Encrypts keys before they leave the domain's hands; names itself in every ciphertext."""

    name: str

    async def encrypt(self, plaintext: Secret) -> Ciphertext: ...

    async def decrypt(self, ciphertext: Ciphertext) -> Secret:
        """Raises ``KeyStoreUnavailable`` when the store cannot answer or the token is bad."""
        ...

    async def is_current(self, ciphertext: Ciphertext) -> bool:
        """Whether the ciphertext was made by this store's newest key."""
        ...

    async def rewrap(self, ciphertext: Ciphertext) -> Ciphertext:
        """The same key re-encrypted under this store's newest key (Vault transit rewrap,
        MultiFernet rotate); a ciphertext of another store raises ``KeyStoreUnavailable``."""
        ...

    async def check(self) -> None:
        """Raises ``KeyStoreUnavailable`` unless the store answers now."""
        ...


class ProviderProbe(Protocol):
    async def test_key(self, provider: ByokProvider, api_key: Secret) -> ProbeOutcome:
        """Call the provider's cheapest authenticated endpoint with a short timeout."""
        ...


class ConfigWriter(Protocol):
    async def write(self, config: TenantConfig) -> bool:
        """Write atomically; False when the content on disk is already the same."""
        ...

    def render(self, config: TenantConfig) -> dict[str, object]:
        """The OpenClaw JSON document, secrets excluded."""
        ...


class Notifier(Protocol):
    async def threshold_crossed(self, threshold: Threshold) -> bool:
        """Notify once per (tenant, kind, window, percent); False when already notified."""
        ...

    async def key_invalidated(self, tenant_id: TenantId, provider: str) -> None: ...


@attrs.frozen
class CheckoutSession:
    session_id: str
    url: str


class BillingGateway(Protocol):
    async def create_checkout(
        self, tenant: Tenant, price_id: str, tier: str, success_url: str, cancel_url: str
    ) -> CheckoutSession: ...

    async def create_customer(self, tenant: Tenant, email: str | None) -> str:
        """A customer at the provider for the tenant (its id in the metadata); its id."""
        ...

    async def change_price(
        self, subscription_id: str, price_id: str, prorate: bool
    ) -> SubscriptionSnapshot:
        """Move the subscription's one item to the price: prorated and charged now, or
        without proration (the new price is billed from the next period)."""
        ...

    async def set_cancel_at_period_end(
        self, subscription_id: str, cancel: bool
    ) -> SubscriptionSnapshot:
        """End the subscription at its period end (True), or keep it renewing (False)."""
        ...

    async def create_portal_session(self, customer_id: str, return_url: str) -> str:
        """The URL of a billing portal session (card, invoices, receipts) for the customer."""
        ...


class SubscriptionRepository(Protocol):
    """Each tenant's subscription record, one per tenant."""

    async def get(self, tenant_id: TenantId) -> Subscription | None: ...

    async def save(self, subscription: Subscription) -> None:
        """Insert or replace the tenant's record."""
        ...


class PaidInvoiceRepository(Protocol):
    async def record(self, invoice: PaidInvoice) -> bool:
        """Keep a paid invoice once per invoice id; False when it was already kept."""
        ...

    async def paid_between(self, starts_at: datetime, ends_at: datetime) -> Sequence[PaidInvoice]:
        """Invoices paid in ``[starts_at, ends_at)``, oldest first."""
        ...


@attrs.frozen
class AuthToken:
    """A bearer token as stored: only its hash. ``kind`` is ``customer`` or ``service``;
    ``subject`` the user id or the service name."""

    token_hash: str
    kind: str
    subject: str
    created_at: datetime
    revoked_at: datetime | None = None


class AuthTokenRepository(Protocol):
    async def add(self, token: AuthToken) -> None: ...

    async def find(self, token_hash: str) -> AuthToken | None:
        """The token if it exists and is not revoked."""
        ...

    async def revoke(self, token_hash: str, at: datetime) -> bool: ...


class PasswordHasher(Protocol):
    """A slow, salted password hash; verification is constant-time in the adapter."""

    async def hash(self, password: Secret) -> str: ...

    async def verify(self, password_hash: str, password: Secret) -> bool: ...


class ProcessedEventRepository(Protocol):
    async def remember(self, event_id: str, event_type: str, outcome: str, at: datetime) -> bool:
        """Record a provider event id once; False when it was already recorded."""
        ...

    async def outcome(self, event_id: str) -> str | None: ...


class AuditLog(Protocol):
    """The append-only trail of security-relevant events (``domain.audit``); entries are
    never changed or removed, and never hold a secret."""

    async def record(self, entry: AuditEntry) -> None: ...

    async def entries(
        self, tenant_id: TenantId | None = None, since: datetime | None = None, limit: int = 1000
    ) -> Sequence[AuditEntry]:
        """Entries at or after ``since`` (all when None), of one tenant or of all, newest
        first, at most ``limit``."""
        ...


@attrs.frozen
class TenantListing:
    """A tenant as the operator finds it: with its users' emails."""

    tenant: Tenant
    emails: tuple[str, ...]


class TenantDirectory(Protocol):
    """The operator's search over tenants."""

    async def find(
        self,
        tier: str | None = None,
        status: SubscriptionStatus | None = None,
        email_contains: str | None = None,
        limit: int = 100,
    ) -> Sequence[TenantListing]:
        """Tenants on ``tier`` with ``status`` and a user whose email contains
        ``email_contains`` (each filter left out when None), oldest first, at most ``limit``."""
        ...

    async def listing(self, tenant_id: TenantId) -> TenantListing | None: ...
