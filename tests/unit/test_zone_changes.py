"""Windows never overlap: a time-zone change applies at the end of the current day in the
old zone and never moves the current period (product spec §2)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.windows import ZoneSpan, day_zone, history_after_change, zoned_windows

ZONES = (
    "UTC", "America/Los_Angeles", "Pacific/Kiritimati", "Etc/GMT+12", "Europe/Berlin",
    "Australia/Lord_Howe", "America/St_Johns", "Asia/Kathmandu",
)  # fmt: skip


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_move_west_at_the_cap_keeps_the_day_until_it_ends_in_the_old_zone() -> None:
    now = utc(2026, 6, 10, 23, 59)
    history = history_after_change("UTC", 1, (), now)
    assert history == (ZoneSpan("UTC", utc(2026, 6, 11), utc(2026, 7, 1)),)
    day, period = zoned_windows("America/Los_Angeles", 1, history, now + timedelta(seconds=30))
    assert (day.key, day.starts_at, day.resets_at) == (
        date(2026, 6, 10), utc(2026, 6, 10), utc(2026, 6, 11)
    )  # fmt: skip
    assert (period.starts_at, period.resets_at) == (utc(2026, 6, 1), utc(2026, 7, 1))
    # the first Los Angeles day starts where the UTC day ended; it is June 10 there too, so
    # it shares the day's counter: one cap over 32 hours, never a second one
    first, _ = zoned_windows("America/Los_Angeles", 1, history, utc(2026, 6, 11, 1))
    assert (first.key, first.starts_at, first.resets_at) == (
        date(2026, 6, 10), utc(2026, 6, 11), utc(2026, 6, 11, 7)
    )  # fmt: skip
    assert day_zone("America/Los_Angeles", history, utc(2026, 6, 11, 1)) == "America/Los_Angeles"


def test_kiritimati_on_the_last_day_of_a_period_does_not_open_the_next_budget() -> None:
    now = utc(2026, 6, 30, 12)
    history = history_after_change("UTC", 1, (), now)
    _, period = zoned_windows("Pacific/Kiritimati", 1, history, utc(2026, 6, 30, 13))
    assert (period.key, period.resets_at) == (date(2026, 6, 1), utc(2026, 7, 1))
    # the next period is Kiritimati's, starting where the UTC one ended
    _, following = zoned_windows("Pacific/Kiritimati", 1, history, utc(2026, 7, 1, 1))
    assert following.key == date(2026, 7, 1)
    assert following.starts_at == utc(2026, 7, 1)


def test_changing_back_before_the_change_applies_leaves_one_span() -> None:
    now = utc(2026, 6, 10, 12)
    there = history_after_change("UTC", 1, (), now)
    back = history_after_change("America/Los_Angeles", 1, there, now + timedelta(minutes=1))
    assert back == there
    day, _ = zoned_windows("UTC", 1, back, utc(2026, 6, 11, 3))
    assert (day.key, day.starts_at) == (date(2026, 6, 11), utc(2026, 6, 11))


@given(
    changes=st.lists(
        st.tuples(st.sampled_from(ZONES), st.integers(min_value=60, max_value=5 * 86_400)),
        max_size=12,
    ),
    anchor=st.integers(min_value=1, max_value=31),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 1)),
)
@settings(max_examples=200, deadline=None)
def test_windows_never_overlap_whatever_zones_the_tenant_moves_through(
    changes: list[tuple[str, int]], anchor: int, start: datetime
) -> None:
    """Walking time forward hour by hour with zone changes in between: consecutive days
    (and periods) either are the same window or the later starts where the earlier ended,
    and a window's bounds never move while it runs."""
    zone, history = "UTC", ()
    at = start.replace(tzinfo=UTC)
    seen_days: list[tuple[date, datetime, datetime]] = []
    seen_periods: list[tuple[date, datetime, datetime]] = []
    for new_zone, wait in changes:
        end = at + timedelta(seconds=wait)
        while at < end:
            day, period = zoned_windows(zone, anchor, history, at)
            assert day.starts_at <= at < day.resets_at
            assert period.starts_at <= at < period.resets_at
            for seen, window in ((seen_days, day), (seen_periods, period)):
                current = (window.key, window.starts_at, window.resets_at)
                if seen and seen[-1] != current:
                    assert current[1] == seen[-1][2], (seen[-1], current)
                    # a move west by more than a day of offset (Kiritimati to GMT+12)
                    # reuses the previous local date: that day shares its counter
                    assert current[0] >= seen[-1][0] - timedelta(days=1)
                if not seen or seen[-1] != current:
                    seen.append(current)
            at += timedelta(minutes=47)
        history = history_after_change(zone, anchor, history, at)
        zone = new_zone
    assert len(history) <= 41
