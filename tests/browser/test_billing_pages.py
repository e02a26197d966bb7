"""Billing in Chromium: after Checkout the plan page waits for Stripe's webhook instead of
claiming the payment (and says "still confirming" when it takes long); a subscribed customer
changes plan from the plan cards (an upgrade now, a downgrade at the period end, each said
before it is confirmed), cancels with a confirmation naming until when the agent works,
resumes, and opens the billing portal. Screenshots go to docs/screenshots/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from adapters.catalog.toml_loader import load_catalog
from domain.catalog import Catalog
from tests.browser.harness import (
    DESKTOP,
    CheckoutServer,
    LiveApp,
    accessibility_problems,
    screenshot,
)
from tests.browser.stripe_billing import send_webhook
from tests.browser.test_pages import sign_up

WEBHOOK_SECRET = "whsec_browser"
PERIOD_END_TEXT = "1 January 2027"
"""The stand-in's period end (2027-01-01T00:00Z) as a customer in UTC reads it."""


PHONE_WIDTH = 390


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def capture(page: Page, name: str) -> None:
    assert accessibility_problems(page) == [], page.url
    screenshot(page, name)


def checkout(page: Page, app: LiveApp, stub: CheckoutServer, tier_name: str) -> dict[str, str]:
    """Choose a plan on the cards and land on the Checkout stand-in; the session's form."""
    page.goto(app.url("/onboarding"))
    page.get_by_role("button", name=f"Choose {tier_name}").click()
    page.wait_for_url(re.compile(r"/pay/cs_test_\d+$"))
    form = stub.sessions[-1]
    assert form["customer"].startswith("cus_browser_")
    return form


def stripe_confirms(
    app: LiveApp, stub: CheckoutServer, tenant_id: str, form: dict[str, str]
) -> str:
    """What Stripe does once the card is accepted: the subscription, and its signed events."""
    subscription = stub.billing.subscribe(form["customer"], form["line_items[0][price]"], tenant_id)
    completed = {
        "id": "cs_browser", "object": "checkout.session", "mode": "subscription",
        "payment_status": "paid", "customer": form["customer"],
        "subscription": subscription["id"], "client_reference_id": tenant_id,
        "metadata": {"tenant_id": tenant_id, "tier": form["metadata[tier]"]},
    }  # fmt: skip
    assert (
        send_webhook(app.base_url, "checkout.session.completed", completed, WEBHOOK_SECRET) == 200
    )
    created = send_webhook(app.base_url, "customer.subscription.created", subscription,
                           WEBHOOK_SECRET)  # fmt: skip
    assert created == 200
    return str(subscription["id"])


def announce_update(app: LiveApp, stub: CheckoutServer, subscription_id: str) -> None:
    subscription = stub.billing.subscriptions[subscription_id]
    status = send_webhook(app.base_url, "customer.subscription.updated", subscription,
                          WEBHOOK_SECRET)  # fmt: skip
    assert status == 200


def test_the_checkout_return_waits_for_the_webhook_then_shows_the_plan_active(
    desktop: Page,
    live_app: LiveApp,
    checkout_stub: CheckoutServer,
    catalog: Catalog,
) -> None:
    page = desktop
    tenant_id = sign_up(page, live_app)
    form = checkout(page, live_app, checkout_stub, catalog.tier("starter").name)
    page.goto(live_app.url("/plan?checkout=success&session_id=cs_test_return"))
    page.wait_for_url(live_app.url("/settings?checkout=success"))
    notice = page.get_by_test_id("checkout-return")
    expect(notice).to_have_attribute("data-state", "confirming")
    expect(notice).to_contain_text("Confirming your payment with Stripe")
    expect(notice).not_to_contain_text("went through")
    expect(page.get_by_test_id("plan-status")).to_have_text("Awaiting payment")
    capture(page, "checkout-return-confirming-desktop")

    stripe_confirms(live_app, checkout_stub, tenant_id, form)
    page.wait_for_url(re.compile(r"/settings\?done=[a-z-]+$"))
    expect(page.locator("#flash")).to_contain_text("Your payment went through")
    expect(page.get_by_test_id("plan-status")).to_have_text("Active")
    expect(page.get_by_test_id("billing-period-end")).to_have_text(PERIOD_END_TEXT)
    capture(page, "checkout-return-confirmed-desktop")


