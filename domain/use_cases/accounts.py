"""Sign customers up, log them in and out, and issue the bearer tokens services use.

A signup creates the tenant and its first user together: the tenant starts on the starter
tier with status ``incomplete`` (the subscription becomes ``active`` only when its checkout
completes, so an unpaid tenant is never admitted) and billing anchor day 1 (billing moves it
to the day the subscription starts). Tokens are random, shown once, and stored only as their
SHA-256 hash; a token is either a customer's (subject: user id) or a service's (subject: the
service name), never both.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

import attrs

from domain.audit import OPERATOR, Actor, AuditAction, AuditEntry, AuditSource, NoAuditLog, token_id
from domain.bounded_memory import remember
from domain.catalog import STARTER, Catalog
from domain.errors import Forbidden, Unauthorized, ValidationError
from domain.ids import TenantId, UserId
from domain.ports import (
    AuditLog,
    AuthToken,
    AuthTokenRepository,
    Clock,
    PasswordHasher,
    TenantRepository,
)
from domain.secrets import Secret
from domain.tenants import SubscriptionStatus, Tenant, User
from domain.use_cases.configs import Configs
from domain.windows import parse_timezone

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
MAX_EMAIL_LENGTH = 254
MAX_SERVICE_NAME_LENGTH = 64
TOKEN_BYTES = 32
DEFAULT_TIMEZONE = "UTC"
DEFAULT_ANCHOR_DAY = 1
SERVICE_TOKEN_TRUST_SECONDS = 5.0
MAX_TRUSTED_SERVICE_TOKENS = 1024


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

    @property
    def tenant_id(self) -> TenantId | None:
        return self.user.tenant_id if self.user is not None else None


@attrs.frozen
class SignedUp:
    user: User
    tenant: Tenant
    token: Secret


def hash_token(token: str) -> str:
    """Tokens carry 256 random bits, so one fast hash is enough to make the stored value
    useless to a reader of the database."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token(kind: TokenKind) -> Secret:
    return Secret(TOKEN_PREFIXES[kind] + secrets.token_urlsafe(TOKEN_BYTES))


def normalise_email(email: str) -> str:
    """Trimmed and lower-cased; one ``@`` with a local part and a dotted domain, no spaces."""
    cleaned = email.strip().lower()
    local, at, domain = cleaned.rpartition("@")
    if (
        not at
        or not local
        or "." not in domain.strip(".")
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
    cleaned = name.strip()
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    if not cleaned or len(cleaned) > MAX_SERVICE_NAME_LENGTH or not set(cleaned) <= allowed:
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
    service_trust_s: float = SERVICE_TOKEN_TRUST_SECONDS
    _trusted_services: dict[str, tuple[datetime, Principal]] = attrs.field(
        factory=dict, init=False, repr=False, eq=False
    )
    audit: AuditLog = attrs.field(factory=NoAuditLog, kw_only=True)

    async def signup(self, email: str, password: Secret, timezone: str | None = None) -> SignedUp:
        """A new tenant on the starter tier, ``incomplete`` until paid, with its first user
        and a customer token; a taken email is a ``Conflict`` raised by the repository."""
        address = normalise_email(email)
        check_password(password)
        zone = DEFAULT_TIMEZONE if timezone is None else timezone
        parse_timezone(zone)
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
        await self.tenants.add(tenant, user)
        actor = Actor(AuditSource.API, user.id)
        await self.audit.record(AuditEntry(now, AuditAction.SIGNED_UP, actor, tenant.id))
        await self.configs.write(tenant.id)
        token = await self._issue(TokenKind.CUSTOMER, user.id, actor, tenant.id)
        return SignedUp(user, tenant, token)

    async def login(self, email: str, password: Secret) -> tuple[User, Secret]:
        """A fresh customer token for the right email and password; the same refusal for a
        wrong password and an unknown email (which still pays for one hash)."""
        refusal = Unauthorized("email or password is wrong")
        try:
            address = normalise_email(email)
        except ValidationError:
            raise refusal from None
        user = await self.tenants.user_by_email(address)
        if user is None:
            await self.hasher.hash(password)
            await self._login_failed(address, None)
            raise refusal
        if not await self.hasher.verify(user.password_hash, password):
            await self._login_failed(address, user)
            raise refusal
        actor = Actor(AuditSource.API, user.id)
        await self.audit.record(
            AuditEntry(self.clock.now(), AuditAction.LOGIN, actor, user.tenant_id)
        )
        return user, await self._issue(TokenKind.CUSTOMER, user.id, actor, user.tenant_id)

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
        time; a failed check is never remembered."""
        if not token:
            raise Unauthorized("a bearer token or session is required")
        digest = hash_token(token)
        now = self.clock.now()
        trusted = self._trusted_services.get(digest)
        if trusted is not None and now < trusted[0]:
            return trusted[1]
        principal = await self._principal(digest)
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
                    principal.tenant_id,
                    f"{principal.kind.value} token {token_id(principal.token_hash)}",
                )
            )

    async def create_service_token(self, name: str, actor: Actor = OPERATOR) -> Secret:
        return await self._issue(TokenKind.SERVICE, check_service_name(name), actor)

    async def _issue(
        self, kind: TokenKind, subject: str, actor: Actor, tenant_id: TenantId | None = None
    ) -> Secret:
        """A new token, stored as its hash; the trail names it by a prefix of that hash."""
        token = new_token(kind)
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
