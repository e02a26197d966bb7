"""A user's account after signup: the single-use tokens mailed to them (password reset,
email verification) and the mails about the account itself."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from domain.ids import TenantId, UserId
from domain.secrets import Secret


class OneTimePurpose(enum.Enum):
    PASSWORD_RESET = "password_reset"
    VERIFY_EMAIL = "verify_email"


@attrs.frozen
class OneTimeToken:
    """A mailed single-use token as stored: only its hash. ``email`` is the address it was
    sent to (for an email change, the new address)."""

    token_hash: str
    purpose: OneTimePurpose
    user_id: UserId
    email: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class AccountMailKind(enum.Enum):
    PASSWORD_RESET = "password_reset"
    VERIFY_EMAIL = "verify_email"
    SIGNUP_ATTEMPT = "signup_attempt"
    PASSWORD_CHANGED = "password_changed"


@attrs.frozen
class AccountMail:
    """A mail about the account itself. ``code`` is the single-use token (a secret, shown in
    the mail only); ``link`` the page to enter it on."""

    kind: AccountMailKind
    to: str
    tenant_id: TenantId
    link: str
    code: Secret | None = None

    def link_with_code(self) -> Secret:
        """The one-click link: the code rides in the fragment (``#code=…``), which a browser
        never sends to a server, so it reaches no log; the page fills its form from it."""
        if self.code is None:
            return Secret(self.link)
        return Secret(f"{self.link}#code={self.code.reveal()}")
