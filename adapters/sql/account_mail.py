"""``SqlAccountMailOutbox``: account mail (password reset, address verification, signup
attempt, password changed) written as rows of the outbox the notifications deliverer sends
from (product spec §10): a stable id, the rendered plain-text mail, when it was queued, and
the delivery bookkeeping (attempts, next attempt, claim, outcome) the deliverer fills in.

Only queueing lives here; sending is the deliverer's. The row holds the single-use code in
the body until delivery, as the mail itself does; the code's hash is what authenticates.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import attrs
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql import tables as t
from adapters.sql.unavailable import reports_unavailable
from domain.ports import AccountMail, AccountMailKind

PRODUCT = "tierkeeper"

SUBJECTS = {
    AccountMailKind.PASSWORD_RESET: f"Reset your {PRODUCT} password",
    AccountMailKind.VERIFY_EMAIL: f"Confirm your email address for {PRODUCT}",
    AccountMailKind.SIGNUP_ATTEMPT: f"Someone tried to sign up to {PRODUCT} with your address",
    AccountMailKind.PASSWORD_CHANGED: f"Your {PRODUCT} password was changed",
}

INTROS = {
    AccountMailKind.PASSWORD_RESET: (
        "Someone asked to reset the password of your account. If it was you, open the link "
        "below (or enter the code on that page); it works once, for 30 minutes. If it was "
        "not you, ignore this mail: your password stays as it is."
    ),
    AccountMailKind.VERIFY_EMAIL: (
        "Please confirm that this address is yours: open the link below (or enter the code on "
        "that page); it works once, for 24 hours."
    ),
    AccountMailKind.SIGNUP_ATTEMPT: (
        "Someone tried to create an account with this address, which already has one. If it "
        "was you, log in (or reset your password) at the link below. If not, nothing changed."
    ),
    AccountMailKind.PASSWORD_CHANGED: (
        "The password of your account was just changed and your other sessions were ended. "
        "If this was not you, reset your password now at the link below."
    ),
}


def render_text(mail: AccountMail) -> str:
    """The mail's plain text: what happened, the one-click link, and the code to paste when
    the page cannot read it from the link (JavaScript off)."""
    lines = [INTROS[mail.kind], "", mail.link_with_code().reveal()]
    if mail.code is not None:
        lines += ["", f"Your code: {mail.code.reveal()}"]
    lines += ["", f"— {PRODUCT}"]
    return "\n".join(lines)


@reports_unavailable
@attrs.frozen
class SqlAccountMailOutbox:
    engine: AsyncEngine
    public_url: str

    async def send(self, mail: AccountMail) -> None:
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            await conn.execute(
                t.account_mail_outbox.insert().values(
                    id=f"am_{uuid.uuid4().hex}",
                    tenant_id=mail.tenant_id,
                    kind=mail.kind.value,
                    recipient=mail.to,
                    subject=SUBJECTS[mail.kind],
                    body_text=render_text(mail),
                    created_at=now,
                    next_attempt_at=now,
                    attempts=0,
                )
            )
