"""Every page state a customer can meet, in Chromium against the real app: the pricing page
for visitors, a reached message cap, a budget with reservations, usage history with its
CSV, each provider's error copy, the rejected-key banner, the HTML 404 page. Each state is
checked with axe-core (0 violations) and kept as a desktop and a phone screenshot."""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from adapters.catalog.toml_loader import load_catalog
from domain.catalog import Catalog
from entrypoints.http.pages.wording import key_shape_words
from tests.browser.harness import (
    PHONE,
    CheckoutServer,
    LiveApp,
    accessibility_problems,
    axe_violations,
    focus_ring,
    new_context,
    screenshot,
    start_app,
)
from tests.support.provider_stub import ProviderStub, refused_url

PASSWORD = "correct horse battery staple"
DANGER_RGB = "rgb(180, 35, 24)"
_emails = itertools.count(1)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def check(page: Page, axe: str) -> None:
    """0 axe-core violations and none of the harness's own accessibility problems."""
    assert axe_violations(page, axe) == [], page.url
    assert accessibility_problems(page) == [], page.url


def record(page: Page, browser: Browser, axe: str, name: str) -> None:
    """Check the state and keep its screenshot, on this desktop page and on a phone that
    shares its cookies (the same customer, the same URL)."""
    check(page, axe)
    screenshot(page, f"{name}-desktop")
    phone = new_context(browser, PHONE, is_mobile=True)
    try:
        phone.add_cookies(page.context.cookies())  # type: ignore[arg-type]
        small = phone.new_page()
        small.goto(page.url)
        overflow = small.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{small.url} scrolls sideways by {overflow}px"
        check(small, axe)
        screenshot(small, f"{name}-phone")
    finally:
        phone.close()


def sign_up(page: Page, app: LiveApp, path: str = "/signup") -> str:
    page.goto(app.url(path))
    page.get_by_label("Email", exact=True).fill(f"state{next(_emails)}@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(r"/onboarding\?"))
    tenant_id: str = page.request.get(app.url("/api/v1/tenant")).json()["id"]
    return tenant_id


@pytest.fixture
def service_token(live_app: LiveApp) -> str:
    return live_app.service_token()


def admit(app: LiveApp, token: str, tenant_id: str, message_id: str, max_tokens: int) -> None:
    body = {"tenant_id": tenant_id, "message_id": message_id, "max_tokens": max_tokens}
    assert app.gateway("admit", body, token)["admitted"] is True


def settle(
    app: LiveApp, token: str, tenant_id: str, message_id: str, model: str, tokens: int
) -> None:
    body = {
        "tenant_id": tenant_id,
        "message_id": message_id,
        "model": model,
        "input_tokens": tokens,
        "output_tokens": 0,
        "credential": "platform",
    }
    assert app.gateway("settle", body, token)["settled"] is True


def test_visitors_see_the_plans_and_sign_up_with_the_one_they_chose(
    desktop: Page, browser: Browser, live_app: LiveApp, catalog: Catalog, axe: str
) -> None:
    page = desktop
    page.goto(live_app.url("/"))
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.locator("li.card")).to_have_count(len(catalog.tiers))
    for tier in catalog.tiers:
        card = page.locator(f'li.card[data-tier="{tier.id}"]')
        expect(card.get_by_role("heading", level=2)).to_have_text(tier.name)
        expect(card.get_by_test_id("messages")).to_contain_text(f"{tier.messages_per_day:,}")
    facts = page.get_by_test_id("pricing-facts")
    premium = catalog.tier("premium")
    opus = next(m for m in premium.selectable_models if m != premium.primary_model)
    weight = catalog.model(opus).budget_weight
    expect(facts).to_contain_text(
        f"{catalog.model(opus).name}, which uses your token budget {weight.normalize():f}× faster"
    )
    fallback = catalog.tier(catalog.tier("byok").platform_fallback_tier or "starter")
    expect(facts).to_contain_text(f"{fallback.tokens_per_period:,}-token monthly budget")
    record(page, browser, axe, "pricing")

    page.get_by_test_id("signup-premium").click()
    page.wait_for_url(re.compile(r"/signup\?tier=premium$"))
    expect(page.locator(".lede")).to_contain_text(premium.name)
    tenant_id = sign_up(page, live_app, "/signup?tier=premium")
    assert tenant_id
    expect(page.locator("li.card.chosen")).to_have_attribute("data-tier", "premium")
    expect(page.locator("#flash")).to_contain_text("Your account is ready")


