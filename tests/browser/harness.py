"""The browser tests' harness: the real app served by uvicorn on loopback, a Stripe
Checkout stand-in, Chromium contexts and screenshots.

The app runs as its own process, exactly as ``tierkeeper serve`` runs it: embedded SQLite and
the Fernet key store in a temporary directory, provider base URLs pointed at the provider
stub with ``TIERKEEPER_PROVIDER_<ID>_BASE_URL``, and Stripe's API base pointed at a small
local server that answers Checkout Session creation (the one Stripe call the pages trigger)
and serves the page a customer would be sent to.

Chromium comes from ``scripts/install-chromium.sh``; a machine without it fails these tests
rather than skipping them.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import attrs
from cryptography.fernet import Fernet
from playwright.sync_api import Browser, BrowserContext, Page

from domain.ids import TenantId
from domain.tenants import SubscriptionStatus
from entrypoints.bootstrap import Services, build_services
from entrypoints.settings import Settings
from tests.browser.stripe_billing import StripeBilling
from tests.support.provider_stub import ProviderStub

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = os.environ.get("TIERKEEPER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
PRICE_IDS = {
    "starter": "price_starter_test",
    "premium": "price_premium_test",
    "byok": "price_byok_test",
}
STARTUP_TIMEOUT_S = 40.0
T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- Stripe Checkout stand-in -------------------------------------------------------------


class CheckoutStubHandler(BaseHTTPRequestHandler):
    server: CheckoutServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode()
        path = urllib.parse.urlsplit(self.path).path
        form = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        billing = self.server.billing.answer("POST", path, form, base)
        if billing is not None:
            self._json(200, billing)
            return
        if path != "/v1/checkout/sessions":
            self._json(404, {"error": {"type": "invalid_request_error", "message": path}})
            return
        session_id = f"cs_test_{len(self.server.sessions) + 1:04d}"
        self.server.sessions.append(form)
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._json(
            200,
            {
                "id": session_id,
                "object": "checkout.session",
                "mode": "subscription",
                "status": "open",
                "client_reference_id": form.get("client_reference_id"),
                "metadata": {
                    k[len("metadata[") : -1]: v
                    for k, v in form.items()
                    if k.startswith("metadata[")
                },
                "url": f"{base}/pay/{session_id}",
            },
        )

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        billing = self.server.billing.answer("GET", path, {}, "")
        if billing is not None:
            self._json(200, billing)
            return
        if path.startswith("/portal/"):
            path = "/pay/" + path[len("/portal/") :]
        if not path.startswith("/pay/"):
            self._json(404, {"error": {"message": "not found"}})
            return
        html = (
            "<!doctype html><html lang=en><title>Checkout</title>"
            f"<h1>Stripe Checkout stand-in</h1><p id=session>{path[len('/pay/') :]}</p></html>"
        )
        data = html.encode()
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("request-id", "req_test")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class CheckoutServer(ThreadingHTTPServer):
    """Answers ``POST /v1/checkout/sessions`` as Stripe would (recording each request's form)
    and serves the page the session's URL names."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.sessions: list[dict[str, str]] = []
        self.billing = StripeBilling()


# --- the app, as its own process -----------------------------------------------------------


@attrs.frozen
class LiveApp:
    base_url: str
    env: Mapping[str, str]
    log_path: Path

    def url(self, path: str) -> str:
        return self.base_url + path

    def set_tier(self, tenant_id: str, tier: str, status: str = "active") -> None:
        """The operator's override (``Tenants.change_tier``, what ``tierkeeper tenants
        set-tier`` runs) on the server's database: Stripe Checkout cannot complete offline."""

        async def change(services: Services) -> None:
            await services.tenants.change_tier(
                TenantId(tenant_id), tier, SubscriptionStatus(status)
            )

        with_services(self.env, change)

    def service_token(self) -> str:
        """A gateway token, as ``tierkeeper tokens create --service`` issues one."""

        async def create(services: Services) -> str:
            token = await services.accounts.create_service_token("browser-tests")
            return token.reveal()

        return with_services(self.env, create)

    def gateway(self, path: str, body: Mapping[str, object], token: str) -> dict[str, Any]:
        """What the OpenClaw gateway would send: admit a message, settle its tokens."""
        request = urllib.request.Request(  # noqa: S310 - loopback only
            self.url("/api/v1/gateway/" + path),
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def with_services(
    env: Mapping[str, str],
    work: Callable[[Services], Awaitable[T]],
    migrate: bool = False,
) -> T:
    """Build the app's services from ``env`` (as the server does), run ``work``, close them;
    on a thread of its own, away from Playwright's event loop."""

    async def run() -> T:
        services = await build_services(Settings.from_environ(env), migrate=migrate)
        try:
            return await work(services)
        finally:
            await services.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=60)


def app_environment(
    var_dir: Path,
    port: int,
    provider_stub: ProviderStub,
    checkout_stub: CheckoutServer,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERKEEPER_")}
    env.update(
        {
            "TIERKEEPER_VAR_DIR": str(var_dir),
            "TIERKEEPER_DATABASE_URL": f"sqlite:///{var_dir / 'tierkeeper.sqlite3'}",
            "TIERKEEPER_KEY_STORE": "fernet",
            "TIERKEEPER_SECRET_KEY": Fernet.generate_key().decode(),
            "TIERKEEPER_CONFIG_ROOT": str(var_dir / "openclaw"),
            "TIERKEEPER_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "TIERKEEPER_STRIPE_API_KEY": "sk_test_browser",
            "TIERKEEPER_STRIPE_WEBHOOK_SECRET": "whsec_browser",
            "TIERKEEPER_STRIPE_API_BASE": f"http://127.0.0.1:{checkout_stub.server_address[1]}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for tier, price in PRICE_IDS.items():
        env[f"TIERKEEPER_STRIPE_PRICE_{tier.upper()}"] = price
    env.update(provider_stub.provider_env())
    env.update(extra or {})
    return env


def _wait_until_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the app did not become ready:\n{log_path.read_text()}")


@contextmanager
def start_app(
    tmp_dir: Path,
    provider_stub: ProviderStub,
    checkout_stub: CheckoutServer,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[LiveApp]:
    """Upgrade the database, then serve the app with uvicorn on a free loopback port."""
    var_dir = tmp_dir / "var"
    var_dir.mkdir(parents=True)
    port = free_port()
    env = app_environment(var_dir, port, provider_stub, checkout_stub, extra_env)
    log_path = tmp_dir / "app.log"
    app = LiveApp(base_url=f"http://127.0.0.1:{port}", env=env, log_path=log_path)
    with_services(env, lambda services: asyncio.sleep(0), migrate=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "entrypoints.http.app:create_app", "--factory",
                "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                "--log-level", "warning",
            ],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_until_ready(app.base_url, process, log_path)
        yield app
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def new_context(browser: Browser, viewport: dict[str, int], is_mobile: bool) -> BrowserContext:
    context = browser.new_context(
        viewport=viewport,  # type: ignore[arg-type]
        device_scale_factor=1,
        is_mobile=is_mobile,
        has_touch=is_mobile,
        locale="en-US",
        timezone_id="Europe/Berlin",
    )
    context.set_default_timeout(15_000)
    return context


def screenshot(page: Page, name: str) -> Path:
    """A full-page PNG under docs/screenshots/, kept in the repository as the pages' record."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
    return path


ACCESSIBILITY_PROBLEMS_JS = """
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(',').map((s) => parseFloat(s));
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const luminance = ({ r, g, b }) => {
    const f = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = parse(getComputedStyle(el).backgroundColor);
      if (c && c.a > 0.9) return c;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  const visible = (el) => {
    const cs = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    return cs.visibility !== 'hidden' && box.width > 0 && box.height > 0 && box.right > 0;
  };
  const problems = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode.textContent.trim();
    const el = walker.currentNode.parentElement;
    if (!text || !visible(el) || el.closest('button:disabled')) continue;
    const cs = getComputedStyle(el);
    const fg = parse(cs.color);
    const l1 = luminance(fg), l2 = luminance(background(el));
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(cs.fontSize);
    const large = size >= 24 || (parseInt(cs.fontWeight, 10) >= 700 && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) {
      problems.push(`contrast ${ratio.toFixed(2)} for "${text.slice(0, 40)}"`);
    }
  }
  document.querySelectorAll('input:not([type=hidden]), select, textarea').forEach((el) => {
    if (visible(el) && !(el.labels && el.labels.length) && !el.getAttribute('aria-label')) {
      problems.push(`no label for #${el.id}`);
    }
  });
  document.querySelectorAll('button, a[href]').forEach((el) => {
    if (visible(el) && !el.textContent.trim() && !el.getAttribute('aria-label')) {
      problems.push(`no accessible name: ${el.outerHTML.slice(0, 60)}`);
    }
  });
  if (!document.documentElement.lang) problems.push('no lang on <html>');
  if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
  return problems;
}
"""


def accessibility_problems(page: Page) -> list[str]:
    """Text below WCAG AA contrast, form controls without a label, buttons and links without
    a name, a missing ``lang`` or ``h1``: what a page must not have."""
    problems: list[str] = page.evaluate(ACCESSIBILITY_PROBLEMS_JS)
    return problems


# --- axe-core ------------------------------------------------------------------------------

AXE_JS = Path(os.environ.get("TIERKEEPER_AXE_JS", str(REPO / "node_modules/axe-core/axe.min.js")))
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


@functools.cache
def axe_source() -> str:
    """axe-core's script, installed from npm by ``scripts/install-axe.sh`` (run here when it
    is missing; a machine that cannot install it fails the tests rather than skipping)."""
    if not AXE_JS.exists() and "TIERKEEPER_AXE_JS" not in os.environ:
        subprocess.run(["bash", str(REPO / "scripts/install-axe.sh")], check=False, timeout=300)
    if not AXE_JS.exists():
        raise RuntimeError(f"{AXE_JS} is missing: run scripts/install-axe.sh")
    return AXE_JS.read_text()


def axe_violations(page: Page, source: str) -> list[str]:
    """axe-core's WCAG 2.2 AA and best-practice rules on the page as it is now, one line per
    violation (impact, rule, the first offending elements). Evaluated through the
    DevTools protocol, so the page's CSP (scripts from 'self' only) need not be relaxed."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(source)
    violations: list[str] = page.evaluate(
        """async (tags) => {
          const result = await axe.run(document, {
            runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'],
          });
          return result.violations.map((v) =>
            `${v.impact} ${v.id}: ${v.help} -> ` +
            v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | '));
        }""",
        AXE_TAGS,
    )
    return violations


FOCUS_RING_JS = """
(selector) => {
  const el = document.querySelector(selector);
  const cs = getComputedStyle(el);
  const parse = (c) => c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  let bg = null;
  for (let p = el.parentElement; p; p = p.parentElement) {
    const c = getComputedStyle(p).backgroundColor;
    const alpha = c.startsWith('rgba') ? parseFloat(c.split(',')[3]) : 1;
    if (alpha > 0.9) { bg = parse(c); break; }
  }
  bg = bg || [255, 255, 255];
  const ring = parse(cs.outlineColor);
  const a = lum(ring), b = lum(bg);
  return {
    style: cs.outlineStyle, width: parseFloat(cs.outlineWidth),
    ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05),
  };
}
"""


def focus_ring(page: Page, selector: str) -> dict[str, Any]:
    """The focused element's outline (style, width in px) and its contrast against the
    background it is drawn on (the nearest opaque ancestor's)."""
    ring: dict[str, Any] = page.evaluate(FOCUS_RING_JS, selector)
    return ring
