"""The web pages in Chromium, against the real app on loopback: sign up, choose a plan,
manage a BYOK key, read plan & usage and the terms, on a desktop and on a phone."""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from adapters.catalog.toml_loader import default_catalog_text, load_catalog
from domain.catalog import Catalog
from domain.welcome import format_price
from tests.browser.harness import (
    PHONE,
    CheckoutServer,
    LiveApp,
    accessibility_problems,
    axe_source,
    axe_violations,
    new_context,
    screenshot,
    start_app,
)
from tests.support.provider_stub import ProviderStub

PASSWORD = "correct horse battery staple"
OPENAI_KEY = "sk-proj-browsertestkey0001Wxyz"
_emails = itertools.count(1)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def price_text(catalog: Catalog, tier_id: str) -> str:
    price = catalog.tier(tier_id).price
    return f"{format_price(price.amount_cents, price.currency)} / {price.interval}"


def sign_up(page: Page, app: LiveApp) -> str:
    """Sign up through the form; returns the new tenant's id."""
    email = f"customer{next(_emails)}@example.com"
    page.goto(app.url("/signup"))
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(r"/onboarding(\?|$)"))
    tenant = page.request.get(app.url("/api/v1/tenant"))
    assert tenant.ok, tenant.text()
    tenant_id: str = tenant.json()["id"]
    return tenant_id


def make_active(app: LiveApp, tenant_id: str, tier: str) -> None:
    """The operator path (Stripe Checkout cannot complete offline): ``Tenants.change_tier``."""
    app.set_tier(tenant_id, tier, "active")


@pytest.fixture
def byok_page(desktop: Page, live_app: LiveApp) -> Iterator[Page]:
    """A signed-in customer whose tenant is on an active BYOK plan, on the AI Provider tab."""
    tenant_id = sign_up(desktop, live_app)
    make_active(live_app, tenant_id, "byok")
    desktop.goto(live_app.url("/settings/ai-provider"))
    yield desktop


def save(page: Page) -> None:
    """Save the AI Provider form and wait for the page the script reloads once it is saved."""
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text("Saved")


def capture(page: Page, name: str) -> None:
    """Check the page's accessibility basics and axe-core's rules, then keep its
    screenshot."""
    assert accessibility_problems(page) == [], page.url
    assert axe_violations(page, axe_source()) == [], page.url
    screenshot(page, name)


def llm_config(page: Page, app: LiveApp) -> dict[str, object] | None:
    response = page.request.get(app.url("/api/v1/settings/llm-config/"))
    if response.status == 404:
        return None
    assert response.ok, response.text()
    body: dict[str, object] = response.json()
    return body


