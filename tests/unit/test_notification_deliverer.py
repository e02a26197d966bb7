"""The deliverer's rules on fakes: what it claims and for how long, what it counts, when a
channel is skipped and why, what it logs, and that the batch pass runs until nothing is due."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import attrs
import pytest

from domain.notifications import (
    ClaimedDelivery,
    NotificationKind,
    threshold_facts,
)
from domain.secrets import Secret
from domain.use_cases.notifications import MAIL_OFF, NO_WEBHOOK, DeliveryRun
from tests.fakes import InMemoryOutbox
from tests.unit.conftest import World
from tests.unit.test_notifications import PUBLIC, Notify, T, cap

pytestmark = pytest.mark.unit


@pytest.fixture
async def notify(world: World) -> Notify:
    await world.add_tenant("t-1", timezone="Europe/Berlin")
    n = Notify(world)
    n.outbox.emails[T] = "t-1@example.com"
    return n


def _statuses(notify: Notify) -> list[tuple[str, str, str | None]]:
    return sorted(
        (d.channel.value, d.status.value, d.last_error) for d in notify.outbox.deliveries_
    )


def test_a_run_totals_every_outcome() -> None:
    assert DeliveryRun(1, 2, 3, 4).total() == 10
    assert DeliveryRun().total() == 0


@attrs.define
class LeaseRecordingOutbox(InMemoryOutbox):
    """The outbox, noting each claim's instant, lease and limit."""

    claims: list[tuple[datetime, timedelta, int]] = attrs.Factory(list)

    async def claim(self, now: datetime, lease: timedelta, limit: int) -> list[ClaimedDelivery]:
        self.claims.append((now, lease, limit))
        return await super().claim(now, lease, limit)


async def test_a_pass_claims_up_to_its_limit_for_a_five_minute_lease(world: World) -> None:
    await world.add_tenant("t-1")
    outbox = LeaseRecordingOutbox()
    notify = Notify(world, outbox=outbox)
    await notify.deliverer.deliver_due()
    await notify.deliverer.deliver_due(7)
    now = world.clock.now()
    assert outbox.claims == [(now, timedelta(minutes=5), 50), (now, timedelta(minutes=5), 7)]


async def test_the_batch_pass_repeats_until_a_pass_finds_fewer_than_its_limit(
    notify: Notify,
) -> None:
    await notify.notifications.put_settings(T, True, None)
    for day in range(1, 6):
        await notify.write(threshold_facts(cap(80, 40, window=f"2026-03-0{day}")))
    run = await notify.deliverer.deliver_all(limit=2)
    assert run == DeliveryRun(sent=5, skipped=5, retrying=0, failed=0)
    assert len(notify.mail.sent) == 5
    assert all(status != "pending" for _, status, _ in _statuses(notify))


async def test_the_batch_pass_sums_retries_and_failures_too(notify: Notify) -> None:
    await notify.notifications.put_settings(T, True, None)
    await notify.write(threshold_facts(cap(80, 40)))
    notify.mail.failures = 1
    assert await notify.deliverer.deliver_all(limit=1) == DeliveryRun(0, 1, 1, 0)
    notify.world.clock.instant = notify.world.clock.now() + timedelta(days=2)
    notify.mail.failures = 1
    assert await notify.deliverer.deliver_all(limit=1) == DeliveryRun(0, 0, 0, 1)


async def test_skipped_channels_record_why(notify: Notify) -> None:
    await notify.notifications.put_settings(T, False, None)
    await notify.write(threshold_facts(cap(80, 40)))
    await notify.deliverer.deliver_due()
    assert _statuses(notify) == [
        ("email", "skipped", MAIL_OFF),
        ("webhook", "skipped", NO_WEBHOOK),
    ]


async def test_a_webhook_url_without_a_secret_is_skipped_as_unset(notify: Notify) -> None:
    await notify.notifications.put_settings(T, False, "https://hooks.example.com/a")
    stored = notify.settings.stored[T]
    notify.settings.stored[T] = type(stored)(T, False, stored.webhook_url, None)
    await notify.write(threshold_facts(cap(80, 40)))
    await notify.deliverer.deliver_due()
    assert ("webhook", "skipped", NO_WEBHOOK) in _statuses(notify)
    assert notify.hooks.posted == []


async def test_a_notice_to_a_tenant_without_an_address_is_skipped(notify: Notify) -> None:
    del notify.outbox.emails[T]
    await notify.notifications.put_settings(T, True, None)
    await notify.write(threshold_facts(cap(80, 40)))
    await notify.deliverer.deliver_due()
    assert ("email", "skipped", "no address to mail") in _statuses(notify)
    assert notify.mail.sent == []


async def test_a_notice_of_a_deleted_tenant_is_skipped(notify: Notify) -> None:
    await notify.write(threshold_facts(cap(80, 40)))
    del notify.world.tenant_repo.tenants[T]
    run = await notify.deliverer.deliver_due()
    assert run == DeliveryRun(skipped=2)
    assert _statuses(notify) == [
        ("email", "skipped", "the tenant is gone"),
        ("webhook", "skipped", "the tenant is gone"),
    ]


async def test_account_mail_is_sent_even_with_mail_notices_off(notify: Notify) -> None:
    await notify.notifications.put_settings(T, False, None)
    link = Secret("https://app.example.com/reset#code=c0de")
    await notify.write(
        await notify.notifications.account_mail_facts(
            T, None, NotificationKind.PASSWORD_RESET, link
        )
    )
    run = await notify.deliverer.deliver_due()
    assert run == DeliveryRun(sent=1)
    (mail,) = notify.mail.sent
    assert mail.recipient == "t-1@example.com"
    assert "paste it there: c0de" in mail.text


async def test_a_notice_mail_links_the_absolute_page_and_settings(notify: Notify) -> None:
    await notify.write(threshold_facts(cap(80, 40)))
    await notify.deliverer.deliver_due()
    (mail,) = notify.mail.sent
    assert (mail.sender, mail.recipient) == ("agent@example.com", "t-1@example.com")
    assert f"See your usage: {PUBLIC}/settings\n" in mail.text
    assert mail.text.endswith(f"settings: {PUBLIC}/settings/notifications\n")


async def test_a_failed_attempt_is_logged_with_its_notification_channel_and_reason(
    notify: Notify, caplog: pytest.LogCaptureFixture
) -> None:
    await notify.notifications.put_settings(T, False, None)
    await notify.write(threshold_facts(cap(80, 40)))
    notify.mail.failures = 1
    await notify.notifications.put_settings(T, True, None)
    with caplog.at_level(logging.WARNING, logger="domain.use_cases.notifications"):
        run = await notify.deliverer.deliver_due()
    assert run == DeliveryRun(skipped=1, retrying=1)
    (note,) = notify.outbox.notes
    (record,) = caplog.records
    assert record.getMessage() == (
        f"notification {note.id} (messages_80) email: attempt 1 failed: SMTP: 451 try again later"
    )


async def test_the_webhook_is_signed_at_the_delivery_instant(notify: Notify) -> None:
    await notify.notifications.put_settings(T, False, "https://hooks.example.com/a")
    await notify.write(threshold_facts(cap(80, 40)))
    clock = notify.world.clock
    clock.instant = clock.now() + timedelta(minutes=3)
    await notify.deliverer.deliver_due()
    ((_, body, headers),) = notify.hooks.posted
    assert headers["webhook-timestamp"] == str(int(clock.now().timestamp()))
    assert f'"timestamp":"{clock.now().isoformat()}"'.encode() in body
    assert f'"link":"{PUBLIC}/settings"'.encode() in body