def test_a_reached_message_cap_pauses_the_agent_and_offers_the_upgrade(
    desktop: Page, browser: Browser, live_app: LiveApp, catalog: Catalog, axe: str,
    service_token: str, checkout_stub: object,
) -> None:  # fmt: skip
    page = desktop
    tenant_id = sign_up(page, live_app)
    live_app.set_tier(tenant_id, "starter")
    starter, premium = catalog.tier("starter"), catalog.tier("premium")
    for n in range(starter.messages_per_day):
        admit(live_app, service_token, tenant_id, f"cap-{n}", 1000)
    page.goto(live_app.url("/settings"))
    meter = page.get_by_test_id("meter-messages")
    expect(meter).to_have_class(re.compile(r"\blevel-full\b"))
    expect(meter.get_by_test_id("left")).to_contain_text("Limit reached")
    fill = meter.locator(".meter-fill")
    assert fill.evaluate("e => getComputedStyle(e).backgroundColor") == DANGER_RGB
    banner = page.get_by_test_id("paused-banner")
    expect(banner).to_contain_text(f"today's {starter.messages_per_day:,} messages")
    expect(banner.get_by_role("heading")).to_contain_text("paused until")
    upgrade = banner.get_by_role(
        "button", name=f"Upgrade to {premium.name} ({premium.messages_per_day:,} messages a day)"
    )
    expect(upgrade).to_be_visible()
    record(page, browser, axe, "cap-reached")
    upgrade.click()
    page.wait_for_url(re.compile(r"/pay/cs_test_\d+$"))


def test_a_budget_shows_used_and_reserved_tokens_and_pauses_when_they_fill_it(
    desktop: Page, browser: Browser, live_app: LiveApp, catalog: Catalog, axe: str,
    service_token: str,
) -> None:  # fmt: skip
    page = desktop
    tenant_id = sign_up(page, live_app)
    live_app.set_tier(tenant_id, "premium")
    premium = catalog.tier("premium")
    budget = premium.tokens_per_period or 0
    hold = catalog.reservation_tokens_default
    model = premium.primary_model or ""
    admit(live_app, service_token, tenant_id, "big", hold)
    used = budget - 3 * hold - hold // 2
    settle(live_app, service_token, tenant_id, "big", model, used)
    for n in range(2):
        admit(live_app, service_token, tenant_id, f"open-{n}", hold)
    page.goto(live_app.url("/settings"))
    meter = page.get_by_test_id("meter-tokens")
    expect(meter).to_contain_text(f"{used:,} of {budget:,} tokens used")
    expect(meter.get_by_test_id("reserved")).to_have_text(f"{2 * hold:,}")
    expect(meter.get_by_test_id("left")).to_contain_text(
        f"{budget - used - 2 * hold:,} tokens left this period"
    )
    expect(meter).to_have_class(re.compile(r"\blevel-warn\b"))
    expect(page.get_by_test_id("paused-banner")).to_have_count(0)
    opus = next(m for m in premium.selectable_models if m != premium.primary_model)
    option = page.locator(f'#model_preference option[value="{opus}"]')
    expect(option).to_contain_text(f"{catalog.model(opus).budget_weight.normalize():f}× faster")
    record(page, browser, axe, "budget-reserved")

    admit(live_app, service_token, tenant_id, "open-2", hold)
    page.reload()
    expect(meter).to_have_class(re.compile(r"\blevel-full\b"))
    expect(meter).to_contain_text("(100%)")
    assert (
        meter.locator(".meter-fill").evaluate("e => getComputedStyle(e).backgroundColor")
        == DANGER_RGB
    )
    banner = page.get_by_test_id("paused-banner")
    expect(banner).to_contain_text(f"{3 * hold:,} held for messages being answered")
    record(page, browser, axe, "budget-refusing")


