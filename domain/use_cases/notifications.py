"""Notifications that reach the customer: written to the outbox, shown in-app, delivered by
mail and to the customer's signed webhook.

``Notifications`` is what other use cases and the pages call: it enqueues (tenant events,
account mail), lists and marks read, builds the banners, and keeps the channel settings
(the webhook secret is shown once, stored encrypted). ``Deliverer`` sends what is due.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

import attrs

from domain.catalog import BYOK, Catalog
from domain.errors import NotFound
from domain.ids import TenantId, UserId
from domain.notification_delivery import (
    absolute_link,
    new_webhook_secret,
    render_mail,
    webhook_headers,
    webhook_payload,
)
from domain.notifications import (
    ACCOUNT_MAIL,
    RECIPIENT,
    Channel,
    ClaimedDelivery,
    DeliveryFailed,
    DeliveryOutcome,
    DeliveryStatus,
    Message,
    NotificationFacts,
    NotificationId,
    NotificationKind,
    NotificationSettings,
    StoredNotification,
    check_webhook_url,
    compose,
    is_activation,
    next_attempt_at,
    tenant_change_facts,
)
from domain.ports import (
    Clock,
    CredentialRepository,
    KeyStore,
    MailSender,
    NotificationSettingsRepository,
    Outbox,
    TenantRepository,
    WebhookPoster,
)
from domain.routing import decide_route
from domain.secrets import Secret
from domain.tenants import Tenant
from domain.welcome import welcome_message

log = logging.getLogger(__name__)

LIST_LIMIT = 50
CLAIM_LEASE = timedelta(minutes=5)
SETTINGS_PAGE = "/settings/notifications"
BANNER_KINDS = frozenset(
    {
        NotificationKind.WELCOME,
        NotificationKind.MESSAGES,
        NotificationKind.TOKENS,
        NotificationKind.KEY_INVALIDATED,
        NotificationKind.PAYMENT_FAILED,
        NotificationKind.CANCELLATION_SCHEDULED,
    }
)


@attrs.frozen
class Listed:
    """A notification as the API and the pages show it."""

    note: StoredNotification
    message: Message


@attrs.frozen
class SettingsView:
    """The settings as shown; ``webhook_secret`` only right after it was made."""

    email_enabled: bool
    webhook_url: str | None
    webhook_secret: Secret | None = None


@attrs.frozen
class Notifications:
    catalog: Catalog
    outbox: Outbox
    settings: NotificationSettingsRepository
    tenants: TenantRepository
    credentials: CredentialRepository
    key_store: KeyStore
    clock: Clock

    # -- tenant events: billing and the operator write these facts in their unit of work -----

    async def tenant_change_facts(self, before: Tenant, after: Tenant) -> list[NotificationFacts]:
        """The notifications a change of tier or status causes, to be written with the change
        (in its unit of work); the welcome's text is worded from the catalog now."""
        text = await self.welcome_text(after) if is_activation(before, after) else None
        return tenant_change_facts(before, after, self.clock.now(), text)

    async def welcome_text(self, tenant: Tenant) -> str:
        byok = self.catalog.tier(tenant.tier).id == BYOK
        credential = await self.credentials.get(tenant.id) if byok else None
        return welcome_message(self.catalog, tenant, decide_route(self.catalog, tenant, credential))

    # -- account mail (accounts use case) -------------------------------------------------

    async def account_mail_facts(
        self,
        tenant_id: TenantId,
        user_id: UserId | None,
        kind: NotificationKind,
        link: Secret,
        to: str | None = None,
    ) -> NotificationFacts:
        """Account mail (password reset, address verification, signup attempt, password
        changed) to ``to``, or when None to the user's address at delivery, for the caller
        to write with the change that causes it. The ``link`` (absolute URL, for a reset or
        verification holding the one-time code) is encrypted now with the key store and goes
        only into the mail: never in-app, never to the webhook, never in a log."""
        if kind not in ACCOUNT_MAIL:
            raise ValueError(f"{kind.value} is not account mail")
        return NotificationFacts(
            tenant_id,
            kind,
            detail={} if to is None else {RECIPIENT: to},
            user_id=user_id,
            secret_link=await self.key_store.encrypt(link),
        )

    # -- in-app ----------------------------------------------------------------------------

    async def listed(self, tenant_id: TenantId) -> list[Listed]:
        """The tenant's notifications, newest first, worded from the catalog as it is."""
        tenant = await self._tenant(tenant_id)
        notes = await self.outbox.for_tenant(tenant_id, LIST_LIMIT)
        return [Listed(n, compose(self.catalog, tenant, n)) for n in notes if n.in_app()]

    async def mark_read(self, tenant_id: TenantId, notification_id: str) -> None:
        if not await self.outbox.mark_read(
            tenant_id, NotificationId(notification_id), self.clock.now()
        ):
            raise NotFound("no such notification")

    async def banners(self, tenant_id: TenantId) -> list[Listed]:
        """The notifications still current: unread, of a kind shown as a banner, and (for a
        threshold) in a window that has not ended. The welcome is shown once: on the first
        page after activation, and marked read then."""
        now = self.clock.now()
        shown = []
        for item in await self.listed(tenant_id):
            if item.note.read_at is not None or item.note.facts.kind not in BANNER_KINDS:
                continue
            until = item.message.current_until
            if until is not None and until <= now:
                continue
            shown.append(item)
            if item.note.facts.kind is NotificationKind.WELCOME:
                await self.outbox.mark_read(tenant_id, item.note.id, now)
        return shown

    async def _tenant(self, tenant_id: TenantId) -> Tenant:
        tenant = await self.tenants.get(tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id!r} is unknown")
        return tenant

    # -- channel settings ------------------------------------------------------------------

    async def get_settings(self, tenant_id: TenantId) -> SettingsView:
        stored = await self.settings.get(tenant_id)
        return SettingsView(stored.email_enabled, stored.webhook_url)

    async def put_settings(
        self,
        tenant_id: TenantId,
        email_enabled: bool,
        webhook_url: str | None,
        rotate_secret: bool = False,
    ) -> SettingsView:
        """Mail on or off and the webhook URL (None or empty removes it). A signing secret
        is made when a URL is first set or on ``rotate_secret`` (32 random bytes: the
        ``secrets`` module's default), stored encrypted and returned this once; removing the
        URL forgets it."""
        await self._tenant(tenant_id)
        stored = await self.settings.get(tenant_id)
        url = check_webhook_url(webhook_url) if webhook_url and webhook_url.strip() else None
        secret: Secret | None = None
        ciphertext = stored.webhook_secret if url is not None else None
        if url is not None and (ciphertext is None or rotate_secret):
            secret = new_webhook_secret(secrets.token_bytes())
            ciphertext = await self.key_store.encrypt(secret)
        await self.settings.put(NotificationSettings(tenant_id, email_enabled, url, ciphertext))
        return SettingsView(email_enabled, url, secret)


