"""Sign customers up, log them in and out, and issue the bearer tokens services use.

A signup creates the tenant and its first user together: the tenant starts on the starter
tier with status ``incomplete`` (the subscription becomes ``active`` only when its checkout
completes, so an unpaid tenant is never admitted) and billing anchor day 1 (billing moves it
to the day the subscription starts). Tokens are random, shown once, and stored only as their
SHA-256 hash; a token is either a customer's (subject: user id) or a service's (subject: the
service name), never both.

A customer token is a session: it expires on the server after a time without use and at the
latest a fixed time after login (``domain.sessions``); the customer lists its sessions, ends
one, or ends all. Failed logins are throttled per account and per client address
(``domain.throttle``): while a key must wait, the login is refused before any password is
hashed.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import attrs

from domain.accounts import AccountMail, AccountMailKind, OneTimePurpose, OneTimeToken
from domain.audit import OPERATOR, Actor, AuditAction, AuditEntry, AuditSource, NoAuditLog, token_id
from domain.bounded_memory import remember
from domain.catalog import STARTER, Catalog
from domain.errors import (
    Conflict,
    Forbidden,
    NotFound,
    TooManyAttempts,
    Unauthorized,
    ValidationError,
)
from domain.ids import TenantId, UserId
from domain.ports import (
    AccountMailer,
    AccountRepository,
    AttemptLog,
    AuditLog,
    AuthTokenRepository,
    Clock,
    PasswordHasher,
    TenantRepository,
    Transaction,
    UnitOfWork,
)
from domain.secrets import Secret
from domain.sessions import AuthToken, needs_touch, session_expired, session_expires_at
from domain.tenants import SubscriptionStatus, Tenant, User
from domain.throttle import (
    KEY_TESTS_PER_WINDOW,
    Attempts,
    forget_before,
    key_test_window,
    retry_after_seconds,
    wait_before_next,
)
from domain.use_cases.configs import Configs
from domain.use_cases.single_flight import SingleFlight
from domain.windows import parse_timezone

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
MAX_EMAIL_LENGTH = 254
SERVICE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
TOKEN_BYTES = 32
DEFAULT_TIMEZONE = "UTC"
DEFAULT_ANCHOR_DAY = 1
SERVICE_TOKEN_TRUST_SECONDS = 5.0
MAX_TRUSTED_SERVICE_TOKENS = 1024
SESSION_ID_LENGTH = 16
ONE_TIME_TOKEN_PREFIX = "tkm_"
VERIFY_EMAIL_VALID_FOR = timedelta(hours=24)
PASSWORD_RESET_VALID_FOR = timedelta(minutes=30)
VERIFY_EMAIL_PATH = "/verify-email"
RESET_PASSWORD_PATH = "/reset-password"
LOGIN_PATH = "/login"


class TokenKind(enum.Enum):
    CUSTOMER = "customer"
    SERVICE = "service"


TOKEN_PREFIXES = {TokenKind.CUSTOMER: "tkc_", TokenKind.SERVICE: "tks_"}


@attrs.frozen
class Principal:
    """Who a presented token belongs to. ``user`` is set for customers only."""

    kind: TokenKind
    subject: str
    token_hash: str
    user: User | None = None

    def customer_tenant(self) -> TenantId | None:
        """The customer's tenant; None for a service."""
        return self.user.tenant_id if self.user is not None else None


@attrs.frozen
class SessionView:
    """One of a customer's live sessions; ``current`` is the one asking."""

    id: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime
    current: bool


@attrs.frozen
class ServiceTokenView:
    """A live service token as the operator sees it: never the token itself."""

    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None


@attrs.frozen
class SignedUp:
    user: User
    tenant: Tenant
    token: Secret


