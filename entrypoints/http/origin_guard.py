"""Cross-site request refusal for every unsafe request (POST, PUT, PATCH, DELETE), before
any handler runs; pages and the JSON API alike, login and signup included.

- A browser says where a request comes from: ``Sec-Fetch-Site`` other than ``same-origin``
  or ``none`` (typed by the user), or an ``Origin`` that is not this site (the request's own
  ``Host`` or ``TIERKEEPER_PUBLIC_URL``), is 403 ``forbidden``. Clients that are not browsers
  (the gateway, Stripe, scripts) send neither header and are not affected.
- The JSON API (``/api/``) parses only ``application/json`` bodies: a body of any other type
  is 415 ``unsupported_media_type``, so a cross-site ``<form enctype="text/plain">`` cannot
  smuggle JSON in even where no browser header gives it away.

The API reference page (``/schema``) also gets its no-script ``Content-Security-Policy``
header here.

The CSRF token (``entrypoints.http.auth``) is the second, independent check for requests
authenticated by the session cookie.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints.http.schema_page import SCHEMA_CSP as SCHEMA_CSP_TEXT

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})
JSON_API_PREFIX = "/api/"
JSON_MEDIA_TYPES = frozenset({"application/json"})


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def origin_allowed(origin: str, host: str | None, public_url: str) -> bool:
    """The ``Origin`` names this site: its host and port are the request's ``Host`` or those
    of the public URL (``null`` and anything unparsable are not)."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    netloc = parts.netloc.lower()
    own = {urlsplit(public_url).netloc.lower()}
    if host:
        own.add(host.lower())
    return netloc in own


def cross_site_reason(headers: dict[str, str], public_url: str) -> str | None:
    """Why a browser request is cross-site, or None when nothing says it is."""
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.lower() not in ALLOWED_FETCH_SITES:
        return "requests from other sites are refused"
    origin = headers.get("origin")
    if origin is not None and not origin_allowed(origin, headers.get("host"), public_url):
        return "requests from other origins are refused"
    return None


def has_body(headers: dict[str, str]) -> bool:
    length = headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in headers


def media_type(headers: dict[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _public_url(scope: Scope) -> str:
    """The configured public URL of the app serving this request ("" before startup)."""
    services = getattr(scope["app"].state, "services", None)
    return str(services.settings.public_url) if services is not None else ""


SCHEMA_CSP = SCHEMA_CSP_TEXT.encode()
SCHEMA_PAGES = frozenset({"/schema", "/schema/"})


def _with_schema_csp(send: Send) -> Send:
    """The API reference page gets its no-script CSP as a header too."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", []), (b"content-security-policy", SCHEMA_CSP)]
            message = {**message, "headers": headers}
        await send(message)

    return sending


def origin_guard_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope.get("path") in SCHEMA_PAGES:
            await app(scope, receive, _with_schema_csp(send))
            return
        if scope["type"] != ScopeType.HTTP or scope.get("method") not in UNSAFE_METHODS:
            await app(scope, receive, send)
            return
        headers = _headers(scope)
        reason = cross_site_reason(headers, _public_url(scope))
        if reason is not None:
            await _refuse(scope, send, 403, "forbidden", reason)
            return
        path = str(scope.get("path", ""))
        if (
            path.startswith(JSON_API_PREFIX)
            and has_body(headers)
            and media_type(headers) not in JSON_MEDIA_TYPES
        ):
            await _refuse(
                scope,
                send,
                415,
                "unsupported_media_type",
                "the API takes JSON bodies sent as application/json",
            )
            return
        await app(scope, receive, send)

    return middleware


async def _refuse(scope: Scope, send: Send, status: int, code: str, detail: str) -> None:
    state = scope.setdefault("state", {})
    state["error_code"] = code
    body = json.dumps({"code": code, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
