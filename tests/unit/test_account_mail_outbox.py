"""Account mail through the outbox: kept with the user it is about when the address is that
tenant's user's, under the tenant alone otherwise, and a key-store outage said in a warning."""

from __future__ import annotations

import logging

import pytest

from domain.accounts import AccountMail, AccountMailKind
from domain.ids import TenantId, UserId
from domain.secrets import Secret
from domain.use_cases.account_mail import NotificationsAccountMailer
from domain.use_cases.notifications import Notifications
from tests.fakes import InMemoryNotificationSettings, InMemoryOutbox
from tests.unit.conftest import World

T = TenantId("t-1")
LINK = "https://app.example.com/login"


async def mailer(world: World) -> tuple[NotificationsAccountMailer, InMemoryOutbox]:
    await world.add_tenant("t-1")
    await world.add_tenant("t-2")
    outbox = InMemoryOutbox()
    notifications = Notifications(
        world.catalog, outbox, InMemoryNotificationSettings(), world.tenant_repo,
        world.credential_repo, world.key_store, world.clock,
    )  # fmt: skip
    return NotificationsAccountMailer(notifications, world.tenant_repo), outbox


async def test_mail_to_a_users_address_is_kept_with_that_user(world: World) -> None:
    send, outbox = await mailer(world)
    await send.send(AccountMail(AccountMailKind.PASSWORD_CHANGED, "t-1@example.com", T, LINK))
    (note,) = outbox.notes
    assert (note.facts.tenant_id, note.facts.user_id) == (T, UserId("u-t-1"))


async def test_mail_to_another_tenants_user_or_a_new_address_is_kept_under_the_tenant_only(
    world: World,
) -> None:
    send, outbox = await mailer(world)
    await send.send(AccountMail(AccountMailKind.VERIFY_EMAIL, "t-2@example.com", T, LINK))
    await send.send(AccountMail(AccountMailKind.VERIFY_EMAIL, "new@example.com", T, LINK))
    assert [(n.facts.tenant_id, n.facts.user_id) for n in outbox.notes] == [(T, None), (T, None)]


async def test_a_key_store_outage_queues_nothing_and_warns_without_the_link(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    send, outbox = await mailer(world)
    world.key_store.available = False
    code = Secret("tkm_secret-code")
    with caplog.at_level(logging.WARNING, logger="domain.use_cases.account_mail"):
        await send.send(
            AccountMail(AccountMailKind.PASSWORD_RESET, "t-1@example.com", T, LINK, code)
        )
    assert outbox.notes == []
    assert [r.getMessage() for r in caplog.records] == [
        "password_reset mail for tenant t-1 not queued: the key store is unavailable"
    ]
