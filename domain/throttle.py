"""Failed-login throttling: a growing wait after a few free failures.

Failures are counted per key (one account, one client address). The first
``FREE_FAILURES`` cost nothing; from then on every attempt must wait ``delay_after`` since
the last failure, doubling with each further failure up to ``MAX_DELAY``. A successful login
clears the account's count (not the address's: an attacker's own account must not reset the
count of the address it guesses from).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import attrs

FREE_FAILURES = 5
BASE_DELAY = timedelta(seconds=1)
MAX_DELAY = timedelta(minutes=15)
DOUBLINGS_TO_MAX = (MAX_DELAY // BASE_DELAY).bit_length()
"""The doublings after which the wait has reached ``MAX_DELAY`` (2**10 s passes 15 min)."""
FORGET_AFTER = timedelta(days=1)
"""A key without a failure for this long starts afresh: its count is forgotten, so the log
keeps only recent keys however many an attacker invents."""


@attrs.frozen
class Attempts:
    """The failures counted for one key and when the last one happened."""

    failures: int = 0
    last_failure_at: datetime | None = None


def delay_after(failures: int) -> timedelta:
    """No wait for the first ``FREE_FAILURES`` failures, then 1 s, 2 s, 4 s … up to 15 min."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    doublings = failures - FREE_FAILURES
    if doublings >= DOUBLINGS_TO_MAX:
        return MAX_DELAY
    return BASE_DELAY * (1 << doublings)


def wait_before_next(attempts: Attempts, now: datetime) -> timedelta:
    """How long the next attempt must still wait (zero: it may go ahead)."""
    if attempts.last_failure_at is None:
        return timedelta(0)
    allowed_at = attempts.last_failure_at + delay_after(attempts.failures)
    return max(allowed_at - now, timedelta(0))


def forget_before(now: datetime) -> datetime:
    """Counts whose last failure is older than this instant are forgotten."""
    return now - FORGET_AFTER


def retry_after_seconds(wait: timedelta) -> int:
    """``Retry-After`` in whole seconds, rounded up so a client that obeys it is let in."""
    return max(1, math.ceil(wait.total_seconds()))


KEY_TESTS_PER_WINDOW = 10
KEY_TEST_WINDOW = timedelta(minutes=1)


def key_test_window(now: datetime) -> tuple[str, datetime]:
    """Testing provider keys is limited to ``KEY_TESTS_PER_WINDOW`` per tenant per fixed
    minute: the window's label (part of the counting key) and when the next one starts."""
    seconds = int(KEY_TEST_WINDOW.total_seconds())
    start = int(now.timestamp()) // seconds * seconds
    return str(start), datetime.fromtimestamp(start + seconds, tz=now.tzinfo)
