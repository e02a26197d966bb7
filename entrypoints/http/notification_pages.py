"""The notifications settings page (mail on or off, webhook URL, the signing secret shown
once) and the banners' dismiss button: plain HTML forms posted with the page's CSRF token,
so they work without JavaScript."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import PathParameter
from litestar.response import Redirect

from domain.catalog import BYOK
from domain.errors import DomainError, ValidationError
from domain.use_cases.notifications import SettingsView
from entrypoints.http.auth import provide_customer, services_of, tenant_of
from entrypoints.http.banners import load_banners
from entrypoints.http.pages.common import Viewer, page, viewer_of

__all__ = ["NotificationPagesController", "load_banners"]

TEMPLATE = "notifications/settings.html"


def _render(
    request: Request[Any, Any, Any],
    viewer: Viewer,
    view: SettingsView,
    *,
    saved: bool = False,
    error: DomainError | None = None,
    status_code: int = 200,
) -> Response[str]:
    catalog = services_of(request).catalog
    return page(
        request,
        TEMPLATE,
        "settings-notifications",
        "Notifications",
        viewer,
        status_code=status_code,
        show_provider_tab=catalog.tier(viewer.tenant.tier).id == BYOK,
        settings=view,
        secret=view.webhook_secret.reveal() if view.webhook_secret else None,
        saved=saved,
        error=error,
    )


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
        viewer = await viewer_of(request, services)
        if viewer is None:
            return Redirect(path="/login?next=/settings/notifications", status_code=303)
        view = await services.notifications.get_settings(viewer.tenant.id)
        return _render(request, viewer, view)

    @post("/settings/notifications", status_code=200)
    async def save_settings(self, request: Request[Any, Any, Any]) -> Response[str]:
        services = services_of(request)
        principal = await provide_customer(request, services)
        tenant_id = tenant_of(principal)
        viewer = Viewer(
            email=principal.user.email if principal.user else "",
            tenant=await services.tenants.get(tenant_id),
        )
        form = await request.form()
        notifications = services.notifications
        try:
            view = await notifications.put_settings(
                tenant_id,
                email_enabled=form.get("email_enabled") == "on",
                webhook_url=str(form.get("webhook_url") or ""),
                rotate_secret=form.get("rotate_secret") == "on",
            )
        except ValidationError as error:
            current = await notifications.get_settings(tenant_id)
            return _render(request, viewer, current, error=error, status_code=422)
        return _render(request, viewer, view, saved=True)

    @post("/notifications/{notification_id:str}/dismiss", status_code=303)
    async def dismiss(
        self,
        request: Request[Any, Any, Any],
        notification_id: Annotated[str, PathParameter(max_length=64)],
    ) -> Redirect:
        services = services_of(request)
        principal = await provide_customer(request, services)
        await services.notifications.mark_read(tenant_of(principal), notification_id)
        return Redirect(path=_back_to(request), status_code=303)