def test_customer_signs_up_chooses_byok_and_manages_their_own_key(
    desktop: Page,
    live_app: LiveApp,
    catalog: Catalog,
    checkout_stub: CheckoutServer,
    provider_stub: ProviderStub,
) -> None:
    """Signup → onboarding → Checkout → (operator activates BYOK) → AI Provider: test, save,
    reload shows the mask, change the model only (key kept), remove."""
    page = desktop
    page.goto(live_app.url("/signup"))
    capture(page, "signup-desktop")
    tenant_id = sign_up(page, live_app)

    # Onboarding: one card per catalog tier, prices from the catalog, current tier marked.
    cards = page.locator("li.card")
    expect(cards).to_have_count(len(catalog.tiers))
    for tier in catalog.tiers:
        card = page.locator(f'li.card[data-tier="{tier.id}"]')
        expect(card.get_by_role("heading", level=2)).to_have_text(tier.name)
        expect(card.get_by_test_id("price")).to_have_text(price_text(catalog, tier.id))
        expect(card.get_by_test_id("messages")).to_contain_text(f"{tier.messages_per_day:,}")
    signup_tier = page.request.get(live_app.url("/api/v1/tenant")).json()["tier"]
    expect(page.locator("li.card.current")).to_have_attribute("data-tier", signup_tier)
    expect(page.get_by_test_id("current-badge")).to_have_count(1)
    capture(page, "onboarding-desktop")

    # Choosing BYOK creates a Checkout Session for this tenant and goes to its URL.
    sessions_before = len(checkout_stub.sessions)
    byok = catalog.tier("byok")
    page.get_by_role("button", name=f"Choose {byok.name}").click()
    page.wait_for_url(re.compile(r"/pay/cs_test_\d+$"))
    sent_session = page.url.rsplit("/", 1)[1]
    expect(page.get_by_role("heading", level=1)).to_have_text("Stripe Checkout stand-in")
    assert len(checkout_stub.sessions) == sessions_before + 1
    sent = checkout_stub.sessions[-1]
    assert sent["client_reference_id"] == tenant_id
    assert sent["metadata[tier]"] == "byok"

    # Stripe cannot complete offline: the operator override makes the tenant BYOK and active.
    make_active(live_app, tenant_id, "byok")

    # The gateway admits one message, served on platform fallback (no key stored yet).
    fallback_tier = catalog.tier(byok.platform_fallback_tier or "starter")
    fallback_budget = fallback_tier.tokens_per_period or 0
    fallback_model = fallback_tier.primary_model or ""
    spent = fallback_budget * 85 // 100  # past the 80 % warning, under the budget
    weight = catalog.model(fallback_model).budget_weight
    token = live_app.service_token()
    message = {"tenant_id": tenant_id, "message_id": "browser-msg-1"}
    assert live_app.gateway("admit", message, token)["admitted"] is True
    settle = {
        **message,
        "model": fallback_model,
        "input_tokens": int(spent / weight),
        "output_tokens": 0,
        "credential": "platform",
    }
    assert live_app.gateway("settle", settle, token)["settled"] is True

    page.goto(live_app.url(f"/plan?checkout=success&session_id={sent_session}"))
    page.wait_for_url(live_app.url("/settings?checkout=success"))
    expect(page.get_by_role("status").filter(has_text="payment went through")).to_be_visible()
    expect(page.get_by_test_id("plan-name")).to_contain_text(byok.name)
    expect(page.get_by_test_id("plan-status")).to_have_text("Active")
    messages = page.get_by_test_id("meter-messages")
    expect(messages.get_by_role("meter")).to_have_attribute(
        "aria-valuemax", str(byok.messages_per_day)
    )
    expect(messages).to_contain_text(f"1 of {byok.messages_per_day:,} messages")
    expect(page.get_by_test_id("meter-tokens")).to_contain_text("no platform limit")
    fallback_meter = page.get_by_test_id("meter-fallback")
    expect(fallback_meter).to_contain_text(f"{spent:,} of {fallback_budget:,} tokens (85%)")
    expect(fallback_meter).to_have_class(re.compile(r"\blevel-warn\b"))
    expect(page.get_by_test_id("meter-messages")).to_contain_text("resets")
    capture(page, "settings-plan-desktop")

    # The plans now mark BYOK as the current, paid-for plan.
    page.get_by_role("link", name="Plans").click()
    current = page.locator("li.card.current")
    expect(current).to_have_attribute("data-tier", "byok")
    expect(current.get_by_role("button", name="Current plan")).to_be_disabled()
    page.get_by_role("link", name="Settings", exact=True).click()

    # AI Provider tab.
    tabs = page.get_by_role("navigation", name="Settings sections")
    expect(tabs.get_by_role("link", name="Plan & usage")).to_have_attribute("aria-current", "page")
    tabs.get_by_role("link", name="AI Provider").click()
    page.wait_for_url(live_app.url("/settings/ai-provider"))
    expect(page.get_by_test_id("key-mask")).to_have_count(0)
    capture(page, "settings-ai-provider-empty-desktop")

    page.get_by_label("Provider", exact=True).select_option("openai")
    openai = catalog.byok_provider("openai")
    expect(page.locator("#model_preference option")).to_have_count(len(openai.models))
    page.get_by_label("API key", exact=True).fill(OPENAI_KEY)
    page.get_by_label("Model", exact=True).select_option(openai.models[0].id)

    tested_before = len(provider_stub.requests)
    page.get_by_role("button", name="Test connection").click()
    result = page.locator("#test-result")
    expect(result).to_have_attribute("data-result", "valid")
    expect(result).to_contain_text(re.compile(r"Connection works \(\d+ ms\)"))
    assert provider_stub.requests[tested_before:] == [("openai", "/models")]
    assert llm_config(page, live_app) is None, "testing a key must not store it"

    save(page)
    page.reload()
    mask = page.get_by_test_id("key-mask")
    expect(mask).to_have_text(re.compile(r"^sk-…" + OPENAI_KEY[-4:] + "$"))
    expect(page.get_by_label("API key", exact=True)).to_be_hidden()
    assert OPENAI_KEY not in page.content()
    expect(page.get_by_label("Model", exact=True)).to_have_value(openai.models[0].id)
    capture(page, "settings-ai-provider-saved-desktop")

    # Change only the model: the stored key stays, and still tests as valid.
    page.get_by_label("Model", exact=True).select_option(openai.models[1].id)
    save(page)
    page.reload()
    expect(page.get_by_label("Model", exact=True)).to_have_value(openai.models[1].id)
    expect(page.get_by_test_id("key-mask")).to_have_text(mask.inner_text())
    stored = llm_config(page, live_app)
    assert stored is not None
    assert stored["model_preference"] == openai.models[1].id
    assert stored["api_key_masked"] == mask.inner_text()
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_have_attribute("data-result", "valid")

    # Replace the key: the mask follows the new one.
    page.get_by_role("button", name="Replace key").click()
    new_key = OPENAI_KEY[:-4] + "Q9rs"
    expect(page.get_by_label("API key", exact=True)).to_be_focused()
    page.get_by_label("API key", exact=True).fill(new_key)
    save(page)
    page.reload()
    expect(page.get_by_test_id("key-mask")).to_have_text("sk-…Q9rs")

    # Remove.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove").click()
    expect(page.locator("#flash")).to_contain_text("removed")
    page.reload()
    expect(page.get_by_test_id("key-mask")).to_have_count(0)
    expect(page.get_by_label("API key", exact=True)).to_be_visible()
    assert llm_config(page, live_app) is None


