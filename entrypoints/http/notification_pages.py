"""The notifications settings page (mail on or off, webhook URL, the signing secret shown
once) and the banners' dismiss button: plain HTML forms posted with the page's CSRF token,
so they work without JavaScript."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.enums import MediaType
from litestar.params import PathParameter
from litestar.response import Redirect

from domain.errors import DomainError, ValidationError
from domain.use_cases.accounts import Principal
from domain.use_cases.notifications import SettingsView
from entrypoints.http.auth import (
    CSRF_COOKIE,
    CSRF_HEADER,
    csrf_token,
    provide_customer,
    provide_optional_customer,
    services_of,
    tenant_of,
)
from entrypoints.http.banners import load_banners
from entrypoints.http.controllers.notifications import notifications_of
from entrypoints.http.pages.controllers import HTML_HEADERS
from entrypoints.http.pages.rendering import render

__all__ = ["NotificationPagesController", "load_banners"]

TEMPLATE = "notifications/settings.html"


def _render(
    request: Request[Any, Any, Any],
    principal: Principal,
    view: SettingsView,
    *,
    saved: bool = False,
    error: DomainError | None = None,
    status_code: int = 200,
) -> Response[str]:
    html = render(
        TEMPLATE,
        {
            "page": "settings-notifications",
            "title": "Notifications",
            "viewer": {"email": principal.user.email if principal.user else ""},
            "csrf_header": CSRF_HEADER,
            "csrf_cookie": CSRF_COOKIE,
            "csrf_token": csrf_token(request),
            "show_provider_tab": True,
            "settings": view,
            "secret": view.webhook_secret.reveal() if view.webhook_secret else None,
            "saved": saved,
            "error": error,
        },
    )
    return Response(html, media_type=MediaType.HTML, headers=HTML_HEADERS, status_code=status_code)


def _back_to(request: Request[Any, Any, Any]) -> str:
    """The page the form was on (a same-origin path), else the settings."""
    referer = request.headers.get("referer", "")
    base = str(request.base_url).rstrip("/")
    if referer.startswith(base + "/"):
        path = referer[len(base) :]
        if path.startswith("/") and not path.startswith("//"):
            return path
    return "/settings"


class NotificationPagesController(Controller):
    path = "/"
    include_in_schema = False

    @get("/settings/notifications")
    async def settings_page(self, request: Request[Any, Any, Any]) -> Response[str] | Redirect:
        services = services_of(request)
        principal = await provide_optional_customer(request, services)
        if principal is None or principal.tenant_id is None:
            return Redirect(path="/login?next=/settings/notifications", status_code=303)
        view = await notifications_of(services).get_settings(principal.tenant_id)
        return _render(request, principal, view)

    @post("/settings/notifications", status_code=200)
    async def save_settings(self, request: Request[Any, Any, Any]) -> Response[str]:
        services = services_of(request)
        principal = await provide_customer(request, services)
        form = await request.form()
        notifications = notifications_of(services)
        tenant_id = tenant_of(principal)
        url = str(form.get("webhook_url") or "")
        try:
            view = await notifications.put_settings(
                tenant_id,
                email_enabled=form.get("email_enabled") == "on",
                webhook_url=url,
                rotate_secret=form.get("rotate_secret") == "on",
            )
        except ValidationError as error:
            current = await notifications.get_settings(tenant_id)
            return _render(request, principal, current, error=error, status_code=422)
        return _render(request, principal, view, saved=True)

    @post("/notifications/{notification_id:str}/dismiss", status_code=303)
    async def dismiss(
        self,
        request: Request[Any, Any, Any],
        notification_id: Annotated[str, PathParameter(max_length=64)],
    ) -> Redirect:
        services = services_of(request)
        principal = await provide_customer(request, services)
        await notifications_of(services).mark_read(tenant_of(principal), notification_id)
        return Redirect(path=_back_to(request), status_code=303)
