"""Ports: the capabilities the use cases need from the outside world.

I/O ports are async; adapters wrapping sync SDKs keep them off the event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Protocol

from domain.accounts import AccountMail, OneTimePurpose, OneTimeToken
from domain.audit import AuditEntry
from domain.billing import SubscriptionEvent
from domain.byok import Ciphertext, ProbeOutcome, StoredCredential
from domain.catalog import ByokProvider
from domain.ids import MessageId, TenantId, UserId
from domain.metering import (
    AdmissionOutcome,
    AdmissionRequest,
    Counters,
    MessageCounts,
    SettlementOutcome,
    SettlementRequest,
    UsageRecord,
)
from domain.notification_delivery import OutgoingMail
from domain.notifications import (
    Channel,
    ClaimedDelivery,
    DeliveryOutcome,
    NotificationFacts,
    NotificationId,
    NotificationSettings,
    StoredNotification,
)
from domain.openclaw_model import TenantConfig
from domain.proxy import UpstreamRequest, UpstreamResponse
from domain.secrets import Secret
from domain.sessions import AuthToken
from domain.subscription_records import (
    CheckoutSession,
    PaidInvoice,
    Subscription,
    SubscriptionSnapshot,
)
from domain.tenants import SubscriptionStatus, Tenant, TenantListing, User
from domain.throttle import Attempts
from domain.virtual_keys import StoredVirtualKey
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

    async def has_account(self, tenant_id: TenantId) -> bool:
        """Whether a user still holds the tenant's account (False once it was deleted)."""
        ...

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


class MessageCounter(Protocol):
    async def message_counts(
        self, starts_at: datetime, ends_at: datetime
    ) -> Mapping[TenantId, MessageCounts]:
        """Per tenant, the messages admitted in ``[starts_at, ends_at)`` by fate."""
        ...


class UsageLedger(Protocol):
    """Counts live here and only here; admit and settle are atomic in its storage."""

    async def admit(self, request: AdmissionRequest) -> AdmissionOutcome:
        """Apply ``evaluate_admission`` atomically: count the message, hold the reservation
        and keep the route offered, or refuse; ``TenantChanged`` (nothing counted) when the
        request's tenant revision is outdated. A repeated ``message_id`` returns the first
        admission and counts once."""
        ...

    async def reserve_call(
        self, request: AdmissionRequest, named: MessageId | None
    ) -> AdmissionOutcome:
        """Hold one LLM call's reservation without counting a message (``message_cap`` is
        not read), atomically: when ``named`` is a message whose reservation is still held
        and no other call has claimed, the call claims it (``Admitted`` for ``named``,
        replayed, nothing new held); otherwise ``request.message_id`` (the call's own id)
        holds ``evaluate_call_reservation``'s tokens, or the call is refused. Settled by
        ``settle`` under the id admitted, swept by ``release_expired``; a repeated call id
        returns its first answer."""
        ...

    async def settle(self, request: SettlementRequest) -> SettlementOutcome:
        """Replace the message's reservation by its count on ``settlement_terms`` (checked
        against the route its admission offered), once per message; ``TenantChanged``
        (nothing written) when the request's tenant revision is outdated. A call drawn from
        a budget lease (``request.drawn``) takes its reservation out of the lease
        first, in the same transaction."""
        ...

    async def counters(
        self, tenant_id: TenantId, day: Window, period: Window, now: datetime
    ) -> Counters:
        """The standing in a day and a period; expired reservations do not count."""
        ...

    async def check_writable(self) -> None:
        """Raises ``DatabaseUnavailable`` unless the ledger could count a message now (a
        read-only database answers reads but admits nothing)."""
        ...

    async def release_expired(self, now: datetime) -> int:
        """Sweep reservations past their expiry off the counters; returns how many."""
        ...

    async def release(self, tenant_id: TenantId, message_id: MessageId, now: datetime) -> int:
        """Give back what a held reservation still holds, settling nothing (a budget lease
        whose calls have all settled): it leaves the counters as ``released``, once. Returns
        the tokens given back (0: not held)."""
        ...

    async def usage_records(
        self, starts_at: datetime, ends_at: datetime
    ) -> Sequence[UsageRecord]: ...


