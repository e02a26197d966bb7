"""The web pages: server-rendered from the catalog and the signed-in tenant's state.

Pages read through the same use cases as the JSON API. Every form posts to the page's own
address (``entrypoints.http.pages.forms``), which answers with a redirect or the page
again with every field error in words for people; scripts only make that smoother.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.response import Redirect

from domain.byok import ProbeOutcome, ProbeResult, StoredCredential
from domain.catalog import BYOK
from domain.errors import DomainError, NotFound
from domain.ids import TenantId
from domain.routing import platform_fallback_tier, tier_models
from domain.tenants import SubscriptionStatus
from domain.usage_history import HistoryGroup
from domain.use_cases.accounts import MIN_PASSWORD_LENGTH
from domain.use_cases.metering import UsageView
from entrypoints.bootstrap import Services
from entrypoints.http.auth import safe_next, services_of
from entrypoints.http.controllers.usage_history import history_of
from entrypoints.http.pages import capabilities, views, wording
from entrypoints.http.pages.billing_views import billing_context
from entrypoints.http.pages.chart import day_chart
from entrypoints.http.pages.common import (
    NO_COMPRESSION,
    Viewer,
    login_redirect,
    page,
    see_other,
    viewer_of,
)

FormErrors = dict[str, str]


def _checkout_flag(request: Request[Any, Any, Any]) -> str:
    flag = request.query_params.get("checkout", "")
    return flag if flag in ("success", "canceled") else ""


def _chosen_tier(request: Request[Any, Any, Any], services: Services) -> str:
    """The tier a visitor picked on the pricing page, when it is one of the catalog's."""
    wanted = request.query_params.get("tier", "")
    return wanted if any(t.id == wanted for t in services.catalog.tiers) else ""


def auth_page(
    request: Request[Any, Any, Any],
    mode: str,
    *,
    errors: FormErrors | None = None,
    form_error: str = "",
    email: str = "",
    tier: str = "",
    next_path: str = "",
    chosen_zone: str = "",
    status_code: int = 200,
) -> Response[str]:
    """Sign-up or log-in; a second rendering shows every field error and keeps the email
    and the chosen time zone (never the password)."""
    services = services_of(request)
    tier_name = services.catalog.tier(tier).name if tier else ""
    return page(
        request,
        "pages/auth.html",
        mode,
        "Create your account" if mode == "signup" else "Log in",
        None,
        status_code=status_code,
        mode=mode,
        password_min_length=MIN_PASSWORD_LENGTH,
        errors=errors or {},
        form_error=form_error,
        email=email,
        tier=tier,
        tier_name=tier_name,
        next_path=next_path,
        timezones=views.timezone_choices() if mode == "signup" else (),
        chosen_zone=chosen_zone or "UTC",
    )


async def onboarding_page(
    request: Request[Any, Any, Any],
    viewer: Viewer,
    *,
    chosen: str = "",
    choose_error: str = "",
    status_code: int = 200,
) -> Response[str]:
    services = services_of(request)
    tenant = viewer.tenant
    return page(
        request,
        "pages/onboarding.html",
        "onboarding",
        "Choose your plan",
        viewer,
        status_code=status_code,
        cards=views.tier_cards(services.catalog, tenant.tier),
        tenant_active=tenant.status is SubscriptionStatus.ACTIVE,
        checkout=_checkout_flag(request),
        chosen=chosen or _chosen_tier(request, services),
        choose_error=choose_error,
        **await billing_context(services, tenant),
    )


async def settings_plan_page(
    request: Request[Any, Any, Any],
    viewer: Viewer,
    *,
    model_error: str = "",
    billing_error: str = "",
    status_code: int = 200,
) -> Response[str]:
    """Plan & usage: tier, status, and each limit as a meter with what is left, what is
    reserved, when it resets, and a paused banner with an upgrade once the agent refuses."""
    services = services_of(request)
    tenant_id = viewer.tenant.id
    overview = await services.tenants.overview(tenant_id)
    usage = await services.metering.usage(tenant_id)
    reserved = await tokens_reserved(services, tenant_id, usage)
    plan = views.plan_view(services.catalog, overview.tenant, usage, overview.route, reserved)
    credential = await _stored(services, viewer)
    return page(
        request,
        "pages/settings_plan.html",
        "settings-plan",
        "Plan & usage",
        viewer,
        status_code=status_code,
        plan=plan,
        show_provider_tab=plan.is_byok,
        checkout=_checkout_flag(request),
        model_error=model_error,
        billing_error=billing_error,
        key_banner=views.key_banner(services.catalog, overview.tenant, credential),
        **_model_notice(request, plan),
        **await billing_context(services, overview.tenant, _checkout_flag(request)),
    )


