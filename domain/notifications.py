"""Notifications: what happened to a tenant (the facts the outbox stores), the message a
person reads about it (composed from the catalog when it is shown or sent, so no price or
cap is ever frozen into a row), and the rules of delivery (channels, backoff, give-up).

A notification is stored once per (tenant, kind, window key, percent) when ``window_key``
is set; ``window_key`` None means every occurrence is its own notification.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import NewType
from urllib.parse import urlsplit

import attrs

from domain.byok import Ciphertext
from domain.catalog import BYOK, Catalog, Tier
from domain.errors import ValidationError
from domain.ids import TenantId, UserId
from domain.metering import LimitKind, Threshold
from domain.routing import platform_fallback_tier
from domain.tenants import SubscriptionStatus, Tenant
from domain.welcome import format_price, model_name
from domain.windows import Window, parse_timezone, zoned_windows

NotificationId = NewType("NotificationId", str)
"""The stable id of one notification: the webhook's ``webhook-id``, the mail's Message-ID."""

PRODUCT_NAME = "tierkeeper"
DELIVERY_WINDOW = timedelta(hours=24)
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)


class NotificationKind(enum.Enum):
    WELCOME = "welcome"
    MESSAGES = "messages"
    TOKENS = "tokens"
    KEY_INVALIDATED = "key_invalidated"
    PAYMENT_FAILED = "payment_failed"
    PLAN_CHANGED = "plan_changed"
    CANCELLATION_SCHEDULED = "cancellation_scheduled"
    PASSWORD_RESET = "password_reset"
    EMAIL_VERIFICATION = "email_verification"
    SIGNUP_ATTEMPT = "signup_attempt"
    PASSWORD_CHANGED = "password_changed"


ACCOUNT_MAIL = frozenset(
    {
        NotificationKind.PASSWORD_RESET,
        NotificationKind.EMAIL_VERIFICATION,
        NotificationKind.SIGNUP_ATTEMPT,
        NotificationKind.PASSWORD_CHANGED,
    }
)
"""Mail about the account itself: sent whatever the email preference, to the user only, never
to the customer's webhook nor listed in-app."""

RECIPIENT = "to"
"""The ``detail`` key of account mail's own address (an email change's new address)."""


