"""Every form with JavaScript disabled: sign up, log in, choose a plan, save and remove a
key, log out; all by POST, and no password or key in any URL the browser requested or in
any line the server logged."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, expect

from tests.browser.harness import DESKTOP, CheckoutServer, LiveApp

PASSWORD = "no-script passphrase 7Qx"
KEY = "sk-proj-nojsbrowserkey0001Zq9T"
EMAIL = "no-script@example.com"


@pytest.fixture
def no_js(browser: Browser) -> Iterator[tuple[BrowserContext, list[str]]]:
    context = browser.new_context(
        viewport=DESKTOP,  # type: ignore[arg-type]
        java_script_enabled=False,
        locale="en-US",
        timezone_id="Europe/Berlin",
    )
    context.set_default_timeout(15_000)
    urls: list[str] = []

    def seen(request: Request) -> None:
        urls.append(f"{request.method} {request.url}")

    context.on("request", seen)
    yield context, urls
    context.close()


def test_every_form_works_by_post_without_javascript_and_no_secret_leaks(
    no_js: tuple[BrowserContext, list[str]], live_app: LiveApp, checkout_stub: CheckoutServer
) -> None:
    context, urls = no_js
    page: Page = context.new_page()
    page.goto(live_app.url("/signup"))

    # Sign up: a short password first, so the server answers with the field error.
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Time zone", exact=True).select_option("America/Sao_Paulo")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#password-error")).to_contain_text("at least 10 characters")
    expect(page.get_by_label("Email", exact=True)).to_have_value(EMAIL)
    expect(page.get_by_label("Time zone", exact=True)).to_have_value("America/Sao_Paulo")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    # No script reads the browser's zone: the customer picks it, kept across the re-render.
    page.get_by_label("Time zone", exact=True).select_option("Europe/Berlin")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(r"/onboarding\?done=signed-up$"))
    expect(page.locator("#flash")).to_contain_text("Your account is ready")
    tenant = page.request.get(live_app.url("/api/v1/tenant")).json()
    tenant_id: str = tenant["id"]
    assert tenant["timezone"] == "Europe/Berlin"

    # Onboarding: choosing a plan posts the form and lands on the checkout page.
    page.get_by_role("button", name="Choose Bring Your Own Key").click()
    page.wait_for_url(re.compile(r"/pay/cs_test_\d+$"))
    assert checkout_stub.sessions[-1]["client_reference_id"] == tenant_id
    live_app.set_tier(tenant_id, "byok")

    # Save a key: the server saves it, tests it, and shows the result.
    page.goto(live_app.url("/settings/ai-provider"))
    # the script would reveal the show/hide button: hidden proves no script ran
    expect(page.locator('[data-action="toggle-key"]')).to_be_hidden()
    page.get_by_label("API key", exact=True).fill(KEY)
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/settings/ai-provider\?done=saved$"))
    expect(page.locator("#test-result")).to_have_attribute("data-result", "valid")
    expect(page.get_by_test_id("key-mask")).to_have_text("sk-…" + KEY[-4:])
    expect(page.get_by_test_id("key-status")).to_contain_text("Working")
    assert KEY not in page.content()

    # Remove it (no confirm dialog without a script: the button says what it does).
    page.get_by_role("button", name="Remove key").click()
    page.wait_for_url(re.compile(r"\?done=removed$"))
    expect(page.locator("#flash")).to_contain_text("removed")
    expect(page.get_by_test_id("key-mask")).to_have_count(0)

    # Log out, log in again (to the page asked for).
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login\?done=logged-out$"))
    page.goto(live_app.url("/settings"))
    page.wait_for_url(re.compile(r"/login\?next=/settings$"))
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/settings$"))
    expect(page.get_by_test_id("plan-name")).to_contain_text("Bring Your Own Key")

    posts = [u for u in urls if u.startswith("POST ")]
    for path in ("/signup", "/onboarding", "/settings/ai-provider", "/logout", "/login"):
        assert any(u.split("?")[0].endswith(path) for u in posts), (path, posts)
    for url in urls:
        assert PASSWORD not in url and KEY not in url and "password=" not in url, url
    log = live_app.log()
    assert "POST" in log and "/settings/ai-provider" in log, "the server logged the requests"
    assert PASSWORD not in log
    assert KEY not in log
    assert KEY[-12:] not in log
