"""The monthly usage and margin report: messages, tokens by model and credential, model cost
at catalog rates, revenue at the tier price, margin."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.billing import model_cost_usd, report_period, usd_to_cents
from domain.catalog import Catalog
from domain.errors import ValidationError
from domain.ids import MessageId, TenantId
from domain.metering import Credential
from domain.ports import UsageRecord
from domain.tenants import SubscriptionStatus
from domain.use_cases.reports import UsageReport
from tests.unit.conftest import World

MARCH = datetime(2026, 3, 15, 12, tzinfo=UTC)


def record(
    tenant: str, model: str, credential: Credential = Credential.PLATFORM,
    tokens: tuple[int, int, int] = (1000, 500, 0), at: datetime = MARCH, n: int = 0,
) -> UsageRecord:  # fmt: skip
    return UsageRecord(TenantId(tenant), MessageId(f"{tenant}-{model}-{n}"), model, credential,
                       *tokens, sum(tokens), at)  # fmt: skip


def report(world: World) -> UsageReport:
    return UsageReport(world.catalog, world.tenant_repo, world.ledger)


def test_a_period_is_a_calendar_month_in_utc() -> None:
    period = report_period("2026-12")
    assert period.name == "2026-12"
    assert period.starts_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert period.ends_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert report_period(" 2026-02 ").ends_at == datetime(2026, 3, 1, tzinfo=UTC)
    january = report_period("2026-01")
    assert (january.starts_at, january.ends_at) == (
        datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC),
    )  # fmt: skip


@pytest.mark.parametrize("bad", ["2026-13", "2026-00", "2026-3", "March", "", "2026-03-01"])
def test_a_period_must_be_a_month(bad: str) -> None:
    with pytest.raises(ValidationError) as raised:
        report_period(bad)
    assert raised.value.field == "period"
    assert "YYYY-MM" in raised.value.detail


async def test_usage_is_summed_by_model_and_credential(world: World, catalog: Catalog) -> None:
    await world.add_tenant("t-1", tier="byok")
    starter_model = catalog.tier("starter").primary_model
    assert starter_model is not None
    world.ledger.records += [
        record("t-1", "openai/gpt-4.1", Credential.TENANT, (10_000, 5_000, 0), n=1),
        record("t-1", "openai/gpt-4.1", Credential.TENANT, (20_000, 5_000, 0), n=2),
        record("t-1", starter_model, Credential.PLATFORM, (1_000, 400, 100), n=3),
    ]
    (row,) = (await report(world).for_period("2026-03")).tenants
    assert row.messages == 3
    assert row.tokens == 40_000 + 1_500
    own, platform = sorted(row.by_model, key=lambda u: u.credential.value, reverse=True)
    assert (own.model, own.credential, own.messages) == ("openai/gpt-4.1", Credential.TENANT, 2)
    assert (own.input_tokens, own.output_tokens, own.tokens) == (30_000, 10_000, 40_000)
    assert own.cost_usd == 0
    rates = catalog.model(starter_model).rates
    assert platform.cost_usd == model_cost_usd(rates, 1_000, 400, 100)
    assert row.model_cost_usd == platform.cost_usd
    assert row.status is SubscriptionStatus.ACTIVE


async def test_one_model_on_both_credentials_is_two_rows_platform_last(
    world: World, catalog: Catalog
) -> None:
    await world.add_tenant("t-1", tier="byok")
    model = catalog.models[0].ref
    world.ledger.records += [
        record("t-1", model, Credential.PLATFORM, n=1),
        record("t-1", model, Credential.TENANT, n=2),
    ]
    (row,) = (await report(world).for_period("2026-03")).tenants
    assert [(u.model, u.credential) for u in row.by_model] == [
        (model, Credential.PLATFORM), (model, Credential.TENANT),
    ]  # fmt: skip


async def test_margin_is_the_tier_price_less_platform_model_cost(
    world: World, catalog: Catalog
) -> None:
    await world.add_tenant("t-1", tier="premium")
    model = catalog.tier("premium").primary_model
    assert model is not None
    tokens = (2_000_000, 1_000_000, 0)
    world.ledger.records.append(record("t-1", model, tokens=tokens))
    (row,) = (await report(world).for_period("2026-03")).tenants
    cost = usd_to_cents(model_cost_usd(catalog.model(model).rates, *tokens))
    price = catalog.tier("premium").price.amount_cents
    assert (row.revenue_cents, row.model_cost_cents) == (price, cost)
    assert row.margin_cents == price - cost
    assert row.tier == "premium"


async def test_a_tenant_without_usage_shows_its_revenue(world: World, catalog: Catalog) -> None:
    await world.add_tenant("t-1", tier="starter")
    (row,) = (await report(world).for_period("2026-03")).tenants
    price = catalog.tier("starter").price.amount_cents
    assert (row.messages, row.model_cost_cents, row.revenue_cents, row.margin_cents) == (
        0, 0, price, price,
    )  # fmt: skip
    assert isinstance(row.model_cost_usd, Decimal)


@pytest.mark.parametrize(
    ("status", "pays"),
    [
        (SubscriptionStatus.ACTIVE, True),
        (SubscriptionStatus.PAST_DUE, True),
        (SubscriptionStatus.INCOMPLETE, False),
        (SubscriptionStatus.CANCELED, False),
    ],
)
async def test_only_billed_subscriptions_bring_revenue(
    world: World, catalog: Catalog, status: SubscriptionStatus, pays: bool
) -> None:
    await world.add_tenant("t-1", tier="byok", status=status)
    (row,) = (await report(world).for_period("2026-03")).tenants
    assert row.revenue_cents == (catalog.tier("byok").price.amount_cents if pays else 0)


async def test_usage_outside_the_month_is_left_out(world: World, catalog: Catalog) -> None:
    await world.add_tenant("t-1")
    model = catalog.models[0].ref
    world.ledger.records += [
        record("t-1", model, at=datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC), n=1),
        record("t-1", model, at=datetime(2026, 3, 1, tzinfo=UTC), n=2),
        record("t-1", model, at=datetime(2026, 4, 1, tzinfo=UTC), n=3),
    ]
    (row,) = (await report(world).for_period("2026-03")).tenants
    assert row.messages == 1


async def test_usage_of_a_tenant_no_longer_on_record_is_reported_without_revenue(
    world: World, catalog: Catalog
) -> None:
    await world.add_tenant("t-1")
    world.ledger.records.append(record("t-0", catalog.models[0].ref))
    rows = (await report(world).for_period("2026-03")).tenants
    assert [r.tenant_id for r in rows] == ["t-0", "t-1"]
    assert (rows[0].tier, rows[0].status, rows[0].revenue_cents) == (None, None, 0)
    assert rows[0].margin_cents == -rows[0].model_cost_cents


async def test_a_model_without_catalog_rates_is_flagged_not_priced(world: World) -> None:
    await world.add_tenant("t-1")
    world.ledger.records.append(record("t-1", "retired/model"))
    (row,) = (await report(world).for_period("2026-03")).tenants
    assert row.unpriced_messages == 1
    assert row.by_model[0].cost_usd is None
    assert row.model_cost_usd == Decimal(0)
    assert isinstance(row.model_cost_usd, Decimal)


async def test_totals_add_up_over_tenants(world: World, catalog: Catalog) -> None:
    await world.add_tenant("t-1", tier="starter")
    await world.add_tenant("t-2", tier="premium")
    model = catalog.models[0].ref
    world.ledger.records += [record("t-1", model, n=1), record("t-2", model, n=2)]
    result = await report(world).for_period("2026-03")
    assert result.period.name == "2026-03"
    assert result.messages == 2
    assert result.revenue_cents == sum(t.revenue_cents for t in result.tenants)
    assert result.model_cost_cents == sum(t.model_cost_cents for t in result.tenants)
    assert result.model_cost_usd == sum((t.model_cost_usd for t in result.tenants), Decimal(0))
    assert result.margin_cents == result.revenue_cents - result.model_cost_cents
