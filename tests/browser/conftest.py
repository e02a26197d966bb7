"""Browser fixtures: the real app (see ``harness``), Debian's Chromium through Playwright, and
the local stand-ins for the providers and Stripe Checkout. Every test here is ``browser``."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from adapters.catalog.toml_loader import load_catalog
from tests.browser.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    CheckoutServer,
    CheckoutStubHandler,
    LiveApp,
    axe_source,
    new_context,
    start_app,
)
from tests.support.provider_stub import ProviderStub, running_provider_stub


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def checkout_stub() -> Iterator[CheckoutServer]:
    server = CheckoutServer(("127.0.0.1", 0), CheckoutStubHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def provider_stub() -> Iterator[ProviderStub]:
    with running_provider_stub(load_catalog()) as stub:
        yield stub


@pytest.fixture(scope="module")
def live_app(
    tmp_path_factory: pytest.TempPathFactory,
    provider_stub: ProviderStub,
    checkout_stub: CheckoutServer,
) -> Iterator[LiveApp]:
    with start_app(tmp_path_factory.mktemp("app"), provider_stub, checkout_stub) as app:
        yield app


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Module-scoped: Playwright's sync API keeps an event loop running on this thread until
    it stops, so it must stop before the async tests of other modules run."""
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-chromium.sh", pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def desktop(browser: Browser) -> Iterator[Page]:
    context = new_context(browser, DESKTOP, is_mobile=False)
    yield context.new_page()
    context.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = new_context(browser, PHONE, is_mobile=True)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="session")
def axe() -> str:
    """axe-core's script (see ``harness.axe_source``)."""
    return axe_source()