class Channel(enum.Enum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class DeliveryStatus(enum.Enum):
    PENDING = "pending"
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"


@attrs.frozen
class NotificationFacts:
    """What happened, as the outbox stores it. ``detail`` holds the kind's own facts (tier
    ids, instants as ISO text, the welcome text); ``secret_link`` an encrypted one-time link
    (password reset, email verification) that only the mail may carry."""

    tenant_id: TenantId
    kind: NotificationKind
    window_key: str | None = None
    percent: int | None = None
    used: int | None = None
    limit: int | None = None
    provider: str | None = None
    detail: Mapping[str, str] = attrs.field(factory=dict)
    user_id: UserId | None = None
    secret_link: Ciphertext | None = None

    def mail_to(self, user_address: str | None) -> str | None:
        """Where the mail goes: the address the notification was written for when it names
        one (account mail: an email change is proved at the NEW address), else the user's
        address as it is at delivery."""
        return self.detail.get(RECIPIENT) or user_address

    def channels(self) -> tuple[Channel, ...]:
        """The channels this notification is delivered on (``channels_for`` its kind)."""
        return channels_for(self.kind)


def threshold_facts(threshold: Threshold) -> NotificationFacts:
    """A limit crossing as facts: once per (tenant, kind, window, percent)."""
    kind = (
        NotificationKind.MESSAGES
        if threshold.kind is LimitKind.MESSAGES
        else NotificationKind.TOKENS
    )
    return NotificationFacts(
        threshold.tenant_id,
        kind,
        window_key=threshold.window_key,
        percent=threshold.percent,
        used=threshold.used,
        limit=threshold.limit,
    )


def key_invalidated_facts(tenant_id: TenantId, provider: str) -> NotificationFacts:
    """The provider rejected the tenant's key: the agent is on the platform fallback."""
    return NotificationFacts(tenant_id, NotificationKind.KEY_INVALIDATED, provider=provider)


def is_activation(before: Tenant, after: Tenant) -> bool:
    """The tenant becomes active, or an active tenant gets another tier: a welcome is due
    (once per tier ever)."""
    return after.status is SubscriptionStatus.ACTIVE and (
        before.status is not SubscriptionStatus.ACTIVE or before.tier != after.tier
    )


def welcome_facts(tenant: Tenant, text: str) -> NotificationFacts:
    """The welcome to a tier, with its text as the catalog words it at activation."""
    return NotificationFacts(
        tenant.id,
        NotificationKind.WELCOME,
        window_key=f"tier:{tenant.tier}",
        percent=0,
        detail={"text": text},
    )


def plan_changed_facts(
    tenant_id: TenantId, from_tier: str, to_tier: str, applies_at: datetime | None
) -> NotificationFacts:
    """A plan change, at once (``applies_at`` None) or at the period's end."""
    detail = {"from_tier": from_tier, "to_tier": to_tier}
    if applies_at is not None:
        detail["applies_at"] = applies_at.isoformat()
    return NotificationFacts(tenant_id, NotificationKind.PLAN_CHANGED, detail=detail)


def cancellation_facts(tenant_id: TenantId, ends_at: datetime) -> NotificationFacts:
    """The subscription will end at ``ends_at``; once per end date."""
    return NotificationFacts(
        tenant_id,
        NotificationKind.CANCELLATION_SCHEDULED,
        window_key=ends_at.isoformat(),
        percent=0,
        detail={"ends_at": ends_at.isoformat()},
    )


def tenant_change_facts(
    before: Tenant, after: Tenant, now: datetime, welcome_text: str | None
) -> list[NotificationFacts]:
    """What a change of tier or status tells the customer: the welcome at the first
    activation of each tier (``welcome_text`` is given when ``is_activation``), a failed
    payment once per past-due spell, and a plan change of an already active tenant."""
    facts = []
    if is_activation(before, after) and welcome_text is not None:
        facts.append(welcome_facts(after, welcome_text))
    if (
        after.status is SubscriptionStatus.PAST_DUE
        and before.status is not SubscriptionStatus.PAST_DUE
    ):
        since = (after.past_due_since or now).isoformat()
        facts.append(
            NotificationFacts(
                after.id, NotificationKind.PAYMENT_FAILED, window_key=since, percent=0
            )
        )
    if (
        before.tier != after.tier
        and before.status is SubscriptionStatus.ACTIVE
        and after.status is SubscriptionStatus.ACTIVE
    ):
        facts.append(plan_changed_facts(after.id, before.tier, after.tier, None))
    return facts


def channels_for(kind: NotificationKind) -> tuple[Channel, ...]:
    """Account mail goes by email only; everything else by email and the customer's webhook
    (each skipped at delivery when the customer turned it off or set none)."""
    if kind in ACCOUNT_MAIL:
        return (Channel.EMAIL,)
    return (Channel.EMAIL, Channel.WEBHOOK)


@attrs.frozen
class StoredNotification:
    id: NotificationId
    facts: NotificationFacts
    created_at: datetime
    read_at: datetime | None = None

    def api_kind(self) -> str:
        """The kind as the API names it: thresholds carry their percent (``messages_80``)."""
        if self.facts.percent and self.facts.kind in (
            NotificationKind.MESSAGES,
            NotificationKind.TOKENS,
        ):
            return f"{self.facts.kind.value}_{self.facts.percent}"
        return self.facts.kind.value

    def in_app(self) -> bool:
        return self.facts.kind not in ACCOUNT_MAIL


class Tone(enum.Enum):
    INFO = "info"
    WARNING = "warning"
    DANGER = "danger"


@attrs.frozen
class Message:
    """What a person reads: a title, a plain-text body, a page to go to (a path on the site,
    or for account mail the one-time link) with the label of its button, how urgent it
    looks, and until when it is current (a banner stops showing then)."""

    title: str
    body: str
    link: str
    action: str
    tone: Tone = Tone.INFO
    current_until: datetime | None = None


def local_time(instant: datetime, timezone: str) -> str:
    """An instant as the tenant reads it: ``Thu 3 Dec 2026, 00:00 (Europe/Berlin)``."""
    local = instant.astimezone(parse_timezone(timezone))
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} ({timezone})"


def _windows_at(tenant: Tenant, crossed_at: datetime) -> tuple[Window, Window]:
    """The tenant's day (its cap's window) and period (its budget's) that held the crossing
    instant, in the zone that governed it then (a zone change waits for the end of the
    current day, spec §2)."""
    return zoned_windows(
        tenant.timezone, tenant.billing_anchor_day, tenant.zone_history, crossed_at
    )


