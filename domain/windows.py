"""Metering windows: the tenant's local calendar day and its billing month.

The day resets at local midnight. The period runs from the anchor day to the same day next
month, clamped to the month's last day (an anchor of 31 gives Feb 28/29). Both are computed
in the tenant's IANA time zone and returned as aware UTC instants, so DST changes shorten or
lengthen a day instead of moving its boundary.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import attrs

from domain.errors import ValidationError


@attrs.frozen
class Window:
    """A half-open interval ``[starts_at, resets_at)`` in UTC; ``key`` names it in storage."""

    key: date
    starts_at: datetime
    resets_at: datetime

    def contains(self, instant: datetime) -> bool:
        return self.starts_at <= instant < self.resets_at


def parse_timezone(name: str) -> ZoneInfo:
    """An IANA zone name such as ``Europe/Berlin``; anything else is a field error."""
    if not name or name != name.strip() or name.startswith("/") or ".." in name:
        raise ValidationError(f"timezone {name!r} is not an IANA time zone name", field="timezone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"timezone {name!r} is not an IANA time zone name", field="timezone"
        ) from None


def is_known_timezone(name: str) -> bool:
    return name in available_timezones()


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``zone``, in UTC. Where midnight falls in a DST gap
    the day starts when the clocks resume (zoneinfo's fold=0 reads a missing time with the
    offset before the gap); where midnight repeats, at its first occurrence."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def day_window(instant: datetime, zone: ZoneInfo) -> Window:
    """The tenant's local calendar day containing ``instant``."""
    local_day = instant.astimezone(zone).date()
    return Window(
        key=local_day,
        starts_at=local_midnight(local_day, zone),
        resets_at=local_midnight(local_day + timedelta(days=1), zone),
    )


def anchor_date(year: int, month: int, anchor_day: int) -> date:
    """The anchor day in a month, clamped to the month's last day."""
    return date(year, month, min(anchor_day, calendar.monthrange(year, month)[1]))


def _shift_month(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def period_window(instant: datetime, zone: ZoneInfo, anchor_day: int) -> Window:
    """The billing month containing ``instant``: anchor day to the next month's anchor day."""
    check_anchor_day(anchor_day)
    local = instant.astimezone(zone).date()
    start = anchor_date(local.year, local.month, anchor_day)
    if local < start:
        start = anchor_date(*_shift_month(local.year, local.month, -1), anchor_day)
    end = anchor_date(*_shift_month(start.year, start.month, 1), anchor_day)
    return Window(
        key=start, starts_at=local_midnight(start, zone), resets_at=local_midnight(end, zone)
    )


@attrs.define
class WindowMemo:
    """The day and billing-period windows last computed per (time zone, anchor day), given
    again for any instant they both contain: a window is the same for every instant in it,
    so recomputing it (two zone conversions per window) is needed only when one has ended.
    At most one entry per zone and anchor day, so the memory is bounded by the tz database.
    """

    _last: dict[tuple[str, int], tuple[Window, Window]] = attrs.field(factory=dict)

    def windows(self, timezone: str, anchor_day: int, instant: datetime) -> tuple[Window, Window]:
        """``day_window`` and ``period_window`` of ``instant`` in ``timezone``."""
        key = (timezone, anchor_day)
        last = self._last.get(key)
        if last is not None and last[0].contains(instant) and last[1].contains(instant):
            return last
        zone = parse_timezone(timezone)
        fresh = day_window(instant, zone), period_window(instant, zone, anchor_day)
        self._last[key] = fresh
        return fresh


def check_anchor_day(anchor_day: int) -> None:
    if not 1 <= anchor_day <= 31:
        raise ValidationError(
            f"billing_anchor_day must be 1–31, got {anchor_day}", field="billing_anchor_day"
        )