@attrs.frozen
class DeliveryRun:
    """What one pass of the deliverer did, counted by outcome."""

    sent: int = 0
    skipped: int = 0
    retrying: int = 0
    failed: int = 0

    def total(self) -> int:
        return self.sent + self.skipped + self.retrying + self.failed


MAIL_OFF = "mail notices are off in the tenant's notification settings"
NO_WEBHOOK = "the tenant has set no webhook URL"


@attrs.frozen
class Deliverer:
    """Sends due deliveries: claims them (so other deliverers skip them), sends each on its
    channel, and records sent, skipped, a retry with backoff, or failure after 24 h.

    The tenant's channel settings are applied here, at delivery, not when the notification
    is written: every notification gets a delivery row per channel of its kind
    (``channels_for``), and a channel the tenant turned off or never set is recorded as
    ``skipped`` with the reason. So the writers (the ledger's admitting statement included)
    never read the settings, the settings as they are when the notice leaves decide, and
    the operator sees per channel what happened (``tenants show``)."""

    catalog: Catalog
    outbox: Outbox
    settings: NotificationSettingsRepository
    tenants: TenantRepository
    key_store: KeyStore
    mail: MailSender
    webhooks: WebhookPoster
    clock: Clock
    public_url: str
    mail_from: str

    async def deliver_due(self, limit: int = 50) -> DeliveryRun:
        claims = await self.outbox.claim(self.clock.now(), CLAIM_LEASE, limit)
        counts = dict.fromkeys(DeliveryStatus, 0)
        for claim in claims:
            outcome = await self._attempt(claim)
            if outcome.error and outcome.status is not DeliveryStatus.SKIPPED:
                log.warning(
                    "notification %s (%s) %s: attempt %d failed: %s",
                    claim.notification.id, claim.notification.api_kind(), claim.channel.value,
                    claim.attempts, outcome.error,
                )  # fmt: skip
            await self.outbox.finish(claim, outcome, self.clock.now())
            counts[outcome.status] += 1
        return DeliveryRun(
            sent=counts[DeliveryStatus.SENT],
            skipped=counts[DeliveryStatus.SKIPPED],
            retrying=counts[DeliveryStatus.PENDING],
            failed=counts[DeliveryStatus.FAILED],
        )

    async def deliver_all(self, limit: int = 50) -> DeliveryRun:
        """Passes until nothing due is left (the batch command)."""
        total = DeliveryRun()
        while True:
            run = await self.deliver_due(limit)
            total = DeliveryRun(
                total.sent + run.sent,
                total.skipped + run.skipped,
                total.retrying + run.retrying,
                total.failed + run.failed,
            )
            if run.total() < limit:
                return total

    async def _attempt(self, claim: ClaimedDelivery) -> DeliveryOutcome:
        note = claim.notification
        tenant = await self.tenants.get(note.facts.tenant_id)
        if tenant is None:
            return DeliveryOutcome(DeliveryStatus.SKIPPED, error="the tenant is gone")
        settings = await self.settings.get(tenant.id)
        message = compose(self.catalog, tenant, note)
        try:
            if claim.channel is Channel.EMAIL:
                return await self._mail(claim, settings, message)
            return await self._webhook(claim, settings, message)
        except DeliveryFailed as failure:
            retry_at = next_attempt_at(note.created_at, self.clock.now(), claim.attempts)
            status = DeliveryStatus.FAILED if retry_at is None else DeliveryStatus.PENDING
            return DeliveryOutcome(status, retry_at, failure.reason)

    async def _link(self, note: StoredNotification, message: Message) -> str:
        if note.facts.secret_link is not None:
            return (await self.key_store.decrypt(note.facts.secret_link)).reveal()
        return absolute_link(self.public_url, message.link)

    async def _mail(
        self, claim: ClaimedDelivery, settings: NotificationSettings, message: Message
    ) -> DeliveryOutcome:
        note = claim.notification
        if note.in_app() and not settings.email_enabled:
            return DeliveryOutcome(DeliveryStatus.SKIPPED, error=MAIL_OFF)
        to = note.facts.mail_to(claim.email_to)
        if not to:
            return DeliveryOutcome(DeliveryStatus.SKIPPED, error="no address to mail")
        link = await self._link(note, message)
        settings_link = absolute_link(self.public_url, SETTINGS_PAGE) if note.in_app() else None
        await self.mail.send(render_mail(message, note.id, self.mail_from, to, link, settings_link))
        return DeliveryOutcome(DeliveryStatus.SENT)

    async def _webhook(
        self, claim: ClaimedDelivery, settings: NotificationSettings, message: Message
    ) -> DeliveryOutcome:
        if settings.webhook_url is None or settings.webhook_secret is None:
            return DeliveryOutcome(DeliveryStatus.SKIPPED, error=NO_WEBHOOK)
        note = claim.notification
        now = self.clock.now()
        body = webhook_payload(note, message, await self._link(note, message), now)
        secret = await self.key_store.decrypt(settings.webhook_secret)
        headers = webhook_headers(secret, note.id, int(now.timestamp()), body)
        await self.webhooks.post(settings.webhook_url, body, headers)
        return DeliveryOutcome(DeliveryStatus.SENT)