class KeyStore(Protocol):
    """Encrypts keys before they leave the domain's hands; names itself in every ciphertext."""

    @property
    def name(self) -> str: ...

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

    async def remove_leftovers(self) -> int:
        """Remove the temporary files a crashed write left behind; how many."""
        ...


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


class WebhookParser(Protocol):
    def parse(self, payload: bytes | str, signature_header: str | None) -> SubscriptionEvent | None:
        """The verified event (None: not one we handle); ``InvalidSignature`` otherwise."""
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


class AuthTokenRepository(Protocol):
    async def add(self, token: AuthToken) -> None: ...

    async def find(self, token_hash: str) -> AuthToken | None:
        """The token if it exists and is not revoked."""
        ...

    async def revoke(self, token_hash: str, at: datetime) -> bool: ...

    async def touch(self, token_hash: str, at: datetime) -> None:
        """Record that the token was used at ``at``."""
        ...

    async def live_for_subject(self, kind: str, subject: str | None = None) -> list[AuthToken]:
        """The tokens of ``kind`` (and ``subject`` when given) not revoked, oldest first."""
        ...

    async def revoke_subject(self, subject: str, at: datetime, keep: str | None = None) -> int:
        """Revoke every live token of ``subject`` except the one hashed ``keep``; how many."""
        ...


class PasswordHasher(Protocol):
    """A slow, salted password hash; verification is constant-time in the adapter."""

    async def hash(self, password: Secret) -> str: ...

    async def verify(self, password_hash: str, password: Secret) -> bool: ...


class ProcessedEventRepository(Protocol):
    async def remember(self, event_id: str, event_type: str, outcome: str, at: datetime) -> bool:
        """Record a provider event id once; False when it was already recorded."""
        ...

    async def outcome(self, event_id: str) -> str | None: ...


class Outbox(Protocol):
    """Notifications written with the change that caused them, and their deliveries."""

    async def enqueue(
        self, facts: NotificationFacts, channels: Sequence[Channel], at: datetime
    ) -> NotificationId | None:
        """Store the notification and one pending delivery per channel, in one transaction;
        None (nothing written) when its (tenant, kind, window key, percent) is stored."""
        ...

    async def claim(self, now: datetime, lease: timedelta, limit: int) -> list[ClaimedDelivery]:
        """Take up to ``limit`` due pending deliveries no other deliverer holds, for
        ``lease``; the attempt is counted at once."""
        ...

    async def finish(self, claim: ClaimedDelivery, outcome: DeliveryOutcome, at: datetime) -> bool:
        """Record an attempt's outcome; False when the claim was lost (lease expired)."""
        ...

    async def for_tenant(self, tenant_id: TenantId, limit: int) -> list[StoredNotification]:
        """The tenant's notifications, newest first."""
        ...

    async def mark_read(
        self, tenant_id: TenantId, notification_id: NotificationId, at: datetime
    ) -> bool:
        """False when the tenant has no such notification."""
        ...

    async def deliveries(self, notification_id: NotificationId) -> list[tuple[str, str, int]]:
        """(channel, status, attempts) of a notification's deliveries, for reports."""
        ...


class NotificationWriter(Protocol):
    """Writes notifications inside a unit of work's transaction."""

    async def enqueue(
        self, facts: NotificationFacts, channels: Sequence[Channel], at: datetime
    ) -> NotificationId | None:
        """As ``Outbox.enqueue``, committed (or rolled back) with the unit of work."""
        ...


