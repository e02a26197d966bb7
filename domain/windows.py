"""Metering windows: the tenant's local calendar day and its billing month.

The day resets at local midnight. The period runs from the anchor day to the same day next
month, clamped to the month's last day (an anchor of 31 gives Feb 28/29). Both are computed
in the tenant's IANA time zone and returned as aware UTC instants, so DST changes shorten or
lengthen a day instead of moving its boundary.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
    """An IANA zone name such as ``Europe/Berlin``; anything else is a field error.
    ``ZoneInfo`` itself refuses empty, absolute and ``..`` names (``ValueError``) before
    it opens a file, so a name never reaches outside the time zone database."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a name of a directory of the tz database ("Europe") or unreadable file
        raise ValidationError(
            f"timezone {name!r} is not an IANA time zone name", field="timezone"
        ) from None


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


@attrs.frozen
class ZoneSpan:
    """A zone the tenant left that still governs its windows: its days until ``days_until``
    (the end of the day, in that zone, during which the tenant changed zone) and its periods
    until ``periods_until`` (the end of the period then current). Windows never overlap: the
    first day (period) of the next zone starts where this one's ends."""

    timezone: str
    days_until: datetime
    periods_until: datetime


ZONE_HISTORY_KEPT = timedelta(days=40)
"""Spans that ended longer ago than this bound no current window (a period is at most 31
days, plus the offsets), so a zone change forgets them."""


def _governing(
    history: tuple[ZoneSpan, ...], instant: datetime, until_of: str
) -> tuple[str | None, datetime | None, datetime | None]:
    """The zone of the first span still running at ``instant`` (None: the tenant's own zone),
    the instant its window may start at the earliest, and the instant it must end at."""
    start: datetime | None = None
    for span in history:
        until: datetime = getattr(span, until_of)
        if instant < until:
            return span.timezone, start, until
        start = until
    return None, start, None


def _clamped(window: Window, start: datetime | None, end: datetime | None) -> Window:
    return Window(
        key=window.key,
        starts_at=window.starts_at if start is None else max(window.starts_at, start),
        resets_at=window.resets_at if end is None else min(window.resets_at, end),
    )


def zoned_windows(
    timezone: str, anchor_day: int, history: tuple[ZoneSpan, ...], instant: datetime
) -> tuple[Window, Window]:
    """The tenant's day and billing period containing ``instant``: each in the zone that
    governs it then (a zone the tenant left keeps its current day and period), and never
    starting before the previous zone's window ended.

    A first day in a new zone whose local date an earlier day already had (a move west)
    shares that day's key and counter: it may be longer than 24 h, never a second cap."""
    day_zone, day_start, day_end = _governing(history, instant, "days_until")
    period_zone, period_start, period_end = _governing(history, instant, "periods_until")
    day = day_window(instant, parse_timezone(day_zone or timezone))
    period = period_window(instant, parse_timezone(period_zone or timezone), anchor_day)
    return _clamped(day, day_start, day_end), _clamped(period, period_start, period_end)


def day_zone(timezone: str, history: tuple[ZoneSpan, ...], instant: datetime) -> str:
    """The zone the tenant's day at ``instant`` is counted in."""
    return _governing(history, instant, "days_until")[0] or timezone


def history_after_change(
    timezone: str, anchor_day: int, history: tuple[ZoneSpan, ...], now: datetime
) -> tuple[ZoneSpan, ...]:
    """The spans after the tenant leaves ``timezone`` at ``now``: ``timezone`` keeps the
    current day and period (their bounds never move), spans that govern nothing any more are
    dropped, so the history holds at most one span per day of the last 40."""
    day, period = zoned_windows(timezone, anchor_day, history, now)
    kept = tuple(s for s in history if max(s.days_until, s.periods_until) > now - ZONE_HISTORY_KEPT)
    last = kept[-1] if kept else None
    if (
        last is not None
        and day.resets_at <= last.days_until
        and period.resets_at <= last.periods_until
    ):
        return kept  # ``timezone`` never governed a window: nothing to keep of it
    return (*kept, ZoneSpan(timezone, day.resets_at, period.resets_at))


@attrs.define
class WindowMemo:
    """The day and billing-period windows last computed per (time zone, anchor day, zone
    history), given again for any instant they both contain: a window is the same for every
    instant in it, so recomputing it is needed only when one has ended. At most one entry per
    key; the owner empties it when it grows past its bound."""

    _last: dict[tuple[str, int, tuple[ZoneSpan, ...]], tuple[Window, Window]] = attrs.field(
        factory=dict
    )

    def windows(
        self,
        timezone: str,
        anchor_day: int,
        instant: datetime,
        history: tuple[ZoneSpan, ...] = (),
    ) -> tuple[Window, Window]:
        """``zoned_windows`` of ``instant``."""
        key = (timezone, anchor_day, history)
        last = self._last.get(key)
        if last is not None and last[0].contains(instant) and last[1].contains(instant):
            return last
        fresh = zoned_windows(timezone, anchor_day, history, instant)
        if len(self._last) >= WINDOW_MEMO_SIZE:
            self._last.clear()
        self._last[key] = fresh
        return fresh


WINDOW_MEMO_SIZE = 10_000


def check_anchor_day(anchor_day: int) -> None:
    if not 1 <= anchor_day <= 31:
        raise ValidationError(
            f"billing_anchor_day must be 1–31, got {anchor_day}", field="billing_anchor_day"
        )
