"""A tenant's usage history: settled messages grouped by local day or by model.

The rows count what the meters count: weighted tokens (the budget's unit), split by whose
key served them. A message counts once, on the local day its answer was settled.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta

import attrs

from domain.errors import ValidationError
from domain.metering import Credential, UsageRecord
from domain.windows import parse_timezone

MAX_HISTORY_DAYS = 400
"""The longest range one history request may cover, first and last day included."""


class HistoryGroup(enum.Enum):
    DAY = "day"
    MODEL = "model"


@attrs.frozen
class HistoryRange:
    """Whole local days, ``first`` to ``last`` included."""

    first: date
    last: date

    def days(self) -> tuple[date, ...]:
        count = (self.last - self.first).days + 1
        return tuple(self.first + timedelta(days=n) for n in range(count))

    def instants(self, timezone: str) -> tuple[datetime, datetime]:
        """From the first day's local midnight to the midnight after the last day."""
        zone = parse_timezone(timezone)
        starts = datetime.combine(self.first, time(0), zone)
        ends = datetime.combine(self.last + timedelta(days=1), time(0), zone)
        return starts, ends


@attrs.frozen
class HistoryRow:
    """One day (``key`` an ISO date) or one model (``key`` its id)."""

    key: str
    messages: int
    platform_tokens: int
    own_key_tokens: int

    def tokens(self) -> int:
        return self.platform_tokens + self.own_key_tokens


def parse_day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(f"{field} must be a date as YYYY-MM-DD", field=field) from None


def history_range(first: date, last: date) -> HistoryRange:
    """``from`` must not come after ``to``, and the range covers at most 400 days."""
    if first > last:
        raise ValidationError("from must not be after to", field="from")
    if (last - first).days + 1 > MAX_HISTORY_DAYS:
        raise ValidationError(f"the range covers at most {MAX_HISTORY_DAYS} days", field="to")
    return HistoryRange(first, last)


def parse_group(value: str) -> HistoryGroup:
    try:
        return HistoryGroup(value.strip().lower())
    except ValueError:
        raise ValidationError("group must be 'day' or 'model'", field="group") from None


def local_day(record: UsageRecord, timezone: str) -> date:
    return record.at.astimezone(parse_timezone(timezone)).date()


def _tally(key: str, records: Sequence[UsageRecord]) -> HistoryRow:
    platform = sum(r.weighted_tokens for r in records if r.credential is Credential.PLATFORM)
    own = sum(r.weighted_tokens for r in records if r.credential is not Credential.PLATFORM)
    return HistoryRow(key=key, messages=len(records), platform_tokens=platform, own_key_tokens=own)


def history_rows(
    records: Iterable[UsageRecord], span: HistoryRange, group: HistoryGroup, timezone: str
) -> tuple[HistoryRow, ...]:
    """By day: every day of the range, in order, zeros included (a chart needs the gaps).
    By model: the models used in the range, most tokens first, then by id."""
    inside = [r for r in records if span.first <= local_day(r, timezone) <= span.last]
    if group is HistoryGroup.DAY:
        by_day: dict[date, list[UsageRecord]] = {day: [] for day in span.days()}
        for record in inside:
            by_day[local_day(record, timezone)].append(record)
        return tuple(_tally(day.isoformat(), rows) for day, rows in by_day.items())
    by_model: dict[str, list[UsageRecord]] = {}
    for record in inside:
        by_model.setdefault(record.model, []).append(record)
    rows = [_tally(model, found) for model, found in by_model.items()]
    return tuple(sorted(rows, key=lambda row: (-row.tokens(), row.key)))