def _used_up(facts: NotificationFacts) -> bool:
    """A threshold crossed at 100%: the cap or budget is used up."""
    return facts.percent is not None and facts.percent >= 100


def _price(tier: Tier) -> str:
    return f"{format_price(tier.price.amount_cents, tier.price.currency)} / {tier.price.interval}"


def _higher_cap_exists(catalog: Catalog, tier: Tier) -> bool:
    return any(t.messages_per_day > tier.messages_per_day for t in catalog.tiers)


def compose(catalog: Catalog, tenant: Tenant, note: StoredNotification) -> Message:
    """The message for a notification, worded from the catalog and the tenant as they are."""
    facts = note.facts
    tier = catalog.tier(tenant.tier)
    kind = facts.kind
    if kind is NotificationKind.MESSAGES:
        return _messages_message(catalog, tenant, tier, facts, note.created_at)
    if kind is NotificationKind.TOKENS:
        return _tokens_message(tenant, tier, facts, note.created_at)
    if kind is NotificationKind.KEY_INVALIDATED:
        return _key_message(catalog, tier, facts)
    if kind is NotificationKind.WELCOME:
        return Message(
            f"Welcome to the {tier.name} plan",
            facts.detail.get("text", ""),
            "/settings",
            "Open your settings",
        )
    if kind is NotificationKind.PAYMENT_FAILED:
        return Message(
            "Your payment did not go through",
            f"We could not charge your card for the {tier.name} plan ({_price(tier)}). Your "
            "agent keeps answering during the grace period; please update your card.",
            "/settings",
            "Update payment details",
            Tone.DANGER,
        )
    if kind is NotificationKind.PLAN_CHANGED:
        return _plan_message(catalog, tenant, facts)
    if kind is NotificationKind.CANCELLATION_SCHEDULED:
        ends = facts.detail.get("ends_at")
        when = f"on {local_time(datetime.fromisoformat(ends), tenant.timezone)}" if ends else "soon"
        return Message(
            "Your subscription is set to end",
            f"Your {tier.name} plan ends {when}. Until then everything keeps working; "
            "you can resume the subscription before that date.",
            "/settings",
            "Manage your plan",
            Tone.WARNING,
        )
    return _account_message(kind)


def _messages_message(
    catalog: Catalog, tenant: Tenant, tier: Tier, facts: NotificationFacts, crossed_at: datetime
) -> Message:
    day, _ = _windows_at(tenant, crossed_at)
    ends = day.resets_at
    resets = local_time(ends, tenant.timezone)
    if _used_up(facts):
        upgrade = _higher_cap_exists(catalog, tier)
        return Message(
            "Today's message cap is reached",
            f"Your agent has answered all {facts.limit} messages of today on the {tier.name} "
            f"plan. The cap resets on {resets}."
            + (" A higher plan raises the cap at once." if upgrade else ""),
            "/onboarding" if upgrade else "/settings",
            "Upgrade your plan" if upgrade else "See your usage",
            Tone.DANGER,
            ends,
        )
    return Message(
        f"{facts.percent}% of today's messages are used",
        f"Your agent has answered {facts.used} of {facts.limit} messages today on the "
        f"{tier.name} plan. The cap resets on {resets}.",
        "/settings",
        "See your usage",
        Tone.WARNING,
        ends,
    )


def _tokens_message(
    tenant: Tenant, tier: Tier, facts: NotificationFacts, crossed_at: datetime
) -> Message:
    _, period = _windows_at(tenant, crossed_at)
    ends = period.resets_at
    budget = "platform fallback budget" if tier.id == BYOK else "token budget"
    full = _used_up(facts)
    title = f"Your {budget} is used up" if full else f"{facts.percent}% of your {budget} is used"
    return Message(
        title,
        f"{facts.used:,} of {facts.limit:,} tokens of this billing period are used on the "
        f"{tier.name} plan. The budget renews on {local_time(ends, tenant.timezone)}.",
        "/onboarding" if full else "/settings",
        "Upgrade your plan" if full else "See your usage",
        Tone.DANGER if full else Tone.WARNING,
        ends,
    )


