"""The notifications API and pages over the test client, on SQLite: the list and mark-read,
the channel settings with the webhook secret shown once, the banners on the pages and the
settings form (which works without JavaScript)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from domain.catalog import Catalog
from domain.ids import TenantId
from domain.metering import LimitKind, Threshold
from domain.notifications import channels_for, threshold_facts
from entrypoints.bootstrap import Services
from entrypoints.http.auth import CSRF_HEADER, SESSION_COOKIE, csrf_token_for
from tests.http.conftest import Customer, make_active, sign_up

pytestmark = pytest.mark.http


async def cross_cap(services: Services, tenant_id: TenantId, percent: int = 100) -> None:
    tier = services.catalog.tier("starter")
    limit = tier.messages_per_day
    day = services.ports.clock.now().date().isoformat()
    crossed = Threshold(tenant_id, LimitKind.MESSAGES, percent, day, limit * percent // 100, limit)
    facts, outbox = threshold_facts(crossed), services.ports.outbox
    assert outbox is not None
    at = services.ports.clock.now()
    assert await outbox.enqueue(facts, channels_for(facts.kind), at) is not None


async def test_the_list_shows_the_tenants_notifications_newest_first(
    client: AsyncTestClient[Any], services: Services, customer: Customer
) -> None:
    await cross_cap(services, customer.tenant_id, 80)
    await cross_cap(services, customer.tenant_id, 100)
    response = await client.get("/api/v1/notifications", headers=customer.headers)
    assert response.status_code == 200
    body = response.json()
    assert [n["kind"] for n in body] == ["messages_100", "messages_80"]
    assert set(body[0]) == {"id", "kind", "title", "body", "link", "created_at", "read_at"}
    assert body[0]["read_at"] is None
    assert body[0]["title"] == "Today's message cap is reached"


async def test_marking_read_is_204_and_another_tenants_id_is_404(
    client: AsyncTestClient[Any], services: Services, customer: Customer
) -> None:
    other = await sign_up(client)
    await cross_cap(services, customer.tenant_id)
    (note,) = (await client.get("/api/v1/notifications", headers=customer.headers)).json()
    path = f"/api/v1/notifications/{note['id']}/read"
    denied = await client.post(path, headers=other.headers)
    assert denied.status_code == 404
    assert denied.json()["code"] == "not_found"
    assert (await client.post(path, headers=customer.headers)).status_code == 204
    (read,) = (await client.get("/api/v1/notifications", headers=customer.headers)).json()
    assert read["read_at"] is not None


async def test_the_webhook_secret_is_answered_once_and_on_rotation(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    url = "/api/v1/settings/notifications"
    assert (await client.get(url, headers=customer.headers)).json() == {
        "email_enabled": True,
        "webhook_url": None,
    }
    hook = {"email_enabled": False, "webhook_url": "https://hooks.example.com/agent"}
    first = await client.put(url, json=hook, headers=customer.headers)
    assert first.status_code == 200
    secret = first.json()["webhook_secret"]
    assert secret.startswith("whsec_")
    again = await client.put(url, json=hook, headers=customer.headers)
    assert "webhook_secret" not in again.json()
    shown = await client.get(url, headers=customer.headers)
    assert shown.json() == hook
    assert secret not in shown.text
    rotated = await client.put(url, json={**hook, "rotate_secret": True}, headers=customer.headers)
    assert rotated.json()["webhook_secret"] not in (None, secret)


@pytest.mark.parametrize("bad", ["ftp://x.example/", "https://u:p@x.example/", "not a url"])
async def test_a_bad_webhook_url_is_422_naming_the_field(
    client: AsyncTestClient[Any], customer: Customer, bad: str
) -> None:
    response = await client.put(
        "/api/v1/settings/notifications", json={"webhook_url": bad}, headers=customer.headers
    )
    assert response.status_code == 422
    assert response.json()["field"] == "webhook_url"
    unchanged = await client.get("/api/v1/settings/notifications", headers=customer.headers)
    assert unchanged.json()["webhook_url"] is None


async def test_notification_endpoints_need_a_customer(client: AsyncTestClient[Any]) -> None:
    assert (await client.get("/api/v1/notifications")).status_code == 401
    assert (await client.get("/api/v1/settings/notifications")).status_code == 401


async def test_the_pages_show_the_cap_banner_with_an_upgrade_button_and_dismiss_it(
    client: AsyncTestClient[Any], services: Services, customer: Customer, catalog: Catalog
) -> None:
    await make_active(services, customer.tenant_id)
    await cross_cap(services, customer.tenant_id)
    client.cookies.set(SESSION_COOKIE, customer.token)
    page = await client.get("/settings")
    assert page.status_code == 200
    assert 'data-testid="banner-messages_100"' in page.text
    assert "Upgrade your plan" in page.text
    assert f"all {catalog.tier('starter').messages_per_day} messages" in page.text
    (note_id,) = re.findall(r'action="/notifications/([^"/]+)/dismiss"', page.text)
    dismissed = await client.post(
        f"/notifications/{note_id}/dismiss",
        data={"csrf_token": csrf_token_for(customer.token)},
        headers={"referer": "http://testserver.local/settings"},
        follow_redirects=False,
    )
    assert dismissed.status_code == 303
    assert dismissed.headers["location"] == "/settings"
    assert "banner-messages_100" not in (await client.get("/settings")).text


async def test_dismissing_without_the_csrf_token_is_refused(
    client: AsyncTestClient[Any], services: Services, customer: Customer
) -> None:
    await cross_cap(services, customer.tenant_id)
    (note,) = (await client.get("/api/v1/notifications", headers=customer.headers)).json()
    client.cookies.set(SESSION_COOKIE, customer.token)
    refused = await client.post(f"/notifications/{note['id']}/dismiss", data={})
    assert refused.status_code == 403
    listed = await client.get("/api/v1/notifications", headers=customer.headers)
    assert listed.json()[0]["read_at"] is None


async def test_the_welcome_shows_on_the_first_page_after_activation_only(
    client: AsyncTestClient[Any], services: Services, customer: Customer
) -> None:
    await make_active(services, customer.tenant_id)  # writes the welcome with the change
    client.cookies.set(SESSION_COOKIE, customer.token)
    first = await client.get("/settings")
    overview = await services.tenants.overview(customer.tenant_id)
    assert 'data-testid="banner-welcome"' in first.text
    assert overview.welcome_message.split(".")[0] in first.text
    assert 'data-testid="banner-welcome"' not in (await client.get("/settings")).text


async def test_the_settings_form_saves_and_shows_the_secret_once_without_javascript(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    client.cookies.set(SESSION_COOKIE, customer.token)
    page = await client.get("/settings/notifications")
    assert page.status_code == 200
    assert 'name="webhook_url"' in page.text
    saved = await client.post(
        "/settings/notifications",
        data={
            "csrf_token": csrf_token_for(customer.token),
            "webhook_url": "https://hooks.example.com/agent",
        },
    )
    assert saved.status_code == 200
    (secret,) = re.findall(r'<code id="webhook-secret-value">(whsec_[^<]+)</code>', saved.text)
    later = await client.get("/settings/notifications")
    assert secret not in later.text
    assert "https://hooks.example.com/agent" in later.text
    assert 'name="email_enabled" checked' not in later.text, "unchecked box: mail off"


async def test_the_settings_form_names_a_bad_url(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    client.cookies.set(SESSION_COOKIE, customer.token)
    response = await client.post(
        "/settings/notifications",
        data={"csrf_token": csrf_token_for(customer.token), "webhook_url": "ftp://x.example"},
    )
    assert response.status_code == 422
    assert 'data-testid="settings-error"' in response.text
    assert 'aria-invalid="true"' in response.text


async def test_the_cookie_api_needs_the_csrf_header_to_change_settings(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    client.cookies.set(SESSION_COOKIE, customer.token)
    body = {"webhook_url": "https://hooks.example.com/agent"}
    refused = await client.put("/api/v1/settings/notifications", json=body)
    assert refused.status_code == 403
    accepted = await client.put(
        "/api/v1/settings/notifications",
        json=body,
        headers={CSRF_HEADER: csrf_token_for(customer.token)},
    )
    assert accepted.status_code == 200
