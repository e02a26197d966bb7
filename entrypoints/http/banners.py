"""The banners a page shows: loaded before a signed-in customer's page request
(``load_banners``, the app's ``before_request`` hook) and read by the templates through the
``notification_banners()`` global, so no page controller has to know about notifications.

One banner per fact: a page that shows the live state of a fact itself (Plan & usage's
"paused" banner for a reached cap or budget, the rejected-key banner of Plan & usage and AI
Provider) does not also show the notification about it (``covered_kinds``); every other page
still does, until it is dismissed or its window ends."""

from __future__ import annotations

import contextvars
from typing import Any

import attrs
import jinja2
from litestar import Request

from domain.errors import DomainError
from domain.notifications import NotificationKind
from entrypoints.http.auth import session_token

NOT_PAGES = ("/api/", "/v1/", "/static", "/schema", "/healthz", "/readyz", "/metrics")


@attrs.frozen
class Banner:
    id: str
    kind: str
    title: str
    body: str
    link: str
    action: str
    tone: str
    dismissable: bool


_current: contextvars.ContextVar[tuple[Banner, ...]] = contextvars.ContextVar(
    "notification_banners", default=()
)


def current_banners() -> tuple[Banner, ...]:
    """The banners loaded for this request (none outside a signed-in page request)."""
    return _current.get()


def covered_kinds(key_banner: Any, paused: Any) -> frozenset[str]:
    """The notification kinds (API names) a page's own state banners already show: a
    rejected key, and the 100% of the limit that paused the agent."""
    kinds = set()
    if key_banner is not None and getattr(key_banner, "rejected", False):
        kinds.add(NotificationKind.KEY_INVALIDATED.value)
    if paused is not None:
        kinds.add(f"{paused.limit}_100")
    return frozenset(kinds)


@jinja2.pass_context
def banners_for_page(context: jinja2.runtime.Context) -> tuple[Banner, ...]:
    """This request's banners less those the page being rendered shows as its own state."""
    plan = context.get("plan")
    covered = covered_kinds(context.get("key_banner"), getattr(plan, "paused", None))
    return tuple(b for b in current_banners() if b.kind not in covered)


async def load_banners(request: Request[Any, Any, Any]) -> None:
    """For GET requests of pages with a session: the tenant's current notifications."""
    _current.set(())
    path = request.scope["path"]
    if request.method != "GET" or path.startswith(NOT_PAGES):
        return
    token = session_token(request)
    services = request.app.state.services
    if token is None:
        return
    try:
        principal = await services.accounts.customer(token)
    except DomainError:
        return
    tenant_id = principal.customer_tenant()
    if tenant_id is None:
        return
    items = await services.notifications.banners(tenant_id)
    _current.set(
        tuple(
            Banner(
                id=item.note.id,
                kind=item.note.api_kind(),
                title=item.message.title,
                body=item.message.body,
                link=item.message.link,
                action=item.message.action,
                tone=item.message.tone.value,
                dismissable=item.note.facts.kind is not NotificationKind.WELCOME,
            )
            for item in items
        )
    )
