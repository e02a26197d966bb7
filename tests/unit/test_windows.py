"""The metering day is the tenant's local day; the period is its clamped billing month."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import windows as windows_module
from domain.errors import ValidationError
from domain.windows import (
    WindowMemo,
    anchor_date,
    day_window,
    local_midnight,
    parse_timezone,
    period_window,
)

BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_the_day_resets_at_local_midnight() -> None:
    window = day_window(utc(2026, 6, 1, 22, 30), BERLIN)  # 00:30 on June 2 in Berlin
    assert window.key == date(2026, 6, 2)
    assert window.starts_at == utc(2026, 6, 1, 22)
    assert window.resets_at == utc(2026, 6, 2, 22)


def test_a_day_window_is_half_open() -> None:
    window = day_window(utc(2026, 6, 2, 12), ZoneInfo("UTC"))
    assert window.contains(utc(2026, 6, 2, 0))
    assert not window.contains(utc(2026, 6, 3, 0))
    assert not window.contains(utc(2026, 6, 1, 23, 59))


def test_the_spring_forward_day_is_23_hours_long() -> None:
    window = day_window(utc(2026, 3, 29, 12), BERLIN)
    assert window.resets_at - window.starts_at == timedelta(hours=23)


def test_the_fall_back_day_is_25_hours_long() -> None:
    window = day_window(utc(2026, 10, 25, 12), BERLIN)
    assert window.resets_at - window.starts_at == timedelta(hours=25)


@pytest.mark.parametrize(("zone", "day"), [("America/Santiago", 6), ("America/Havana", 8)])
def test_where_midnight_is_skipped_the_day_starts_when_clocks_resume(zone: str, day: int) -> None:
    tz = ZoneInfo(zone)
    month = 9 if zone == "America/Santiago" else 3
    start = local_midnight(date(2026, month, day), tz)
    local = start.astimezone(tz)
    assert (local.day, local.hour, local.minute) == (day, 1, 0)


@pytest.mark.parametrize(
    ("anchor", "year", "month", "expected_day"),
    [(31, 2026, 2, 28), (31, 2028, 2, 29), (30, 2026, 2, 28), (31, 2026, 4, 30), (15, 2026, 2, 15),
     (1, 2026, 2, 1), (31, 2026, 1, 31)],
)  # fmt: skip
def test_the_anchor_day_is_clamped_to_the_months_end(
    anchor: int, year: int, month: int, expected_day: int
) -> None:
    assert anchor_date(year, month, anchor) == date(year, month, expected_day)


def test_a_period_anchored_on_the_31st_runs_through_february() -> None:
    utc_zone = ZoneInfo("UTC")
    feb = period_window(utc(2026, 3, 10), utc_zone, 31)
    assert (feb.key, feb.resets_at) == (date(2026, 2, 28), utc(2026, 3, 31))
    jan = period_window(utc(2026, 2, 27, 23, 59), utc_zone, 31)
    assert (jan.key, jan.resets_at) == (date(2026, 1, 31), utc(2026, 2, 28))
    mar = period_window(utc(2026, 3, 31), utc_zone, 31)
    assert (mar.key, mar.resets_at) == (date(2026, 3, 31), utc(2026, 4, 30))


def test_a_period_starts_on_the_anchor_day_at_local_midnight() -> None:
    window = period_window(utc(2026, 7, 20, 8), BERLIN, 15)
    assert window.key == date(2026, 7, 15)
    assert window.starts_at == utc(2026, 7, 14, 22)
    assert window.resets_at == utc(2026, 8, 14, 22)


def test_before_the_anchor_the_period_began_last_month_across_new_year() -> None:
    window = period_window(utc(2026, 1, 3), ZoneInfo("UTC"), 10)
    assert window.key == date(2025, 12, 10)
    assert window.resets_at == utc(2026, 1, 10)


def test_the_anchor_day_itself_opens_a_new_period() -> None:
    window = period_window(utc(2026, 5, 10), ZoneInfo("UTC"), 10)
    assert window.key == date(2026, 5, 10)


def test_a_period_spanning_a_dst_change_keeps_local_midnights() -> None:
    window = period_window(utc(2026, 3, 20), BERLIN, 15)
    assert window.starts_at.astimezone(BERLIN).hour == 0
    assert window.resets_at.astimezone(BERLIN).hour == 0
    assert window.resets_at - window.starts_at == timedelta(days=31, hours=-1)


@pytest.mark.parametrize("anchor", [0, 32, -1])
def test_an_anchor_outside_1_to_31_is_a_field_error(anchor: int) -> None:
    with pytest.raises(ValidationError) as raised:
        period_window(utc(2026, 1, 1), ZoneInfo("UTC"), anchor)
    assert raised.value.field == "billing_anchor_day"
    assert raised.value.detail == f"billing_anchor_day must be 1–31, got {anchor}"


@pytest.mark.parametrize("anchor", [1, 31])
def test_anchor_days_1_and_31_are_accepted(anchor: int) -> None:
    assert period_window(utc(2026, 1, 1), ZoneInfo("UTC"), anchor).key.day in (1, 31)


@pytest.mark.parametrize(
    "name",
    ["Mars/Olympus", "", " Europe/Berlin", "UTC ", "../etc/passwd", "/UTC", "..",
     "Europe/../Asia/Tokyo", "/usr/share/zoneinfo/UTC"],
)  # fmt: skip
def test_an_unknown_time_zone_is_a_field_error(name: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_timezone(name)
    assert raised.value.field == "timezone"
    assert raised.value.detail == f"timezone {name!r} is not an IANA time zone name"


def test_known_time_zones() -> None:
    assert parse_timezone("Asia/Tokyo") == ZoneInfo("Asia/Tokyo")
    for name in ("Mars/Olympus", "Europe", "America", "posix", ""):
        with pytest.raises(ValidationError) as raised:
            parse_timezone(name)
        assert raised.value.field == "timezone"


def test_the_period_follows_the_tenants_calendar_not_utc() -> None:
    """00:30 on June 1 in Berlin is still May 31 in UTC, but the June period has begun."""
    window = period_window(utc(2026, 5, 31, 22, 30), BERLIN, 1)
    assert window.key == date(2026, 6, 1)
    assert (window.starts_at, window.resets_at) == (utc(2026, 5, 31, 22), utc(2026, 6, 30, 22))


@pytest.fixture
def host_in_new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("host_in_new_york")
def test_window_instants_are_in_utc_whatever_the_hosts_zone() -> None:
    start = local_midnight(date(2026, 6, 2), BERLIN)
    assert start.isoformat() == "2026-06-01T22:00:00+00:00"
    window = day_window(utc(2026, 6, 1, 22, 30), BERLIN)
    assert window.resets_at.isoformat() == "2026-06-02T22:00:00+00:00"


MEMO_ZONES = (
    "Europe/Berlin", "America/Santiago", "Australia/Lord_Howe", "Asia/Kathmandu",
    "America/Havana", "Pacific/Apia", "America/St_Johns", "UTC",
)  # fmt: skip
"""Zones with DST at midnight, half-hour shifts, odd offsets and a skipped day (Apia 2011)."""


@given(
    zone=st.sampled_from(MEMO_ZONES),
    anchor=st.integers(1, 31),
    start=st.datetimes(datetime(2010, 1, 1), datetime(2030, 1, 1)),
    steps=st.lists(st.integers(0, 40 * 3600), min_size=1, max_size=40),
)
@settings(max_examples=300, deadline=None)
def test_the_window_memo_answers_what_computing_the_windows_answers(
    zone: str, anchor: int, start: datetime, steps: list[int]
) -> None:
    """Over instants moving forward, through DST changes and month ends."""
    memo = WindowMemo()
    at = start.replace(tzinfo=UTC)
    for step in steps:
        at += timedelta(seconds=step)
        expected = (day_window(at, ZoneInfo(zone)), period_window(at, ZoneInfo(zone), anchor))
        assert memo.windows(zone, anchor, at) == expected


def test_the_window_memo_computes_again_only_when_a_window_has_ended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    computed: list[datetime] = []
    real = windows_module.day_window

    def counting(instant: datetime, zone: ZoneInfo) -> object:
        computed.append(instant)
        return real(instant, zone)

    monkeypatch.setattr(windows_module, "day_window", counting)
    memo = WindowMemo()
    day, _ = memo.windows("Europe/Berlin", 15, utc(2026, 6, 1, 22, 30))
    memo.windows("Europe/Berlin", 15, day.resets_at - timedelta(microseconds=1))
    assert computed == [utc(2026, 6, 1, 22, 30)]
    memo.windows("Europe/Berlin", 1, utc(2026, 6, 1, 22, 30))
    next_day, _ = memo.windows("Europe/Berlin", 15, day.resets_at)
    assert len(computed) == 3
    assert next_day.key == date(2026, 6, 3)


def test_the_window_memo_refuses_an_unknown_zone_and_anchor_like_the_windows_do() -> None:
    with pytest.raises(ValidationError) as raised:
        WindowMemo().windows("Mars/Olympus", 1, utc(2026, 6, 1))
    assert raised.value.field == "timezone"
    with pytest.raises(ValidationError) as raised:
        WindowMemo().windows("UTC", 32, utc(2026, 6, 1))
    assert raised.value.field == "billing_anchor_day"