def test_the_checkout_return_says_still_confirming_after_the_wait(
    desktop: Page,
    live_app: LiveApp,
    checkout_stub: CheckoutServer,
    catalog: Catalog,
) -> None:
    page = desktop
    sign_up(page, live_app)
    checkout(page, live_app, checkout_stub, catalog.tier("starter").name)
    page.clock.install()
    page.goto(live_app.url("/settings?checkout=success"))
    notice = page.get_by_test_id("checkout-return")
    expect(notice).to_have_attribute("data-state", "confirming")
    page.clock.run_for(30_000)
    expect(notice).to_have_attribute("data-state", "confirming")
    page.clock.run_for(35_000)
    expect(notice).to_have_attribute("data-state", "still-confirming")
    expect(notice).to_contain_text("Still confirming")
    expect(page.get_by_test_id("plan-status")).to_have_text("Awaiting payment")
    capture(page, "checkout-return-still-confirming-desktop")


def test_change_plan_cancel_resume_and_the_billing_portal(
    desktop: Page,
    live_app: LiveApp,
    checkout_stub: CheckoutServer,
    catalog: Catalog,
) -> None:
    page = desktop
    starter, premium = catalog.tier("starter"), catalog.tier("premium")
    tenant_id = sign_up(page, live_app)
    form = checkout(page, live_app, checkout_stub, starter.name)
    subscription = stripe_confirms(live_app, checkout_stub, tenant_id, form)
    sessions = len(checkout_stub.sessions)

    # Upgrade from the plan cards: the card says what changes and when, the dialog confirms.
    page.goto(live_app.url("/onboarding"))
    expect(page.get_by_role("button", name=re.compile(r"^Choose "))).to_have_count(0)
    card = page.locator(f'li.card[data-tier="{premium.id}"]')
    expect(card.get_by_test_id("change-summary")).to_contain_text(f"{premium.name} starts now")
    capture(page, "onboarding-subscribed-desktop")
    card.get_by_role("button", name=f"Upgrade to {premium.name}").click()
    dialog = card.get_by_test_id("change-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("charges the difference")
    screenshot(page, "change-plan-upgrade-dialog-desktop")
    dialog.get_by_role("button", name="Confirm").click()
    page.wait_for_url(re.compile(r"/settings\?done=[a-z-]+$"))
    expect(page.locator("#flash")).to_contain_text("Your plan has changed")
    expect(page.get_by_test_id("plan-name")).to_contain_text(premium.name)
    subscription_id, sent = checkout_stub.billing.updates[-1]
    assert subscription_id == subscription
    assert sent["proration_behavior"] == "always_invoice"
    assert len(checkout_stub.sessions) == sessions, "a plan change is never a second checkout"
    announce_update(live_app, checkout_stub, subscription)

    # Downgrade: kept until the period end, shown as scheduled.
    page.goto(live_app.url("/onboarding"))
    card = page.locator(f'li.card[data-tier="{starter.id}"]')
    expect(card.get_by_test_id("change-summary")).to_contain_text(
        f"You keep {premium.name} until {PERIOD_END_TEXT}"
    )
    card.get_by_role("button", name=f"Switch to {starter.name}").click()
    card.get_by_test_id("change-dialog").get_by_role("button", name="Confirm").click()
    page.wait_for_url(re.compile(r"/settings\?done=[a-z-]+$"))
    expect(page.locator("#flash")).to_contain_text("at the end of this billing period")
    expect(page.get_by_test_id("plan-name")).to_contain_text(premium.name)
    expect(page.get_by_test_id("billing-pending")).to_contain_text(
        f"{starter.name} from {PERIOD_END_TEXT}"
    )
    assert checkout_stub.billing.updates[-1][1]["proration_behavior"] == "none"
    announce_update(live_app, checkout_stub, subscription)
    page.reload()
    expect(page.get_by_test_id("plan-name")).to_contain_text(premium.name)
    capture(page, "settings-billing-downgrade-scheduled-desktop")

    # Cancel: the confirmation says until when the agent keeps working.
    page.get_by_role("button", name="Cancel plan").click()
    dialog = page.get_by_test_id("cancel-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Your agent keeps working until {PERIOD_END_TEXT}")
    screenshot(page, "cancel-plan-dialog-desktop")
    dialog.get_by_role("button", name="Cancel at period end").click()
    expect(page.locator("#flash")).to_contain_text("canceled at the end of this billing period")
    expect(page.get_by_test_id("billing-ending")).to_contain_text(
        f"keeps working until {PERIOD_END_TEXT}"
    )
    expect(page.get_by_test_id("plan-status")).to_have_text("Active")
    assert checkout_stub.billing.updates[-1][1] == {"cancel_at_period_end": "true"}
    capture(page, "settings-billing-canceled-desktop")

    # Resume before the end.
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#flash")).to_contain_text("resumed")
    expect(page.get_by_test_id("billing-ending")).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel plan")).to_be_visible()
    assert checkout_stub.billing.updates[-1][1] == {"cancel_at_period_end": "false"}

    # Manage billing opens a Stripe Billing Portal session for this customer.
    page.get_by_role("button", name="Manage billing").click()
    page.wait_for_url(re.compile(r"/portal/bps_browser_\d+$"))
    assert checkout_stub.billing.portals[-1] == {
        "customer": form["customer"], "return_url": live_app.url("/settings"),
    }  # fmt: skip


def test_the_billing_panel_fits_a_phone(
    phone: Page, live_app: LiveApp, checkout_stub: CheckoutServer, catalog: Catalog
) -> None:
    page = phone
    tenant_id = sign_up(page, live_app)
    form = checkout(page, live_app, checkout_stub, catalog.tier("premium").name)
    stripe_confirms(live_app, checkout_stub, tenant_id, form)
    page.goto(live_app.url("/settings"))
    expect(page.get_by_test_id("billing")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH
    capture(page, "settings-billing-phone")


def test_plan_change_cancel_resume_and_portal_work_without_javascript(
    browser: Browser, live_app: LiveApp, checkout_stub: CheckoutServer, catalog: Catalog
) -> None:
    """With JavaScript off, each billing action still works: the openers lead to a
    confirmation page saying the same as the dialog, and every action is a plain form."""
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    page = context.new_page()
    starter, premium = catalog.tier("starter"), catalog.tier("premium")
    tenant_id = sign_up(page, live_app)
    form = checkout(page, live_app, checkout_stub, starter.name)
    subscription = stripe_confirms(live_app, checkout_stub, tenant_id, form)

    page.goto(live_app.url("/onboarding"))
    page.get_by_role("button", name=f"Upgrade to {premium.name}").click()
    page.wait_for_url(re.compile(rf"/settings/change-plan\?tier={premium.id}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Upgrade to {premium.name}?")
    expect(page.get_by_test_id("confirm-page")).to_contain_text("charges the difference")
    capture(page, "change-plan-confirm-no-js-desktop")
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(re.compile(r"/settings\?done=plan-changed$"))
    expect(page.locator("#flash")).to_contain_text("Your plan has changed")
    assert checkout_stub.billing.updates[-1][0] == subscription
    announce_update(live_app, checkout_stub, subscription)

    page.goto(live_app.url("/settings"))
    page.get_by_role("button", name="Cancel plan").click()
    page.wait_for_url(re.compile(r"/settings/cancel\??$"))
    expect(page.get_by_test_id("confirm-page")).to_contain_text(
        f"Your agent keeps working until {PERIOD_END_TEXT}"
    )
    capture(page, "cancel-plan-confirm-no-js-desktop")
    page.get_by_role("button", name="Cancel at period end").click()
    page.wait_for_url(re.compile(r"/settings\?done=canceled$"))
    expect(page.get_by_test_id("billing-ending")).to_be_visible()
    assert checkout_stub.billing.updates[-1][1] == {"cancel_at_period_end": "true"}

    page.get_by_role("button", name="Resume").click()
    page.wait_for_url(re.compile(r"/settings\?done=resumed$"))
    expect(page.get_by_test_id("billing-ending")).to_have_count(0)
    assert checkout_stub.billing.updates[-1][1] == {"cancel_at_period_end": "false"}

    page.get_by_role("button", name="Manage billing").click()
    page.wait_for_url(re.compile(r"/portal/bps_browser_\d+$"))
    assert checkout_stub.billing.portals[-1]["customer"] == form["customer"]
    context.close()