def test_a_key_of_the_wrong_shape_shows_the_error_next_to_the_key_field(
    byok_page: Page, live_app: LiveApp, catalog: Catalog
) -> None:
    page = byok_page
    anthropic = catalog.byok_provider("anthropic")
    page.get_by_label("Provider", exact=True).select_option("anthropic")
    expect(page.locator("#api-key-hint")).to_contain_text(f"keys start with {anthropic.key_prefix}")
    page.get_by_label("API key", exact=True).fill("sk-proj-not-an-anthropic-key")
    page.get_by_role("button", name="Save").click()
    error = page.locator("#api_key-error")
    expect(error).to_be_visible()
    expect(error).to_have_text(
        f"{anthropic.name} keys start with {anthropic.key_prefix} — create one at "
        + anthropic.key_url.removeprefix("https://")
        + "."
    )
    expect(page.get_by_label("API key", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("API key", exact=True)).to_be_focused()
    capture(page, "settings-ai-provider-field-error-desktop")
    assert llm_config(page, live_app) is None


def test_a_key_the_provider_rejects_is_reported_by_test_connection(
    byok_page: Page, catalog: Catalog
) -> None:
    page = byok_page
    page.get_by_label("Provider", exact=True).select_option("groq")
    page.get_by_label("API key", exact=True).fill("gsk_unauthorized_browser_key_1")
    page.get_by_role("button", name="Test connection").click()
    result = page.locator("#test-result")
    expect(result).to_have_attribute("data-result", "invalid_key")
    expect(result).to_contain_text("rejected")


def test_openrouter_takes_any_vendor_model_as_free_text(byok_page: Page, live_app: LiveApp) -> None:
    page = byok_page
    page.get_by_label("Provider", exact=True).select_option("openrouter")
    model = page.get_by_label("Model", exact=True)
    expect(model).to_have_attribute("type", "text")
    model.fill("mistralai/mistral-large-2411")
    page.get_by_label("API key", exact=True).fill("sk-or-v1-browsertest0002Abcd")
    page.get_by_role("switch", name="Use our models when your key fails").uncheck()
    save(page)
    page.reload()
    expect(page.get_by_label("Model", exact=True)).to_have_value("mistralai/mistral-large-2411")
    expect(page.get_by_role("switch")).not_to_be_checked()
    stored = llm_config(page, live_app)
    assert stored is not None
    assert stored["provider"] == "openrouter"
    assert stored["allow_platform_fallback"] is False


def test_each_model_choice_says_what_the_model_can_do(byok_page: Page, catalog: Catalog) -> None:
    """Images and reasoning beside every model, from the catalog; for OpenRouter, what is
    assumed of a model it does not list."""
    page = byok_page
    first = catalog.byok_providers[0].models[0]
    options = page.locator("#model_preference option")
    expect(options.first).to_have_text(f"{first.name} — text and images, 1M context")
    page.get_by_label("Provider", exact=True).select_option("anthropic")
    expect(options).to_have_text(
        [
            f"{m.name} — text and images, reasoning, 200K context"
            for m in catalog.byok_provider("anthropic").models
        ]
    )
    page.get_by_label("Provider", exact=True).select_option("groq")
    expect(options.first).to_have_text("GPT-OSS 120B — text only, reasoning, 131K context")
    page.get_by_label("Provider", exact=True).select_option("openrouter")
    expect(page.locator("#model-hint")).to_contain_text(
        "OpenRouter models not listed here are set up cautiously: text only, no reasoning,"
        " 66K context, up to 8,192 tokens per answer."
    )


def test_the_forms_work_from_the_keyboard_and_logout_ends_the_session(
    desktop: Page, live_app: LiveApp
) -> None:
    page = desktop
    email = f"keyboard{next(_emails)}@example.com"
    page.goto(live_app.url("/signup"))
    page.get_by_label("Email", exact=True).focus()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type("short")
    page.keyboard.press("Enter")
    expect(page.locator("#password-error")).to_contain_text("10 characters")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/onboarding(\?|$)"))

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login(\?|$)"))
    page.goto(live_app.url("/settings"))
    page.wait_for_url(re.compile(r"/login\?next=/settings$"))

    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill("wrong password, surely")
    page.get_by_label("Password", exact=True).press("Enter")
    expect(page.locator("#form-error")).to_be_visible()
    capture(page, "login-desktop")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password", exact=True).press("Enter")
    page.wait_for_url(live_app.url("/settings"))


def test_every_page_fits_a_phone_screen(
    browser: Browser, live_app: LiveApp, catalog: Catalog
) -> None:
    """Phone-sized viewport: nothing scrolls sideways; screenshots of each page."""
    context = new_context(browser, PHONE, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(live_app.url("/signup"))
        _assert_fits(page)
        capture(page, "signup-phone")
        tenant_id = sign_up(page, live_app)
        _assert_fits(page)
        capture(page, "onboarding-phone")
        make_active(live_app, tenant_id, "byok")
        for path, name in (
            ("/settings", "settings-plan-phone"),
            ("/settings/ai-provider", "settings-ai-provider-phone"),
            ("/terms", "terms-phone"),
        ):
            page.goto(live_app.url(path))
            _assert_fits(page)
            capture(page, name)
        expect(page.get_by_test_id("terms-price").first).to_have_text(
            price_text(catalog, catalog.tiers[0].id)
        )
    finally:
        context.close()


def _assert_fits(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def test_terms_show_the_prices_of_the_catalog_in_force(
    desktop: Page,
    live_app: LiveApp,
    catalog: Catalog,
    tmp_path: Path,
    provider_stub: ProviderStub,
    checkout_stub: CheckoutServer,
) -> None:
    """The shipped catalog's prices, then an operator's replacement catalog's prices."""
    page = desktop
    page.goto(live_app.url("/terms"))
    for tier in catalog.tiers:
        row = page.locator(f'tr[data-tier="{tier.id}"]')
        expect(row.get_by_test_id("terms-price")).to_have_text(price_text(catalog, tier.id))
    capture(page, "terms-desktop")

    data = tomllib.loads(default_catalog_text())
    changed = {tid: spec["price_cents"] + 1234 for tid, spec in data["tiers"].items()}
    text = default_catalog_text()
    for tid, cents in changed.items():
        old = f'[tiers.{tid}]\nname = "{data["tiers"][tid]["name"]}"\nprice_cents = '
        assert old in text
        text = text.replace(old + str(data["tiers"][tid]["price_cents"]), old + str(cents))
    path = tmp_path / "catalog.toml"
    path.write_text(text)

    env = {"TIERKEEPER_CATALOG": str(path)}
    with start_app(tmp_path / "operator", provider_stub, checkout_stub, env) as other:
        page.goto(other.url("/terms"))
        for tid, cents in changed.items():
            row = page.locator(f'tr[data-tier="{tid}"]')
            currency = data["tiers"][tid].get("currency", "usd")
            expect(row.get_by_test_id("terms-price")).to_contain_text(format_price(cents, currency))
        for tier in catalog.tiers:
            assert price_text(catalog, tier.id) not in page.content()


def test_templates_name_no_price_cap_or_model_of_their_own() -> None:
    """Every amount, limit and model on the pages comes from the catalog, never a template."""
    templates = Path(__file__).resolve().parents[2] / "entrypoints" / "http" / "templates"
    catalog = load_catalog()
    forbidden = {m.name for m in catalog.models} | {m.ref for m in catalog.models}
    for tier in catalog.tiers:
        forbidden.add(format_price(tier.price.amount_cents, tier.price.currency))
        forbidden.add(f"{tier.messages_per_day} messages")
        if tier.tokens_per_period:
            forbidden |= {f"{tier.tokens_per_period:,}", str(tier.tokens_per_period)}
    for path in sorted(templates.rglob("*.html")):
        text = path.read_text()
        assert re.search(r"[$€£]\s?\d", text) is None, path
        found = [word for word in forbidden if word in text]
        assert found == [], f"{path.name} hard-codes {found}"


def test_a_premium_customer_chooses_among_the_tiers_selectable_models(
    desktop: Page, live_app: LiveApp, catalog: Catalog
) -> None:
    page = desktop
    tenant_id = sign_up(page, live_app)
    make_active(live_app, tenant_id, "premium")
    premium = catalog.tier("premium")
    other = next(ref for ref in premium.selectable_models if ref != premium.primary_model)
    page.goto(live_app.url("/settings"))
    tabs = page.get_by_role("navigation", name="Settings sections")
    expect(tabs.get_by_role("link")).to_have_text(
        ["Plan & usage", "Usage history", "Notifications"]
    )
    expect(page.get_by_test_id("plan-model")).to_have_text(
        catalog.model(premium.primary_model or "").name
    )
    page.get_by_label("Model your agent answers with").select_option(other)
    page.get_by_role("button", name="Use this model").click()
    expect(page.get_by_test_id("plan-model")).to_have_text(catalog.model(other).name)
    expect(page.locator("#flash")).to_contain_text(catalog.model(other).name)
    assert page.request.get(live_app.url("/api/v1/tenant")).json()["model"]["primary"] == other
    capture(page, "settings-plan-premium-desktop")

    page.goto(live_app.url("/settings/ai-provider"))
    byok = catalog.tier("byok")
    expect(page.locator("#main")).to_contain_text(
        f"{byok.name} plan ({price_text(catalog, 'byok')})"
    )
