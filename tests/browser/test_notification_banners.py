"""The notification banners and the welcome message in Chromium, against the real app: the
welcome on the first page after activation (and only there), the cap-reached banner with the
tenant's local reset time and an upgrade button, the budget at 80 %, a rejected key with the
model now answering on the platform's keys, dismissing a banner, and the settings section.
One banner per fact: where a page shows a fact's live state itself (paused, key rejected on
Plan & usage and AI Provider), the notification about it is not shown there too."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

from playwright.sync_api import Page, expect

from domain.catalog import Catalog
from domain.notifications import local_time
from tests.browser.harness import REPO, LiveApp
from tests.browser.test_pages import OPENAI_KEY, capture, catalog, make_active, sign_up

__all__ = ["catalog"]

TIERKEEPER = str(Path(sys.executable).parent / "tierkeeper")
OTHER_PAGE = "/settings/notifications"
"""A page with no state banner of its own: every current notification shows as a banner."""


def activate_by_cli(app: LiveApp, tenant_id: str, tier: str) -> str:
    """``tierkeeper tenants set-tier ID TIER --status active``, as an operator runs it."""
    done = subprocess.run(
        [TIERKEEPER, "tenants", "set-tier", tenant_id, tier,
         "--status", "active"],
        env=dict(app.env), cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout


def welcome_by_cli(app: LiveApp, tenant_id: str) -> str:
    done = subprocess.run(
        [TIERKEEPER, "tenants", "welcome", tenant_id],
        env=dict(app.env), cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def csrf(page: Page) -> dict[str, str]:
    token = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    return {"x-csrf-token": token}


def test_the_welcome_shows_on_the_first_page_after_activation_only(
    desktop: Page, live_app: LiveApp, catalog: Catalog
) -> None:
    page = desktop
    tenant_id = sign_up(page, live_app)
    expect(page.get_by_test_id("banner-welcome")).to_have_count(0)
    activate_by_cli(live_app, tenant_id, "starter")
    printed = welcome_by_cli(live_app, tenant_id)
    starter = catalog.tier("starter")
    assert f"up to {starter.messages_per_day} messages a day" in printed

    page.goto(live_app.url("/settings"))
    welcome = page.get_by_test_id("banner-welcome")
    expect(welcome).to_be_visible()
    expect(welcome.get_by_role("heading")).to_have_text(f"Welcome to the {starter.name} plan")
    expect(welcome).to_contain_text(printed)
    capture(page, "banner-welcome-desktop")

    page.reload()
    expect(page.get_by_test_id("banner-welcome")).to_have_count(0)
    listed = page.request.get(live_app.url("/api/v1/notifications")).json()
    assert [n["kind"] for n in listed] == ["welcome"]
    assert listed[0]["read_at"] is not None


def test_the_cap_banner_shows_the_local_reset_time_and_an_upgrade_button(
    desktop: Page, live_app: LiveApp, catalog: Catalog
) -> None:
    page = desktop
    tenant_id = sign_up(page, live_app)
    make_active(live_app, tenant_id, "starter")
    page.goto(live_app.url("/settings"))
    patched = page.request.patch(
        live_app.url("/api/v1/tenant"), data={"timezone": "Asia/Tokyo"}, headers=csrf(page)
    )
    assert patched.ok, patched.text()
    starter = catalog.tier("starter")
    token = live_app.service_token()
    for n in range(starter.messages_per_day):
        message = {"tenant_id": tenant_id, "message_id": f"cap-{n}", "max_tokens": 100}
        assert live_app.gateway("admit", message, token)["admitted"] is True

    page.goto(live_app.url("/settings"))
    # one banner per fact: Plan & usage shows the pause itself, not the notification too
    expect(page.get_by_test_id("paused-banner")).to_have_count(1)
    expect(page.get_by_test_id("banner-messages_100")).to_have_count(0)
    expect(page.get_by_text("Today's message cap is reached")).to_have_count(0)
    expect(page.get_by_test_id("banner-messages_80")).to_be_visible()
    capture(page, "settings-one-banner-per-fact-cap-desktop")

    page.goto(live_app.url(OTHER_PAGE))
    expect(page.get_by_test_id("paused-banner")).to_have_count(0)
    cap = page.get_by_test_id("banner-messages_100")
    expect(cap).to_be_visible()
    expect(cap.get_by_role("heading")).to_have_text("Today's message cap is reached")
    usage = page.request.get(live_app.url("/api/v1/usage")).json()
    resets = local_time(datetime.fromisoformat(usage["day"]["resets_at"]), "Asia/Tokyo")
    expect(cap).to_contain_text(f"The cap resets on {resets}.")
    expect(cap).to_contain_text("(Asia/Tokyo)")
    upgrade = cap.get_by_role("link", name="Upgrade your plan")
    expect(upgrade).to_have_attribute("href", "/onboarding")
    expect(page.get_by_test_id("banner-messages_80")).to_be_visible()
    capture(page, "banner-cap-reached-desktop")

    cap.get_by_role("button", name="Dismiss").click()
    page.wait_for_url(live_app.url(OTHER_PAGE))
    expect(page.get_by_test_id("banner-messages_100")).to_have_count(0)
    expect(page.get_by_test_id("banner-messages_80")).to_be_visible()
    upgrade_link = page.get_by_test_id("banner-messages_80").get_by_role("link")
    expect(upgrade_link).to_have_text("See your usage")


def test_the_budget_at_80_percent_and_a_rejected_key_show_as_banners(
    desktop: Page, live_app: LiveApp, catalog: Catalog
) -> None:
    page = desktop
    tenant_id = sign_up(page, live_app)
    make_active(live_app, tenant_id, "byok")
    page.goto(live_app.url("/settings"))
    saved = page.request.put(
        live_app.url("/api/v1/settings/llm-config/"),
        data={"provider": "openai", "api_key": OPENAI_KEY, "model_preference": "gpt-4.1"},
        headers=csrf(page),
    )
    assert saved.ok, saved.text()
    token = live_app.service_token()
    rejected = {"tenant_id": tenant_id, "provider": "openai", "status_code": 401}
    assert live_app.gateway("key-failure", rejected, token)["status"] == "invalid"

    byok = catalog.tier("byok")
    fallback = catalog.tier(byok.platform_fallback_tier or "starter")
    fallback_model = fallback.primary_model or ""
    budget = fallback.tokens_per_period or 0
    spent = budget * 82 // 100
    message = {"tenant_id": tenant_id, "message_id": "budget-1", "max_tokens": 100}
    assert live_app.gateway("admit", message, token)["admitted"] is True
    settle = {
        **message,
        "model": fallback_model,
        "input_tokens": int(spent / catalog.model(fallback_model).budget_weight),
        "output_tokens": 0,
        "credential": "platform",
    }
    assert live_app.gateway("settle", settle, token)["settled"] is True

    for own_state_page in ("/settings", "/settings/ai-provider"):
        page.goto(live_app.url(own_state_page))
        # one banner per fact: the page's own rejected-key banner, not the notification too
        expect(page.get_by_test_id("key-banner")).to_have_count(1)
        expect(page.get_by_test_id("banner-key_invalidated")).to_have_count(0)
        expect(page.get_by_text("rejected your key")).to_have_count(1)
    page.goto(live_app.url("/settings"))
    expect(page.get_by_test_id("banner-tokens_80")).to_be_visible()
    capture(page, "settings-one-banner-per-fact-key-desktop")

    page.goto(live_app.url(OTHER_PAGE))
    expect(page.get_by_test_id("key-banner")).to_have_count(0)
    key = page.get_by_test_id("banner-key_invalidated")
    expect(key).to_be_visible()
    model_name = catalog.model(fallback_model).name
    expect(key).to_contain_text(f"your agent is answering with {model_name} on our keys")
    replace = key.get_by_role("link", name="Replace the key")
    expect(replace).to_have_attribute("href", "/settings/ai-provider")
    replace.click()
    page.wait_for_url(live_app.url("/settings/ai-provider"))
    expect(page.get_by_test_id("key-banner")).to_have_count(1)
    page.goto(live_app.url(OTHER_PAGE))
    budget_banner = page.get_by_test_id("banner-tokens_80")
    expect(budget_banner).to_contain_text("80% of your platform fallback budget is used")
    capture(page, "banner-key-rejected-budget-desktop")


def test_the_notifications_settings_show_the_webhook_secret_once(
    desktop: Page, live_app: LiveApp, tmp_path: Path
) -> None:
    page = desktop
    sign_up(page, live_app)
    page.goto(live_app.url("/settings/notifications"))
    expect(page.get_by_role("heading", level=2)).to_have_text("Notifications")
    page.get_by_label("Webhook URL").fill("https://hooks.example.com/agent")
    page.get_by_label("Send me notifications by email").uncheck()
    page.get_by_role("button", name="Save").click()
    secret = page.locator("#webhook-secret-value")
    expect(secret).to_contain_text("whsec_")
    shown = secret.inner_text()
    capture(page, "settings-notifications-desktop")
    page.goto(live_app.url("/settings/notifications"))
    expect(page.locator("#webhook-secret-value")).to_have_count(0)
    assert shown not in page.content()
    expect(page.get_by_label("Webhook URL")).to_have_value("https://hooks.example.com/agent")
    expect(page.get_by_label("Send me notifications by email")).not_to_be_checked()
