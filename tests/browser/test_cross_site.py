"""A hostile page on another origin (a second local server, ``http://localhost:<port>``,
another site than the app's ``http://127.0.0.1:<port>``) tries login CSRF against the app,
and a login link carries an off-site ``next``: both fail, in Chromium."""

from __future__ import annotations

import itertools
import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from entrypoints.http.auth import SESSION_COOKIE
from tests.browser.harness import DESKTOP, LiveApp, new_context

PASSWORD = "correct horse battery staple"
_emails = itertools.count(1)


class HostileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app_url: str) -> None:
        super().__init__(("127.0.0.1", 0), HostileHandler)
        self.app_url = app_url
        self.hits: list[str] = []

    @property
    def origin(self) -> str:
        return f"http://localhost:{self.server_address[1]}"


class HostileHandler(BaseHTTPRequestHandler):
    """Serves the attacker's pages; records every path it is asked for."""

    server: HostileServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        app = self.server.app_url
        pages = {
            "/text-plain-form": (
                # the classic JSON-in-text/plain login CSRF: name + value make a JSON body
                f"<form id=f method=POST action='{app}/api/v1/auth/login' enctype='text/plain'>"
                '<input name=\'{"email":"attacker@example.com","password":"'
                f'{PASSWORD}","x":"\' value=\'"}}\'></form>'
                "<script>document.getElementById('f').submit()</script>"
            ),
            "/urlencoded-form": (
                f"<form id=f method=POST action='{app}/login'>"
                "<input name=email value='attacker@example.com'>"
                f"<input name=password value='{PASSWORD}'></form>"
                "<script>document.getElementById('f').submit()</script>"
            ),
            "/fetch": (
                "<script>fetch('" + app + "/api/v1/auth/login', {method: 'POST', mode: "
                "'no-cors', credentials: 'include', headers: {'Content-Type': 'text/plain'}, "
                "body: JSON.stringify({email: 'attacker@example.com', password: '"
                + PASSWORD
                + "'})}).finally(() => { document.title = 'sent'; });</script>"
            ),
        }
        body = pages.get(self.path.split("?", 1)[0], "<p>welcome to the attacker's site</p>")
        data = f"<!doctype html><html><title>hostile</title><body>{body}</body></html>".encode()
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def hostile(live_app: LiveApp) -> Iterator[HostileServer]:
    server = HostileServer(live_app.base_url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def attacker(live_app: LiveApp) -> str:
    """The attacker's own account, which the forged logins try to put the victim into."""
    request = urllib.request.Request(  # noqa: S310 - loopback only
        live_app.url("/api/v1/auth/signup"),
        data=json.dumps({"email": "attacker@example.com", "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 201
        return str(json.loads(response.read())["tenant"]["id"])


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = new_context(browser, DESKTOP, is_mobile=False)
    yield context
    context.close()


def session_cookies(context: BrowserContext, app: LiveApp) -> list[str]:
    return [c["value"] for c in context.cookies(app.base_url) if c["name"] == SESSION_COOKIE]


@pytest.mark.parametrize("attack", ["/text-plain-form", "/urlencoded-form", "/fetch"])
def test_a_hostile_page_cannot_log_the_victim_into_its_account(
    context: BrowserContext, live_app: LiveApp, hostile: HostileServer, attacker: str, attack: str
) -> None:
    page = context.new_page()
    responses: list[tuple[str, int]] = []
    page.on(
        "response",
        lambda r: (
            responses.append((r.url, r.status)) if r.url.startswith(live_app.base_url) else None
        ),
    )
    page.goto(hostile.origin + attack)
    page.wait_for_load_state("networkidle")
    assert session_cookies(context, live_app) == []
    posted = [s for url, s in responses if url.startswith(live_app.base_url) and "/login" in url]
    if attack != "/fetch":  # a no-cors fetch's answer is opaque to the page and to Playwright
        assert posted and all(status in (403, 405) for status in posted), responses
    tenant = page.request.get(live_app.url("/api/v1/tenant"))
    assert tenant.status == 401


def test_the_same_login_from_the_apps_own_page_works(
    context: BrowserContext, live_app: LiveApp, attacker: str
) -> None:
    """The control: the refusal above is about the other origin, not the request."""
    page = context.new_page()
    page.goto(live_app.url("/login"))
    page.get_by_label("Email", exact=True).fill("attacker@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: not url.startswith(live_app.url("/login")))
    assert session_cookies(context, live_app)
    assert page.request.get(live_app.url("/api/v1/tenant")).json()["id"] == attacker


def sign_up_victim(page: Page, app: LiveApp) -> str:
    email = f"victim{next(_emails)}@example.com"
    response = page.request.post(
        app.url("/api/v1/auth/signup"),
        data=json.dumps({"email": email, "password": PASSWORD}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 201, response.text()
    page.context.clear_cookies()
    return email


@pytest.mark.parametrize(
    "next_target",
    ["/%09/{host}/", "//{host}/", "/%5C{host}/", "%2F%2F{host}/", "http://{host}/",
     "/%0A/{host}/"],
)  # fmt: skip
def test_a_login_link_with_an_off_site_next_stays_on_the_site(
    context: BrowserContext, live_app: LiveApp, hostile: HostileServer, next_target: str
) -> None:
    page = context.new_page()
    email = sign_up_victim(page, live_app)
    hits_before = len(hostile.hits)
    host = hostile.origin.split("//", 1)[1]
    page.goto(live_app.url("/login?next=" + next_target.format(host=host)))
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: not url.startswith(live_app.url("/login")))
    page.wait_for_load_state("networkidle")
    assert page.url.startswith(live_app.base_url + "/"), page.url
    assert len(hostile.hits) == hits_before
    assert session_cookies(context, live_app)
