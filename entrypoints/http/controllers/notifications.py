"""The customer's notifications (in-app list, mark read) and channel settings (mail on or
off, webhook URL; the signing secret shown once)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, post, put
from litestar.di import Provide
from litestar.params import JSONBody, PathParameter

from domain.use_cases.notifications import Listed, SettingsView
from entrypoints.http.auth import (
    CUSTOMER_SECURITY,
    CustomerDep,
    ServicesDep,
    provide_customer,
    tenant_of,
)
from entrypoints.http.openapi import CUSTOMER_ERRORS, errors
from entrypoints.http.schemas import Wire

WebhookUrl = Annotated[str, msgspec.Meta(max_length=2000, examples=["https://example.com/hook"])]


class NotificationOut(Wire):
    id: str
    kind: str
    title: str
    body: str
    link: str
    created_at: datetime
    read_at: datetime | None


class NotificationSettingsIn(Wire):
    """``webhook_url`` empty or null removes the webhook; ``rotate_secret`` makes a new
    signing secret (returned once)."""

    email_enabled: bool = True
    webhook_url: WebhookUrl | None = None
    rotate_secret: bool = False


class NotificationSettingsOut(Wire, omit_defaults=True):
    email_enabled: bool
    webhook_url: str | None
    webhook_secret: str | None = None
    """Only in the answer that made it: store it now, it is never shown again."""


def notification_out(item: Listed) -> NotificationOut:
    return NotificationOut(
        id=item.note.id,
        kind=item.note.api_kind(),
        title=item.message.title,
        body=item.message.body,
        link=item.message.link,
        created_at=item.note.created_at,
        read_at=item.note.read_at,
    )


def settings_out(view: SettingsView) -> NotificationSettingsOut:
    secret = view.webhook_secret.reveal() if view.webhook_secret is not None else None
    return NotificationSettingsOut(
        email_enabled=view.email_enabled, webhook_url=view.webhook_url, webhook_secret=secret
    )


class NotificationsController(Controller):
    path = "/api/v1"
    tags = ("notifications",)
    dependencies = {"customer": Provide(provide_customer)}  # noqa: RUF012
    security = CUSTOMER_SECURITY

    @get("/notifications", responses=errors(*CUSTOMER_ERRORS))
    async def list_notifications(
        self, customer: CustomerDep, services: ServicesDep
    ) -> list[NotificationOut]:
        """The caller's notifications, newest first (at most 50)."""
        items = await services.notifications.listed(tenant_of(customer))
        return [notification_out(item) for item in items]

    @post("/notifications/{notification_id:str}/read", status_code=204,
          responses=errors(*CUSTOMER_ERRORS))  # fmt: skip
    async def mark_read(
        self,
        notification_id: Annotated[str, PathParameter(max_length=64)],
        customer: CustomerDep,
        services: ServicesDep,
    ) -> None:
        """Mark one notification read (its banner goes away); 404 when it is not the
        caller's."""
        await services.notifications.mark_read(tenant_of(customer), notification_id)

    @get("/settings/notifications", responses=errors(*CUSTOMER_ERRORS))
    async def get_settings(
        self, customer: CustomerDep, services: ServicesDep
    ) -> NotificationSettingsOut:
        """Mail on or off and the webhook URL; never the signing secret."""
        return settings_out(await services.notifications.get_settings(tenant_of(customer)))

    @put("/settings/notifications", responses=errors(*CUSTOMER_ERRORS, 503))
    async def put_settings(
        self,
        data: JSONBody[NotificationSettingsIn],
        customer: CustomerDep,
        services: ServicesDep,
    ) -> NotificationSettingsOut:
        """Set both; the answer carries ``webhook_secret`` only when a URL is first set or
        the secret is rotated."""
        view = await services.notifications.put_settings(
            tenant_of(customer), data.email_enabled, data.webhook_url, data.rotate_secret
        )
        return settings_out(view)
