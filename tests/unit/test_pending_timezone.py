"""The zone a tenant's day is counted in while a zone change waits, and the pending zone the
pages show: the zone chosen last, from the end of the last zone that still counts days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.tenants import PendingTimezone, current_timezone, pending_timezone
from domain.windows import ZoneSpan
from tests.unit.conftest import make_tenant

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
SPANS = (
    ZoneSpan("UTC", NOW + timedelta(hours=15), NOW + timedelta(days=22)),
    ZoneSpan("Europe/Paris", NOW + timedelta(hours=38), NOW + timedelta(days=22)),
    ZoneSpan("America/New_York", NOW + timedelta(hours=63), NOW + timedelta(days=22)),
)


def test_the_day_is_counted_in_the_first_zone_still_running() -> None:
    tenant = make_tenant(timezone="Asia/Tokyo", zone_history=SPANS)
    assert current_timezone(tenant, NOW) == "UTC"
    assert current_timezone(tenant, NOW + timedelta(hours=20)) == "Europe/Paris"
    assert current_timezone(tenant, NOW + timedelta(hours=63)) == "Asia/Tokyo"


def test_the_chosen_zone_waits_for_the_end_of_the_last_zone_still_counting_days() -> None:
    tenant = make_tenant(timezone="Asia/Tokyo", zone_history=SPANS)
    assert pending_timezone(tenant, NOW) == PendingTimezone("Asia/Tokyo", NOW + timedelta(hours=63))
    assert pending_timezone(tenant, NOW + timedelta(hours=40)) == PendingTimezone(
        "Asia/Tokyo", NOW + timedelta(hours=63)
    )


def test_nothing_is_pending_once_the_chosen_zone_counts_days() -> None:
    tenant = make_tenant(timezone="Asia/Tokyo", zone_history=SPANS)
    assert pending_timezone(tenant, NOW + timedelta(hours=63)) is None
    assert pending_timezone(make_tenant(timezone="Asia/Tokyo"), NOW) is None
