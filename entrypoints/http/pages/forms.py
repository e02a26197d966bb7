"""The pages' forms, posted to the server: they work with JavaScript off.

Each handler reads the urlencoded form, checks its CSRF token, calls the same use case as
the JSON API, and answers with a 303 redirect (success) or the page again with every field
error at once, in words for people. No password, key or token ever goes into a URL: the
forms use POST, redirects carry only fixed notice names, and re-rendered pages never echo a
password or a key back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Controller, Request, Response, post
from litestar.response import Redirect

from domain.byok import CredentialInput, validate_api_key, validate_model
from domain.errors import DomainError, Forbidden, Unauthorized, ValidationError
from domain.ids import TenantId
from domain.secrets import Secret
from domain.subscriptions import has_live_subscription
from domain.use_cases.accounts import check_password, normalise_email
from domain.use_cases.billing import Billing
from entrypoints.http.auth import (
    CLEARED_SESSION_COOKIES,
    CSRF_FORM_FIELD,
    client_address,
    provide_customer,
    safe_next,
    services_of,
    set_session,
)
from entrypoints.http.controllers.billing import billing_of
from entrypoints.http.errors import status_for
from entrypoints.http.pages import wording
from entrypoints.http.pages.common import (
    NO_COMPRESSION,
    Viewer,
    field,
    login_redirect,
    see_other,
    viewer_of,
    visitor_form_trusted,
)
from entrypoints.http.pages.controllers import (
    FormErrors,
    auth_page,
    onboarding_page,
    provider_page,
    settings_plan_page,
)

EXPIRED = wording.CODE_WORDS["forbidden"]


async def _form(request: Request[Any, Any, Any]) -> Any:
    return await request.form()


async def _signed_in(request: Request[Any, Any, Any]) -> Viewer | None:
    """The viewer of a signed-in form whose CSRF token matches its session; None otherwise
    (a missing session and a forged form are both sent to log in again)."""
    services = services_of(request)
    try:
        await provide_customer(request, services)
    except (Unauthorized, Forbidden):
        return None
    return await viewer_of(request, services)


async def _billing_action(
    request: Request[Any, Any, Any],
    act: Callable[[Billing, TenantId], Awaitable[object]],
    done: str | None = None,
) -> Response[Any]:
    """Run one billing action for the signed-in tenant, then back to the settings with the
    ``done`` notice, or (no notice) on to the address the action answered, such as the
    billing portal's; a failure shows in the Billing panel, in words for people."""
    viewer = await _signed_in(request)
    if viewer is None:
        return login_redirect(request)
    services = services_of(request)
    try:
        result = await act(billing_of(services), viewer.tenant.id)
    except DomainError as error:
        return await settings_plan_page(
            request,
            viewer,
            billing_error=wording.error_words(error),
            status_code=status_for(error),
        )
    if done is None:
        return Redirect(path=str(result), status_code=303)
    return see_other(f"/settings?done={done}")


