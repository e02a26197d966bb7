"""The monthly usage and margin report: messages, tokens by model and credential, model cost
at catalog rates, revenue from the invoices paid in the month, margin; tenants working
without payment flagged; admitted, settled and expired messages apart."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.billing import model_cost_usd, report_period, usd_to_cents
from domain.catalog import Catalog
from domain.errors import ValidationError
from domain.ids import MessageId, TenantId
from domain.metering import Credential, MessageCounts, UsageRecord
from domain.subscription_records import PaidInvoice
from domain.tenants import SubscriptionStatus
from domain.use_cases.reports import UsageReport
from tests.fakes import FixedMessageCounter, InMemoryPaidInvoiceRepository
from tests.unit.conftest import World

MARCH = datetime(2026, 3, 15, 12, tzinfo=UTC)


def record(
    tenant: str, model: str, credential: Credential = Credential.PLATFORM,
    tokens: tuple[int, int, int] = (1000, 500, 0), at: datetime = MARCH, n: int = 0,
) -> UsageRecord:  # fmt: skip
    return UsageRecord(TenantId(tenant), MessageId(f"{tenant}-{model}-{n}"), model, credential,
                       *tokens, sum(tokens), at)  # fmt: skip


INVOICES = InMemoryPaidInvoiceRepository()


@pytest.fixture(autouse=True)
def no_invoices() -> None:
    INVOICES.invoices.clear()


def paid(tenant: str, cents: int, at: datetime = MARCH, invoice: str | None = None) -> None:
    name = invoice or f"in_{tenant}_{len(INVOICES.invoices)}"
    INVOICES.invoices[name] = PaidInvoice(name, TenantId(tenant), cents, "usd", at)


def report(world: World, counter: FixedMessageCounter | None = None) -> UsageReport:
    return UsageReport(world.catalog, world.tenant_repo, world.ledger, INVOICES, counter)


def subscribed(**changes: str) -> dict[str, str]:
    return {"stripe_customer_id": "cus_1", "stripe_subscription_id": "sub_1", **changes}


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
    assert row.messages() == 3
    assert row.tokens() == 40_000 + 1_500
    own, platform = sorted(row.by_model, key=lambda u: u.credential.value, reverse=True)
    assert (own.model, own.credential, own.messages) == ("openai/gpt-4.1", Credential.TENANT, 2)
    assert (own.input_tokens, own.output_tokens, own.tokens()) == (30_000, 10_000, 40_000)
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


async def test_margin_is_what_was_paid_less_platform_model_cost(
    world: World, catalog: Catalog
) -> None:
    await world.add_tenant("t-1", tier="premium", **subscribed())
    model = catalog.tier("premium").primary_model
    assert model is not None
    tokens = (2_000_000, 1_000_000, 0)
    world.ledger.records.append(record("t-1", model, tokens=tokens))
    paid("t-1", 700)
    paid("t-1", 1_290)  # the upgrade to premium, prorated
    cost = usd_to_cents(model_cost_usd(catalog.model(model).rates, *tokens))
    assert (row_revenue := 700 + 1_290) != catalog.tier("premium").price.amount_cents
    (row,) = (await report(world).for_period("2026-03")).tenants
    assert (row.revenue_cents, row.model_cost_cents) == (row_revenue, cost)
    assert row.margin_cents == row_revenue - cost
    assert row.tier == "premium"
    assert not row.activated_without_payment


async def test_a_tenant_without_usage_shows_its_revenue(world: World, catalog: Catalog) -> None:
    await world.add_tenant("t-1", tier="starter", **subscribed())
    paid("t-1", 700)
    (row,) = (await report(world).for_period("2026-03")).tenants
    assert (row.messages(), row.model_cost_cents, row.revenue_cents, row.margin_cents) == (
        0, 0, 700, 700,
    )  # fmt: skip
    assert isinstance(row.model_cost_usd, Decimal)


async def test_revenue_is_the_paid_invoices_of_the_month_whatever_the_status(
    world: World,
) -> None:
    await world.add_tenant("t-1", tier="premium", status=SubscriptionStatus.CANCELED,
                           **subscribed())  # fmt: skip
    paid("t-1", 2_500, at=datetime(2026, 3, 1, tzinfo=UTC))
    paid("t-1", 2_500, at=datetime(2026, 2, 28, 23, 59, tzinfo=UTC))
    paid("t-1", 2_500, at=datetime(2026, 4, 1, tzinfo=UTC))
    (row,) = (await report(world).for_period("2026-03")).tenants
    assert row.revenue_cents == 2_500


@pytest.mark.parametrize(
    ("status", "flagged"),
    [
        (SubscriptionStatus.ACTIVE, True),
        (SubscriptionStatus.PAST_DUE, True),
        (SubscriptionStatus.INCOMPLETE, False),
        (SubscriptionStatus.CANCELED, False),
    ],
)
async def test_a_working_tenant_without_subscription_or_payment_is_flagged(
    world: World, status: SubscriptionStatus, flagged: bool
) -> None:
    """An operator's ``tenants set-tier … --status active`` makes such a tenant."""
    await world.add_tenant("t-1", tier="byok", status=status)
    result = await report(world).for_period("2026-03")
    (row,) = result.tenants
    assert (row.revenue_cents, row.activated_without_payment) == (0, flagged)
    assert result.unpaid_activations() == ((row,) if flagged else ())


