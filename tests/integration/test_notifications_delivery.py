"""Notifications delivered for real: PostgreSQL (embedded), the app under uvicorn, a real
SMTP server in the test process (aiosmtpd), a real HTTP receiver, and the Standard Webhooks
reference library (``standardwebhooks``) verifying every signature, not our own code.

- crossing 80% of the day's cap sends exactly one mail and one signed webhook per window;
- a receiver that fails three times and then succeeds gets the notification once more, with
  the same id;
- the server killed between the admitting commit and the delivery still delivers after a
  restart;
- two deliverers on one PostgreSQL send each notification once.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from standardwebhooks import Webhook

from adapters.security.passwords import Argon2PasswordHasher
from adapters.sql.database import upgrade
from domain.ids import TenantId, TierId, UserId
from domain.metering import LimitKind, Threshold
from domain.notifications import NotificationId, channels_for, threshold_facts
from domain.tenants import SubscriptionStatus, Tenant, User
from entrypoints.bootstrap import Services, build_services
from entrypoints.settings import Settings
from tests.fakes import FixedClock
from tests.support import postgres
from tests.support.app_server import running_app
from tests.support.recording_server import RecordedRequest, Recorder, recording_server
from tests.support.smtp_sink import SmtpSink, smtp_sink

pytestmark = pytest.mark.integration

TEST_HASHER = Argon2PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
QUIET_S = 1.5
"""How long to keep watching for a duplicate after the expected delivery arrived."""


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres.fresh_database("notify_delivery", durable=False) as url:
        upgrade(url)
        yield url


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with smtp_sink() as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[Recorder]:
    with recording_server() as recorder:
        yield recorder


def environ(tmp_path: Path, database_url: str, sink: SmtpSink, **extra: str) -> dict[str, str]:
    return {
        "TIERKEEPER_VAR_DIR": str(tmp_path / "var"),
        "TIERKEEPER_DATABASE_URL": database_url,
        "TIERKEEPER_CONFIG_ROOT": str(tmp_path / "openclaw"),
        "TIERKEEPER_SECRET_KEY": "notify-test-platform-secret-0123456789",
        "TIERKEEPER_SMTP_URL": sink.url,
        "TIERKEEPER_MAIL_FROM": "agent@tierkeeper.test",
        "TIERKEEPER_PUBLIC_URL": "https://app.tierkeeper.test",
        "TIERKEEPER_NOTIFICATIONS_POLL_SECONDS": "0.2",
        "TIERKEEPER_WEBHOOK_ALLOW_PRIVATE": "1",  # the receiver listens on 127.0.0.1
        **extra,
    }


@pytest.fixture
async def services_for() -> AsyncIterator[Any]:
    built: list[Services] = []

    async def build(env: Mapping[str, str]) -> Services:
        services = await build_services(Settings.from_environ(env), password_hasher=TEST_HASHER)
        built.append(services)
        return services

    yield build
    for services in built:
        await services.close()


@attrs.frozen
class Seeded:
    tenant_id: TenantId
    email: str
    secret: str


async def seed(services: Services, receiver: Recorder, name: str) -> Seeded:
    """An active starter tenant in UTC with a user and a webhook pointing at ``receiver``."""
    now = datetime.now(UTC)
    tenant_id = TenantId(f"{name}-{time.monotonic_ns()}")
    address = f"{tenant_id}@customers.test"
    await services.ports.tenants.add(
        Tenant(tenant_id, TierId("starter"), SubscriptionStatus.ACTIVE, "UTC", 1, now),
        User(UserId(f"u-{tenant_id}"), address, "x", tenant_id, now),
    )
    assert services.notifications is not None
    view = await services.notifications.put_settings(tenant_id, True, receiver.url + "/hook")
    assert view.webhook_secret is not None
    return Seeded(tenant_id, address, view.webhook_secret.reveal())


async def write_threshold(services: Services, crossed: Threshold) -> NotificationId | None:
    """Write a crossing to the outbox as the ledger does in its own transaction."""
    facts, outbox = threshold_facts(crossed), services.ports.outbox
    assert outbox is not None
    return await outbox.enqueue(facts, channels_for(facts.kind), services.ports.clock.now())


def mails_to(sink: SmtpSink, address: str) -> list[Any]:
    return [m for m in sink.messages if m["To"] == address]


def hooks_for(receiver: Recorder, tenant_id: str) -> list[RecordedRequest]:
    return [r for r in receiver.requests if r.json()["data"]["tenant_id"] == tenant_id]


def verified(request: RecordedRequest, secret: str) -> Any:
    """The payload as the Standard Webhooks reference library verifies it."""
    return Webhook(secret).verify(request.body, request.headers)


async def admit(app_url: str, token: str, tenant_id: str, count: int, prefix: str) -> None:
    async with httpx.AsyncClient(
        base_url=app_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as client:
        for n in range(count):
            response = await client.post(
                "/api/v1/gateway/admit",
                json={"tenant_id": tenant_id, "message_id": f"{prefix}-{n}", "max_tokens": 100},
            )
            assert response.status_code == 200, response.text
            assert response.json()["admitted"] is True, response.text


def eighty_percent(services: Services) -> int:
    cap = services.catalog.tier("starter").messages_per_day
    return -(-cap * 80 // 100)


async def test_crossing_80_percent_of_the_cap_sends_one_mail_and_one_signed_webhook(
    tmp_path: Path,
    postgres_url: str,
    sink: SmtpSink,
    receiver: Recorder,
    services_for: Any,
) -> None:
    env = environ(tmp_path, postgres_url, sink)
    services = await services_for(env)
    tenant = await seed(services, receiver, "cross")
    token = (await services.accounts.create_service_token("notify-e2e")).reveal()
    threshold = eighty_percent(services)

    with running_app({**os.environ, **env}, tmp_path) as app:
        await admit(app.base_url, token, tenant.tenant_id, threshold + 3, "m")
        sink.wait_for(lambda mails: len([m for m in mails if m["To"] == tenant.email]) >= 1)
        receiver.wait_for(lambda requests: len(requests) >= 1)
        await asyncio.sleep(QUIET_S)

    (mail,) = mails_to(sink, tenant.email)
    (hook,) = hooks_for(receiver, tenant.tenant_id)
    payload = verified(hook, tenant.secret)
    assert payload["type"] == "notification.messages_80"
    assert payload["data"]["used"] == threshold
    assert mail["Message-ID"] == f"<{hook.headers['webhook-id']}@tierkeeper.test>"
    assert mail["From"] == "agent@tierkeeper.test"
    assert mail["Subject"] == "[tierkeeper] 80% of today's messages are used"
    text = mail.get_body(preferencelist=("plain",)).get_content()
    html = mail.get_body(preferencelist=("html",)).get_content()
    cap = services.catalog.tier("starter").messages_per_day
    assert f"{threshold} of {cap} messages" in text
    assert "https://app.tierkeeper.test/settings" in text
    assert 'href="https://app.tierkeeper.test/settings"' in html
    assert tenant.secret not in mail.as_string()
    assert token not in mail.as_string()


async def test_a_receiver_failing_three_times_gets_it_once_more_with_the_same_id(
    tmp_path: Path,
    postgres_url: str,
    sink: SmtpSink,
    receiver: Recorder,
    services_for: Any,
) -> None:
    """The deliverer's clock is stepped over the backoff (30 s, 60 s, 120 s) instead of
    waiting; everything else is real."""
    services = await services_for(environ(tmp_path, postgres_url, sink))
    tenant = await seed(services, receiver, "retry")
    attempts: list[int] = []

    def answer(request: RecordedRequest) -> dict[str, bool]:
        attempts.append(1)
        receiver.status = 503 if len(attempts) <= 3 else 200
        return {"received": receiver.status == 200}

    receiver.response = answer
    crossed = Threshold(tenant.tenant_id, LimitKind.MESSAGES, 80, "2026-12-02", 40, 50)
    assert await write_threshold(services, crossed) is not None
    clock = FixedClock(datetime.now(UTC))
    assert services.deliverer is not None
    deliverer = attrs.evolve(services.deliverer, clock=clock)

    runs = [await deliverer.deliver_due()]
    for wait_s in (30, 60, 120):
        assert (await deliverer.deliver_due()).total() == 0, "not retried before its time"
        clock.advance(seconds=wait_s)
        runs.append(await deliverer.deliver_due())

    assert [(r.sent, r.retrying) for r in runs] == [(1, 1), (0, 1), (0, 1), (1, 0)]
    hooks = hooks_for(receiver, tenant.tenant_id)
    assert len(hooks) == 4
    assert len({h.headers["webhook-id"] for h in hooks}) == 1
    assert verified(hooks[-1], tenant.secret)["data"]["kind"] == "messages_80"
    assert len(mails_to(sink, tenant.email)) == 1, "the mail went through the first time"
    (note,) = await services.ports.outbox.for_tenant(tenant.tenant_id, 10)
    assert await services.ports.outbox.deliveries(note.id) == [
        ("email", "sent", 1),
        ("webhook", "sent", 4),
    ]


async def test_a_server_killed_after_the_admitting_commit_delivers_after_restart(
    tmp_path: Path,
    postgres_url: str,
    sink: SmtpSink,
    receiver: Recorder,
    services_for: Any,
) -> None:
    """The first server's deliverer looks only once an hour, so the notification is still
    in the outbox when the process is killed (SIGKILL: no shutdown runs)."""
    env = environ(tmp_path, postgres_url, sink)
    services = await services_for(env)
    tenant = await seed(services, receiver, "killed")
    token = (await services.accounts.create_service_token("notify-kill")).reveal()
    threshold = eighty_percent(services)

    sleepy = {**os.environ, **env, "TIERKEEPER_NOTIFICATIONS_POLL_SECONDS": "3600"}
    with running_app(sleepy, tmp_path) as first:
        await admit(first.base_url, token, tenant.tenant_id, threshold, "k")
        (note,) = await services.ports.outbox.for_tenant(tenant.tenant_id, 10)
        assert await services.ports.outbox.deliveries(note.id) == [
            ("email", "pending", 0),
            ("webhook", "pending", 0),
        ]
        first.process.kill()
        first.process.wait(10)
    assert mails_to(sink, tenant.email) == []
    assert hooks_for(receiver, tenant.tenant_id) == []

    with running_app({**os.environ, **env}, tmp_path):
        sink.wait_for(lambda mails: any(m["To"] == tenant.email for m in mails))
        receiver.wait_for(lambda requests: len(requests) >= 1)
        await asyncio.sleep(QUIET_S)

    (mail,) = mails_to(sink, tenant.email)
    (hook,) = hooks_for(receiver, tenant.tenant_id)
    assert hook.headers["webhook-id"] == note.id
    assert mail["Message-ID"] == f"<{note.id}@tierkeeper.test>"
    assert verified(hook, tenant.secret)["data"]["kind"] == "messages_80"


async def test_two_deliverers_on_one_postgresql_send_each_notification_once(
    tmp_path: Path,
    postgres_url: str,
    sink: SmtpSink,
    receiver: Recorder,
    services_for: Any,
) -> None:
    """Two deliverers with their own connection pools (as two processes have) drain one
    outbox at once, in small batches, against a receiver slow enough that they overlap."""
    env = environ(tmp_path, postgres_url, sink)
    one = await services_for(env)
    two = await services_for(env)
    tenant = await seed(one, receiver, "pair")
    notes = 24
    for day in range(1, notes + 1):
        crossed = Threshold(tenant.tenant_id, LimitKind.MESSAGES, 80, f"2026-11-{day:02d}", 40, 50)
        assert await write_threshold(one, crossed) is not None

    def slow(request: RecordedRequest) -> dict[str, bool]:
        time.sleep(0.05)
        return {"received": True}

    receiver.response = slow
    assert one.deliverer is not None and two.deliverer is not None
    first, second = await asyncio.gather(one.deliverer.deliver_all(3), two.deliverer.deliver_all(3))

    assert first.sent > 0 and second.sent > 0, "both deliverers took a share"
    assert first.sent + second.sent == 2 * notes
    hook_ids = [h.headers["webhook-id"] for h in hooks_for(receiver, tenant.tenant_id)]
    mail_ids = [m["Message-ID"] for m in mails_to(sink, tenant.email)]
    assert len(hook_ids) == len(set(hook_ids)) == notes
    assert len(mail_ids) == len(set(mail_ids)) == notes
    assert {f"<{i}@tierkeeper.test>" for i in hook_ids} == set(mail_ids)
    for request in hooks_for(receiver, tenant.tenant_id):
        assert verified(request, tenant.secret)["type"] == "notification.messages_80"
    assert all(email.utils.parseaddr(m["To"])[1] == tenant.email for m in sink.messages)
    assert json.loads(hooks_for(receiver, tenant.tenant_id)[0].body)["data"]["percent"] == 80
