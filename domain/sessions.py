"""Customer sessions (and the bearer tokens of the API, which are the same thing) expire on
the server: after ``IDLE_LIMIT`` without use, and at the latest ``ABSOLUTE_LIMIT`` after
login, whichever comes first. Service tokens do not expire; the operator revokes them.

Use is recorded at most once per ``TOUCH_INTERVAL`` so reads do not write on every request.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

IDLE_LIMIT = timedelta(days=3)
ABSOLUTE_LIMIT = timedelta(days=14)
TOUCH_INTERVAL = timedelta(minutes=1)


def absolute_expiry(created_at: datetime) -> datetime:
    """The instant a session ends however busy it is."""
    return created_at + ABSOLUTE_LIMIT


def session_expires_at(created_at: datetime, last_used_at: datetime | None) -> datetime:
    """The earlier of the idle limit since last use (or creation) and the absolute limit."""
    idle_from = last_used_at or created_at
    return min(idle_from + IDLE_LIMIT, absolute_expiry(created_at))


def session_expired(created_at: datetime, last_used_at: datetime | None, now: datetime) -> bool:
    """A session is over from its expiry instant on."""
    return now >= session_expires_at(created_at, last_used_at)


def needs_touch(last_used_at: datetime | None, now: datetime) -> bool:
    """Record a use when none is recorded or the last record is older than the interval."""
    return last_used_at is None or now - last_used_at >= TOUCH_INTERVAL


@attrs.frozen
class AuthToken:
    """A bearer token as stored: only its hash. ``kind`` is ``customer`` or ``service``;
    ``subject`` the user id or the service name."""

    token_hash: str
    kind: str
    subject: str
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