class Transaction(Protocol):
    """The repositories of one unit of work, all on its one transaction."""

    @property
    def tenants(self) -> TenantRepository: ...

    @property
    def credentials(self) -> CredentialRepository: ...

    @property
    def subscriptions(self) -> SubscriptionRepository: ...

    @property
    def accounts(self) -> AccountRepository: ...

    @property
    def auth_tokens(self) -> AuthTokenRepository: ...

    @property
    def outbox(self) -> NotificationWriter: ...


class UnitOfWork(Protocol):
    """A change and the notifications it causes, written together or not at all:
    ``async with unit_of_work.begin() as tx:`` commits when the block ends, rolls back when
    it raises. Inside the block read and write through ``tx`` only."""

    def begin(self) -> AbstractAsyncContextManager[Transaction]: ...


class NotificationSettingsRepository(Protocol):
    async def get(self, tenant_id: TenantId) -> NotificationSettings:
        """The stored settings, or the defaults (mail on, no webhook)."""
        ...

    async def put(self, settings: NotificationSettings) -> None: ...


class MailSender(Protocol):
    async def send(self, mail: OutgoingMail) -> None:
        """Hand the mail over; ``DeliveryFailed`` when it was not accepted."""
        ...


class WebhookPoster(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        """POST the body; ``DeliveryFailed`` unless the receiver answers 2xx."""


class VirtualKeyRepository(Protocol):
    """Each tenant's current virtual key: its hash (unique) and its ciphertext."""

    async def get(self, tenant_id: TenantId) -> StoredVirtualKey | None: ...

    async def put(self, key: StoredVirtualKey) -> None:
        """Store the tenant's key, replacing its previous one (which stops working)."""
        ...

    async def tenant_for(self, key_hash: str) -> TenantId | None:
        """The tenant whose current key has this hash."""


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


class LlmUpstream(Protocol):
    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """Send a call and answer once the status and headers are in; a provider that
        cannot be reached raises ``UpstreamUnreachable``."""


class AttemptLog(Protocol):
    """Failed attempts per key (an account, a client address), for throttling."""

    async def get(self, key: str) -> Attempts: ...

    async def record_failure(self, key: str, at: datetime) -> Attempts:
        """Count one more failure at ``at`` atomically; the count after it."""
        ...

    async def clear(self, key: str) -> None: ...

    async def forget_before(self, at: datetime) -> int:
        """Drop every count whose last failure is before ``at``; how many."""
        ...


class AccountRepository(Protocol):
    """What changes about a user after signup, and the single-use tokens mailed to them."""

    async def set_password_hash(self, user_id: UserId, password_hash: str) -> None: ...

    async def set_email(self, user_id: UserId, email: str) -> None:
        """Change the address; one taken by another user raises ``Conflict``."""
        ...

    async def mark_email_verified(self, user_id: UserId, at: datetime) -> None: ...

    async def email_verified_at(self, user_id: UserId) -> datetime | None: ...

    async def add_one_time_token(self, token: OneTimeToken) -> None: ...

    async def consume_one_time_token(
        self, token_hash: str, purpose: OneTimePurpose, at: datetime
    ) -> OneTimeToken | None:
        """Mark the token used and return it, once, if it has ``purpose`` and has not
        expired at ``at``; None otherwise (unknown, used, expired, other purpose)."""
        ...

    async def delete_user(self, user_id: UserId) -> None:
        """Remove the user (its email with it), its tokens and its single-use tokens."""
        ...


class AccountMailer(Protocol):
    async def prepare(self, mail: AccountMail) -> NotificationFacts | None:
        """The notification that carries ``mail``, its link encrypted now (before the unit
        of work that writes it opens); None when the key store cannot encrypt it now (a
        warning says so, never the link): the change then goes ahead without its mail."""
        ...


class SubscriptionCanceler(Protocol):
    async def cancel_now(self, subscription_id: str) -> None:
        """End the subscription immediately (no further invoices)."""
        ...


class ConfigRemover(Protocol):
    async def remove(self, tenant_id: TenantId) -> bool:
        """Delete the tenant's OpenClaw files; False when there were none."""
        ...


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
