"""The web pages: server-rendered from the catalog and the signed-in tenant's state.

Pages read through the same use cases as the JSON API; their scripts change things only by
calling that API with the session cookie and the CSRF token rendered into each page
(``entrypoints.http.auth`` names the cookie, the header and the token).
"""

from __future__ import annotations

import json
from typing import Any

import attrs
from litestar import Controller, Request, Response, get
from litestar.enums import MediaType
from litestar.response import Redirect

from domain.byok import StoredCredential
from domain.catalog import BYOK
from domain.errors import NotFound
from domain.routing import platform_fallback_tier, tier_models
from domain.tenants import SubscriptionStatus, Tenant
from domain.use_cases.accounts import MIN_PASSWORD_LENGTH, Principal
from entrypoints.bootstrap import Services
from entrypoints.http.auth import (
    CSRF_COOKIE,
    CSRF_HEADER,
    csrf_token,
    provide_optional_customer,
    services_of,
)
from entrypoints.http.pages import capabilities, views
from entrypoints.http.pages.rendering import render

HTML_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'self'"
    ),
}


@attrs.frozen
class Viewer:
    """The signed-in customer a page renders for."""

    email: str
    tenant: Tenant


async def _viewer(request: Request[Any, Any, Any], services: Services) -> Viewer | None:
    principal: Principal | None = await provide_optional_customer(request, services)
    if principal is None or principal.user is None or principal.tenant_id is None:
        return None
    try:
        tenant = await services.tenants.get(principal.tenant_id)
    except NotFound:
        return None
    return Viewer(email=principal.user.email, tenant=tenant)


def _page(
    request: Request[Any, Any, Any],
    template: str,
    page: str,
    title: str,
    viewer: Viewer | None,
    **context: Any,
) -> Response[str]:
    html = render(
        template,
        {
            "page": page,
            "title": title,
            "viewer": viewer,
            "csrf_header": CSRF_HEADER,
            "csrf_cookie": CSRF_COOKIE,
            "csrf_token": csrf_token(request) if viewer else None,
            **context,
        },
    )
    return Response(html, media_type=MediaType.HTML, headers=HTML_HEADERS)


def _login_redirect(request: Request[Any, Any, Any]) -> Redirect:
    return Redirect(path=f"/login?next={request.url.path}", status_code=303)


def _checkout_flag(request: Request[Any, Any, Any]) -> str:
    flag = request.query_params.get("checkout", "")
    return flag if flag in ("success", "canceled") else ""