def _key_message(catalog: Catalog, tier: Tier, facts: NotificationFacts) -> Message:
    provider = next(
        (p.name for p in catalog.byok_providers if p.id == facts.provider),
        facts.provider or "provider",
    )
    fallback = platform_fallback_tier(catalog, tier)
    models = ([fallback.primary_model] if fallback.primary_model else []) + list(
        fallback.fallback_models
    )
    answering = model_name(catalog, models[0]) if models else "our platform models"
    return Message(
        f"Your {provider} key was rejected",
        f"{provider} refused the key you saved, so your agent is answering with {answering} "
        "on our keys until you save a working key.",
        "/settings/ai-provider",
        "Replace the key",
        Tone.DANGER,
    )


def _plan_message(catalog: Catalog, tenant: Tenant, facts: NotificationFacts) -> Message:
    new = catalog.tier(facts.detail.get("to_tier", tenant.tier))
    old_id = facts.detail.get("from_tier")
    old = f" from {catalog.tier(old_id).name}" if old_id else ""
    applies = facts.detail.get("applies_at")
    when = (
        f" on {local_time(datetime.fromisoformat(applies), tenant.timezone)}" if applies else " now"
    )
    return Message(
        f"Your plan changes to {new.name}",
        f"Your plan changes{old} to {new.name} ({_price(new)}){when}: up to "
        f"{new.messages_per_day} messages a day.",
        "/settings",
        "See your plan",
    )


def _account_message(kind: NotificationKind) -> Message:
    """The wording of account mail; its link (the one-time link, or the page to go to) is
    the notification's own, so ``link`` stays empty here."""
    if kind is NotificationKind.PASSWORD_RESET:
        return Message(
            "Reset your password",
            "Someone (we hope you) asked to reset the password of your account. The link "
            "below works once, for 30 minutes. If it was not you, ignore this mail: your "
            "password stays as it is.",
            "",
            "Choose a new password",
        )
    if kind is NotificationKind.SIGNUP_ATTEMPT:
        return Message(
            "Someone tried to sign up with your address",
            "Someone tried to create an account with this address, which already has one. "
            "If it was you, log in (or reset your password) with the link below. If not, "
            "nothing changed.",
            "",
            "Log in",
        )
    if kind is NotificationKind.PASSWORD_CHANGED:
        return Message(
            "Your password was changed",
            "The password of your account was just changed and your other sessions were "
            "ended. If this was not you, reset your password now with the link below.",
            "",
            "Log in",
            Tone.WARNING,
        )
    return Message(
        "Confirm your email address",
        "Please confirm that this address is yours by opening the link below. It works "
        "once, for 24 hours.",
        "",
        "Confirm the address",
    )


def next_attempt_at(created_at: datetime, now: datetime, attempts: int) -> datetime | None:
    """After a failed attempt: wait 30 s, doubling with each attempt up to an hour, and give
    up (None) once 24 h have passed since the notification was written; the last try is
    made at the 24 h mark."""
    give_up_at = created_at + DELIVERY_WINDOW
    if now >= give_up_at:
        return None
    delay: timedelta = min(FIRST_RETRY * (2 ** max(0, attempts - 1)), LONGEST_RETRY)
    retry_at: datetime = min(now + delay, give_up_at)
    return retry_at


@attrs.frozen
class NotificationSettings:
    """A tenant's channels: mail on or off, a webhook URL and its encrypted signing secret."""

    tenant_id: TenantId
    email_enabled: bool = True
    webhook_url: str | None = None
    webhook_secret: Ciphertext | None = None


def check_webhook_url(url: str) -> str:
    """An absolute http(s) URL without credentials or fragments, at most 2,000 characters."""
    candidate = url.strip()
    parts = urlsplit(candidate)
    if (
        len(candidate) > 2000
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.password is not None
        or parts.fragment
        or any(c.isspace() for c in candidate)
    ):
        raise ValidationError(
            "webhook_url must be an absolute http:// or https:// URL without user:password",
            field="webhook_url",
        )
    return candidate


@attrs.frozen
class ClaimedDelivery:
    """One channel of one notification, claimed by one deliverer until ``claimed_until``
    (then another may take it: at least once). ``email_to``: the user's address."""

    delivery_id: int
    claim_token: str
    channel: Channel
    attempts: int
    notification: StoredNotification
    email_to: str | None


@attrs.frozen
class DeliveryOutcome:
    """What one attempt came to: sent, skipped (channel off), retry at an instant, or failed
    for good; ``error`` says why for the operator (never a secret)."""

    status: DeliveryStatus
    retry_at: datetime | None = None
    error: str | None = None


class DeliveryFailed(Exception):
    """A channel refused or could not be reached; the deliverer retries with backoff."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
