"""The usage history's refusals in words, and its use case's answers: the tenant's local
day, an unknown tenant, the range and grouping handed back with the rows."""

from __future__ import annotations

from datetime import date

import pytest

from domain.catalog import Catalog
from domain.errors import NotFound, ValidationError
from domain.ids import TenantId
from domain.usage_history import HistoryGroup, HistoryRange, history_range, parse_day, parse_group
from domain.use_cases.usage_history import UsageHistory
from tests.unit.conftest import World


def test_a_malformed_day_is_refused_in_words_naming_the_field() -> None:
    with pytest.raises(ValidationError) as raised:
        parse_day("1 Dec", "to")
    assert (raised.value.field, raised.value.detail) == ("to", "to must be a date as YYYY-MM-DD")


def test_a_range_backwards_is_refused_in_words() -> None:
    with pytest.raises(ValidationError) as raised:
        history_range(date(2026, 12, 3), date(2026, 12, 1))
    assert (raised.value.field, raised.value.detail) == ("from", "from must not be after to")


def test_an_unknown_grouping_is_refused_in_words() -> None:
    with pytest.raises(ValidationError) as raised:
        parse_group("week")
    assert (raised.value.field, raised.value.detail) == ("group", "group must be 'day' or 'model'")


async def test_today_is_the_tenants_local_calendar_day(catalog: Catalog) -> None:
    world = World(catalog)
    world.clock.instant = world.clock.instant.replace(hour=23)
    await world.add_tenant("t-1", timezone="Asia/Tokyo")
    history = UsageHistory(world.tenant_repo, world.ledger, world.clock)
    assert await history.today(TenantId("t-1")) == date(2026, 3, 16)


async def test_an_unknown_tenant_has_no_history_and_no_day(catalog: Catalog) -> None:
    world = World(catalog)
    history = UsageHistory(world.tenant_repo, world.ledger, world.clock)
    with pytest.raises(NotFound) as raised:
        await history.today(TenantId("t-9"))
    assert raised.value.detail == "tenant 't-9' is unknown"
    with pytest.raises(NotFound) as raised:
        await history.history(TenantId("t-9"), date(2026, 3, 1), date(2026, 3, 2), HistoryGroup.DAY)
    assert raised.value.detail == "tenant 't-9' is unknown"


async def test_the_view_carries_the_range_grouping_and_zone(catalog: Catalog) -> None:
    world = World(catalog)
    await world.add_tenant("t-1", timezone="Europe/Berlin")
    history = UsageHistory(world.tenant_repo, world.ledger, world.clock)
    view = await history.history(
        TenantId("t-1"), date(2026, 3, 1), date(2026, 3, 2), HistoryGroup.MODEL
    )
    assert (view.span, view.group, view.timezone) == (
        HistoryRange(date(2026, 3, 1), date(2026, 3, 2)), HistoryGroup.MODEL, "Europe/Berlin",
    )  # fmt: skip
