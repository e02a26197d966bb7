"""What every page handler shares: who is viewing, the HTML response, the forms' CSRF
tokens, and the notices a redirect carries.

Signed-in forms carry the session's CSRF token (``entrypoints.http.auth``). The sign-up and
log-in forms are sent before any session exists: they carry a random token that the page
also sets in a strict, HTTP-only cookie, and a request from another site (by its ``Origin``
or ``Sec-Fetch-Site``) is refused before the token is even compared.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import urlsplit

import attrs
from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.enums import MediaType
from litestar.response import Redirect

from domain.errors import NotFound
from domain.tenants import Tenant
from domain.use_cases.accounts import Principal
from entrypoints.bootstrap import Services
from entrypoints.http.auth import (
    CSRF_COOKIE,
    CSRF_FORM_FIELD,
    CSRF_HEADER,
    csrf_token,
    provide_optional_customer,
    services_of,
)
from entrypoints.http.pages.rendering import render

CHECKOUT_ORIGIN = "https://checkout.stripe.com"
PORTAL_ORIGIN = "https://billing.stripe.com"


def html_headers(services: Services) -> dict[str, str]:
    """No caching, no sniffing, our own scripts only. Forms may lead to our own pages and
    to the payment provider's checkout and billing portal (its API base when one is
    configured: a local stand-in in tests), where choosing a plan or managing billing
    redirects."""
    targets = ["'self'", CHECKOUT_ORIGIN, PORTAL_ORIGIN]
    base = services.settings.stripe_api_base
    if base:
        parts = urlsplit(base)
        targets.append(f"{parts.scheme}://{parts.netloc}")
    return {
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
        "content-security-policy": (
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data:; connect-src 'self'; form-action {' '.join(targets)}; "
            "frame-ancestors 'none'; base-uri 'self'"
        ),
    }


VISITOR_CSRF_COOKIE = "tierkeeper_form"
VISITOR_CSRF_MAX_AGE_S = 2 * 3600
NO_COMPRESSION = {"skip_compression": True}
"""Pages that carry a CSRF token or a customer's data are not compressed (BREACH)."""

NOTICES = {
    "signed-up": "Your account is ready. Choose a plan to start your agent.",
    "model": "Your agent now answers with the model you chose.",
    "removed": "Your API key was removed. Your agent stopped using it.",
    "saved": "Saved. We tested the key right away:",
    "logged-out": "You are logged out.",
    "paid": "Your payment went through: your plan is active.",
    "plan-changed": "Your plan has changed.",
    "plan-scheduled": "Your plan changes at the end of this billing period.",
    "canceled": "Your plan is canceled at the end of this billing period.",
    "resumed": "Your plan is resumed and renews as before.",
}
"""What a redirect after a form may announce, by a fixed name: nothing from the request is
ever echoed through the URL."""


@attrs.frozen
class Viewer:
    """The signed-in customer a page renders for."""

    email: str
    tenant: Tenant


async def viewer_of(request: Request[Any, Any, Any], services: Services) -> Viewer | None:
    principal: Principal | None = await provide_optional_customer(request, services)
    if principal is None or principal.user is None:
        return None
    tenant_id = principal.customer_tenant()
    if tenant_id is None:
        return None
    try:
        tenant = await services.tenants.get(tenant_id)
    except NotFound:
        return None
    return Viewer(email=principal.user.email, tenant=tenant)


def visitor_token(request: Request[Any, Any, Any]) -> str:
    """The visitor's form token: the one its cookie holds, else a new one."""
    return request.cookies.get(VISITOR_CSRF_COOKIE) or secrets.token_urlsafe(32)


def page(
    request: Request[Any, Any, Any],
    template: str,
    page_id: str,
    title: str,
    viewer: Viewer | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response[str]:
    """A rendered page. Signed in, forms carry the session's CSRF token; signed out, the
    visitor's token, set again in its cookie."""
    token = csrf_token(request) if viewer else visitor_token(request)
    notice = NOTICES.get(request.query_params.get("done", ""), "")
    html = render(
        template,
        {
            "page": page_id,
            "title": title,
            "viewer": viewer,
            "csrf_header": CSRF_HEADER,
            "csrf_cookie": CSRF_COOKIE,
            "csrf_field": CSRF_FORM_FIELD,
            "csrf_token": token,
            "notice": notice,
            **context,
        },
    )
    response = Response(
        html,
        media_type=MediaType.HTML,
        headers=html_headers(services_of(request)),
        status_code=status_code,
    )
    if viewer is None and token:
        response.set_cookie(
            Cookie(
                key=VISITOR_CSRF_COOKIE,
                value=token,
                max_age=VISITOR_CSRF_MAX_AGE_S,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
                path="/",
            )
        )
    return response


def see_other(path: str) -> Redirect:
    return Redirect(path=path, status_code=303)


def login_redirect(request: Request[Any, Any, Any]) -> Redirect:
    return see_other(f"/login?next={request.url.path}")


def cross_site(request: Request[Any, Any, Any]) -> bool:
    """A request another site made the browser send: by ``Sec-Fetch-Site``, else by an
    ``Origin`` that is not ours."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    own = f"{request.url.scheme}://{request.url.netloc}"
    return origin.rstrip("/") != own


def visitor_form_trusted(request: Request[Any, Any, Any], presented: str) -> bool:
    """A signed-out form is trusted when it comes from our own pages: not cross-site, and
    with the token its cookie holds."""
    if cross_site(request):
        return False
    expected = request.cookies.get(VISITOR_CSRF_COOKIE)
    return bool(expected and presented and hmac.compare_digest(expected, presented))


def field(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""
