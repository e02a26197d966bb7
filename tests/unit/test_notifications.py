"""Notifications on fakes: what is written for which event, how it reads (from the catalog),
the channel settings and their secret, and the deliverer's sending, retrying and giving up."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from standardwebhooks import Webhook

from domain.accounts import AccountMail, AccountMailKind
from domain.catalog import Catalog
from domain.errors import NotFound, ValidationError
from domain.ids import TenantId, UserId
from domain.metering import LimitKind, Threshold
from domain.notification_delivery import new_webhook_secret, render_mail, webhook_headers
from domain.notifications import (
    ACCOUNT_MAIL,
    DELIVERY_WINDOW,
    Channel,
    Message,
    NotificationFacts,
    NotificationId,
    NotificationKind,
    NotificationSettings,
    cancellation_facts,
    channels_for,
    check_webhook_url,
    key_invalidated_facts,
    local_time,
    next_attempt_at,
    plan_changed_facts,
    threshold_facts,
)
from domain.secrets import Secret
from domain.tenants import SubscriptionStatus, Tenant
from domain.use_cases.account_mail import NotificationsAccountMailer
from domain.use_cases.notifications import Deliverer, Notifications
from domain.welcome import format_price
from tests.fakes import (
    InMemoryNotificationSettings,
    InMemoryOutbox,
    RecordingMailSender,
    RecordingWebhookPoster,
)
from tests.unit.conftest import World, make_tenant

pytestmark = pytest.mark.unit

T = TenantId("t-1")
PUBLIC = "https://app.example.com"


@attrs.define
class Notify:
    world: World
    outbox: InMemoryOutbox = attrs.Factory(InMemoryOutbox)
    settings: InMemoryNotificationSettings = attrs.Factory(InMemoryNotificationSettings)
    mail: RecordingMailSender = attrs.Factory(RecordingMailSender)
    hooks: RecordingWebhookPoster = attrs.Factory(RecordingWebhookPoster)

    @property
    def notifications(self) -> Notifications:
        w = self.world
        return Notifications(
            w.catalog, self.outbox, self.settings, w.tenant_repo, w.credential_repo,
            w.key_store, w.clock,
        )  # fmt: skip

    async def tenant_changed(self, before: Tenant, after: Tenant) -> list[NotificationKind]:
        """What billing and the operator write with a tenant change, written here alone;
        the kinds actually written (a repeat is not)."""
        written = []
        for facts in await self.notifications.tenant_change_facts(before, after):
            if await self.write(facts) is not None:
                written.append(facts.kind)
        return written

    async def write(self, facts: NotificationFacts) -> NotificationId | None:
        return await self.outbox.enqueue(facts, channels_for(facts.kind), self.world.clock.now())

    async def write_mail(self, mailer: NotificationsAccountMailer, mail: AccountMail) -> None:
        """Write ``mail`` as the accounts use cases do with their change."""
        facts = await mailer.prepare(mail)
        assert facts is not None
        await self.write(facts)

    @property
    def deliverer(self) -> Deliverer:
        w = self.world
        return Deliverer(
            w.catalog, self.outbox, self.settings, w.tenant_repo, w.key_store, self.mail,
            self.hooks, w.clock, PUBLIC, "agent@example.com",
        )  # fmt: skip


@pytest.fixture
async def notify(world: World) -> Notify:
    await world.add_tenant("t-1", timezone="Europe/Berlin")
    n = Notify(world)
    n.outbox.emails[T] = "t-1@example.com"
    return n


def cap(percent: int, used: int, limit: int = 50, window: str = "2026-03-15") -> Threshold:
    return Threshold(T, LimitKind.MESSAGES, percent, window, used, limit)


async def test_a_threshold_is_written_once_per_window_with_both_channels(notify: Notify) -> None:
    assert await notify.write(threshold_facts(cap(80, 40))) is not None
    assert await notify.write(threshold_facts(cap(80, 41))) is None
    assert await notify.write(threshold_facts(cap(80, 40, window="2026-03-16"))) is not None
    (note, _) = notify.outbox.notes
    assert await notify.outbox.deliveries(note.id) == [
        ("email", "pending", 0),
        ("webhook", "pending", 0),
    ]


async def test_the_cap_banner_names_the_local_reset_time_and_offers_an_upgrade(
    notify: Notify, catalog: Catalog
) -> None:
    await notify.write(threshold_facts(cap(100, 50)))
    (banner,) = await notify.notifications.banners(T)
    assert banner.note.api_kind() == "messages_100"
    assert banner.message.link == "/onboarding"
    assert banner.message.action == "Upgrade your plan"
    starter = catalog.tier("starter")
    assert f"all {starter.messages_per_day} messages" in banner.message.body
    assert "Mon 16 Mar 2026, 00:00 (Europe/Berlin)" in banner.message.body
    assert banner.message.current_until == datetime(2026, 3, 15, 23, 0, tzinfo=UTC)


async def test_a_threshold_banner_disappears_when_its_window_ends(notify: Notify) -> None:
    await notify.write(threshold_facts(cap(100, 50)))
    notify.world.clock.instant = datetime(2026, 3, 15, 23, 0, tzinfo=UTC)
    assert await notify.notifications.banners(T) == []
    assert len(await notify.notifications.listed(T)) == 1, "still listed in-app"


async def test_the_budget_banner_at_80_percent_names_the_budget_and_its_renewal(
    notify: Notify,
) -> None:
    crossed = Threshold(T, LimitKind.TOKENS, 80, "2026-03-01", 400_000, 500_000)
    await notify.write(threshold_facts(crossed))
    (banner,) = await notify.notifications.banners(T)
    assert banner.message.title == "80% of your token budget is used"
    assert "400,000 of 500,000 tokens" in banner.message.body
    assert "Wed 1 Apr 2026, 00:00 (Europe/Berlin)" in banner.message.body


async def test_a_rejected_key_says_which_model_answers_on_the_platform_keys(
    notify: Notify, catalog: Catalog
) -> None:
    tenant = await notify.world.tenant_repo.get(T)
    assert tenant is not None
    await notify.world.tenant_repo.save(attrs.evolve(tenant, tier="byok"))
    await notify.write(key_invalidated_facts(T, "openai"))
    (banner,) = await notify.notifications.banners(T)
    starter = catalog.tier("starter")
    model = catalog.find_model(starter.primary_model or "")
    assert model is not None
    assert banner.message.title == "Your OpenAI key was rejected"
    assert f"your agent is answering with {model.name} on our keys" in banner.message.body
    assert banner.message.link == "/settings/ai-provider"


async def test_the_welcome_is_written_once_per_tier_and_shown_on_one_page_only(
    notify: Notify, catalog: Catalog
) -> None:
    before = make_tenant("t-1", status=SubscriptionStatus.INCOMPLETE, timezone="Europe/Berlin")
    active = attrs.evolve(before, status=SubscriptionStatus.ACTIVE)
    kinds = await notify.tenant_changed(before, active)
    assert kinds == [NotificationKind.WELCOME]
    assert await notify.tenant_changed(before, active) == []
    (banner,) = await notify.notifications.banners(T)
    starter = catalog.tier("starter")
    assert banner.message.title == f"Welcome to the {starter.name} plan"
    assert f"up to {starter.messages_per_day} messages a day" in banner.message.body
    assert await notify.notifications.banners(T) == [], "shown on the first page only"


async def test_a_failed_payment_is_told_once_per_past_due_spell(notify: Notify) -> None:
    active = make_tenant("t-1", timezone="Europe/Berlin")
    since = notify.world.clock.now()
    past_due = attrs.evolve(active, status=SubscriptionStatus.PAST_DUE, past_due_since=since)
    assert await notify.tenant_changed(active, past_due) == [NotificationKind.PAYMENT_FAILED]
    assert await notify.tenant_changed(active, past_due) == []
    (item,) = await notify.notifications.listed(T)
    assert item.message.title == "Your payment did not go through"


async def test_a_plan_change_quotes_the_new_price_from_the_catalog(
    notify: Notify, catalog: Catalog
) -> None:
    active = make_tenant("t-1", timezone="Europe/Berlin")
    upgraded = attrs.evolve(active, tier="premium")
    kinds = await notify.tenant_changed(active, upgraded)
    assert NotificationKind.PLAN_CHANGED in kinds
    premium = catalog.tier("premium")
    (changed,) = [
        i for i in await notify.notifications.listed(T) if i.note.api_kind() == "plan_changed"
    ]
    assert format_price(premium.price.amount_cents, premium.price.currency) in changed.message.body
    assert changed.message.title == f"Your plan changes to {premium.name}"


async def test_account_mail_keeps_its_link_encrypted_and_out_of_the_app(notify: Notify) -> None:
    link = Secret("https://app.example.com/reset?token=s3cret-token")
    facts = await notify.notifications.account_mail_facts(
        T, UserId("u-t-1"), NotificationKind.PASSWORD_RESET, link
    )
    assert "s3cret-token" not in repr(facts)
    note_id = await notify.write(facts)
    assert note_id is not None
    (note,) = notify.outbox.notes
    assert note.facts.secret_link is not None
    assert "s3cret-token" not in repr(note)
    assert await notify.notifications.listed(T) == []
    assert await notify.outbox.deliveries(note_id) == [("email", "pending", 0)]
    run = await notify.deliverer.deliver_due()
    assert run.sent == 1
    (mail,) = notify.mail.sent
    assert "token=s3cret-token" in mail.text
    assert mail.recipient == "t-1@example.com"


async def test_account_mail_refuses_other_kinds(notify: Notify) -> None:
    with pytest.raises(ValueError, match="not account mail"):
        await notify.notifications.account_mail_facts(
            T, UserId("u-t-1"), NotificationKind.WELCOME, Secret("https://x")
        )


async def test_the_webhook_secret_is_shown_when_first_set_and_on_rotation_only(
    notify: Notify,
) -> None:
    n = notify.notifications
    first = await n.put_settings(T, True, "https://hooks.example.com/agent")
    assert first.webhook_secret is not None
    assert first.webhook_secret.reveal().startswith("whsec_")
    again = await n.put_settings(T, False, "https://hooks.example.com/agent")
    assert again.webhook_secret is None
    assert (await n.get_settings(T)).webhook_secret is None
    rotated = await n.put_settings(T, True, "https://hooks.example.com/agent", rotate_secret=True)
    assert rotated.webhook_secret is not None
    assert rotated.webhook_secret.reveal() != first.webhook_secret.reveal()
    stored = notify.settings.stored[T]
    assert stored.webhook_secret is not None
    assert first.webhook_secret.reveal() not in stored.webhook_secret.token


async def test_removing_the_webhook_url_forgets_the_secret(notify: Notify) -> None:
    await notify.notifications.put_settings(T, True, "https://hooks.example.com/agent")
    view = await notify.notifications.put_settings(T, True, "  ")
    assert view.webhook_url is None
    assert notify.settings.stored[T].webhook_secret is None


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "https://user:pw@example.com/", "/relative", "https://", "https://a b"],
)
def test_a_webhook_url_must_be_absolute_http_without_credentials(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_webhook_url(url)
    assert caught.value.field == "webhook_url"


async def test_marking_another_tenants_notification_read_is_not_found(notify: Notify) -> None:
    await notify.world.add_tenant("t-2")
    await notify.write(threshold_facts(cap(80, 40)))
    (note,) = notify.outbox.notes
    with pytest.raises(NotFound):
        await notify.notifications.mark_read(TenantId("t-2"), note.id)
    await notify.notifications.mark_read(T, note.id)
    assert await notify.notifications.banners(T) == []


async def test_the_deliverer_mails_and_posts_a_signed_webhook_with_the_stable_id(
    notify: Notify,
) -> None:
    notify.world.clock.instant = datetime.now(UTC)  # the library checks the timestamp
    view = await notify.notifications.put_settings(T, True, "https://hooks.example.com/agent")
    assert view.webhook_secret is not None
    await notify.write(threshold_facts(cap(80, 40)))
    run = await notify.deliverer.deliver_due()
    assert (run.sent, run.skipped, run.retrying, run.failed) == (2, 0, 0, 0)
    (note,) = notify.outbox.notes
    (mail,) = notify.mail.sent
    assert mail.message_id == f"<{note.id}@example.com>"
    assert f"{PUBLIC}/settings" in mail.text
    (url, body, headers) = notify.hooks.posted[0]
    assert url == "https://hooks.example.com/agent"
    assert headers["webhook-id"] == note.id
    verified = Webhook(view.webhook_secret.reveal()).verify(body, headers)
    assert verified["data"]["kind"] == "messages_80"
    assert verified["type"] == "notification.messages_80"


async def test_mail_off_and_no_webhook_are_recorded_as_skipped(notify: Notify) -> None:
    await notify.notifications.put_settings(T, False, None)
    await notify.write(threshold_facts(cap(80, 40)))
    run = await notify.deliverer.deliver_due()
    assert (run.sent, run.skipped) == (0, 2)
    (note,) = notify.outbox.notes
    assert await notify.outbox.deliveries(note.id) == [
        ("email", "skipped", 1),
        ("webhook", "skipped", 1),
    ]


async def test_a_failed_send_is_retried_with_backoff_and_the_same_id(notify: Notify) -> None:
    await notify.notifications.put_settings(T, False, "https://hooks.example.com/agent")
    await notify.write(threshold_facts(cap(80, 40)))
    notify.hooks.failures = 3
    clock = notify.world.clock
    waits = []
    for _ in range(3):
        run = await notify.deliverer.deliver_due()
        assert run.retrying == 1
        (delivery,) = [d for d in notify.outbox.deliveries_ if d.channel is Channel.WEBHOOK]
        waits.append(delivery.next_attempt_at - clock.now())
        assert await notify.deliverer.deliver_due() == type(run)(), "not due yet"
        clock.instant = delivery.next_attempt_at
    assert waits == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=120)]
    assert (await notify.deliverer.deliver_due()).sent == 1
    (note,) = notify.outbox.notes
    assert [h["webhook-id"] for _, _, h in notify.hooks.posted] == [note.id]


async def test_a_delivery_is_given_up_after_24_hours(notify: Notify) -> None:
    await notify.notifications.put_settings(T, False, "https://hooks.example.com/agent")
    await notify.write(threshold_facts(cap(80, 40)))
    notify.hooks.failures = 10_000
    clock = notify.world.clock
    start = clock.now()
    attempts = 0
    while True:
        run = await notify.deliverer.deliver_due()
        attempts += 1
        if run.failed:
            break
        (delivery,) = [d for d in notify.outbox.deliveries_ if d.channel is Channel.WEBHOOK]
        clock.instant = delivery.next_attempt_at
    assert clock.now() == start + DELIVERY_WINDOW
    assert 20 < attempts < 40
    (delivery,) = [d for d in notify.outbox.deliveries_ if d.channel is Channel.WEBHOOK]
    assert delivery.last_error == "webhook: the receiver answered 503"


def test_backoff_doubles_from_30_seconds_up_to_an_hour_and_stops_at_24_hours() -> None:
    t0 = datetime(2026, 3, 15, tzinfo=UTC)
    assert next_attempt_at(t0, t0, 1) == t0 + timedelta(seconds=30)
    assert next_attempt_at(t0, t0, 4) == t0 + timedelta(seconds=240)
    assert next_attempt_at(t0, t0, 12) == t0 + timedelta(hours=1)
    late = t0 + timedelta(hours=23, minutes=50)
    assert next_attempt_at(t0, late, 12) == t0 + DELIVERY_WINDOW
    assert next_attempt_at(t0, t0 + DELIVERY_WINDOW, 30) is None


def test_the_signature_verifies_with_the_standard_webhooks_library() -> None:
    secret = new_webhook_secret(bytes(range(32)))
    body = json.dumps({"type": "notification.messages_80"}).encode()
    now = int(datetime.now(UTC).timestamp())
    headers = webhook_headers(secret, NotificationId("msg_1"), now, body)
    assert Webhook(secret.reveal()).verify(body, headers) == {"type": "notification.messages_80"}
    tampered = body.replace(b"80", b"81")
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(secret.reveal()).verify(tampered, headers)


def test_a_mail_has_the_product_name_text_and_html_and_escapes_the_body() -> None:
    message = Message("Cap <reached>", "Body & more", "/settings", "See usage")
    mail = render_mail(
        message, NotificationId("msg_1"), "a@b.example", "c@d.example", "https://x/settings"
    )
    assert mail.subject == "[tierkeeper] Cap <reached>"
    assert "Body & more" in mail.text and "https://x/settings" in mail.text
    assert "Body &amp; more" in mail.html and "Cap &lt;reached&gt;" in mail.html
    assert 'href="https://x/settings"' in mail.html


def test_local_time_is_written_in_the_tenants_zone() -> None:
    instant = datetime(2026, 7, 1, 22, 0, tzinfo=UTC)
    assert local_time(instant, "Europe/Berlin") == "Thu 2 Jul 2026, 00:00 (Europe/Berlin)"


async def test_a_scheduled_cancellation_is_told_once_per_end_date_in_local_time(
    notify: Notify,
) -> None:
    ends = datetime(2026, 4, 1, 10, 0, tzinfo=UTC)
    assert await notify.write(cancellation_facts(T, ends)) is not None
    assert await notify.write(cancellation_facts(T, ends)) is None
    (banner,) = await notify.notifications.banners(T)
    assert banner.message.title == "Your subscription is set to end"
    assert "Wed 1 Apr 2026, 12:00 (Europe/Berlin)" in banner.message.body


async def test_a_downgrade_at_the_period_end_names_when_it_applies(
    notify: Notify, catalog: Catalog
) -> None:
    applies = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
    await notify.write(plan_changed_facts(T, "premium", "starter", applies))
    (item,) = await notify.notifications.listed(T)
    starter, premium = catalog.tier("starter"), catalog.tier("premium")
    assert f"from {premium.name} to {starter.name}" in item.message.body
    assert "on Wed 1 Apr 2026, 02:00 (Europe/Berlin)" in item.message.body
    assert f"up to {starter.messages_per_day} messages a day" in item.message.body


async def test_the_used_up_budget_offers_an_upgrade_and_an_email_check_is_mail_only(
    notify: Notify,
) -> None:
    crossed = Threshold(T, LimitKind.TOKENS, 100, "2026-03-01", 500_000, 500_000)
    await notify.write(threshold_facts(crossed))
    note_id = await notify.write(
        await notify.notifications.account_mail_facts(
            T, UserId("u-t-1"), NotificationKind.EMAIL_VERIFICATION, Secret("https://x/verify?t=1")
        )
    )
    assert note_id is not None
    (banner,) = await notify.notifications.banners(T)
    assert banner.message.title == "Your token budget is used up"
    assert (banner.message.link, banner.message.action) == ("/onboarding", "Upgrade your plan")
    assert await notify.outbox.deliveries(note_id) == [("email", "pending", 0)]
    await notify.deliverer.deliver_due()
    (verification,) = [m for m in notify.mail.sent if "Confirm" in m.subject]
    assert "https://x/verify?t=1" in verification.text


async def test_an_email_change_is_verified_at_the_new_address_not_the_old_one(
    notify: Notify,
) -> None:
    mailer = NotificationsAccountMailer(notify.notifications, notify.world.tenant_repo)
    code = Secret("tkm_n3w-address-code")
    await notify.write_mail(
        mailer,
        AccountMail(AccountMailKind.VERIFY_EMAIL, "new@example.com", T, f"{PUBLIC}/verify", code),
    )
    assert "n3w-address-code" not in repr(notify.outbox.notes)
    assert (await notify.deliverer.deliver_due()).sent == 1
    (mail,) = notify.mail.sent
    assert mail.recipient == "new@example.com"
    assert mail.subject == "[tierkeeper] Confirm your email address"
    assert f"{PUBLIC}/verify#code=tkm_n3w-address-code" in mail.text
    assert "paste it there: tkm_n3w-address-code" in mail.text
    assert "paste it there: tkm_n3w-address-code" in mail.html


@pytest.mark.parametrize(
    ("kind", "subject", "words"),
    [
        (AccountMailKind.PASSWORD_RESET, "Reset your password", "works once, for 30 minutes"),
        (
            AccountMailKind.SIGNUP_ATTEMPT,
            "Someone tried to sign up with your address",
            "which already has one",
        ),
        (AccountMailKind.PASSWORD_CHANGED, "Your password was changed", "sessions were ended"),
    ],
)
async def test_every_account_mail_kind_is_delivered_by_mail_only_with_its_own_wording(
    notify: Notify, kind: AccountMailKind, subject: str, words: str
) -> None:
    await notify.settings.put(NotificationSettings(T, email_enabled=False))
    mailer = NotificationsAccountMailer(notify.notifications, notify.world.tenant_repo)
    await notify.write_mail(mailer, AccountMail(kind, "t-1@example.com", T, f"{PUBLIC}/login"))
    assert await notify.notifications.listed(T) == []
    (note,) = notify.outbox.notes
    assert await notify.outbox.deliveries(note.id) == [("email", "pending", 0)]
    await notify.deliverer.deliver_due()
    (mail,) = notify.mail.sent
    assert (mail.recipient, mail.subject) == ("t-1@example.com", f"[tierkeeper] {subject}")
    assert words in mail.text and f"{PUBLIC}/login" in mail.text
    assert "paste it" not in mail.text


async def test_account_mail_is_dropped_with_a_warning_when_the_key_store_is_down(
    notify: Notify, caplog: pytest.LogCaptureFixture
) -> None:
    notify.world.key_store.available = False
    mailer = NotificationsAccountMailer(notify.notifications, notify.world.tenant_repo)
    code = Secret("tkm_never-logged")
    mail = AccountMail(AccountMailKind.PASSWORD_RESET, "t-1@example.com", T, f"{PUBLIC}/r", code)
    assert await mailer.prepare(mail) is None
    assert notify.outbox.notes == []
    assert "password_reset mail for tenant t-1 not queued" in caplog.text
    assert "never-logged" not in caplog.text


def _facts_of_every_kind(catalog: Catalog) -> list[NotificationFacts]:
    tier = catalog.tiers[0].id
    return [
        NotificationFacts(T, NotificationKind.WELCOME, "tier:x", 0, detail={"text": "Hello"}),
        NotificationFacts(T, NotificationKind.MESSAGES, "2026-03-15", 80, 40, 50),
        NotificationFacts(T, NotificationKind.TOKENS, "2026-03-01", 100, 900, 900),
        NotificationFacts(T, NotificationKind.KEY_INVALIDATED, provider="openai"),
        NotificationFacts(T, NotificationKind.PAYMENT_FAILED, "2026-03-15", 0),
        NotificationFacts(T, NotificationKind.PLAN_CHANGED, detail={"to_tier": tier}),
        NotificationFacts(
            T, NotificationKind.CANCELLATION_SCHEDULED, detail={"ends_at": "2026-04-01T00:00"}
        ),
        *(NotificationFacts(T, kind, user_id=None) for kind in sorted(ACCOUNT_MAIL, key=str)),
    ]


async def test_only_notices_carry_the_notification_settings_footer(
    notify: Notify, catalog: Catalog
) -> None:
    """Usage, billing and key notices say they can be turned off and link the settings, in
    the text and the HTML; account mail (verification, reset, email change, signup attempt,
    password changed) goes out whatever the settings and says what it is about instead."""
    every = _facts_of_every_kind(catalog)
    assert {f.kind for f in every} == set(NotificationKind)
    for facts in every:
        await notify.outbox.enqueue(facts, (Channel.EMAIL,), notify.world.clock.now())
    await notify.deliverer.deliver_due()
    assert len(notify.mail.sent) == len(every)
    settings_link = f"{PUBLIC}/settings/notifications"
    for facts, mail in zip(every, notify.mail.sent, strict=True):
        if facts.kind in ACCOUNT_MAIL:
            for body in (mail.text, mail.html):
                assert "notification settings" not in body, (facts.kind, body)
                assert "/settings/notifications" not in body, facts.kind
                assert "about your account itself" in body, facts.kind
        else:
            assert f"notices are on in your notification settings: {settings_link}" in (
                mail.text
            ), facts.kind
            assert "notices are on in your notification settings:" in mail.html, facts.kind
            assert f'href="{settings_link}"' in mail.html, facts.kind
            assert "about your account itself" not in mail.text + mail.html, facts.kind


@pytest.mark.parametrize(
    ("kind", "channels"),
    [(NotificationKind.PASSWORD_RESET, (Channel.EMAIL,)),
     (NotificationKind.SIGNUP_ATTEMPT, (Channel.EMAIL,)),
     (NotificationKind.KEY_INVALIDATED, (Channel.EMAIL, Channel.WEBHOOK))],
)  # fmt: skip
def test_account_mail_goes_by_email_only_everything_else_also_to_the_webhook(
    kind: NotificationKind, channels: tuple[Channel, ...]
) -> None:
    assert NotificationFacts(TenantId("t-1"), kind).channels() == channels
