"""``NotificationsAccountMailer``: the accounts' ``AccountMailer`` port over the
notifications outbox, so account mail is delivered by the one sending path (the
``Deliverer``: SMTP or ``.eml`` files, retried with backoff) like every other mail. It
prepares the notification; the accounts use cases write it in the unit of work that makes
the change (``Accounts.mailing``).

Each account mail kind has its notification kind; the mail goes to ``mail.to`` (for an
email change that is the NEW address, which the code must prove), and its link, the code in
its fragment, is stored encrypted until the deliverer puts it into the mail.
"""

from __future__ import annotations

import logging

import attrs

from domain.accounts import AccountMail, AccountMailKind
from domain.errors import KeyStoreUnavailable
from domain.notifications import NotificationFacts, NotificationKind
from domain.ports import TenantRepository
from domain.use_cases.notifications import Notifications

log = logging.getLogger(__name__)

KINDS = {
    AccountMailKind.PASSWORD_RESET: NotificationKind.PASSWORD_RESET,
    AccountMailKind.VERIFY_EMAIL: NotificationKind.EMAIL_VERIFICATION,
    AccountMailKind.SIGNUP_ATTEMPT: NotificationKind.SIGNUP_ATTEMPT,
    AccountMailKind.PASSWORD_CHANGED: NotificationKind.PASSWORD_CHANGED,
}


@attrs.frozen
class NotificationsAccountMailer:
    notifications: Notifications
    tenants: TenantRepository

    async def prepare(self, mail: AccountMail) -> NotificationFacts | None:
        """The notification carrying ``mail``, addressed to ``mail.to`` and kept with the
        user it is about (found by the tenant and address; an email change's new address
        belongs to no user yet, so that mail is kept under the tenant only).

        When the key store cannot encrypt the link now, there is no mail and a warning says
        so (never the link): the caller's change still goes ahead (a signup must not
        half-fail), a reset must answer as it does for an unknown address, and the customer
        can ask again."""
        user = await self.tenants.user_by_email(mail.to)
        user_id = user.id if user is not None and user.tenant_id == mail.tenant_id else None
        try:
            return await self.notifications.account_mail_facts(
                mail.tenant_id, user_id, KINDS[mail.kind], mail.link_with_code(), to=mail.to
            )
        except KeyStoreUnavailable:
            log.warning(
                "%s mail for tenant %s not queued: the key store is unavailable",
                mail.kind.value, mail.tenant_id,
            )  # fmt: skip
            return None
