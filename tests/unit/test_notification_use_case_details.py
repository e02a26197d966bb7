"""The Notifications use case at its edges: the welcome worded from the BYOK tenant's saved
key, what account mail stores, the in-app list's length, banners past skipped items, the
settings as read back, the webhook secret's size, and the words of its NotFound errors."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import attrs
import pytest

from domain.errors import NotFound
from domain.ids import TenantId
from domain.notifications import ClaimedDelivery as Claimed
from domain.notifications import (
    DeliveryOutcome,
    NotificationKind,
    key_invalidated_facts,
    threshold_facts,
)
from domain.secrets import Secret
from domain.tenants import SubscriptionStatus
from domain.use_cases.notifications import LIST_LIMIT, DeliveryRun, SettingsView
from tests.fakes import InMemoryOutbox
from tests.unit.conftest import World
from tests.unit.test_notifications import Notify, T, cap

pytestmark = pytest.mark.unit

URL = "https://hooks.example.com/a"


@pytest.fixture
async def notify(world: World) -> Notify:
    await world.add_tenant("t-1", timezone="Europe/Berlin")
    n = Notify(world)
    n.outbox.emails[T] = "t-1@example.com"
    return n


async def test_a_byok_welcome_names_the_model_on_the_tenants_own_key(world: World) -> None:
    tenant = await world.add_tenant("t-1", tier="byok")
    notifications = Notify(world).notifications
    assert "answers with Kimi K2.5." in await notifications.welcome_text(tenant)
    await world.add_key("t-1")
    text = await notifications.welcome_text(tenant)
    assert "answers with GPT-4.1 on your OpenAI key." in text


async def test_an_activation_writes_the_welcome_worded_from_the_saved_key(world: World) -> None:
    before = await world.add_tenant("t-1", tier="byok", status=SubscriptionStatus.INCOMPLETE)
    await world.add_key("t-1")
    after = attrs.evolve(before, status=SubscriptionStatus.ACTIVE)
    (welcome,) = await Notify(world).notifications.tenant_change_facts(before, after)
    assert welcome.kind is NotificationKind.WELCOME
    assert "GPT-4.1 on your OpenAI key" in welcome.detail["text"]


async def test_a_first_past_due_is_dated_now_when_the_tenant_has_no_date(world: World) -> None:
    before = await world.add_tenant("t-1")
    after = attrs.evolve(before, status=SubscriptionStatus.PAST_DUE, past_due_since=None)
    (failed,) = await Notify(world).notifications.tenant_change_facts(before, after)
    assert failed.kind is NotificationKind.PAYMENT_FAILED
    assert failed.window_key == world.clock.now().isoformat()


async def test_account_mail_to_the_users_address_stores_no_recipient(notify: Notify) -> None:
    link = Secret("https://app.example.com/verify#code=x")
    await notify.write(
        await notify.notifications.account_mail_facts(
            T, None, NotificationKind.EMAIL_VERIFICATION, link
        )
    )
    await notify.write(
        await notify.notifications.account_mail_facts(
            T, None, NotificationKind.EMAIL_VERIFICATION, link, to="new@example.com"
        )
    )
    assert [n.facts.detail for n in notify.outbox.notes] == [{}, {"to": "new@example.com"}]


async def test_the_in_app_list_holds_the_newest_fifty(notify: Notify) -> None:
    for day in range(LIST_LIMIT + 5):
        await notify.write(threshold_facts(cap(80, 40, window=f"w-{day}")))
    listed = await notify.notifications.listed(T)
    assert len(listed) == LIST_LIMIT == 50
    assert listed[0].note.facts.window_key == f"w-{LIST_LIMIT + 4}"


async def test_banners_look_past_read_and_ended_notifications(notify: Notify) -> None:
    clock = notify.world.clock
    await notify.write(threshold_facts(cap(80, 40, window="old")))
    clock.instant = clock.now() + timedelta(days=2)
    await notify.write(threshold_facts(cap(80, 40, window="current")))
    await notify.write(key_invalidated_facts(T, "openai"))
    (_, _, key) = notify.outbox.notes
    await notify.notifications.mark_read(T, key.id)
    await notify.write(key_invalidated_facts(T, "openai"))
    await notify.notifications.mark_read(T, notify.outbox.notes[-1].id)
    shown = [b.note.facts.window_key for b in await notify.notifications.banners(T)]
    assert shown == ["current"], "the newest (read) and the oldest (ended) are passed over"


async def test_banners_look_past_an_ended_threshold_to_an_older_current_one(
    notify: Notify,
) -> None:
    clock = notify.world.clock
    await notify.write(key_invalidated_facts(T, "openai"))
    await notify.write(threshold_facts(cap(80, 40, window="d")))
    (_, cap_note) = notify.outbox.notes
    notify.outbox.notes[1] = attrs.evolve(cap_note, created_at=clock.now() - timedelta(days=3))
    kinds = [b.note.facts.kind for b in await notify.notifications.banners(T)]
    assert kinds == [NotificationKind.KEY_INVALIDATED]


async def test_the_settings_read_back_as_saved(notify: Notify) -> None:
    assert await notify.notifications.get_settings(T) == SettingsView(True, None)
    view = await notify.notifications.put_settings(T, False, f"  {URL} ")
    assert view.webhook_secret is not None
    assert view == SettingsView(False, URL, view.webhook_secret)
    assert await notify.notifications.get_settings(T) == SettingsView(False, URL)


async def test_a_webhook_secret_is_32_random_bytes(notify: Notify) -> None:
    view = await notify.notifications.put_settings(T, True, URL)
    assert view.webhook_secret is not None
    raw = base64.b64decode(view.webhook_secret.reveal().removeprefix("whsec_"))
    assert len(raw) == 32


async def test_an_unknown_tenant_or_notification_is_not_found_in_words(
    notify: Notify,
) -> None:
    with pytest.raises(NotFound) as tenant:
        await notify.notifications.listed(TenantId("t-9"))
    assert str(tenant.value) == "tenant 't-9' is unknown"
    with pytest.raises(NotFound) as note:
        await notify.notifications.mark_read(T, "msg_missing")
    assert str(note.value) == "no such notification"


@attrs.define
class RecordingOutbox(InMemoryOutbox):
    """The outbox, noting the limit of each claim and the instant of each finish."""

    limits: list[int] = attrs.Factory(list)
    finished_at: list[datetime] = attrs.Factory(list)

    async def claim(self, now: datetime, lease: timedelta, limit: int) -> list[Claimed]:
        self.limits.append(limit)
        return await super().claim(now, lease, limit)

    async def finish(self, claim: Claimed, outcome: DeliveryOutcome, at: datetime) -> bool:
        self.finished_at.append(at)
        return await super().finish(claim, outcome, at)


async def test_the_batch_pass_claims_its_limit_each_time_and_finishes_at_the_clock(
    world: World,
) -> None:
    await world.add_tenant("t-1")
    outbox = RecordingOutbox()
    notify = Notify(world, outbox=outbox)
    outbox.emails[T] = "t-1@example.com"
    for day in range(3):
        await notify.write(threshold_facts(cap(80, 40, window=f"w-{day}")))
    assert await notify.deliverer.deliver_all(limit=2) == DeliveryRun(sent=3, skipped=3)
    assert outbox.limits == [2, 2, 2, 2]
    assert outbox.finished_at == [world.clock.now()] * 6
    await notify.deliverer.deliver_all()
    assert outbox.limits[-1] == 50