class FormsController(Controller):
    path = "/"
    include_in_schema = False
    opt = NO_COMPRESSION

    @post("/signup", status_code=303)
    async def signup(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Create the account; every field error shows at once; then the plans, with the
        tier chosen on the pricing page preselected."""
        services = services_of(request)
        form = await _form(request)
        email = field(form, "email").strip()
        password = field(form, "password")
        tier = field(form, "tier")
        tier = tier if any(t.id == tier for t in services.catalog.tiers) else ""
        zone = field(form, "timezone_choice")
        if not visitor_form_trusted(request, field(form, CSRF_FORM_FIELD)):
            return auth_page(
                request,
                "signup",
                form_error=EXPIRED,
                email=email,
                tier=tier,
                chosen_zone=zone,
                status_code=403,
            )
        errors: FormErrors = {}
        try:
            normalise_email(email)
        except ValidationError:
            errors["email"] = wording.FIELD_WORDS["email"]
        try:
            check_password(Secret(password))
        except ValidationError:
            errors["password"] = wording.FIELD_WORDS["password"]
        if errors:
            return auth_page(
                request,
                "signup",
                errors=errors,
                email=email,
                tier=tier,
                chosen_zone=zone,
                status_code=422,
            )
        timezone = (field(form, "timezone") or zone).strip() or None
        try:
            signed = await services.accounts.signup(
                email, Secret(password), timezone, client_address(request)
            )
        except ValidationError as error:
            if error.field == "timezone":
                signed = await services.accounts.signup(
                    email, Secret(password), None, client_address(request)
                )
            else:
                return auth_page(
                    request,
                    "signup",
                    errors={error.field or "email": wording.error_words(error)},
                    email=email,
                    tier=tier,
                    chosen_zone=zone,
                    status_code=422,
                )
        except DomainError as error:
            return auth_page(
                request,
                "signup",
                form_error=wording.error_words(error),
                email=email,
                tier=tier,
                chosen_zone=zone,
                status_code=status_for(error),
            )
        request.state.tenant_id = signed.tenant.id
        target = "/onboarding?done=signed-up" + (f"&tier={tier}" if tier else "")
        response = see_other(target)
        set_session(response, signed.token, services)
        return response

    @post("/login", status_code=303)
    async def login(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Log in and go on to the page asked for (a path of this site only)."""
        services = services_of(request)
        form = await _form(request)
        email = field(form, "email").strip()
        password = field(form, "password")
        next_path = safe_next(field(form, "next"), "")
        if not visitor_form_trusted(request, field(form, CSRF_FORM_FIELD)):
            return auth_page(
                request, "login", form_error=EXPIRED, email=email, next_path=next_path,
                status_code=403,
            )  # fmt: skip
        errors: FormErrors = {}
        if not email:
            errors["email"] = "Enter the email address you signed up with."
        if not password:
            errors["password"] = "Enter your password."
        if errors:
            return auth_page(
                request, "login", errors=errors, email=email, next_path=next_path,
                status_code=422,
            )  # fmt: skip
        try:
            user, token = await services.accounts.login(
                email, Secret(password), client_address(request)
            )
        except DomainError as error:
            words = (
                wording.CODE_WORDS["unauthorized"]
                if isinstance(error, ValidationError)
                else wording.error_words(error)
            )
            return auth_page(
                request, "login", form_error=words, email=email, next_path=next_path,
                status_code=status_for(error),
            )  # fmt: skip
        request.state.tenant_id = user.tenant_id
        response = see_other(next_path or "/")
        set_session(response, token, services)
        return response

    @post("/logout", status_code=303)
    async def logout(self, request: Request[Any, Any, Any]) -> Redirect:
        """Revoke this session and clear its cookies; a forged form logs nobody out."""
        services = services_of(request)
        try:
            principal = await provide_customer(request, services)
        except (Unauthorized, Forbidden):
            return see_other("/login")
        await services.accounts.logout(principal)
        response = see_other("/login?done=logged-out")
        for cookie in CLEARED_SESSION_COOKIES:
            response.set_cookie(cookie)
        return response

    @post("/onboarding", status_code=303)
    async def choose_plan(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Start the payment provider's checkout for the chosen tier, or, for a tenant that
        already has a subscription, change that subscription's plan (issue #17: never a
        second subscription); a failure shows next to that tier's button, where the
        customer is looking."""
        viewer = await _signed_in(request)
        if viewer is None:
            return login_redirect(request)
        form = await _form(request)
        tier = field(form, "tier")
        services = services_of(request)
        try:
            if has_live_subscription(viewer.tenant):
                changed = await billing_of(services).change_plan(viewer.tenant.id, tier)
                done = "plan-scheduled" if changed.pending_tier else "plan-changed"
                return see_other(f"/settings?done={done}")
            session = await billing_of(services).checkout(viewer.tenant.id, tier, viewer.email)
        except DomainError as error:
            return await onboarding_page(
                request,
                viewer,
                chosen=tier,
                choose_error=wording.error_words(error),
                status_code=status_for(error),
            )
        return Redirect(path=session.url, status_code=303)

    @post("/settings/billing/cancel", status_code=303)
    async def cancel_plan(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """End the subscription at the period end; the agent works until then."""
        return await _billing_action(
            request, lambda billing, tenant: billing.cancel(tenant), "canceled"
        )

    @post("/settings/billing/resume", status_code=303)
    async def resume_plan(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Keep a subscription set to end renewing, before it ends."""
        return await _billing_action(
            request, lambda billing, tenant: billing.resume(tenant), "resumed"
        )

    @post("/settings/billing/portal", status_code=303)
    async def billing_portal(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Open the payment provider's billing portal (card, invoices, receipts)."""
        return await _billing_action(request, lambda billing, tenant: billing.portal(tenant))

    @post("/settings/model", status_code=303)
    async def choose_model(self, request: Request[Any, Any, Any]) -> Response[Any]:
        viewer = await _signed_in(request)
        if viewer is None:
            return login_redirect(request)
        form = await _form(request)
        services = services_of(request)
        try:
            await services.tenants.update(
                viewer.tenant.id, model_preference=field(form, "model_preference")
            )
        except DomainError as error:
            return await settings_plan_page(
                request,
                viewer,
                model_error=wording.field_words("model_preference", None),
                status_code=status_for(error),
            )
        return see_other("/settings?done=model")

    @post("/settings/ai-provider", status_code=303)
    async def provider(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Save (then test the saved key), test without saving, or remove the key."""
        viewer = await _signed_in(request)
        if viewer is None:
            return login_redirect(request)
        form = await _form(request)
        intent = field(form, "intent")
        if intent == "remove":
            return await self._remove(request, viewer)
        return await self._save_or_test(request, viewer, form, test_only=intent == "test")

    async def _remove(self, request: Request[Any, Any, Any], viewer: Viewer) -> Response[Any]:
        services = services_of(request)
        try:
            await services.credentials.delete(viewer.tenant.id)
        except DomainError as error:
            if error.code != "not_found":
                return await provider_page(
                    request,
                    viewer,
                    form_error=wording.error_words(error),
                    status_code=status_for(error),
                )
        return see_other("/settings/ai-provider?done=removed")

    async def _save_or_test(
        self, request: Request[Any, Any, Any], viewer: Viewer, form: Any, test_only: bool
    ) -> Response[Any]:
        services = services_of(request)
        catalog = services.catalog
        provider_id = field(form, "provider").strip().lower()
        model = field(form, "model_preference").strip()
        raw_key = field(form, "api_key").strip()
        allow_fallback = field(form, "allow_platform_fallback") in ("on", "true", "1")
        submitted = {
            "provider": provider_id,
            "model_preference": model,
            "allow_platform_fallback": allow_fallback,
        }
        provider = next((p for p in catalog.byok_providers if p.id == provider_id), None)
        errors: FormErrors = {}
        if provider is None:
            errors["provider"] = wording.FIELD_WORDS["provider"]
            submitted["provider"] = ""
        else:
            try:
                validate_model(provider, model)
            except ValidationError as error:
                errors["model_preference"] = wording.error_words(error, provider)
            if raw_key:
                try:
                    validate_api_key(provider, Secret(raw_key))
                except ValidationError as error:
                    errors["api_key"] = wording.error_words(error, provider)
        if errors:
            return await provider_page(
                request, viewer, errors=errors, submitted=submitted, status_code=422
            )
        assert provider is not None
        key = Secret(raw_key) if raw_key else None
        try:
            if test_only:
                outcome = await services.credentials.test(
                    viewer.tenant.id, provider_id=provider.id, api_key=key, model=model
                )
                return await provider_page(
                    request,
                    viewer,
                    submitted=submitted,
                    result=outcome,
                    result_provider=provider.id,
                )
            assert viewer.tenant is not None
            principal = await provide_customer(request, services)
            assert principal.user is not None
            await services.credentials.put(
                viewer.tenant.id,
                principal.user.id,
                CredentialInput(
                    provider=provider.id,
                    model_preference=model,
                    api_key=key,
                    allow_platform_fallback=allow_fallback,
                ),
            )
            await services.credentials.test(viewer.tenant.id, provider_id=None, api_key=None)
        except ValidationError as error:
            return await provider_page(
                request,
                viewer,
                errors={error.field or "api_key": wording.error_words(error, provider)},
                submitted=submitted,
                status_code=422,
            )
        except DomainError as error:
            return await provider_page(
                request,
                viewer,
                form_error=wording.error_words(error, provider),
                submitted=submitted,
                status_code=status_for(error),
            )
        return see_other("/settings/ai-provider?done=saved")
