"""Who is calling: customer bearer tokens or the session cookie, service bearer tokens, CSRF.

Reusable by the web pages: ``provide_customer`` / ``provide_optional_customer`` as
dependencies, ``set_session`` on a response (``CLEARED_SESSION_COOKIES`` end it),
``csrf_token_for`` to put the token into a form (field ``csrf_token``) or a header
(``X-CSRF-Token``).

- A bearer header wins over the cookie. Tokens are stored only as hashes (see
  ``domain.use_cases.accounts``).
- The session cookie is HTTP-only and SameSite=Lax; it carries a customer token.
- A cookie-authenticated unsafe request must present the CSRF token derived from the session
  token (an HMAC only the holder of the cookie's value can compute). It is also set in a
  readable ``tierkeeper_csrf`` cookie so scripts of our own origin can send it back.
- Customer endpoints refuse service tokens (403) and gateway endpoints customer tokens (403).
- Login and signup, which have no session yet, are guarded against cross-site requests by
  ``entrypoints.http.origin_guard`` (Origin / Sec-Fetch-Site); when they come with a live
  session cookie, that session's CSRF token is required too (``verify_login_csrf``).
- ``safe_next`` keeps a ``next`` target to a path of this site.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.openapi.spec import SecurityRequirement

from domain.errors import Forbidden, Unauthorized
from domain.ids import TenantId
from domain.secrets import Secret
from domain.sessions import ABSOLUTE_LIMIT
from domain.use_cases.accounts import Principal
from entrypoints.bootstrap import Services

SESSION_COOKIE = "tierkeeper_session"
CSRF_COOKIE = "tierkeeper_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FORM_FIELD = "csrf_token"
SESSION_MAX_AGE_S = int(ABSOLUTE_LIMIT.total_seconds())
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}
"""Headers of every response that carries a token."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

ServicesDep: TypeAlias = NamedDependency[Services]
"""The bootstrapped services, injected by name."""
CustomerDep: TypeAlias = NamedDependency[Principal]
"""The calling customer (``provide_customer``), injected as ``customer``."""
ServiceDep: TypeAlias = NamedDependency[Principal]
"""The calling service (``provide_service``), injected as ``service``."""

CUSTOMER_SECURITY: list[SecurityRequirement] = [{"bearer": []}, {"session": []}]
SERVICE_SECURITY: list[SecurityRequirement] = [{"bearer": []}]


def services_of(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services


async def provide_services(request: Request[Any, Any, Any]) -> Services:
    return services_of(request)


def csrf_token_for(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"tierkeeper-csrf", hashlib.sha256).hexdigest()


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    """The bearer token of the Authorization header; a header of another scheme is refused."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def session_token(request: Request[Any, Any, Any]) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


def csrf_token(request: Request[Any, Any, Any]) -> str | None:
    """The CSRF token of the request's session, for templates; None without a session."""
    token = session_token(request)
    return csrf_token_for(token) if token else None


async def verify_csrf(request: Request[Any, Any, Any], token: str) -> None:
    expected = csrf_token_for(token)
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.content_type[0] in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.form()
        value = form.get(CSRF_FORM_FIELD)
        presented = value if isinstance(value, str) else None
    if presented is None or not hmac.compare_digest(presented, expected):
        raise Forbidden("the CSRF token is missing or wrong")


async def verify_login_csrf(request: Request[Any, Any, Any], services: ServicesDep) -> None:
    """Login and signup sent with a live session cookie (and no bearer header) must carry
    that session's CSRF token, like any other cookie-authenticated unsafe request."""
    if request.headers.get("authorization") is not None:
        return
    token = session_token(request)
    if token is None:
        return
    try:
        await services.accounts.customer(token)
    except (Unauthorized, Forbidden):
        return
    await verify_csrf(request, token)


def safe_next(value: str | None, default: str = "/") -> str:
    """``value`` when it is a path of this site, else ``default``. Refused: anything not
    starting with one ``/`` (``//host``, ``/\\host``), any backslash, space or control character
    (a browser drops tabs and newlines, so ``/\t/host`` would become ``//host``), and
    anything with a scheme or host."""
    if not value or len(value) > 2048 or not value.startswith("/"):
        return default
    if value.startswith("//") or "\\" in value:
        return default
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F or ch.isspace() for ch in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def client_address(request: Request[Any, Any, Any]) -> str | None:
    """The caller's address as the server sees it (uvicorn applies trusted proxy headers)."""
    return request.client.host if request.client is not None else None


async def _customer(request: Request[Any, Any, Any], services: ServicesDep) -> Principal:
    token = bearer_token(request)
    via_cookie = token is None
    if token is None:
        token = session_token(request)
    if token is None:
        raise Unauthorized("a bearer token or a session is required")
    principal = await services.accounts.customer(token)
    if via_cookie and request.method not in SAFE_METHODS:
        await verify_csrf(request, token)
    request.state.tenant_id = principal.customer_tenant()
    return principal


async def provide_customer(request: Request[Any, Any, Any], services: ServicesDep) -> Principal:
    """The calling customer; 401 without valid credentials, 403 for a service token or a
    cookie-authenticated unsafe request without its CSRF token."""
    return await _customer(request, services)


async def provide_optional_customer(
    request: Request[Any, Any, Any], services: ServicesDep
) -> Principal | None:
    """For pages that render for visitors too: None instead of 401/403."""
    try:
        return await _customer(request, services)
    except (Unauthorized, Forbidden):
        return None


async def provide_service(request: Request[Any, Any, Any], services: ServicesDep) -> Principal:
    """The calling service (the gateway); a customer token is 403."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("a service bearer token is required")
    principal = await services.accounts.service(token)
    request.state.service = principal.subject
    return principal


def tenant_of(principal: Principal) -> TenantId:
    """The customer's own tenant: the only one it may ever read or change."""
    tenant_id = principal.customer_tenant()
    if tenant_id is None:
        raise Forbidden("a service token cannot act as a customer")
    return tenant_id


def _secure(services: ServicesDep) -> bool:
    return services.settings.public_url.startswith("https://")


def set_session(response: Response[Any], token: Secret, services: ServicesDep) -> None:
    """The session cookie (HTTP-only) and its readable CSRF companion."""
    raw = token.reveal()
    secure = _secure(services)
    response.set_cookie(
        Cookie(
            key=SESSION_COOKIE,
            value=raw,
            max_age=SESSION_MAX_AGE_S,
            httponly=True,
            samesite="lax",
            secure=secure,
            path="/",
        )
    )
    response.set_cookie(
        Cookie(
            key=CSRF_COOKIE,
            value=csrf_token_for(raw),
            max_age=SESSION_MAX_AGE_S,
            httponly=False,
            samesite="strict",
            secure=secure,
            path="/",
        )
    )


CLEARED_SESSION_COOKIES = [
    Cookie(key=SESSION_COOKIE, value="", max_age=0, expires=0, httponly=True, path="/"),
    Cookie(key=CSRF_COOKIE, value="", max_age=0, expires=0, path="/"),
]
"""Set on a response to end the browser's session (logout)."""