async def test_a_subscribed_or_paying_tenant_is_not_flagged(world: World) -> None:
    await world.add_tenant("t-sub", **subscribed())
    await world.add_tenant("t-paid")
    paid("t-paid", 700)
    rows = (await report(world).for_period("2026-03")).tenants
    assert [r.activated_without_payment for r in rows] == [False, False]


async def test_admitted_settled_and_expired_messages_are_counted_apart(world: World) -> None:
    await world.add_tenant("t-1")
    counts = {TenantId("t-1"): MessageCounts(5, 3, 1), TenantId("t-gone"): MessageCounts(2, 0, 2)}
    counter = FixedMessageCounter(counts, at=MARCH)
    rows = (await report(world, counter).for_period("2026-03")).tenants
    assert [(r.tenant_id, r.counts) for r in rows] == [
        ("t-1", MessageCounts(5, 3, 1)), ("t-gone", MessageCounts(2, 0, 2)),
    ]  # fmt: skip
    (april,) = (await report(world, counter).for_period("2026-04")).tenants
    assert april.counts == MessageCounts()


async def test_usage_outside_the_month_is_left_out(world: World, catalog: Catalog) -> None:
    await world.add_tenant("t-1")
    model = catalog.models[0].ref
    world.ledger.records += [
        record("t-1", model, at=datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC), n=1),
        record("t-1", model, at=datetime(2026, 3, 1, tzinfo=UTC), n=2),
        record("t-1", model, at=datetime(2026, 4, 1, tzinfo=UTC), n=3),
    ]
    (row,) = (await report(world).for_period("2026-03")).tenants
    assert row.messages() == 1


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


async def test_a_month_without_tenants_totals_zero_dollars_as_a_decimal(world: World) -> None:
    empty = await report(world).for_period("2026-03")
    assert empty.tenants == ()
    assert empty.model_cost_usd() == Decimal(0)
    assert isinstance(empty.model_cost_usd(), Decimal)
    assert (empty.messages(), empty.revenue_cents(), empty.margin_cents()) == (0, 0, 0)


async def test_totals_add_up_over_tenants(world: World, catalog: Catalog) -> None:
    await world.add_tenant("t-1", tier="starter")
    await world.add_tenant("t-2", tier="premium")
    paid("t-1", 700)
    paid("t-2", 2_500)
    model = catalog.models[0].ref
    world.ledger.records += [record("t-1", model, n=1), record("t-2", model, n=2)]
    result = await report(world).for_period("2026-03")
    assert result.period.name == "2026-03"
    assert result.messages() == 2
    assert result.revenue_cents() == sum(t.revenue_cents for t in result.tenants) == 3_200
    assert result.model_cost_cents() == sum(t.model_cost_cents for t in result.tenants)
    assert result.model_cost_usd() == sum((t.model_cost_usd for t in result.tenants), Decimal(0))
    assert result.margin_cents() == result.revenue_cents() - result.model_cost_cents()