def test_usage_history_draws_the_days_lists_the_models_and_downloads_csv(
    desktop: Page, browser: Browser, live_app: LiveApp, catalog: Catalog, axe: str,
    service_token: str,
) -> None:  # fmt: skip
    page = desktop
    tenant_id = sign_up(page, live_app)
    live_app.set_tier(tenant_id, "starter")
    starter = catalog.tier("starter")
    models = [starter.primary_model or "", *starter.fallback_models]
    for n, (model, tokens) in enumerate([(models[0], 1200), (models[0], 800), (models[-1], 500)]):
        admit(live_app, service_token, tenant_id, f"h-{n}", 4000)
        settle(live_app, service_token, tenant_id, f"h-{n}", model, tokens)
    page.goto(live_app.url("/settings"))
    page.get_by_role("link", name="Usage history").first.click()
    page.wait_for_url(re.compile(r"/settings/usage$"))
    chart = page.get_by_test_id("history-chart")
    expect(chart).to_be_visible()
    days = page.locator('[data-testid="history-days"] tbody tr')
    expect(chart.locator("g.bar")).to_have_count(days.count())
    weights = {m: catalog.model(m).budget_weight for m in models}
    first_tokens = int(1200 * weights[models[0]]) + int(800 * weights[models[0]])
    table = page.get_by_test_id("history-models")
    expect(table.locator("tbody tr").first).to_contain_text(catalog.model(models[0]).name)
    expect(table.locator("tbody tr").first).to_contain_text(f"{first_tokens:,}")
    expect(page.get_by_test_id("history-total")).to_contain_text("3 messages")
    record(page, browser, axe, "usage-history")

    with page.expect_download() as download_info:
        page.get_by_test_id("csv-models").click()
    download = download_info.value
    assert download.suggested_filename.startswith("usage-model-")
    rows = list(csv.reader(io.StringIO(open(download.path(), encoding="utf-8").read())))  # noqa: SIM115
    assert rows[0] == ["model", "messages", "tokens", "platform_tokens", "own_key_tokens"]
    assert rows[1][:3] == [models[0], "2", str(first_tokens)]
    with page.expect_download() as day_info:
        page.get_by_test_id("csv-days").click()
    day_rows = list(csv.reader(io.StringIO(open(day_info.value.path(), encoding="utf-8").read())))  # noqa: SIM115
    assert day_rows[0][0] == "day"
    assert sum(int(r[1]) for r in day_rows[1:]) == 3

    page.goto(live_app.url("/settings/usage?from=2026-12-02&to=2025-01-01"))
    expect(page.locator("#range-error")).to_be_visible()


@pytest.fixture
def byok_page(desktop: Page, live_app: LiveApp) -> Iterator[Page]:
    tenant_id = sign_up(desktop, live_app)
    live_app.set_tier(tenant_id, "byok")
    desktop.goto(live_app.url("/settings/ai-provider"))
    yield desktop


def test_each_provider_explains_a_key_of_the_wrong_shape_and_a_rejected_key(
    byok_page: Page, browser: Browser, catalog: Catalog, axe: str
) -> None:
    page = byok_page
    for provider in catalog.byok_providers:
        page.get_by_label("Provider", exact=True).select_option(provider.id)
        link = page.locator("#key-link")
        expect(link).to_have_attribute("href", provider.key_url)
        expect(link).to_contain_text(provider.name)
        page.get_by_label("API key", exact=True).fill("wrong-shape-key-0001")
        page.get_by_role("button", name="Save").click()
        error = page.locator("#api_key-error")
        expect(error).to_have_text(key_shape_words(provider))
        expect(page.get_by_label("API key", exact=True)).to_be_focused()
        if provider.id == "groq":
            expect(error).to_have_text(
                "Groq keys start with gsk_ — create one at console.groq.com/keys."
            )
            record(page, browser, axe, "provider-error-groq")
        page.get_by_label("API key", exact=True).fill(provider.key_prefix + "unauthorized0001")
        page.get_by_role("button", name="Test connection").click()
        result = page.locator("#test-result")
        expect(result).to_have_attribute("data-result", "invalid_key")
        expect(result).to_contain_text(f"{provider.name} rejected this key")
        expect(page.get_by_role("button", name="Test connection")).to_be_focused()
    google = catalog.byok_provider("google")
    page.get_by_label("Provider", exact=True).select_option(google.id)
    page.get_by_label("API key", exact=True).fill(google.key_prefix + "broken0001")
    page.get_by_role("button", name="Test connection").click()
    result = page.locator("#test-result")
    expect(result).to_have_attribute("data-result", "unreachable")
    expect(result).to_contain_text(f"{google.name} had a problem on its side (error 500)")
    check(page, axe)
    screenshot(page, "provider-error-google-500-desktop")


