"""The audit trail: who changed a key, a tier, a status, a session or a token, from where.

Entries are appended and never changed. An entry names the action, the actor and where the
actor came from (the API, the payment provider's webhook, the gateway, the operator's
command line), the tenant, and a short detail built only from non-secret fields: a store
name and key version, a tier id, a status, a token's short id (a prefix of its hash). A key,
a password or a token never reaches an entry: the builders below take no such value.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime

import attrs

from domain.ids import TenantId
from domain.tenants import Tenant

TOKEN_ID_LENGTH = 12
"""How many hex digits of a token's SHA-256 name it in the trail: enough to tell tokens
apart, useless for finding the token."""


class AuditAction(enum.Enum):
    KEY_SAVED = "key.saved"
    KEY_REPLACED = "key.replaced"
    KEY_SETTINGS_CHANGED = "key.settings_changed"
    KEY_REMOVED = "key.removed"
    KEY_ROTATED = "key.rotated"
    KEY_MOVED = "key.moved"
    KEY_INVALIDATED = "key.invalidated"
    TIER_CHANGED = "tenant.tier_changed"
    STATUS_CHANGED = "tenant.status_changed"
    SIGNED_UP = "account.signed_up"
    LOGIN = "account.login"
    LOGIN_FAILED = "account.login_failed"
    TOKEN_CREATED = "token.created"
    TOKEN_REVOKED = "token.revoked"


class AuditSource(enum.Enum):
    """Where the actor came from."""

    API = "api"
    WEBHOOK = "webhook"
    GATEWAY = "gateway"
    CLI = "cli"


@attrs.frozen
class Actor:
    """Who acted: a user id, a service name, ``stripe``, or the operator's login name."""

    source: AuditSource
    name: str


OPERATOR = Actor(AuditSource.CLI, "operator")
PAYMENT_PROVIDER = Actor(AuditSource.WEBHOOK, "stripe")
GATEWAY = Actor(AuditSource.GATEWAY, "gateway")


@attrs.frozen
class AuditEntry:
    at: datetime
    action: AuditAction
    actor: Actor
    tenant_id: TenantId | None
    detail: str = ""


def tenant_change_entries(
    before: Tenant, after: Tenant, actor: Actor, at: datetime
) -> list[AuditEntry]:
    """One entry for a changed tier and one for a changed subscription status, each naming
    the old and the new value; nothing when neither changed."""
    entries = []
    if after.tier != before.tier:
        entries.append(
            AuditEntry(
                at, AuditAction.TIER_CHANGED, actor, after.id, f"tier {before.tier} -> {after.tier}"
            )
        )
    if after.status is not before.status:
        entries.append(
            AuditEntry(
                at,
                AuditAction.STATUS_CHANGED,
                actor,
                after.id,
                f"status {before.status.value} -> {after.status.value}",
            )
        )
    return entries


def token_id(token_hash: str) -> str:
    """The short name of a stored token in the trail."""
    return token_hash[:TOKEN_ID_LENGTH]


class NoAuditLog:
    """Records nothing: for use cases built where no trail is kept (benchmarks, and unit
    tests of rules that are not the audit's). The composition root always passes a real
    one."""

    async def record(self, entry: AuditEntry) -> None:
        return None

    async def entries(self, *filters: object, **named_filters: object) -> Sequence[AuditEntry]:
        """Nothing, whatever is asked: no trail is kept."""
        return ()