def _model_notice(request: Request[Any, Any, Any], plan: views.PlanView) -> dict[str, str]:
    """After a model change, the notice names the model the agent now answers with."""
    if request.query_params.get("done") != "model":
        return {}
    return {"notice": f"Your agent now answers with {plan.model}."}


async def tokens_reserved(services: Services, tenant_id: TenantId, usage: UsageView) -> int:
    """Tokens held for messages being answered: the usage view's when it carries them,
    else the ledger's counters for the same day and period."""
    reserved = getattr(usage, "tokens_reserved", None)
    if isinstance(reserved, int):
        return reserved
    metering = services.metering
    counters = await metering.ledger.counters(
        tenant_id, usage.day, usage.period, metering.clock.now()
    )
    return counters.platform_tokens_reserved


async def _stored(services: Services, viewer: Viewer) -> StoredCredential | None:
    try:
        return await services.credentials.get(viewer.tenant.id)
    except NotFound:
        return None


async def provider_page(
    request: Request[Any, Any, Any],
    viewer: Viewer,
    *,
    errors: FormErrors | None = None,
    form_error: str = "",
    submitted: dict[str, Any] | None = None,
    result: ProbeOutcome | None = None,
    result_provider: str = "",
    status_code: int = 200,
) -> Response[str]:
    """The AI Provider tab: provider with its "get a key" link, masked key, model per
    provider (display names), fallback switch, test; a banner while the key is rejected."""
    services = services_of(request)
    catalog = services.catalog
    tenant = viewer.tenant
    stored = await _stored(services, viewer)
    credential = views.credential_view(catalog, stored, tenant.timezone)
    submitted = submitted or {}
    provider_id = submitted.get("provider") or (
        credential.provider if credential else catalog.byok_providers[0].id
    )
    provider = catalog.byok_provider(provider_id)
    byok = catalog.tier(BYOK)
    fallback_tier = platform_fallback_tier(catalog, byok)
    budget = fallback_tier.tokens_per_period
    if result is None and stored is not None and request.query_params.get("done") == "saved":
        result = _stored_result(stored)
        result_provider = stored.provider
    result_words = ""
    if result is not None:
        result_words = wording.probe_words(catalog.byok_provider(result_provider), result)
    return page(
        request,
        "pages/settings_provider.html",
        "settings-provider",
        "AI Provider",
        viewer,
        status_code=status_code,
        show_provider_tab=True,
        is_byok=catalog.tier(tenant.tier).id == BYOK,
        tier_name=catalog.tier(tenant.tier).name,
        byok_name=byok.name,
        byok_price=views.price_label(byok.price),
        providers=catalog.byok_providers,
        providers_json=_script_json(views.providers_data(catalog)),
        credential=credential,
        selected_provider=provider.id,
        selected_key_words=wording.key_shape_words(provider),
        selected_key_url=provider.key_url,
        selected_models=capabilities.model_options(provider),
        selected_model=submitted.get("model_preference")
        or (credential.model_preference if credential else ""),
        allow_fallback=submitted.get(
            "allow_platform_fallback",
            credential.allow_platform_fallback if credential else True,
        ),
        fallback_models=", ".join(views.model_names(catalog, tier_models(fallback_tier))),
        fallback_budget=f"{budget:,}" if budget is not None else "unlimited",
        errors=errors or {},
        form_error=form_error,
        result=result.result.value if result else "",
        result_words=result_words,
        key_banner=views.key_banner(catalog, tenant, stored),
    )


