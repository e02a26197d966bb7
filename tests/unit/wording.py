"""The one helper of the notification wording tests: a notice as a tenant in Berlin reads it,
composed from the catalog and the facts the outbox stores."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.catalog import Catalog
from domain.ids import TenantId
from domain.notifications import (
    Message,
    NotificationFacts,
    NotificationId,
    NotificationKind,
    StoredNotification,
    compose,
)
from tests.unit.conftest import make_tenant

WRITTEN_AT = datetime(2026, 3, 15, 12, tzinfo=UTC)


def composed(catalog: Catalog, tier: str, kind: NotificationKind, **facts: Any) -> Message:
    """The message of a ``kind`` notification with ``facts`` for a ``tier`` tenant whose
    time zone is Europe/Berlin."""
    tenant = make_tenant(tier=tier, timezone="Europe/Berlin")
    note = StoredNotification(
        NotificationId("msg_1"), NotificationFacts(TenantId("t-1"), kind, **facts), WRITTEN_AT
    )
    return compose(catalog, tenant, note)