def test_a_rejected_key_shows_the_fallback_banner_on_both_settings_tabs(
    byok_page: Page, browser: Browser, live_app: LiveApp, catalog: Catalog, axe: str
) -> None:
    page = byok_page
    openai = catalog.byok_provider("openai")
    page.get_by_label("API key", exact=True).fill("sk-proj-unauthorized-banner-01")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text("Saved")
    expect(page.locator("#test-result")).to_contain_text(f"{openai.name} rejected this key")
    banner = page.get_by_test_id("key-banner")
    fallback = catalog.tier(catalog.tier("byok").platform_fallback_tier or "starter")
    expect(banner.get_by_role("heading")).to_have_text(f"{openai.name} rejected your key")
    expect(banner).to_contain_text(
        f"answers with {catalog.model(fallback.primary_model or '').name}"
    )
    expect(page.get_by_test_id("key-status")).to_contain_text("Rejected")
    record(page, browser, axe, "key-rejected-provider")
    page.goto(live_app.url("/settings"))
    expect(page.get_by_test_id("key-banner")).to_contain_text(f"{openai.name} rejected your key")
    expect(page.get_by_test_id("plan-model")).to_contain_text("on our key")
    record(page, browser, axe, "key-rejected-plan")


def test_a_mistyped_address_shows_a_page_for_people(
    desktop: Page, browser: Browser, live_app: LiveApp, axe: str
) -> None:
    response = desktop.goto(live_app.url("/setings"))
    assert response is not None and response.status == 404
    expect(desktop.get_by_role("heading", level=1)).to_have_text("Page not found")
    expect(desktop.get_by_role("link", name="Go to the start page")).to_be_visible()
    record(desktop, browser, axe, "not-found")


def test_the_focus_ring_contrasts_at_least_three_to_one_with_what_is_behind_it(
    byok_page: Page,
) -> None:
    page = byok_page
    for selector in ("#provider", "#api_key", 'button[data-action="save"]', "a.brand"):
        page.focus(selector)
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Tab")
        ring = focus_ring(page, selector)
        assert ring["style"] == "solid", selector
        assert ring["width"] >= 2, selector
        assert ring["ratio"] >= 3, (selector, ring)


def test_on_a_phone_a_failed_plan_choice_shows_its_error_where_the_customer_looks(
    browser: Browser,
    tmp_path: Path,
    provider_stub: ProviderStub,
    checkout_stub: CheckoutServer,
    catalog: Catalog,
    axe: str,
) -> None:
    """The payment provider cannot be reached: the error shows inside the chosen plan's
    card, above its button, and takes the focus (so a phone scrolls to it)."""
    unreachable = {"TIERKEEPER_STRIPE_API_BASE": refused_url()}
    with start_app(tmp_path, provider_stub, checkout_stub, unreachable) as app:
        context = new_context(browser, PHONE, is_mobile=True)
        try:
            page = context.new_page()
            sign_up(page, app)
            last = catalog.tiers[-1]
            page.get_by_role("button", name=f"Choose {last.name}").click()
            card = page.locator(f'li.card[data-tier="{last.id}"]')
            error = card.locator("#checkout-error")
            expect(error).to_contain_text("Our payment provider did not answer")
            expect(error).to_be_focused()
            expect(error).to_be_in_viewport()
            expect(page.locator("#checkout-error")).to_have_count(1)
            check(page, axe)
            screenshot(page, "plan-choice-error-phone")
        finally:
            context.close()