class PagesController(Controller):
    """Sign up, log in, onboarding, settings (plan & usage, AI provider) and terms."""

    path = "/"
    include_in_schema = False

    @get("/")
    async def home(self, request: Request[Any, Any, Any]) -> Redirect:
        """Paying customers land in their settings, other customers on the plans, visitors
        on the sign-up page."""
        viewer = await _viewer(request, services_of(request))
        if viewer is None:
            return Redirect(path="/signup", status_code=303)
        active = viewer.tenant.status is SubscriptionStatus.ACTIVE
        return Redirect(path="/settings" if active else "/onboarding", status_code=303)

    @get("/signup")
    async def signup(self, request: Request[Any, Any, Any]) -> Response[str] | Redirect:
        viewer = await _viewer(request, services_of(request))
        if viewer is not None:
            return Redirect(path="/onboarding", status_code=303)
        return _page(
            request,
            "pages/auth.html",
            "signup",
            "Create your account",
            None,
            mode="signup",
            password_min_length=MIN_PASSWORD_LENGTH,
        )

    @get("/login")
    async def login(self, request: Request[Any, Any, Any]) -> Response[str] | Redirect:
        viewer = await _viewer(request, services_of(request))
        if viewer is not None:
            return Redirect(path="/", status_code=303)
        return _page(
            request,
            "pages/auth.html",
            "login",
            "Log in",
            None,
            mode="login",
            password_min_length=MIN_PASSWORD_LENGTH,
        )

    @get("/onboarding")
    async def onboarding(self, request: Request[Any, Any, Any]) -> Response[str] | Redirect:
        """One card per tier of the catalog; the tenant's current tier is marked."""
        services = services_of(request)
        viewer = await _viewer(request, services)
        if viewer is None:
            return _login_redirect(request)
        tenant = viewer.tenant
        return _page(
            request,
            "pages/onboarding.html",
            "onboarding",
            "Choose your plan",
            viewer,
            cards=views.tier_cards(services.catalog, tenant.tier),
            tenant_active=tenant.status is SubscriptionStatus.ACTIVE,
            checkout=_checkout_flag(request),
        )

    @get("/plan")
    async def plan(self, request: Request[Any, Any, Any]) -> Redirect:
        """Where Stripe Checkout sends the customer back: settings on success, the plans on
        cancel."""
        if _checkout_flag(request) == "success":
            return Redirect(path="/settings?checkout=success", status_code=303)
        if _checkout_flag(request) == "canceled":
            return Redirect(path="/onboarding?checkout=canceled", status_code=303)
        return Redirect(path="/settings", status_code=303)

    @get("/settings")
    async def settings_plan(self, request: Request[Any, Any, Any]) -> Response[str] | Redirect:
        """Plan & usage: tier, status, messages today and tokens this period as meters."""
        services = services_of(request)
        viewer = await _viewer(request, services)
        if viewer is None:
            return _login_redirect(request)
        tenant_id = viewer.tenant.id
        overview = await services.tenants.overview(tenant_id)
        usage = await services.metering.usage(tenant_id)
        plan = views.plan_view(services.catalog, overview.tenant, usage, overview.route)
        return _page(
            request,
            "pages/settings_plan.html",
            "settings-plan",
            "Plan & usage",
            viewer,
            plan=plan,
            show_provider_tab=plan.is_byok,
            checkout=_checkout_flag(request),
        )

    @get("/settings/ai-provider")
    async def settings_provider(self, request: Request[Any, Any, Any]) -> Response[str] | Redirect:
        """The BYOK tab: provider, masked key, model per provider, fallback switch, test."""
        services = services_of(request)
        viewer = await _viewer(request, services)
        if viewer is None:
            return _login_redirect(request)
        catalog = services.catalog
        tenant = viewer.tenant
        try:
            stored: StoredCredential | None = await services.credentials.get(tenant.id)
        except NotFound:
            stored = None
        credential = views.credential_view(catalog, stored, tenant.timezone)
        provider = (
            catalog.byok_provider(credential.provider) if credential else catalog.byok_providers[0]
        )
        byok = catalog.tier(BYOK)
        fallback_tier = platform_fallback_tier(catalog, byok)
        budget = fallback_tier.tokens_per_period
        return _page(
            request,
            "pages/settings_provider.html",
            "settings-provider",
            "AI Provider",
            viewer,
            show_provider_tab=True,
            is_byok=catalog.tier(tenant.tier).id == BYOK,
            byok_name=byok.name,
            byok_price=views.price_label(byok.price),
            providers=catalog.byok_providers,
            providers_json=_script_json(views.providers_data(catalog)),
            credential=credential,
            selected_provider=provider.id,
            selected_key_hint=provider.key_hint,
            selected_models=capabilities.model_options(provider),
            selected_model=credential.model_preference if credential else "",
            allow_fallback=credential.allow_platform_fallback if credential else True,
            fallback_models=", ".join(views.model_names(catalog, tier_models(fallback_tier))),
            fallback_budget=f"{budget:,}" if budget is not None else "unlimited",
        )

    @get("/terms")
    async def terms(self, request: Request[Any, Any, Any]) -> Response[str]:
        """Prices and limits read from the catalog in force."""
        services = services_of(request)
        viewer = await _viewer(request, services)
        catalog = services.catalog
        byok = catalog.tier(BYOK)
        fallback_budget = platform_fallback_tier(catalog, byok).tokens_per_period
        intervals = sorted({t.price.interval for t in catalog.tiers})
        return _page(
            request,
            "pages/terms.html",
            "terms",
            "Terms of service",
            viewer,
            cards=views.tier_cards(catalog, None),
            intervals=" or ".join(intervals),
            grace_days=catalog.past_due_grace_days,
            byok_name=byok.name,
            byok_price=views.price_label(byok.price),
            fallback_budget=f"{fallback_budget:,}" if fallback_budget is not None else "no",
        )


def _script_json(data: object) -> str:
    """JSON safe inside a ``<script type="application/json">`` element."""
    return (
        json.dumps(data, separators=(",", ":"))
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
