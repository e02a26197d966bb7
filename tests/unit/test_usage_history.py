"""A customer's usage history: settled messages by local day (every day of the range, in
order) or by model (most tokens first), split by whose key served them; ranges checked."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.errors import ValidationError
from domain.ids import MessageId, TenantId
from domain.metering import Credential, UsageRecord
from domain.usage_history import (
    MAX_HISTORY_DAYS,
    HistoryGroup,
    HistoryRange,
    HistoryRow,
    history_range,
    history_rows,
    parse_day,
    parse_group,
)
from domain.use_cases.usage_history import UsageHistory
from tests.unit.conftest import World


def record(
    at: datetime, model: str = "moonshot/kimi-k2.5", tokens: int = 100,
    credential: Credential = Credential.PLATFORM, tenant: str = "t-1", n: int = 0,
) -> UsageRecord:  # fmt: skip
    return UsageRecord(TenantId(tenant), MessageId(f"m-{at.isoformat()}-{model}-{n}"), model,
                       credential, tokens, 0, 0, tokens, at)  # fmt: skip


DEC_1 = date(2026, 12, 1)
DEC_3 = date(2026, 12, 3)


def test_by_day_every_day_of_the_range_appears_in_order_with_zeros() -> None:
    rows = history_rows(
        [record(datetime(2026, 12, 3, 9, tzinfo=UTC), tokens=30),
         record(datetime(2026, 12, 1, 9, tzinfo=UTC), tokens=10, credential=Credential.TENANT),
         record(datetime(2026, 12, 1, 10, tzinfo=UTC), tokens=5, n=1)],
        HistoryRange(DEC_1, DEC_3), HistoryGroup.DAY, "UTC",
    )  # fmt: skip
    assert rows == (
        HistoryRow("2026-12-01", messages=2, platform_tokens=5, own_key_tokens=10),
        HistoryRow("2026-12-02", messages=0, platform_tokens=0, own_key_tokens=0),
        HistoryRow("2026-12-03", messages=1, platform_tokens=30, own_key_tokens=0),
    )
    assert rows[0].tokens() == 15


def test_a_message_counts_on_the_customers_local_day() -> None:
    late = record(datetime(2026, 12, 1, 23, 30, tzinfo=UTC))
    berlin = history_rows([late], HistoryRange(DEC_1, DEC_3), HistoryGroup.DAY, "Europe/Berlin")
    assert [r.messages for r in berlin] == [0, 1, 0]
    outside = history_rows([late], HistoryRange(DEC_1, DEC_1), HistoryGroup.DAY, "Europe/Berlin")
    assert [r.messages for r in outside] == [0]


def test_by_model_most_tokens_first_then_by_id() -> None:
    at = datetime(2026, 12, 2, 12, tzinfo=UTC)
    rows = history_rows(
        [record(at, "b/model", 50), record(at, "a/model", 50, n=1), record(at, "c/model", 70),
         record(at, "c/model", 5, Credential.TENANT, n=2)],
        HistoryRange(DEC_1, DEC_3), HistoryGroup.MODEL, "UTC",
    )  # fmt: skip
    assert [(r.key, r.messages, r.platform_tokens, r.own_key_tokens) for r in rows] == [
        ("c/model", 2, 70, 5), ("a/model", 1, 50, 0), ("b/model", 1, 50, 0),
    ]  # fmt: skip


def test_a_range_runs_forwards_and_covers_at_most_400_days() -> None:
    assert history_range(DEC_1, DEC_1).days() == (DEC_1,)
    longest = history_range(
        date(2025, 1, 1), date.fromordinal(date(2025, 1, 1).toordinal() + MAX_HISTORY_DAYS - 1)
    )
    assert len(longest.days()) == MAX_HISTORY_DAYS
    with pytest.raises(ValidationError) as backwards:
        history_range(DEC_3, DEC_1)
    assert backwards.value.field == "from"
    with pytest.raises(ValidationError) as too_long:
        history_range(
            date(2025, 1, 1), date.fromordinal(date(2025, 1, 1).toordinal() + MAX_HISTORY_DAYS)
        )
    assert too_long.value.field == "to"
    assert "400" in too_long.value.detail


def test_range_bounds_are_local_midnights() -> None:
    starts, ends = HistoryRange(DEC_1, DEC_3).instants("Europe/Berlin")
    assert starts == datetime(2026, 11, 30, 23, tzinfo=UTC)
    assert ends == datetime(2026, 12, 3, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "field"), [("2026-13-01", "from"), ("yesterday", "to"), ("", "from")]
)
def test_a_day_must_be_an_iso_date(text: str, field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_day(text, field)
    assert raised.value.field == field
    assert parse_day(" 2026-12-01 ", "from") == DEC_1


def test_a_group_is_day_or_model() -> None:
    assert parse_group("Model") is HistoryGroup.MODEL
    with pytest.raises(ValidationError) as raised:
        parse_group("week")
    assert raised.value.field == "group"


async def test_the_use_case_reads_only_the_callers_tenant(world: World) -> None:
    tenant = await world.add_tenant("t-1")
    await world.add_tenant("t-2")
    now = world.clock.now()
    world.ledger.records += [record(now, tokens=7), record(now, tokens=99, tenant="t-2")]
    history = UsageHistory(world.tenant_repo, world.ledger, world.clock)
    today = await history.today(tenant.id)
    assert today == now.date()
    view = await history.history(tenant.id, today, today, HistoryGroup.DAY)
    assert [(r.key, r.messages, r.tokens()) for r in view.rows] == [(today.isoformat(), 1, 7)]
    assert view.timezone == "UTC"
