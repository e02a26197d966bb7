"""In-memory doubles of every port, for domain unit tests and as the contracts' reference."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import itertools
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from domain.accounts import AccountMail, AccountMailKind, OneTimePurpose, OneTimeToken
from domain.audit import AuditEntry
from domain.byok import (
    Ciphertext,
    ProbeOutcome,
    ProbeResult,
    StoredCredential,
    classify_probe_status,
)
from domain.call_reservations import evaluate_call_reservation
from domain.catalog import ByokProvider
from domain.errors import (
    Conflict,
    DatabaseUnavailable,
    KeyStoreUnavailable,
    NotFound,
    PaymentProviderError,
)
from domain.ids import MessageId, ReservationId, TenantId, UserId
from domain.metering import (
    AdmissionOutcome,
    AdmissionRequest,
    Admitted,
    Counters,
    Credential,
    LimitKind,
    MessageCounts,
    OfferedRoute,
    Refused,
    Settled,
    SettlementOutcome,
    SettlementRequest,
    SettlementTerms,
    TenantChanged,
    Threshold,
    UsageRecord,
    admitted_counters,
    crossed_percents,
    evaluate_admission,
    offered_route,
    reserved_counters,
    settlement_terms,
)
from domain.notification_delivery import OutgoingMail
from domain.notifications import (
    RECIPIENT,
    Channel,
    ClaimedDelivery,
    DeliveryFailed,
    DeliveryOutcome,
    DeliveryStatus,
    NotificationFacts,
    NotificationId,
    NotificationSettings,
    StoredNotification,
    channels_for,
    threshold_facts,
)
from domain.openclaw_model import TenantConfig
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
from domain.use_cases.account_mail import KINDS as ACCOUNT_MAIL_KINDS
from domain.virtual_keys import StoredVirtualKey
from domain.windows import Window


@attrs.define
class FixedClock:
    instant: datetime = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.instant

    def advance(self, **delta: float) -> None:
        self.instant = self.instant + timedelta(**delta)


@attrs.define
class InMemoryTenantRepository:
    tenants: dict[TenantId, Tenant] = attrs.Factory(dict)
    users: dict[UserId, User] = attrs.Factory(dict)

    async def add(self, tenant: Tenant, user: User) -> None:
        if any(u.email == user.email for u in self.users.values()):
            raise Conflict(f"email {user.email!r} is already signed up", code="conflict")
        self.tenants[tenant.id] = tenant
        self.users[user.id] = user

    async def get(self, tenant_id: TenantId) -> Tenant | None:
        return self.tenants.get(tenant_id)

    async def save(self, tenant: Tenant) -> None:
        """Stores the tenant with the next revision, as the SQL repository does."""
        stored = self.tenants.get(tenant.id)
        if stored is None:
            raise NotFound(f"tenant {tenant.id!r} is unknown")
        self.tenants[tenant.id] = attrs.evolve(tenant, revision=stored.revision + 1)

    async def user_by_email(self, email: str) -> User | None:
        return next((u for u in self.users.values() if u.email == email), None)

    async def user(self, user_id: UserId) -> User | None:
        return self.users.get(user_id)

    async def has_account(self, tenant_id: TenantId) -> bool:
        return any(u.tenant_id == tenant_id for u in self.users.values())

    async def tenant_by_stripe_customer(self, customer_id: str) -> Tenant | None:
        return next((t for t in self.tenants.values() if t.stripe_customer_id == customer_id), None)

    async def iter_tenant_ids(self, batch_size: int = 500) -> AsyncIterator[TenantId]:
        for tenant_id in sorted(self.tenants):
            yield tenant_id

    async def count(self) -> int:
        return len(self.tenants)


@attrs.define
class InMemoryCredentialRepository:
    rows: dict[TenantId, StoredCredential] = attrs.Factory(dict)

    async def get(self, tenant_id: TenantId) -> StoredCredential | None:
        return self.rows.get(tenant_id)

    async def put(self, credential: StoredCredential) -> None:
        self.rows[credential.tenant_id] = credential

    async def delete(self, tenant_id: TenantId) -> bool:
        return self.rows.pop(tenant_id, None) is not None

    async def replace_ciphertext(
        self, tenant_id: TenantId, expected: Ciphertext, new: Ciphertext
    ) -> bool:
        row = self.rows.get(tenant_id)
        if row is None or row.ciphertext != expected:
            return False
        self.rows[tenant_id] = attrs.evolve(row, ciphertext=new)
        return True

    async def iter_all(self, batch_size: int = 500) -> AsyncIterator[StoredCredential]:
        for tenant_id in sorted(self.rows):
            yield self.rows[tenant_id]


@attrs.define
class _Reservation:
    tenant_id: TenantId
    day: Window
    period_key: str
    tokens: int
    expires_at: datetime
    counters_at_admission: Counters
    route: OfferedRoute
    settled: bool = False
    claimed_by: MessageId | None = None
    """The one call using this (message's) reservation (spec §13)."""


@attrs.define
class InMemoryUsageLedger:
    """Applies the domain's admission rule under one lock: the reference the SQL ledger
    must match."""

    messages: dict[tuple[TenantId, str], int] = attrs.Factory(dict)
    settled_tokens: dict[tuple[TenantId, str], int] = attrs.Factory(dict)
    own_tokens: dict[tuple[TenantId, str], int] = attrs.Factory(dict)
    reservations: dict[tuple[TenantId, MessageId], _Reservation] = attrs.Factory(dict)
    settlements: dict[tuple[TenantId, MessageId], SettlementTerms] = attrs.Factory(dict)
    records: list[UsageRecord] = attrs.Factory(list)
    tenants: InMemoryTenantRepository | None = None
    """Where stored tenant revisions are read, for requests that carry one."""
    outbox: InMemoryOutbox | None = None
    """Where the thresholds an admission or settlement crosses are written, under the
    ledger's lock, as the SQL ledgers write them in their own transaction."""
    writable: bool = True
    """False simulates a read-only database."""
    _ids: itertools.count[int] = attrs.Factory(lambda: itertools.count(1))
    _lock: asyncio.Lock = attrs.Factory(asyncio.Lock)

    def _tenant_changed(self, request: AdmissionRequest | SettlementRequest) -> bool:
        if request.tenant_revision is None:
            return False
        assert self.tenants is not None, "a request with a revision needs the tenants linked"
        stored = self.tenants.tenants.get(request.tenant_id)
        return stored is None or stored.revision != request.tenant_revision

    def _counters(self, tenant_id: TenantId, day: str, period: str, now: datetime) -> Counters:
        reserved = sum(
            r.tokens
            for r in self.reservations.values()
            if r.tenant_id == tenant_id and r.period_key == period and not r.settled
            and r.expires_at > now
        )  # fmt: skip
        return Counters(
            messages_today=self.messages.get((tenant_id, day), 0),
            platform_tokens_settled=self.settled_tokens.get((tenant_id, period), 0),
            platform_tokens_reserved=reserved,
            own_key_tokens=self.own_tokens.get((tenant_id, period), 0),
        )

    async def admit(self, request: AdmissionRequest) -> AdmissionOutcome:
        async with self._lock:
            if self._tenant_changed(request):
                return TenantChanged()
            key = (request.tenant_id, request.message_id)
            day, period = request.day.key.isoformat(), request.period.key.isoformat()
            rid = ReservationId(f"{request.tenant_id}:{request.message_id}")
            counters = self._counters(request.tenant_id, day, period, request.now)
            if key in self.reservations:
                held = self.reservations[key].tokens
                return Admitted(rid, counters, replayed=True, held_tokens=held)
            decision = evaluate_admission(counters, request)
            if isinstance(decision, Refused):
                return decision
            after = admitted_counters(counters, decision)
            self.messages[(request.tenant_id, day)] = after.messages_today
            self.reservations[key] = _Reservation(
                request.tenant_id, request.day, period, decision,
                request.reservation_expires_at, after, offered_route(request, decision),
            )  # fmt: skip
            next(self._ids)
            await self._crossed(
                request.tenant_id, LimitKind.MESSAGES, day, counters.messages_today,
                after.messages_today, request.message_cap, request.now,
            )  # fmt: skip
            return Admitted(rid, after, held_tokens=decision)

    async def reserve_call(
        self, request: AdmissionRequest, named: MessageId | None
    ) -> AdmissionOutcome:
        async with self._lock:
            if self._tenant_changed(request):
                return TenantChanged()
            day, period = request.day.key.isoformat(), request.period.key.isoformat()
            counters = self._counters(request.tenant_id, day, period, request.now)
            message = self.reservations.get((request.tenant_id, named)) if named else None
            if (
                message is not None
                and not message.settled
                and message.expires_at > request.now
                and message.claimed_by in (None, request.message_id)
            ):
                message.claimed_by = request.message_id
                rid = ReservationId(f"{request.tenant_id}:{named}")
                return Admitted(rid, counters, replayed=True, held_tokens=message.tokens)
            key = (request.tenant_id, request.message_id)
            rid = ReservationId(f"{request.tenant_id}:{request.message_id}")
            if key in self.reservations:
                held = self.reservations[key].tokens
                return Admitted(rid, counters, replayed=True, held_tokens=held)
            decision = evaluate_call_reservation(counters, request)
            if isinstance(decision, Refused):
                return decision
            after = reserved_counters(counters, decision)
            self.reservations[key] = _Reservation(
                request.tenant_id, request.day, period, decision,
                request.reservation_expires_at, after, offered_route(request, decision),
            )  # fmt: skip
            return Admitted(rid, after, held_tokens=decision)

    async def settle(self, request: SettlementRequest) -> SettlementOutcome:
        async with self._lock:
            if self._tenant_changed(request):
                return TenantChanged()
            key = (request.tenant_id, request.message_id)
            self._draw(request, key)
            reservation = self.reservations.get(key)
            period = reservation.period_key if reservation else request.period.key.isoformat()
            day = (reservation.day if reservation else request.day).key.isoformat()
            before = self._counters(request.tenant_id, day, period, request.at)
            if key in self.settlements:
                return Settled(before, before, self.settlements[key], replayed=True)
            terms = settlement_terms(reservation.route if reservation else None, request)
            self.settlements[key] = terms
            if reservation is not None:
                reservation.settled = True
            platform = terms.counted_as is Credential.PLATFORM
            pool = self.settled_tokens if platform else self.own_tokens
            pool[(request.tenant_id, period)] = pool.get((request.tenant_id, period), 0) + (
                terms.weighted
            )
            self.records.append(
                UsageRecord(
                    request.tenant_id, request.message_id, request.model, terms.counted_as,
                    request.usage.input_tokens, request.usage.output_tokens,
                    request.usage.cache_read_tokens, terms.weighted, request.at,
                )
            )  # fmt: skip
            after = self._counters(request.tenant_id, day, period, request.at)
            if platform:
                await self._crossed(
                    request.tenant_id, LimitKind.TOKENS, period, before.platform_tokens_settled,
                    after.platform_tokens_settled, request.token_budget, request.at,
                )  # fmt: skip
            return Settled(before, after, terms)

    def _draw(self, request: SettlementRequest, key: tuple[TenantId, MessageId]) -> None:
        """A call drawn from a budget lease takes its reservation out of the lease (the
        lease's route; its tokens only while the lease is held), unless it has one."""
        if request.drawn is None or key in self.reservations:
            return
        lease = self.reservations.get((request.tenant_id, request.drawn.lease_id))
        if lease is None:
            return
        held = not lease.settled and lease.expires_at > request.at
        tokens = min(request.drawn.tokens, lease.tokens) if held else 0
        lease.tokens -= tokens
        self.reservations[key] = _Reservation(
            request.tenant_id, lease.day, lease.period_key, tokens, lease.expires_at,
            lease.counters_at_admission, lease.route,
        )  # fmt: skip

    async def release(self, tenant_id: TenantId, message_id: MessageId, now: datetime) -> int:
        async with self._lock:
            reservation = self.reservations.get((tenant_id, message_id))
            if reservation is None or reservation.settled or reservation.expires_at <= now:
                return 0
            reservation.settled = True
            return reservation.tokens

    async def _crossed(
        self,
        tenant_id: TenantId,
        kind: LimitKind,
        window_key: str,
        before: int,
        after: int,
        limit: int | None,
        at: datetime,
    ) -> None:
        if self.outbox is None:
            return
        for percent in crossed_percents(before, after, limit):
            assert limit is not None
            facts = threshold_facts(Threshold(tenant_id, kind, percent, window_key, after, limit))
            await self.outbox.enqueue(facts, channels_for(facts.kind), at)

    async def counters(
        self, tenant_id: TenantId, day: Window, period: Window, now: datetime
    ) -> Counters:
        return self._counters(tenant_id, day.key.isoformat(), period.key.isoformat(), now)

    async def check_writable(self) -> None:
        if not self.writable:
            raise DatabaseUnavailable("the database is read-only")

    async def release_expired(self, now: datetime) -> int:
        expired = [k for k, r in self.reservations.items() if not r.settled and r.expires_at <= now]
        for key in expired:
            self.reservations[key].settled = True
        return len(expired)

    async def usage_records(self, starts_at: datetime, ends_at: datetime) -> Sequence[UsageRecord]:
        return [r for r in self.records if starts_at <= r.at < ends_at]


def _fake_tag(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:8]


@attrs.define
class FakeKeyStore:
    """Reversible, not secure: base64 with a version tag. ``available`` simulates outages."""

    name: str = "fake"
    version: int = 1
    available: bool = True

    async def encrypt(self, plaintext: Secret) -> Ciphertext:
        self._ensure()
        body = base64.urlsafe_b64encode(plaintext.reveal()[::-1].encode()).decode()
        return Ciphertext(self.name, self.version, f"{body}.{_fake_tag(body)}")

    async def decrypt(self, ciphertext: Ciphertext) -> Secret:
        self._ensure()
        if ciphertext.store != self.name:
            raise KeyStoreUnavailable(f"ciphertext was made by {ciphertext.store!r}")
        body, _, tag = ciphertext.token.rpartition(".")
        if not body or tag != _fake_tag(body):
            raise KeyStoreUnavailable("the fake ciphertext was tampered with")
        return Secret(base64.urlsafe_b64decode(body).decode()[::-1])

    async def is_current(self, ciphertext: Ciphertext) -> bool:
        return ciphertext.store == self.name and ciphertext.key_version == self.version

    async def rewrap(self, ciphertext: Ciphertext) -> Ciphertext:
        return await self.encrypt(await self.decrypt(ciphertext))

    async def check(self) -> None:
        self._ensure()

    def _ensure(self) -> None:
        if not self.available:
            raise KeyStoreUnavailable("the fake key store is down")


@attrs.define
class FixedProviderProbe:
    """Answers ``outcome`` for every key, except the keys listed in ``answers`` (what the
    provider answers them: an HTTP status, None for no answer in time) and the providers in
    ``down`` (nothing listens)."""

    outcome: ProbeOutcome = attrs.Factory(lambda: ProbeOutcome(ProbeResult.VALID, "ok", 12))
    calls: list[tuple[str, str]] = attrs.Factory(list)
    answers: dict[str, int | None] = attrs.Factory(dict)
    down: set[str] = attrs.Factory(set)

    async def test_key(self, provider: ByokProvider, api_key: Secret) -> ProbeOutcome:
        self.calls.append((provider.id, api_key.reveal()))
        if provider.id in self.down:
            return ProbeOutcome(ProbeResult.UNREACHABLE, f"{provider.name} could not be reached", 0)
        if api_key.reveal() not in self.answers:
            return self.outcome
        status = self.answers[api_key.reveal()]
        if status is None:
            return ProbeOutcome(ProbeResult.UNREACHABLE, f"{provider.name} did not answer", 0)
        detail = f"{provider.name} answered HTTP {status}"
        return ProbeOutcome(classify_probe_status(status), detail, 0)


@attrs.define
class InMemoryConfigWriter:
    written: dict[TenantId, TenantConfig] = attrs.Factory(dict)
    writes: int = 0

    async def write(self, config: TenantConfig) -> bool:
        if self.written.get(config.tenant_id) == config:
            return False
        self.written[config.tenant_id] = config
        self.writes += 1
        return True

    def render(self, config: TenantConfig) -> dict[str, object]:
        primary, fallbacks = config.route.refs()
        return {"primary": primary, "fallbacks": list(fallbacks)}

    async def remove_leftovers(self) -> int:
        """Nothing is written in memory that a crash could leave half-done."""
        return 0


@attrs.define
class FakeBillingGateway:
    """A payment provider in memory: customers, checkout sessions, subscriptions with one
    price each (``subscribe`` stands for a completed checkout), portal sessions."""

    sessions: list[dict[str, str]] = attrs.Factory(list)
    customers: dict[str, dict[str, str]] = attrs.Factory(dict)
    subscriptions: dict[str, SubscriptionSnapshot] = attrs.Factory(dict)
    changes: list[tuple[str, str, bool]] = attrs.Factory(list)
    portals: list[tuple[str, str]] = attrs.Factory(list)

    async def create_checkout(
        self, tenant: Tenant, price_id: str, tier: str, success_url: str, cancel_url: str
    ) -> CheckoutSession:
        session_id = f"cs_test_{len(self.sessions) + 1}"
        session = {"tenant": tenant.id, "price": price_id, "tier": tier}
        if tenant.stripe_customer_id:
            session["customer"] = tenant.stripe_customer_id
        self.sessions.append(session)
        return CheckoutSession(session_id, f"https://checkout.example/{session_id}")

    async def create_customer(self, tenant: Tenant, email: str | None) -> str:
        customer_id = f"cus_fake_{len(self.customers) + 1}"
        self.customers[customer_id] = {"tenant_id": tenant.id, "email": email or ""}
        return customer_id

    def subscribe(
        self, price_id: str, period_start: datetime, period_end: datetime
    ) -> SubscriptionSnapshot:
        subscription_id = f"sub_fake_{len(self.subscriptions) + 1}"
        snapshot = SubscriptionSnapshot(
            subscription_id, price_id, "active", period_start, period_end, False
        )
        self.subscriptions[subscription_id] = snapshot
        return snapshot

    def _known(self, subscription_id: str) -> SubscriptionSnapshot:
        if subscription_id not in self.subscriptions:
            raise PaymentProviderError(f"no such subscription: {subscription_id}")
        return self.subscriptions[subscription_id]

    async def change_price(
        self, subscription_id: str, price_id: str, prorate: bool
    ) -> SubscriptionSnapshot:
        changed = attrs.evolve(self._known(subscription_id), price_id=price_id)
        self.subscriptions[subscription_id] = changed
        self.changes.append((subscription_id, price_id, prorate))
        return changed

    async def set_cancel_at_period_end(
        self, subscription_id: str, cancel: bool
    ) -> SubscriptionSnapshot:
        changed = attrs.evolve(self._known(subscription_id), cancel_at_period_end=cancel)
        self.subscriptions[subscription_id] = changed
        return changed

    async def create_portal_session(self, customer_id: str, return_url: str) -> str:
        self.portals.append((customer_id, return_url))
        return f"https://billing.example/session/{len(self.portals)}"


@attrs.define
class InMemorySubscriptionRepository:
    rows: dict[TenantId, Subscription] = attrs.Factory(dict)

    async def get(self, tenant_id: TenantId) -> Subscription | None:
        return self.rows.get(tenant_id)

    async def save(self, subscription: Subscription) -> None:
        self.rows[subscription.tenant_id] = subscription


@attrs.define
class InMemoryPaidInvoiceRepository:
    invoices: dict[str, PaidInvoice] = attrs.Factory(dict)

    async def record(self, invoice: PaidInvoice) -> bool:
        if invoice.invoice_id in self.invoices:
            return False
        self.invoices[invoice.invoice_id] = invoice
        return True

    async def paid_between(self, starts_at: datetime, ends_at: datetime) -> Sequence[PaidInvoice]:
        found = [i for i in self.invoices.values() if starts_at <= i.paid_at < ends_at]
        return sorted(found, key=lambda i: (i.paid_at, i.invoice_id))


@attrs.define
class InMemoryAuthTokenRepository:
    tokens: dict[str, AuthToken] = attrs.Factory(dict)

    async def add(self, token: AuthToken) -> None:
        self.tokens[token.token_hash] = token

    async def find(self, token_hash: str) -> AuthToken | None:
        token = self.tokens.get(token_hash)
        return token if token is not None and token.revoked_at is None else None

    async def revoke(self, token_hash: str, at: datetime) -> bool:
        token = self.tokens.get(token_hash)
        if token is None or token.revoked_at is not None:
            return False
        self.tokens[token_hash] = attrs.evolve(token, revoked_at=at)
        return True

    async def touch(self, token_hash: str, at: datetime) -> None:
        token = self.tokens.get(token_hash)
        if token is not None:
            self.tokens[token_hash] = attrs.evolve(token, last_used_at=at)

    async def live_for_subject(self, kind: str, subject: str | None = None) -> list[AuthToken]:
        live = [
            t
            for t in self.tokens.values()
            if t.kind == kind and t.revoked_at is None and subject in (None, t.subject)
        ]
        return sorted(live, key=lambda t: (t.created_at, t.token_hash))

    async def revoke_subject(self, subject: str, at: datetime, keep: str | None = None) -> int:
        chosen = [
            h
            for h, t in self.tokens.items()
            if t.subject == subject and t.revoked_at is None and h != keep
        ]
        for token_hash in chosen:
            await self.revoke(token_hash, at)
        return len(chosen)


@attrs.define
class FakePasswordHasher:
    """Salted but fast (one SHA-256, a counter for salt), so unit tests stay in milliseconds."""

    _salts: Iterator[int] = attrs.Factory(itertools.count)

    async def hash(self, password: Secret) -> str:
        salt = f"{next(self._salts):08x}"
        return f"fake${salt}${_fake_digest(salt, password)}"

    async def verify(self, password_hash: str, password: Secret) -> bool:
        tag, _, rest = password_hash.partition("$")
        salt, _, digest = rest.partition("$")
        return tag == "fake" and bool(digest) and digest == _fake_digest(salt, password)


def _fake_digest(salt: str, password: Secret) -> str:
    return hashlib.sha256(f"{salt}:{password.reveal()}".encode()).hexdigest()


@attrs.define
class InMemoryProcessedEventRepository:
    """Provider event ids seen, with their type, outcome and when they were recorded."""

    events: dict[str, tuple[str, str, datetime]] = attrs.Factory(dict)

    async def remember(self, event_id: str, event_type: str, outcome: str, at: datetime) -> bool:
        if event_id in self.events:
            return False
        self.events[event_id] = (event_type, outcome, at)
        return True

    async def outcome(self, event_id: str) -> str | None:
        entry = self.events.get(event_id)
        return entry[1] if entry is not None else None


@attrs.define
class InMemoryVirtualKeyRepository:
    """Tenants' virtual keys in a dict; a hash held by another tenant is refused, as the
    database's unique index refuses it."""

    keys: dict[TenantId, StoredVirtualKey] = attrs.Factory(dict)

    async def get(self, tenant_id: TenantId) -> StoredVirtualKey | None:
        return self.keys.get(tenant_id)

    async def put(self, key: StoredVirtualKey) -> None:
        if any(k.key_hash == key.key_hash and t != key.tenant_id for t, k in self.keys.items()):
            raise Conflict("this virtual key is already in use")
        self.keys[key.tenant_id] = key

    async def tenant_for(self, key_hash: str) -> TenantId | None:
        return next((t for t, k in self.keys.items() if k.key_hash == key_hash), None)


@attrs.define
class InMemoryAttemptLog:
    attempts: dict[str, Attempts] = attrs.Factory(dict)

    async def get(self, key: str) -> Attempts:
        return self.attempts.get(key, Attempts())

    async def record_failure(self, key: str, at: datetime) -> Attempts:
        before = self.attempts.get(key, Attempts())
        self.attempts[key] = Attempts(before.failures + 1, at)
        return self.attempts[key]

    async def clear(self, key: str) -> None:
        self.attempts.pop(key, None)

    async def forget_before(self, at: datetime) -> int:
        stale = [
            k for k, a in self.attempts.items() if a.last_failure_at and a.last_failure_at < at
        ]
        for key in stale:
            del self.attempts[key]
        return len(stale)


@attrs.define
class InMemoryAccountRepository:
    """Changes users in the in-memory tenant repository it is given."""

    tenants: InMemoryTenantRepository
    auth_tokens: InMemoryAuthTokenRepository
    verified: dict[UserId, datetime] = attrs.Factory(dict)
    one_time: dict[str, OneTimeToken] = attrs.Factory(dict)

    async def set_password_hash(self, user_id: UserId, password_hash: str) -> None:
        user = self.tenants.users[user_id]
        self.tenants.users[user_id] = attrs.evolve(user, password_hash=password_hash)

    async def set_email(self, user_id: UserId, email: str) -> None:
        if any(u.email == email and u.id != user_id for u in self.tenants.users.values()):
            raise Conflict("this email is taken", code="conflict")
        user = self.tenants.users[user_id]
        self.tenants.users[user_id] = attrs.evolve(user, email=email)
        self.verified.pop(user_id, None)

    async def mark_email_verified(self, user_id: UserId, at: datetime) -> None:
        self.verified[user_id] = at

    async def email_verified_at(self, user_id: UserId) -> datetime | None:
        return self.verified.get(user_id)

    async def add_one_time_token(self, token: OneTimeToken) -> None:
        self.one_time[token.token_hash] = token

    async def consume_one_time_token(
        self, token_hash: str, purpose: OneTimePurpose, at: datetime
    ) -> OneTimeToken | None:
        token = self.one_time.get(token_hash)
        if token is None or token.purpose is not purpose or token.used_at is not None:
            return None
        if at >= token.expires_at:
            return None
        self.one_time[token_hash] = attrs.evolve(token, used_at=at)
        return self.one_time[token_hash]

    async def delete_user(self, user_id: UserId) -> None:
        self.tenants.users.pop(user_id, None)
        self.verified.pop(user_id, None)
        self.one_time = {h: t for h, t in self.one_time.items() if t.user_id != user_id}
        self.auth_tokens.tokens = {
            h: t for h, t in self.auth_tokens.tokens.items() if t.subject != user_id
        }


MAIL_LINK_STORE = "fake-account-mail"


@attrs.define
class InMemoryAccountMailer:
    """Prepares each mail as a notification whose "link" names the mail; ``sent`` lists
    the mails whose notification reached ``outbox`` (committed with their change)."""

    outbox: InMemoryOutbox = attrs.Factory(lambda: InMemoryOutbox())
    prepared: list[AccountMail] = attrs.Factory(list)

    async def prepare(self, mail: AccountMail) -> NotificationFacts | None:
        self.prepared.append(mail)
        link = Ciphertext(MAIL_LINK_STORE, 1, str(len(self.prepared) - 1))
        return NotificationFacts(
            mail.tenant_id, ACCOUNT_MAIL_KINDS[mail.kind], {RECIPIENT: mail.to}, secret_link=link
        )

    @property
    def sent(self) -> list[AccountMail]:
        links = [n.facts.secret_link for n in self.outbox.notes]
        return [
            self.prepared[int(link.token)]
            for link in links
            if link is not None and link.store == MAIL_LINK_STORE
        ]

    def last_code(self, kind: AccountMailKind) -> Secret:
        code = next(m.code for m in reversed(self.sent) if m.kind is kind)
        assert code is not None
        return code


@attrs.define
class FakeSubscriptionCanceler:
    canceled: list[str] = attrs.Factory(list)

    async def cancel_now(self, subscription_id: str) -> None:
        self.canceled.append(subscription_id)


@attrs.define
class InMemoryConfigRemover:
    """Removes from the in-memory config writer it is given."""

    writer: InMemoryConfigWriter

    async def remove(self, tenant_id: TenantId) -> bool:
        return self.writer.written.pop(tenant_id, None) is not None


@attrs.define
class InMemoryAuditLog:
    """The audit trail as a list, in recorded order; ``entries`` answers newest first."""

    recorded: list[AuditEntry] = attrs.Factory(list)

    async def record(self, entry: AuditEntry) -> None:
        self.recorded.append(entry)

    async def entries(
        self, tenant_id: TenantId | None = None, since: datetime | None = None, limit: int = 1000
    ) -> Sequence[AuditEntry]:
        chosen = [
            entry
            for entry in self.recorded
            if (tenant_id is None or entry.tenant_id == tenant_id)
            and (since is None or entry.at >= since)
        ]
        ordered = sorted(enumerate(chosen), key=lambda pair: (pair[1].at, pair[0]), reverse=True)
        return [entry for _, entry in ordered][:limit]


@attrs.define
class InMemoryTenantDirectory:
    """The operator's search over an ``InMemoryTenantRepository``."""

    repository: InMemoryTenantRepository

    async def find(
        self,
        tier: str | None = None,
        status: SubscriptionStatus | None = None,
        email_contains: str | None = None,
        limit: int = 100,
    ) -> Sequence[TenantListing]:
        found = []
        for tenant in sorted(self.repository.tenants.values(), key=lambda t: (t.created_at, t.id)):
            listing = self._listing(tenant)
            if (
                (tier is None or tenant.tier == tier)
                and (status is None or tenant.status is status)
                and (
                    email_contains is None
                    or any(email_contains.lower() in email.lower() for email in listing.emails)
                )
            ):
                found.append(listing)
        return found[:limit]

    async def listing(self, tenant_id: TenantId) -> TenantListing | None:
        tenant = self.repository.tenants.get(tenant_id)
        return self._listing(tenant) if tenant is not None else None

    def _listing(self, tenant: Tenant) -> TenantListing:
        users = sorted(
            (u for u in self.repository.users.values() if u.tenant_id == tenant.id),
            key=lambda u: (u.created_at, u.email),
        )
        return TenantListing(tenant, tuple(u.email for u in users))


@attrs.define
class FixedMessageCounter:
    """Message counts as a test sets them, per tenant, for any window that holds ``at``."""

    counts: dict[TenantId, MessageCounts] = attrs.Factory(dict)
    at: datetime | None = None

    async def message_counts(
        self, starts_at: datetime, ends_at: datetime
    ) -> Mapping[TenantId, MessageCounts]:
        if self.at is not None and not starts_at <= self.at < ends_at:
            return {}
        return dict(self.counts)


@attrs.define
class _Delivery:
    id: int
    note_key: int
    channel: Channel
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    next_attempt_at: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    claimed_until: datetime | None = None
    claim_token: str | None = None
    last_error: str | None = None


@attrs.define
class InMemoryOutbox:
    """The outbox in lists; ``emails`` stands in for the users table (tenant → address)."""

    notes: list[StoredNotification] = attrs.Factory(list)
    deliveries_: list[_Delivery] = attrs.Factory(list)
    emails: dict[TenantId, str] = attrs.Factory(dict)
    _ids: itertools.count[int] = attrs.Factory(lambda: itertools.count(1))

    async def enqueue(
        self, facts: NotificationFacts, channels: Sequence[Channel], at: datetime
    ) -> NotificationId | None:
        key = (facts.tenant_id, facts.kind, facts.window_key, facts.percent)
        if facts.window_key is not None and facts.percent is not None:
            for note in self.notes:
                f = note.facts
                if (f.tenant_id, f.kind, f.window_key, f.percent) == key:
                    return None
        note_id = NotificationId(f"msg_{len(self.notes) + 1:032x}")
        self.notes.append(StoredNotification(note_id, facts, at))
        index = len(self.notes) - 1
        for channel in channels:
            self.deliveries_.append(_Delivery(next(self._ids), index, channel, next_attempt_at=at))
        return note_id

    async def claim(self, now: datetime, lease: timedelta, limit: int) -> list[ClaimedDelivery]:
        token = f"claim-{next(self._ids)}"
        due = [
            d
            for d in self.deliveries_
            if d.status is DeliveryStatus.PENDING
            and d.next_attempt_at <= now
            and (d.claimed_until is None or d.claimed_until <= now)
        ]
        due.sort(key=lambda d: (d.next_attempt_at, d.id))
        claimed = []
        for delivery in due[:limit]:
            delivery.claimed_until = now + lease
            delivery.claim_token = token
            delivery.attempts += 1
            note = self.notes[delivery.note_key]
            claimed.append(
                ClaimedDelivery(
                    delivery.id,
                    token,
                    delivery.channel,
                    delivery.attempts,
                    note,
                    self.emails.get(note.facts.tenant_id),
                )
            )
        return claimed

    async def finish(self, claim: ClaimedDelivery, outcome: DeliveryOutcome, at: datetime) -> bool:
        for delivery in self.deliveries_:
            if delivery.id == claim.delivery_id and delivery.claim_token == claim.claim_token:
                delivery.status = outcome.status
                delivery.claimed_until = None
                delivery.claim_token = None
                delivery.last_error = outcome.error
                if outcome.retry_at is not None:
                    delivery.next_attempt_at = outcome.retry_at
                return True
        return False

    async def for_tenant(self, tenant_id: TenantId, limit: int) -> list[StoredNotification]:
        mine = [n for n in self.notes if n.facts.tenant_id == tenant_id]
        return list(reversed(mine))[:limit]

    async def mark_read(
        self, tenant_id: TenantId, notification_id: NotificationId, at: datetime
    ) -> bool:
        for index, note in enumerate(self.notes):
            if note.id == notification_id and note.facts.tenant_id == tenant_id:
                if note.read_at is None:
                    self.notes[index] = attrs.evolve(note, read_at=at)
                return True
        return False

    async def deliveries(self, notification_id: NotificationId) -> list[tuple[str, str, int]]:
        keys = [i for i, n in enumerate(self.notes) if n.id == notification_id]
        rows = [d for d in self.deliveries_ if d.note_key in keys]
        return sorted((d.channel.value, d.status.value, d.attempts) for d in rows)


@attrs.define
class InMemoryNotificationSettings:
    stored: dict[TenantId, NotificationSettings] = attrs.Factory(dict)

    async def get(self, tenant_id: TenantId) -> NotificationSettings:
        return self.stored.get(tenant_id, NotificationSettings(tenant_id))

    async def put(self, settings: NotificationSettings) -> None:
        self.stored[settings.tenant_id] = settings


@attrs.define
class RecordingMailSender:
    """Keeps every mail; ``failures`` makes the next N sends fail."""

    sent: list[OutgoingMail] = attrs.Factory(list)
    failures: int = 0

    async def send(self, mail: OutgoingMail) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise DeliveryFailed("SMTP: 451 try again later")
        self.sent.append(mail)


@attrs.define
class RecordingWebhookPoster:
    posted: list[tuple[str, bytes, dict[str, str]]] = attrs.Factory(list)
    failures: int = 0

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise DeliveryFailed("webhook: the receiver answered 503")
        self.posted.append((url, body, dict(headers)))


def _public_state(repository: Any) -> dict[str, object]:
    return {
        f.name: copy.deepcopy(getattr(repository, f.name))
        for f in attrs.fields(type(repository))
        if not f.name.startswith("_")
    }


@attrs.frozen
class InMemoryTransaction:
    tenants: InMemoryTenantRepository
    credentials: InMemoryCredentialRepository
    subscriptions: InMemorySubscriptionRepository
    accounts: InMemoryAccountRepository
    auth_tokens: InMemoryAuthTokenRepository
    outbox: InMemoryOutbox


@attrs.define
class InMemoryUnitOfWork:
    """Writes straight to the in-memory repositories and puts their state back as it was
    when the block raises: the reference the SQL unit of work must match."""

    tenants: InMemoryTenantRepository
    credentials: InMemoryCredentialRepository
    outbox: InMemoryOutbox
    subscriptions: InMemorySubscriptionRepository = attrs.Factory(InMemorySubscriptionRepository)
    accounts: InMemoryAccountRepository = attrs.Factory(
        lambda self: InMemoryAccountRepository(self.tenants, InMemoryAuthTokenRepository()),
        takes_self=True,
    )
    commits: int = 0
    rollbacks: int = 0

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[InMemoryTransaction]:
        repositories = (self.tenants, self.credentials, self.subscriptions, self.outbox)
        saved = [_public_state(r) for r in repositories]
        own = ("verified", "one_time")  # its users live in the tenant repository
        saved_accounts = {name: copy.deepcopy(getattr(self.accounts, name)) for name in own}
        tokens = self.accounts.auth_tokens
        saved_tokens = copy.deepcopy(tokens.tokens)
        try:
            yield InMemoryTransaction(
                self.tenants, self.credentials, self.subscriptions, self.accounts, tokens,
                self.outbox,
            )  # fmt: skip
        except BaseException:
            for repository, state in zip(repositories, saved, strict=True):
                for name, value in state.items():
                    setattr(repository, name, value)
            for name, value in saved_accounts.items():
                setattr(self.accounts, name, value)
            tokens.tokens = saved_tokens
            self.rollbacks += 1
            raise
        self.commits += 1
