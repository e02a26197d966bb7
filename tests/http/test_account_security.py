"""Accounts over HTTP on the real embedded adapters: throttled logins (429 + Retry-After),
cross-site and non-JSON requests refused, login CSRF with a live session, no-store on token
answers, sessions listed and revoked, log out everywhere, password change, reset and
verification codes from the mail the deliverer sends, email change, account deletion."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from domain.ids import TenantId
from domain.throttle import FREE_FAILURES, KEY_TESTS_PER_WINDOW
from entrypoints.bootstrap import Services, build_services
from entrypoints.http.app import create_app
from entrypoints.http.auth import CSRF_HEADER, SESSION_COOKIE, csrf_token_for
from entrypoints.settings import Settings
from tests.http.conftest import (
    PASSWORD,
    TEST_PASSWORD_HASHER,
    Customer,
    http_environ,
    key_for,
    sign_up,
)
from tests.support.mailbox import SUBJECTS, code_in, delivered, mailed_code
from tests.support.provider_stub import ProviderStub, refused_url
from tests.support.smtp_sink import smtp_sink

pytestmark = pytest.mark.http

NEW_PASSWORD = "another good password"


def database(environ: dict[str, str]) -> Path:
    return Path(environ["TIERKEEPER_DATABASE_URL"].removeprefix("sqlite:///"))


async def last_code(services: Services, environ: dict[str, str], recipient: str, kind: str) -> str:
    """The single-use code of the newest mail of ``kind`` delivered to ``recipient``: the
    deliverer sends what is due (the test app runs no background deliverer) as ``.eml``
    files under ``var/mail``, read back like a mailbox."""
    assert services.deliverer is not None
    await services.deliverer.deliver_all()
    return mailed_code(mail_dir(environ), recipient, kind)


def mail_dir(environ: dict[str, str]) -> Path:
    return Path(environ["TIERKEEPER_VAR_DIR"]) / "mail"


async def login(client: AsyncTestClient[Any], email: str, password: str = PASSWORD) -> Any:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    client.cookies.clear()
    return response


# --- throttling -----------------------------------------------------------------------------


async def test_repeated_failures_are_429_with_retry_after_and_the_right_password_works_after(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    for _ in range(FREE_FAILURES):
        assert (await login(client, customer.email, "wrong password!")).status_code == 401
    refused = await login(client, customer.email, PASSWORD)
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_attempts"
    retry_after = int(refused.headers["retry-after"])
    assert retry_after >= 1
    await asyncio.sleep(retry_after)
    accepted = await login(client, customer.email, PASSWORD)
    assert accepted.status_code == 200
    assert accepted.json()["token"]


# --- cross-site and content types -----------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
     {"Origin": "null"}, {"Sec-Fetch-Site": "same-site"}],
)  # fmt: skip
async def test_a_cross_site_login_is_refused_before_anything_happens(
    client: AsyncTestClient[Any], customer: Customer, headers: dict[str, str]
) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"email": customer.email, "password": PASSWORD}, headers=headers
    )
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


async def test_a_same_origin_browser_login_is_accepted(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    response = await client.post(
        "/api/v1/auth/login",
        json={"email": customer.email, "password": PASSWORD},
        headers={"Origin": "http://testserver.local", "Sec-Fetch-Site": "same-origin"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_json_smuggled_in_another_content_type_is_refused(
    client: AsyncTestClient[Any], content_type: str
) -> None:
    body = b'{"email": "smuggled@example.com", "password": "correct horse battery"}'
    response = await client.post(
        "/api/v1/auth/signup", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    retry = await client.post(
        "/api/v1/auth/login", json={"email": "smuggled@example.com", "password": PASSWORD}
    )
    assert retry.status_code == 401


async def test_login_with_a_live_session_cookie_needs_its_csrf_token(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    client.cookies.set(SESSION_COOKIE, customer.token)
    body = {"email": customer.email, "password": PASSWORD}
    refused = await client.post("/api/v1/auth/login", json=body)
    assert refused.status_code == 403
    client.cookies.set(SESSION_COOKIE, customer.token)
    accepted = await client.post(
        "/api/v1/auth/login", json=body, headers={CSRF_HEADER: csrf_token_for(customer.token)}
    )
    assert accepted.status_code == 200


async def test_token_answers_are_not_stored_by_caches(client: AsyncTestClient[Any]) -> None:
    signup = await client.post(
        "/api/v1/auth/signup", json={"email": "cache@example.com", "password": PASSWORD}
    )
    client.cookies.clear()
    logged = await login(client, "cache@example.com")
    for response in (signup, logged):
        assert response.status_code in (200, 201), response.text
        assert response.headers["cache-control"] == "no-store"


async def test_a_second_signup_does_not_say_that_the_account_exists(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    response = await client.post(
        "/api/v1/auth/signup", json={"email": customer.email, "password": "some other password"}
    )
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "already" not in detail and "exist" not in detail and customer.email not in detail


# --- sessions -------------------------------------------------------------------------------


async def test_sessions_are_listed_revoked_one_by_one_and_all_at_once(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    second = (await login(client, customer.email)).json()["token"]
    third = (await login(client, customer.email)).json()["token"]
    mine = {"Authorization": f"Bearer {third}"}
    listed = await client.get("/api/v1/auth/sessions", headers=mine)
    assert listed.status_code == 200
    sessions = listed.json()
    assert [s["current"] for s in sessions] == [False, False, True]
    assert set(sessions[0]) == {"id", "created_at", "last_used_at", "expires_at", "current"}
    revoked = await client.delete(f"/api/v1/auth/sessions/{sessions[0]['id']}", headers=mine)
    assert revoked.status_code == 204
    assert (await client.get("/api/v1/tenant", headers=customer.headers)).status_code == 401
    again = await client.delete(f"/api/v1/auth/sessions/{sessions[0]['id']}", headers=mine)
    assert again.status_code == 404
    everywhere = await client.post("/api/v1/auth/logout-all", headers=mine)
    assert everywhere.status_code == 204
    for token in (second, third):
        gone = await client.get("/api/v1/tenant", headers={"Authorization": f"Bearer {token}"})
        assert gone.status_code == 401


async def test_another_customers_session_is_not_found(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    other = await sign_up(client)
    theirs = (await client.get("/api/v1/auth/sessions", headers=other.headers)).json()[0]["id"]
    response = await client.delete(f"/api/v1/auth/sessions/{theirs}", headers=customer.headers)
    assert response.status_code == 404
    assert (await client.get("/api/v1/tenant", headers=other.headers)).status_code == 200


# --- password change, reset, verification, email change -------------------------------------


async def test_a_password_change_ends_the_other_sessions(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    other = (await login(client, customer.email)).json()["token"]
    changed = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=customer.headers,
    )
    assert changed.status_code == 204
    assert (await client.get("/api/v1/tenant", headers=customer.headers)).status_code == 200
    gone = await client.get("/api/v1/tenant", headers={"Authorization": f"Bearer {other}"})
    assert gone.status_code == 401
    assert (await login(client, customer.email, NEW_PASSWORD)).status_code == 200


async def test_a_wrong_current_password_names_the_field(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    response = await client.post(
        "/api/v1/auth/password",
        json={"current_password": "not my password", "new_password": NEW_PASSWORD},
        headers=customer.headers,
    )
    assert response.status_code == 422
    assert response.json()["field"] == "current_password"


async def test_a_reset_code_from_the_mail_works_once(
    client: AsyncTestClient[Any], customer: Customer, services: Services, environ: dict[str, str]
) -> None:
    for email in (customer.email, "nobody@example.com"):
        asked = await client.post("/api/v1/auth/password-reset", json={"email": email})
        assert asked.status_code == 202
    code = await last_code(services, environ, customer.email, "password_reset")
    body = {"token": code, "password": NEW_PASSWORD}
    confirmed = await client.post("/api/v1/auth/password-reset/confirm", json=body)
    assert confirmed.status_code == 204
    assert (await client.get("/api/v1/tenant", headers=customer.headers)).status_code == 401
    reused = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": code, "password": "third password!"}
    )
    assert reused.status_code == 422
    assert reused.json()["field"] == "token"
    assert (await login(client, customer.email, NEW_PASSWORD)).status_code == 200
    assert [m for m in delivered(mail_dir(environ)) if m["To"] == "nobody@example.com"] == []


async def test_an_email_change_applies_when_the_mailed_code_comes_back(
    client: AsyncTestClient[Any], customer: Customer, services: Services, environ: dict[str, str]
) -> None:
    asked = await client.post(
        "/api/v1/auth/email",
        json={"password": PASSWORD, "email": "moved@example.com"},
        headers=customer.headers,
    )
    assert asked.status_code == 202
    code = await last_code(services, environ, "moved@example.com", "verify_email")
    to_old = [m for m in delivered(mail_dir(environ)) if m["To"] == customer.email]
    assert all(code not in m.as_string() for m in to_old), "proved at the new address only"
    verified = await client.post("/api/v1/auth/verify-email", json={"token": code})
    assert verified.status_code == 204
    assert (await login(client, "moved@example.com")).status_code == 200
    assert (await login(client, customer.email)).status_code == 401


# --- deletion -------------------------------------------------------------------------------


async def test_deleting_the_account_removes_the_key_the_configs_and_the_email(
    client: AsyncTestClient[Any],
    customer: Customer,
    services: Services,
    environ: dict[str, str],
) -> None:
    saved = await client.put(
        "/api/v1/settings/llm-config/",
        json={"provider": "openai", "api_key": key_for("openai"), "model_preference": "gpt-4.1"},
        headers=customer.headers,
    )
    assert saved.status_code == 200
    config_dir = Path(environ["TIERKEEPER_CONFIG_ROOT"]) / customer.tenant_id
    assert config_dir.exists()
    wrong = await client.request(
        "DELETE", "/api/v1/account", json={"password": "not my password"}, headers=customer.headers
    )
    assert wrong.status_code == 422 and wrong.json()["field"] == "password"
    deleted = await client.request(
        "DELETE", "/api/v1/account", json={"password": PASSWORD}, headers=customer.headers
    )
    assert deleted.status_code == 204
    assert not config_dir.exists()
    with sqlite3.connect(database(environ)) as db:
        dump = "\n".join(db.iterdump())
        status = db.execute(
            "SELECT status FROM tenants WHERE id = ?", (customer.tenant_id,)
        ).fetchone()
        credentials = db.execute(
            "SELECT count(*) FROM credentials WHERE tenant_id = ?", (customer.tenant_id,)
        ).fetchone()
    assert customer.email not in dump
    assert status == ("canceled",)
    assert credentials == (0,)
    assert (await client.get("/api/v1/tenant", headers=customer.headers)).status_code == 401
    assert (await login(client, customer.email)).status_code == 401


async def test_a_deleted_accounts_config_is_never_written_again(
    client: AsyncTestClient[Any],
    customer: Customer,
    services: Services,
    environ: dict[str, str],
) -> None:
    """After deletion nothing brings the tenant's OpenClaw files back: not ``configs
    regenerate`` (nor ``serve``'s start-up regeneration), not a later tier change such as
    Stripe's closing events make."""
    config_dir = Path(environ["TIERKEEPER_CONFIG_ROOT"]) / customer.tenant_id
    await services.configs.regenerate()
    assert config_dir.exists()
    deleted = await client.request(
        "DELETE", "/api/v1/account", json={"password": PASSWORD}, headers=customer.headers
    )
    assert deleted.status_code == 204
    other = await sign_up(client)
    summary = await services.configs.regenerate()
    assert summary.failed == ()
    assert not config_dir.exists()
    assert (Path(environ["TIERKEEPER_CONFIG_ROOT"]) / other.tenant_id).exists()
    await services.tenants.change_tier(TenantId(customer.tenant_id), "premium")
    assert await services.configs.write(TenantId(customer.tenant_id)) is False
    assert not config_dir.exists()


async def test_testing_keys_is_limited_per_tenant(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    """Within at most two windows (the calls may straddle a minute), the tenant is refused."""
    body = {"provider": "openai", "api_key": key_for("openai"), "model_preference": "gpt-4.1"}
    url = "/api/v1/settings/llm-config/test"
    statuses: list[int] = []
    last = None
    while len(statuses) <= 2 * KEY_TESTS_PER_WINDOW:
        last = await client.post(url, json=body, headers=customer.headers)
        statuses.append(last.status_code)
        if last.status_code != 200:
            break
    assert last is not None and last.status_code == 429, statuses
    assert statuses.count(200) >= KEY_TESTS_PER_WINDOW
    assert last.json()["code"] == "too_many_attempts"
    assert 1 <= int(last.headers["retry-after"]) <= 60
    other = await sign_up(client)
    assert (await client.post(url, json=body, headers=other.headers)).status_code == 200


async def test_infrastructure_failures_do_not_name_internal_hosts_or_vault_mounts(
    tmp_path: Path, sqlite_template: Path, provider_stub: ProviderStub
) -> None:
    vault_addr = refused_url().rsplit("/", 1)[0]
    environ = http_environ(
        tmp_path,
        sqlite_template,
        provider_stub,
        TIERKEEPER_KEY_STORE="vault",
        TIERKEEPER_VAULT_ADDR=vault_addr,
        TIERKEEPER_VAULT_TOKEN="s.nothing",
    )
    services = await build_services(
        Settings.from_environ(environ), password_hasher=TEST_PASSWORD_HASHER
    )
    try:
        async with AsyncTestClient(create_app(services)) as client:
            customer = await sign_up(client)
            put = await client.put(
                "/api/v1/settings/llm-config/",
                json={"provider": "openai", "api_key": key_for("openai"),
                      "model_preference": "gpt-4o"},
                headers=customer.headers,
            )  # fmt: skip
    finally:
        await services.close()
    assert put.status_code == 503
    assert put.json()["code"] == "key_store_unavailable"
    host = vault_addr.split("//", 1)[1]
    for internal in (host, "Vault", "transit", "vault"):
        assert internal not in put.json()["detail"]


async def test_the_api_reference_loads_no_script_and_forbids_any(
    client: AsyncTestClient[Any],
) -> None:
    page = await client.get("/schema")
    assert page.status_code == 200
    assert "<script" not in page.text.lower()
    assert "cdn" not in page.text.lower()
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "/api/v1/auth/sessions" in page.text
    document = await client.get("/schema/openapi.json")
    assert document.status_code == 200
    assert "/api/v1/account" in document.json()["paths"]


async def test_probing_taken_emails_by_signup_is_throttled(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    body = {"email": customer.email, "password": "some other password"}
    for _ in range(FREE_FAILURES):
        assert (await client.post("/api/v1/auth/signup", json=body)).status_code == 409
    refused = await client.post(
        "/api/v1/auth/signup", json={"email": "new@example.com", "password": PASSWORD}
    )
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_attempts"
    assert int(refused.headers["retry-after"]) >= 1


async def test_a_reset_asked_over_http_is_delivered_by_smtp_and_its_link_works_once(
    tmp_path: Path,
    sqlite_template: Path,
    provider_stub: ProviderStub,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with smtp_sink() as sink:
        environ = http_environ(
            tmp_path, sqlite_template, provider_stub, TIERKEEPER_SMTP_URL=sink.url
        )
        services = await build_services(
            Settings.from_environ(environ), password_hasher=TEST_PASSWORD_HASHER
        )
        try:
            async with AsyncTestClient(create_app(services)) as client:
                customer = await sign_up(client)
                asked = await client.post(
                    "/api/v1/auth/password-reset", json={"email": customer.email}
                )
                assert asked.status_code == 202
                assert services.deliverer is not None
                await services.deliverer.deliver_all()
                mails = sink.wait_for(
                    lambda ms: any(m["Subject"] == SUBJECTS["password_reset"] for m in ms)
                )
                (mail,) = [m for m in mails if m["Subject"] == SUBJECTS["password_reset"]]
                assert mail["To"] == customer.email
                code = code_in(mail)
                text = mail.get_body(preferencelist=("plain",)).get_content()
                link = next(w for w in text.split() if w.endswith(f"#code={code}"))
                assert link.startswith(services.settings.public_url + "/reset-password#")
                page = await client.get(link.removeprefix(services.settings.public_url))
                assert page.status_code == 200
                body = {"token": code, "password": NEW_PASSWORD}
                first = await client.post("/api/v1/auth/password-reset/confirm", json=body)
                again = await client.post("/api/v1/auth/password-reset/confirm", json=body)
                assert (first.status_code, again.status_code) == (204, 422)
                assert (await login(client, customer.email, NEW_PASSWORD)).status_code == 200
        finally:
            await services.close()
    assert code not in caplog.text, "the one-time code reaches no log"
    database_dump = "\n".join(sqlite3.connect(database(environ)).iterdump())
    assert code not in database_dump, "the link is stored encrypted"
