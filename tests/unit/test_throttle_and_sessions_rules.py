"""The pure rules behind login throttling and session expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.sessions import (
    ABSOLUTE_LIMIT,
    IDLE_LIMIT,
    TOUCH_INTERVAL,
    needs_touch,
    session_expired,
    session_expires_at,
)
from domain.throttle import (
    FREE_FAILURES,
    MAX_DELAY,
    Attempts,
    delay_after,
    retry_after_seconds,
    wait_before_next,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("failures", "seconds"),
    [(0, 0), (FREE_FAILURES - 1, 0), (FREE_FAILURES, 1), (FREE_FAILURES + 1, 2),
     (FREE_FAILURES + 3, 8), (FREE_FAILURES + 9, 512), (FREE_FAILURES + 10, 900),
     (FREE_FAILURES + 12, 900), (FREE_FAILURES + 400, 900)],
)  # fmt: skip
def test_the_wait_doubles_after_the_free_failures_up_to_fifteen_minutes(
    failures: int, seconds: int
) -> None:
    assert delay_after(failures) == timedelta(seconds=seconds)
    assert delay_after(failures) <= MAX_DELAY


def test_the_next_attempt_waits_the_delay_since_the_last_failure() -> None:
    attempts = Attempts(FREE_FAILURES + 2, T0)
    assert wait_before_next(attempts, T0) == timedelta(seconds=4)
    assert wait_before_next(attempts, T0 + timedelta(seconds=3)) == timedelta(seconds=1)
    assert wait_before_next(attempts, T0 + timedelta(seconds=4)) == timedelta(0)
    assert wait_before_next(attempts, T0 + timedelta(hours=1)) == timedelta(0)


def test_no_failures_mean_no_wait() -> None:
    assert wait_before_next(Attempts(), T0) == timedelta(0)
    assert wait_before_next(Attempts(FREE_FAILURES - 1, T0), T0) == timedelta(0)


@pytest.mark.parametrize(
    ("wait", "header"), [(timedelta(milliseconds=1), 1), (timedelta(seconds=1), 1),
                         (timedelta(seconds=1.2), 2), (timedelta(seconds=64), 64)],
)  # fmt: skip
def test_retry_after_rounds_up_to_whole_seconds(wait: timedelta, header: int) -> None:
    assert retry_after_seconds(wait) == header


def test_a_session_ends_after_the_idle_limit_without_use() -> None:
    assert session_expires_at(T0, None) == T0 + IDLE_LIMIT
    assert not session_expired(T0, None, T0 + IDLE_LIMIT - timedelta(seconds=1))
    assert session_expired(T0, None, T0 + IDLE_LIMIT)


def test_use_moves_the_idle_limit_but_never_past_the_absolute_limit() -> None:
    used = T0 + IDLE_LIMIT - timedelta(hours=1)
    assert session_expires_at(T0, used) == used + IDLE_LIMIT
    late = T0 + ABSOLUTE_LIMIT - timedelta(hours=1)
    assert session_expires_at(T0, late) == T0 + ABSOLUTE_LIMIT
    assert session_expired(T0, late, T0 + ABSOLUTE_LIMIT)


def test_use_is_recorded_at_most_once_per_interval() -> None:
    assert needs_touch(None, T0)
    assert not needs_touch(T0, T0 + TOUCH_INTERVAL - timedelta(seconds=1))
    assert needs_touch(T0, T0 + TOUCH_INTERVAL)
