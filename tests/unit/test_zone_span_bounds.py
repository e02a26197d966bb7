"""A zone the tenant left governs its windows only up to its span's end, the history drops a
span that ended 40 days ago or more, and the window memo empties once it holds its bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.windows import (
    ZONE_HISTORY_KEPT,
    WindowMemo,
    ZoneSpan,
    history_after_change,
    zoned_windows,
)

pytestmark = pytest.mark.unit

AT = datetime(2026, 3, 15, 12, tzinfo=UTC)


def test_a_window_of_a_left_zone_never_runs_past_its_span() -> None:
    """The span ends before the day and the period computed in its zone would: they end
    with it (here the anchor day moved after the zone change, so the period is longer)."""
    span = ZoneSpan("Asia/Tokyo", AT + timedelta(hours=1), AT + timedelta(days=2))
    day, period = zoned_windows("UTC", 20, (span,), AT)
    assert day.resets_at == AT + timedelta(hours=1)
    assert period.resets_at == AT + timedelta(days=2)


def test_a_span_that_ended_exactly_40_days_ago_is_dropped() -> None:
    now = AT
    gone = ZoneSpan("Asia/Tokyo", now - ZONE_HISTORY_KEPT, now - ZONE_HISTORY_KEPT)
    kept = ZoneSpan(
        "Europe/Berlin",
        now - ZONE_HISTORY_KEPT + timedelta(seconds=1),
        now - ZONE_HISTORY_KEPT + timedelta(seconds=1),
    )
    history = history_after_change("UTC", 1, (gone, kept), now)
    assert [s.timezone for s in history] == ["Europe/Berlin", "UTC"]


def test_the_memo_empties_when_it_holds_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("domain.windows.WINDOW_MEMO_SIZE", 2)
    memo = WindowMemo()
    first = memo.windows("UTC", 1, AT)
    memo.windows("Asia/Tokyo", 1, AT)
    assert memo.windows("UTC", 1, AT) is first, "kept while under the bound"
    memo.windows("Europe/Berlin", 1, AT)
    again = memo.windows("UTC", 1, AT)
    assert again == first
    assert again is not first, "computed anew: the memo was emptied at two entries"
