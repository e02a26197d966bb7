"""The account pages in Chromium with JavaScript disabled: sessions listed and ended, log out
everywhere, password change, forgotten password with the mailed code, email change, account
deletion; every form posts to the server and no password or code appears in a URL or in the
server's log."""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from entrypoints.bootstrap import Services
from entrypoints.http.auth import SESSION_COOKIE
from tests.browser.harness import (
    DESKTOP,
    LiveApp,
    accessibility_problems,
    screenshot,
    with_services,
)
from tests.support.mailbox import mailed_code as read_mailed_code

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase"
_emails = itertools.count(1)


@pytest.fixture
def no_js(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    yield context
    context.close()


def signed_up(page: Page, app: LiveApp) -> str:
    """A customer whose session cookie this browser holds (signed up over the API)."""
    email = f"account{next(_emails)}@example.com"
    response = page.request.post(
        app.url("/api/v1/auth/signup"),
        data=json.dumps({"email": email, "password": PASSWORD}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 201, response.text()
    return email


def api_login(page: Page, app: LiveApp, email: str, password: str) -> int:
    """A login from another client (no cookies of this browser)."""
    request = urllib.request.Request(  # noqa: S310 - loopback only
        app.url("/api/v1/auth/login"),
        data=json.dumps({"email": email, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def mailed_code(app: LiveApp, recipient: str, kind: str) -> str:
    """The code in the newest ``kind`` mail delivered to ``recipient``: what is due is sent
    now (as the server's background deliverer would), as ``.eml`` files under var/mail."""

    async def deliver(services: Services) -> None:
        assert services.deliverer is not None
        await services.deliverer.deliver_all()

    with_services(app.env, deliver)
    return read_mailed_code(Path(app.env["TIERKEEPER_VAR_DIR"]) / "mail", recipient, kind)


def urls_of(page: Page) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    return seen


def test_sessions_are_listed_ended_and_ended_everywhere_without_javascript(
    no_js: BrowserContext, live_app: LiveApp
) -> None:
    page = no_js.new_page()
    email = signed_up(page, live_app)
    other = no_js.browser.new_context()  # type: ignore[union-attr]
    signed_in = other.request.post(
        live_app.url("/api/v1/auth/login"),
        data=json.dumps({"email": email, "password": PASSWORD}),
        headers={"Content-Type": "application/json"},
    )
    assert signed_in.status == 200
    page.goto(live_app.url("/account"))
    assert accessibility_problems(page) == []
    screenshot(page, "account-desktop")
    rows = page.locator("tbody tr")
    assert rows.count() == 2
    assert "This browser" in rows.nth(0).inner_text()
    rows.nth(1).get_by_role("button", name="End session").click()
    page.wait_for_url(live_app.url("/account?done=session"))
    assert page.locator("tbody tr").count() == 1
    assert other.request.get(live_app.url("/api/v1/tenant")).status == 401
    other.close()
    page.get_by_role("button", name="Log out everywhere").click()
    page.wait_for_url(live_app.url("/login"))
    assert [c for c in no_js.cookies(live_app.base_url) if c["name"] == SESSION_COOKIE] == []


def test_password_change_and_email_change_by_form(no_js: BrowserContext, live_app: LiveApp) -> None:
    page = no_js.new_page()
    seen = urls_of(page)
    email = signed_up(page, live_app)
    page.goto(live_app.url("/account"))
    page.get_by_label("Current password").fill("not the password")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    assert "password is wrong" in page.locator(".form-error").inner_text()
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url(live_app.url("/account?done=password"))
    assert api_login(page, live_app, email, NEW_PASSWORD) == 200

    moved = email.replace("@", "-moved@")
    page.goto(live_app.url("/account"))
    page.get_by_label("New email").fill(moved)
    page.locator("#email_password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Send the code").click()
    page.wait_for_url(live_app.url("/account?done=email"))
    code = mailed_code(live_app, moved, "verify_email")
    page.goto(live_app.url("/verify-email"))
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Confirm my address").click()
    page.wait_for_url(live_app.url("/verify-email?done=verified"))
    assert api_login(page, live_app, moved, NEW_PASSWORD) == 200
    secrets = (PASSWORD, NEW_PASSWORD, code)
    assert not [u for u in seen if any(s.replace(" ", "+") in u or s in u for s in secrets)]
    assert not any(s in live_app.log() for s in secrets)


def test_a_forgotten_password_is_reset_with_the_mailed_code_once(
    no_js: BrowserContext, live_app: LiveApp
) -> None:
    page = no_js.new_page()
    seen = urls_of(page)
    email = signed_up(page, live_app)
    no_js.clear_cookies()
    page.goto(live_app.url("/login"))
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Mail me a code").click()
    page.wait_for_url(live_app.url("/reset-password?done=reset-asked"))
    code = mailed_code(live_app, email, "password_reset")
    page.get_by_label("Code").fill(code)
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the new password").click()
    page.wait_for_url(live_app.url("/login?done=reset"))
    assert api_login(page, live_app, email, NEW_PASSWORD) == 200
    page.goto(live_app.url("/reset-password"))
    page.get_by_label("Code").fill(code)
    page.get_by_label("New password").fill("yet another passphrase")
    page.get_by_role("button", name="Set the new password").click()
    assert "wrong, used or expired" in page.locator(".form-error").inner_text()
    assert not [u for u in seen if code in u or "passphrase" in u]
    assert code not in live_app.log()


def test_the_account_is_deleted_by_form_with_its_password(
    no_js: BrowserContext, live_app: LiveApp
) -> None:
    page = no_js.new_page()
    email = signed_up(page, live_app)
    tenant_id = page.request.get(live_app.url("/api/v1/tenant")).json()["id"]
    config_dir = Path(live_app.env["TIERKEEPER_CONFIG_ROOT"]) / tenant_id
    assert config_dir.exists()
    page.goto(live_app.url("/account"))
    page.locator("#delete_password").fill(PASSWORD)
    page.get_by_role("button", name="Delete my account").click()
    page.wait_for_url(live_app.url("/account-deleted?done=deleted"))
    assert "Your account is deleted" in page.content()
    assert not config_dir.exists()
    assert api_login(page, live_app, email, PASSWORD) == 401


def test_the_one_click_link_fills_the_code_from_its_fragment(
    browser: Browser, live_app: LiveApp
) -> None:
    context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    page = context.new_page()
    seen = urls_of(page)
    email = signed_up(page, live_app)
    context.clear_cookies()
    page.goto(live_app.url("/forgot-password"))
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Mail me a code").click()
    page.wait_for_url(live_app.url("/reset-password?done=reset-asked"))
    code = mailed_code(live_app, email, "password_reset")
    page.goto(live_app.url(f"/reset-password#code={code}"))
    page.wait_for_function("() => document.getElementById('token').value.length > 0")
    assert page.get_by_label("Code").input_value() == code
    assert "#" not in page.url
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the new password").click()
    page.wait_for_url(live_app.url("/login?done=reset"))
    assert api_login(page, live_app, email, NEW_PASSWORD) == 200
    assert not [u for u in seen if code in u]
    context.close()


def test_a_wrong_verification_code_is_said_on_the_page(
    no_js: BrowserContext, live_app: LiveApp
) -> None:
    page = no_js.new_page()
    page.goto(live_app.url("/verify-email"))
    page.get_by_label("Code").fill("tkm_not-a-real-code")
    page.get_by_role("button", name="Confirm my address").click()
    assert "wrong, used or expired" in page.locator(".form-error").inner_text()


def test_the_address_is_confirmed_with_the_code_from_a_new_mail(
    no_js: BrowserContext, live_app: LiveApp
) -> None:
    page = no_js.new_page()
    email = signed_up(page, live_app)
    page.goto(live_app.url("/account"))
    assert "is not confirmed yet" in page.content()
    page.get_by_role("button", name="Mail me a new code").click()
    page.wait_for_url(live_app.url("/account?done=verification-sent"))
    page.goto(live_app.url("/verify-email"))
    page.get_by_label("Code").fill(mailed_code(live_app, email, "verify_email"))
    page.get_by_role("button", name="Confirm my address").click()
    page.wait_for_url(live_app.url("/verify-email?done=verified"))
    page.goto(live_app.url("/account"))
    assert f"{email} is confirmed" in page.content()