def hash_token(token: str) -> str:
    """Tokens carry 256 random bits, so one fast hash is enough to make the stored value
    useless to a reader of the database."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str) -> Secret:
    """``prefix`` and 32 random bytes, URL-safe. The size is said on purpose although it is
    the default of ``token_urlsafe`` today, which therefore no test can tell from it."""
    return Secret(prefix + secrets.token_urlsafe(TOKEN_BYTES))  # pragma: no mutate (None is 32 too)


def public_id(token_hash: str) -> str:
    """The id a session or service token is listed and revoked by: a prefix of its hash,
    which says nothing about the token itself."""
    return token_hash[:SESSION_ID_LENGTH]


@enum.unique
class Throttled(enum.Enum):
    """What failures are counted for, each apart from the others; the value prefixes the
    stored key. ``ACCOUNT`` counts an email's failed logins and password confirmations
    together; the mail scopes count the reset and verification mails sent to an address."""

    ACCOUNT = "account"
    CLIENT_ADDRESS = "address"
    SIGNUP_ADDRESS = "signup-address"
    RESET_MAIL = "reset"
    VERIFY_MAIL = "verify"


def throttle_key(scope: Throttled, value: str) -> str:
    """The throttling key of an account or a client address in ``scope``, hashed so the
    attempt log holds neither emails nor addresses."""
    return scope.value + ":" + hashlib.sha256(value.encode()).hexdigest()


def normalise_email(email: str) -> str:
    """Trimmed and lower-cased; one ``@`` with a local part and a dotted domain (two labels
    at least), no spaces."""
    cleaned = email.strip().lower()
    local, at, domain = cleaned.rpartition("@")
    labels = [label for label in domain.split(".") if label]
    if (
        not at
        or not local
        or len(labels) < 2
        or len(cleaned) > MAX_EMAIL_LENGTH
        or any(ch.isspace() or not ch.isprintable() for ch in cleaned)
        or "@" in local
    ):
        raise ValidationError("email is not a valid email address", field="email")
    return cleaned


def check_password(password: Secret) -> None:
    """At least 10 characters (and a bound, so hashing stays cheap to refuse)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(
            f"password must be at most {MAX_PASSWORD_LENGTH} characters", field="password"
        )


def check_service_name(name: str) -> str:
    """Trimmed; 1 to 64 ASCII letters, digits, ``-``, ``_`` or ``.``."""
    cleaned = name.strip()
    if not SERVICE_NAME.fullmatch(cleaned):
        raise ValidationError(
            "service name must be 1-64 letters, digits, '-', '_' or '.'", field="service"
        )
    return cleaned