def _stored_result(stored: StoredCredential) -> ProbeOutcome | None:
    """The outcome of the test that saving ran, as the stored status records it."""
    status = stored.status.value
    if status == "valid":
        return ProbeOutcome(ProbeResult.VALID, "", 0)
    if status == "invalid":
        return ProbeOutcome(ProbeResult.INVALID_KEY, stored.last_error or "", 0)
    if stored.last_error:
        return ProbeOutcome(ProbeResult.UNREACHABLE, stored.last_error, 0)
    return None


class PagesController(Controller):
    """Pricing, sign up, log in, onboarding, settings (plan & usage, usage history, AI
    provider) and terms."""

    path = "/"
    include_in_schema = False
    opt = NO_COMPRESSION

    @get("/")
    async def home(self, request: Request[Any, Any, Any]) -> Response[str] | Redirect:
        """Visitors see the plans; paying customers land in their settings, other customers
        on the plans to choose one."""
        services = services_of(request)
        viewer = await viewer_of(request, services)
        if viewer is None:
            return pricing_page(request, services)
        active = viewer.tenant.status is SubscriptionStatus.ACTIVE
        return see_other("/settings" if active else "/onboarding")

    @get("/signup")
    async def signup(self, request: Request[Any, Any, Any]) -> Response[str] | Redirect:
        services = services_of(request)
        if await viewer_of(request, services) is not None:
            return see_other("/onboarding")
        return auth_page(request, "signup", tier=_chosen_tier(request, services))

    @get("/login")
    async def login(self, request: Request[Any, Any, Any]) -> Response[str] | Redirect:
        if await viewer_of(request, services_of(request)) is not None:
            return see_other("/")
        next_path = safe_next(request.query_params.get("next", ""), "")
        return auth_page(request, "login", next_path=next_path)

    @get("/onboarding")
    async def onboarding(self, request: Request[Any, Any, Any]) -> Response[str] | Redirect:
        """One card per tier of the catalog; the tenant's current tier is marked."""
        viewer = await viewer_of(request, services_of(request))
        if viewer is None:
            return login_redirect(request)
        return await onboarding_page(request, viewer)

    @get("/plan")
    async def plan(self, request: Request[Any, Any, Any]) -> Redirect:
        """Where Stripe Checkout sends the customer back: settings on success, the plans on
        cancel."""
        if _checkout_flag(request) == "success":
            return see_other("/settings?checkout=success")
        if _checkout_flag(request) == "canceled":
            return see_other("/onboarding?checkout=canceled")
        return see_other("/settings")

    @get("/settings")
    async def settings_plan(self, request: Request[Any, Any, Any]) -> Response[str] | Redirect:
        viewer = await viewer_of(request, services_of(request))
        if viewer is None:
            return login_redirect(request)
        return await settings_plan_page(request, viewer)

    @get("/settings/cancel")
    async def cancel_confirm(self, request: Request[Any, Any, Any]) -> Response[str] | Redirect:
        """The cancel confirmation as a page, for browsers without JavaScript (with it, the
        Billing panel shows the same as a dialog)."""
        services = services_of(request)
        viewer = await viewer_of(request, services)
        if viewer is None:
            return login_redirect(request)
        context = await billing_context(services, viewer.tenant)
        billing = context["billing"]
        if billing is None or not billing.has_subscription or billing.ending:
            return see_other("/settings")
        return page(
            request, "pages/confirm.html", "cancel-confirm", "Cancel your plan", viewer,
            confirm_template="pages/_cancel_confirm.html", **context,
        )  # fmt: skip

    @get("/settings/change-plan")
    async def change_plan_confirm(
        self, request: Request[Any, Any, Any]
    ) -> Response[str] | Redirect:
        """A plan change's confirmation as a page, for browsers without JavaScript; a tier
        the subscription cannot change to leads back to the plans."""
        services = services_of(request)
        viewer = await viewer_of(request, services)
        if viewer is None:
            return login_redirect(request)
        tier = request.query_params.get("tier", "")
        context = await billing_context(services, viewer.tenant)
        change = context["plan_changes"].get(tier)
        if change is None:
            return see_other("/onboarding")
        return page(
            request, "pages/confirm.html", "change-plan-confirm", change.label, viewer,
            confirm_template="pages/_plan_change_confirm.html", card={"id": tier},
            change=change, **context,
        )  # fmt: skip

    @get("/settings/usage")
    async def settings_usage(self, request: Request[Any, Any, Any]) -> Response[str] | Redirect:
        """Usage history for a range of local days (default: the current billing period):
        a bar per day, a row per model, and the same as CSV."""
        services = services_of(request)
        viewer = await viewer_of(request, services)
        if viewer is None:
            return login_redirect(request)
        return await usage_page(request, services, viewer)

    @get("/settings/ai-provider")
    async def settings_provider(self, request: Request[Any, Any, Any]) -> Response[str] | Redirect:
        viewer = await viewer_of(request, services_of(request))
        if viewer is None:
            return login_redirect(request)
        return await provider_page(request, viewer)

    @get("/terms")
    async def terms(self, request: Request[Any, Any, Any]) -> Response[str]:
        """Prices and limits read from the catalog in force."""
        services = services_of(request)
        viewer = await viewer_of(request, services)
        catalog = services.catalog
        byok = catalog.tier(BYOK)
        fallback_budget = platform_fallback_tier(catalog, byok).tokens_per_period
        intervals = sorted({t.price.interval for t in catalog.tiers})
        return page(
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


def pricing_page(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """The public pricing page: every tier of the catalog with what it includes, the
    fallback and model-weight facts, and a sign-up that keeps the chosen tier."""
    catalog = services.catalog
    byok = catalog.tier(BYOK)
    fallback = platform_fallback_tier(catalog, byok)
    return page(
        request,
        "pages/pricing.html",
        "pricing",
        "Your own AI agent, on a plan that fits",
        None,
        cards=views.tier_cards(catalog, None),
        facts=views.pricing_facts(catalog),
        fallback_models=", ".join(views.model_names(catalog, tier_models(fallback))),
        grace_days=catalog.past_due_grace_days,
    )


async def usage_page(
    request: Request[Any, Any, Any], services: Services, viewer: Viewer
) -> Response[str]:
    history = history_of(services)
    tenant_id = viewer.tenant.id
    usage = await services.metering.usage(tenant_id)
    local_start = usage.period.starts_at.astimezone(usage.day.resets_at.tzinfo).date()
    today = await history.today(tenant_id)
    first_text = request.query_params.get("from", "")
    last_text = request.query_params.get("to", "")
    range_error = ""
    try:
        first = date.fromisoformat(first_text) if first_text else min(local_start, today)
        last = date.fromisoformat(last_text) if last_text else today
        by_day = await history.history(tenant_id, first, last, HistoryGroup.DAY)
    except (ValueError, DomainError):
        range_error = "Choose a start date on or before the end date, at most 400 days apart."
        first, last = min(local_start, today), today
        by_day = await history.history(tenant_id, first, last, HistoryGroup.DAY)
    by_model = await history.history(tenant_id, first, last, HistoryGroup.MODEL)
    catalog = services.catalog
    models = [(views.history_model_name(catalog, row.key), row) for row in by_model.rows]
    query = f"from={first.isoformat()}&to={last.isoformat()}"
    return page(
        request,
        "pages/settings_usage.html",
        "settings-usage",
        "Usage history",
        viewer,
        status_code=422 if range_error else 200,
        show_provider_tab=catalog.tier(viewer.tenant.tier).id == BYOK,
        first=first.isoformat(),
        last=last.isoformat(),
        range_error=range_error,
        chart=day_chart(by_day.rows),
        days=by_day.rows,
        models=models,
        total_messages=sum(r.messages for r in by_day.rows),
        total_tokens=sum(r.tokens() for r in by_day.rows),
        csv_day_url=f"/api/v1/usage/history?{query}&group=day&format=csv",
        csv_model_url=f"/api/v1/usage/history?{query}&group=model&format=csv",
        timezone=viewer.tenant.timezone,
    )


def _script_json(data: object) -> str:
    """JSON safe inside a ``<script type="application/json">`` element."""
    return (
        json.dumps(data, separators=(",", ":"))
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
