"""Account mail as the outbox keeps it: with the user it is about when the address is that
tenant's user's, under the tenant alone otherwise, and a key-store outage said in a warning
(no notification to write)."""

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


async def mailer(world: World) -> NotificationsAccountMailer:
    await world.add_tenant("t-1")
    await world.add_tenant("t-2")
    notifications = Notifications(
        world.catalog, InMemoryOutbox(), InMemoryNotificationSettings(), world.tenant_repo,
        world.credential_repo, world.key_store, world.clock,
    )  # fmt: skip
    return NotificationsAccountMailer(notifications, world.tenant_repo)


async def test_mail_to_a_users_address_is_kept_with_that_user(world: World) -> None:
    prepared = await (await mailer(world)).prepare(
        AccountMail(AccountMailKind.PASSWORD_CHANGED, "t-1@example.com", T, LINK)
    )
    assert prepared is not None
    assert (prepared.tenant_id, prepared.user_id) == (T, UserId("u-t-1"))


async def test_mail_to_another_tenants_user_or_a_new_address_is_kept_under_the_tenant_only(
    world: World,
) -> None:
    send = await mailer(world)
    kept = [
        await send.prepare(AccountMail(AccountMailKind.VERIFY_EMAIL, to, T, LINK))
        for to in ("t-2@example.com", "new@example.com")
    ]
    assert [(f.tenant_id, f.user_id) for f in kept if f is not None] == [(T, None), (T, None)]


async def test_a_key_store_outage_queues_nothing_and_warns_without_the_link(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    send = await mailer(world)
    world.key_store.available = False
    code = Secret("tkm_secret-code")
    with caplog.at_level(logging.WARNING, logger="domain.use_cases.account_mail"):
        prepared = await send.prepare(
            AccountMail(AccountMailKind.PASSWORD_RESET, "t-1@example.com", T, LINK, code)
        )
    assert prepared is None
    assert [r.getMessage() for r in caplog.records] == [
        "password_reset mail for tenant t-1 not queued: the key store is unavailable"
    ]
