"""The tenant's channel settings decide where a notification goes, at delivery (issue #15):
every notification is written with a delivery row per channel of its kind, and the
deliverer records a channel that is off (mail notices off, no webhook URL) as ``skipped``
with the reason, sending nothing on it. On SQLite and PostgreSQL, with the notification
written by the ledger's own admitting statement."""

from __future__ import annotations

import tomllib

import attrs
import pytest
import sqlalchemy as sa

from adapters.catalog.toml_loader import default_catalog_text
from adapters.sql import tables as t
from adapters.sql.database import SqlDatabase
from domain.catalog import Catalog, build_catalog
from domain.ids import TenantId
from domain.notifications import Channel, NotificationKind, channels_for
from domain.use_cases.notifications import MAIL_OFF, NO_WEBHOOK, Deliverer, Notifications
from tests.contract.test_ledger_contract import admission
from tests.contract.test_repositories_contract import a_tenant, a_user
from tests.fakes import FakeKeyStore, FixedClock, RecordingMailSender, RecordingWebhookPoster

pytestmark = pytest.mark.integration

HOOK = "https://hooks.example.com/agent"


@attrs.define
class Channels:
    db: SqlDatabase
    catalog: Catalog = attrs.Factory(lambda: build_catalog(tomllib.loads(default_catalog_text())))
    clock: FixedClock = attrs.Factory(FixedClock)
    keys: FakeKeyStore = attrs.Factory(FakeKeyStore)
    mail: RecordingMailSender = attrs.Factory(RecordingMailSender)
    hooks: RecordingWebhookPoster = attrs.Factory(RecordingWebhookPoster)

    def notifications(self) -> Notifications:
        db = self.db
        return Notifications(
            self.catalog, db.outbox, db.notification_settings, db.tenants, db.credentials,
            self.keys, self.clock,
        )  # fmt: skip

    def deliverer(self) -> Deliverer:
        db = self.db
        return Deliverer(
            self.catalog, db.outbox, db.notification_settings, db.tenants, self.keys,
            self.mail, self.hooks, self.clock, "https://app.example.com", "agent@example.com",
        )  # fmt: skip

    async def cross_80_percent(self, tenant: TenantId) -> None:
        """Four of five messages: the ledger writes ``messages_80`` in the admission."""
        for n in range(4):
            await self.db.ledger.admit(admission(f"m{n}", cap=5, budget=None, tenant=tenant))

    async def outcomes(self) -> list[tuple[str, str, str | None]]:
        d = t.notification_deliveries.c
        query = sa.select(d.channel, d.status, d.last_error).order_by(d.channel)
        async with self.db.engine.connect() as conn:
            return [(r[0], r[1], r[2]) for r in (await conn.execute(query)).all()]


@pytest.fixture
async def channels(db: SqlDatabase) -> Channels:
    await db.tenants.add(a_tenant(1), a_user(1))
    return Channels(db)


T = TenantId("t001")


async def test_the_ledger_writes_a_delivery_row_for_each_channel_of_the_kind(
    channels: Channels,
) -> None:
    await channels.cross_80_percent(T)
    assert [c for c, _, _ in await channels.outcomes()] == [
        c.value for c in channels_for(NotificationKind.MESSAGES)
    ]
    assert channels_for(NotificationKind.MESSAGES) == (Channel.EMAIL, Channel.WEBHOOK)


async def test_mail_on_and_a_webhook_set_send_on_both(channels: Channels) -> None:
    await channels.notifications().put_settings(T, True, HOOK)
    await channels.cross_80_percent(T)
    run = await channels.deliverer().deliver_due()
    assert (run.sent, run.skipped) == (2, 0)
    assert await channels.outcomes() == [("email", "sent", None), ("webhook", "sent", None)]
    assert [m.recipient for m in channels.mail.sent] == ["user1@example.com"]
    assert [url for url, _, _ in channels.hooks.posted] == [HOOK]


async def test_mail_off_and_no_webhook_send_nothing_and_record_why(channels: Channels) -> None:
    await channels.notifications().put_settings(T, False, None)
    await channels.cross_80_percent(T)
    run = await channels.deliverer().deliver_due()
    assert (run.sent, run.skipped) == (0, 2)
    assert await channels.outcomes() == [
        ("email", "skipped", MAIL_OFF),
        ("webhook", "skipped", NO_WEBHOOK),
    ]
    assert channels.mail.sent == [] and channels.hooks.posted == []


async def test_the_settings_at_delivery_decide_not_those_at_the_crossing(
    channels: Channels,
) -> None:
    """Crossed with mail on and no webhook; before the deliverer runs, mail is turned off
    and a webhook set: the webhook gets it, the mail is skipped."""
    await channels.cross_80_percent(T)
    await channels.notifications().put_settings(T, False, HOOK)
    await channels.deliverer().deliver_due()
    assert await channels.outcomes() == [("email", "skipped", MAIL_OFF), ("webhook", "sent", None)]
    assert channels.mail.sent == [] and len(channels.hooks.posted) == 1