@attrs.frozen
class Accounts:
    catalog: Catalog
    tenants: TenantRepository
    auth_tokens: AuthTokenRepository
    hasher: PasswordHasher
    configs: Configs
    clock: Clock
    attempts: AttemptLog
    account_store: AccountRepository
    mailer: AccountMailer
    public_url: str
    service_trust_s: float = SERVICE_TOKEN_TRUST_SECONDS
    _trusted_services: dict[str, tuple[datetime, Principal]] = attrs.field(
        factory=dict, init=False, repr=False, eq=False
    )
    _service_checks: SingleFlight[str, Principal] = attrs.field(
        factory=SingleFlight, init=False, repr=False, eq=False
    )
    audit: AuditLog = attrs.field(factory=NoAuditLog, kw_only=True)
    unit_of_work: UnitOfWork = attrs.field(kw_only=True)

    async def signup(
        self,
        email: str,
        password: Secret,
        timezone: str | None = None,
        client_address: str | None = None,
    ) -> SignedUp:
        """A new tenant on the starter tier, ``incomplete`` until paid, with its first user
        and a customer token; a mail asks to verify the address. A taken email is a
        ``Conflict`` whose words do not say the account exists; its owner gets a mail, and
        it counts against the client address, which after a few must wait like a failed
        login (so nobody can test many addresses quickly)."""
        address = normalise_email(email)
        check_password(password)
        zone = DEFAULT_TIMEZONE if timezone is None else timezone
        parse_timezone(zone)
        probing_key = (
            throttle_key(Throttled.SIGNUP_ADDRESS, client_address) if client_address else None
        )
        if probing_key is not None:
            await self._refuse_while_throttled([probing_key])
        now = self.clock.now()
        tenant = Tenant(
            id=TenantId(f"t_{uuid.uuid4().hex}"),
            tier=self.catalog.tier(STARTER).id,
            status=SubscriptionStatus.INCOMPLETE,
            timezone=zone,
            billing_anchor_day=DEFAULT_ANCHOR_DAY,
            created_at=now,
        )
        user = User(
            id=UserId(f"u_{uuid.uuid4().hex}"),
            email=address,
            password_hash=await self.hasher.hash(password),
            tenant_id=tenant.id,
            created_at=now,
        )
        try:
            await self.tenants.add(tenant, user)
        except Conflict:
            if probing_key is not None:
                await self.count_failure(probing_key, now)
            await self._tell_owner_of_signup_attempt(address)
            raise Conflict(
                "this email cannot be used to sign up; if it is yours, log in or reset the password"
            ) from None
        actor = Actor(AuditSource.API, user.id)
        await self.audit.record(AuditEntry(now, AuditAction.SIGNED_UP, actor, tenant.id))
        await self.configs.write(tenant.id)
        token = await self._issue(TokenKind.CUSTOMER, user.id, actor, tenant.id)
        await self.send_verification(user)
        return SignedUp(user, tenant, token)

    async def _tell_owner_of_signup_attempt(self, address: str) -> None:
        owner = await self.tenants.user_by_email(address)
        if owner is not None:
            mail = AccountMail(
                AccountMailKind.SIGNUP_ATTEMPT,
                owner.email,
                owner.tenant_id,
                self.public_url + LOGIN_PATH,
            )
            async with self.mailing(mail):
                pass  # the mail is all there is to write

    async def send_verification(self, user: User, email: str | None = None) -> None:
        """Mail a single-use code (valid 24 h) that proves ``email`` (by default the
        user's own) belongs to the user; the code and its mail are written together."""
        address = user.email if email is None else email
        code, token = self.one_time(
            OneTimePurpose.VERIFY_EMAIL, user.id, address, VERIFY_EMAIL_VALID_FOR
        )
        mail = AccountMail(
            AccountMailKind.VERIFY_EMAIL,
            address,
            user.tenant_id,
            self.public_url + VERIFY_EMAIL_PATH,
            code,
        )
        async with self.mailing(mail) as tx:
            await tx.accounts.add_one_time_token(token)

    def one_time(
        self, purpose: OneTimePurpose, user_id: UserId, email: str, valid_for: timedelta
    ) -> tuple[Secret, OneTimeToken]:
        """A new single-use code and the record that stores only its hash."""
        code = new_token(ONE_TIME_TOKEN_PREFIX)
        now = self.clock.now()
        token = OneTimeToken(
            hash_token(code.reveal()), purpose, user_id, email, now, now + valid_for
        )
        return code, token

    @asynccontextmanager
    async def mailing(self, mail: AccountMail) -> AsyncIterator[Transaction]:
        """A unit of work for the account change that causes ``mail``: the change made in
        the block and the mail commit together or not at all. The mail's link is encrypted
        before the block opens; when the key store cannot do it now the change is still
        made, without the mail (``AccountMailer.prepare`` warns)."""
        facts = await self.mailer.prepare(mail)
        async with self.unit_of_work.begin() as tx:
            yield tx
            if facts is not None:
                await tx.outbox.enqueue(facts, facts.channels(), self.clock.now())

    async def login(
        self, email: str, password: Secret, client_address: str | None = None
    ) -> tuple[User, Secret]:
        """A fresh customer token for the right email and password; the same refusal for a
        wrong password and an unknown email (which still pays for one hash). While the
        account or the client address must wait after repeated failures, the login is
        ``TooManyAttempts`` before any hashing, whatever the password."""
        refusal = Unauthorized("email or password is wrong")
        try:
            address = normalise_email(email)
        except ValidationError:
            raise refusal from None
        account_key = throttle_key(Throttled.ACCOUNT, address)
        keys = [account_key]
        if client_address:
            keys.append(throttle_key(Throttled.CLIENT_ADDRESS, client_address))
        await self._refuse_while_throttled(keys)
        user = await self.tenants.user_by_email(address)
        if user is None:
            await self.hasher.hash(password)
        elif await self.hasher.verify(user.password_hash, password):
            await self.attempts.clear(account_key)
            actor = Actor(AuditSource.API, user.id)
            await self.audit.record(
                AuditEntry(self.clock.now(), AuditAction.LOGIN, actor, user.tenant_id)
            )
            return user, await self._issue(TokenKind.CUSTOMER, user.id, actor, user.tenant_id)
        await self._login_failed(address, user)
        now = self.clock.now()
        for key in keys:
            await self.count_failure(key, now)
        raise refusal

    async def _login_failed(self, email: str, user: User | None) -> None:
        """A failed login names the email tried (the password never); the tenant when the
        email is a user's."""
        actor = Actor(AuditSource.API, user.id if user is not None else "anonymous")
        await self.audit.record(
            AuditEntry(
                self.clock.now(),
                AuditAction.LOGIN_FAILED,
                actor,
                user.tenant_id if user is not None else None,
                f"email {email}",
            )
        )

    async def count_key_test(self, tenant_id: TenantId) -> None:
        """Each provider-key test of a tenant counts; beyond ``KEY_TESTS_PER_WINDOW`` in one
        window it is ``TooManyAttempts`` until the next window (a probe costs a provider
        call, and an unlimited one lets a tenant use us to test stolen keys)."""
        now = self.clock.now()
        label, next_window = key_test_window(now)
        counted = await self.count_failure(f"key-test:{tenant_id}:{label}", now)
        if counted.failures > KEY_TESTS_PER_WINDOW:
            raise TooManyAttempts(
                "too many key tests; wait a minute before testing again",
                retry_after_s=retry_after_seconds(next_window - now),
            )

    async def confirm_password(self, user: User, password: Secret, field: str) -> None:
        """A signed-in customer re-enters its password (to change it, change the email or
        delete the account): wrong is a ``ValidationError`` on ``field``, and failures
        count towards the account's login throttling, so a stolen session cannot guess."""
        account_key = throttle_key(Throttled.ACCOUNT, user.email)
        await self._refuse_while_throttled([account_key])
        if not await self.hasher.verify(user.password_hash, password):
            await self.count_failure(account_key, self.clock.now())
            raise ValidationError("the password is wrong", field=field)

    async def count_failure(self, key: str, now: datetime) -> Attempts:
        """Count a failure for ``key``; a key's first failure also sweeps the counts nobody
        added to since ``FORGET_AFTER`` (new keys are what make the log grow)."""
        counted = await self.attempts.record_failure(key, now)
        if counted.failures == 1:
            await self.attempts.forget_before(forget_before(now))
        return counted

    async def _refuse_while_throttled(self, keys: list[str]) -> None:
        now = self.clock.now()
        waits = [wait_before_next(await self.attempts.get(key), now) for key in keys]
        longest = max(waits)
        if longest > timedelta(0):
            raise TooManyAttempts(
                "too many failed attempts; wait before trying again",
                retry_after_s=retry_after_seconds(longest),
            )

    async def authenticate(self, token: str) -> Principal:
        """The principal a presented token stands for; unknown or revoked tokens are
        ``Unauthorized``."""
        if not token:
            raise Unauthorized("a bearer token or session is required")
        return await self._principal(hash_token(token))

    async def _principal(self, digest: str) -> Principal:
        stored = await self.auth_tokens.find(digest)
        if stored is None or stored.revoked_at is not None:
            raise Unauthorized("the token is unknown or revoked")
        kind = TokenKind(stored.kind)
        now = self.clock.now()
        if kind is TokenKind.CUSTOMER and session_expired(
            stored.created_at, stored.last_used_at, now
        ):
            raise Unauthorized("the session has expired; log in again")
        if needs_touch(stored.last_used_at, now):
            await self.auth_tokens.touch(digest, now)
        if kind is TokenKind.SERVICE:
            return Principal(kind, stored.subject, stored.token_hash)
        user = await self.tenants.user(UserId(stored.subject))
        if user is None:
            raise Unauthorized("the token's user no longer exists")
        return Principal(kind, stored.subject, stored.token_hash, user)

    async def customer(self, token: str) -> Principal:
        """Customer endpoints refuse service tokens."""
        principal = await self.authenticate(token)
        if principal.kind is not TokenKind.CUSTOMER:
            raise Forbidden("a service token cannot act as a customer")
        return principal

    async def service(self, token: str) -> Principal:
        """Gateway endpoints refuse customer tokens. A service token, checked on every
        gateway request, is trusted for ``service_trust_s`` seconds after a successful check
        without another lookup, so one removed from the database stops working within that
        time; a failed check is never remembered. Requests arriving while the token is being
        checked share that check (every gateway request at once when the trust ends)."""
        if not token:
            raise Unauthorized("a bearer token or session is required")
        digest = hash_token(token)
        now = self.clock.now()
        trusted = self._trusted_services.get(digest)
        if trusted is not None and now < trusted[0]:
            return trusted[1]
        principal = await self._service_checks.run(digest, lambda: self._principal(digest))
        if principal.kind is not TokenKind.SERVICE:
            raise Forbidden("this endpoint takes a service token")
        self._trust(digest, principal, now)
        return principal

    def _trust(self, digest: str, principal: Principal, now: datetime) -> None:
        """Remember a verified service token until ``now + service_trust_s`` (service tokens
        are few; the memory is bounded all the same)."""
        until = now + timedelta(seconds=self.service_trust_s)
        remember(self._trusted_services, digest, (until, principal), MAX_TRUSTED_SERVICE_TOKENS)

    async def logout(self, principal: Principal) -> None:
        now = self.clock.now()
        if await self.auth_tokens.revoke(principal.token_hash, now):
            await self.audit.record(
                AuditEntry(
                    now,
                    AuditAction.TOKEN_REVOKED,
                    Actor(AuditSource.API, principal.subject),
                    principal.customer_tenant(),
                    f"{principal.kind.value} token {token_id(principal.token_hash)}",
                )
            )

    async def logout_everywhere(self, principal: Principal) -> int:
        """Revoke every session of the customer, the asking one included."""
        return await self.auth_tokens.revoke_subject(principal.subject, self.clock.now())

    async def sessions(self, principal: Principal) -> list[SessionView]:
        """The customer's sessions that are neither revoked nor expired, oldest first."""
        now = self.clock.now()
        stored = await self.auth_tokens.live_for_subject(
            TokenKind.CUSTOMER.value, principal.subject
        )
        return [
            SessionView(
                id=public_id(token.token_hash),
                created_at=token.created_at,
                last_used_at=token.last_used_at,
                expires_at=session_expires_at(token.created_at, token.last_used_at),
                current=token.token_hash == principal.token_hash,
            )
            for token in stored
            if not session_expired(token.created_at, token.last_used_at, now)
        ]

    async def revoke_session(self, principal: Principal, session_id: str) -> None:
        """End one of the customer's own sessions; any other id is ``NotFound``."""
        stored = await self.auth_tokens.live_for_subject(
            TokenKind.CUSTOMER.value, principal.subject
        )
        match = [t for t in stored if session_id and public_id(t.token_hash) == session_id]
        if not match:
            raise NotFound("no such session")
        await self.auth_tokens.revoke(match[0].token_hash, self.clock.now())

    async def create_service_token(self, name: str, actor: Actor = OPERATOR) -> Secret:
        return await self._issue(TokenKind.SERVICE, check_service_name(name), actor)

    async def service_tokens(self) -> list[ServiceTokenView]:
        """Every live service token by id and name, oldest first."""
        stored = await self.auth_tokens.live_for_subject(TokenKind.SERVICE.value)
        return [
            ServiceTokenView(public_id(t.token_hash), t.subject, t.created_at, t.last_used_at)
            for t in stored
        ]

    async def revoke_service_tokens(self, id_or_name: str) -> int:
        """Revoke the live service token with this id, or every one with this name; how
        many. Gateways holding one stop being trusted within ``service_trust_s``."""
        stored = await self.auth_tokens.live_for_subject(TokenKind.SERVICE.value)
        chosen = [t for t in stored if id_or_name in (public_id(t.token_hash), t.subject)]
        now = self.clock.now()
        for token in chosen:
            await self.auth_tokens.revoke(token.token_hash, now)
        return len(chosen)

    async def _issue(
        self,
        kind: TokenKind,
        subject: str,
        actor: Actor,
        tenant_id: TenantId | None = None,
    ) -> Secret:
        """A new token, stored as its hash; the trail names it by a prefix of that hash
        and by the ``actor`` who asked for it."""
        token = new_token(TOKEN_PREFIXES[kind])
        digest = hash_token(token.reveal())
        now = self.clock.now()
        await self.auth_tokens.add(
            AuthToken(token_hash=digest, kind=kind.value, subject=subject, created_at=now)
        )
        await self.audit.record(
            AuditEntry(
                now,
                AuditAction.TOKEN_CREATED,
                actor,
                tenant_id,
                f"{kind.value} token {token_id(digest)} for {subject}",
            )
        )
        return token
