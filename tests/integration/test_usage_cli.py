"""``tierkeeper usage report`` end to end: usage settled through the real composition root
into a SQLite database, with a paid invoice for one tenant and none for the other (activated
by the operator), then reported by the command as CSV and as a table."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from domain.billing import model_cost_usd, usd_to_cents
from domain.ids import MessageId, TenantId, TierId, UserId
from domain.metering import Credential, TokenUsage
from domain.subscription_records import PaidInvoice
from domain.tenants import SubscriptionStatus, Tenant, User
from entrypoints.bootstrap import build_services
from entrypoints.cli import main
from entrypoints.cli.usage_commands import CSV_COLUMNS
from entrypoints.settings import Settings

pytestmark = pytest.mark.integration

PREMIUM_TOKENS = (120_000, 30_000, 10_000)
PREMIUM_PAID_CENTS = 1_834
"""What the premium tenant paid this month (a prorated first invoice): not the list price."""
OWN_KEY_TOKENS = (50_000, 20_000, 0)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    env = {
        "TIERKEEPER_VAR_DIR": str(tmp_path / "var"),
        "TIERKEEPER_DATABASE_URL": f"sqlite:///{tmp_path / 'tierkeeper.sqlite3'}",
        "TIERKEEPER_CONFIG_ROOT": str(tmp_path / "openclaw"),
        "TIERKEEPER_SECRET_KEY": "usage-report-test-secret-0123456789abcdef",
        "TIERKEEPER_KEY_STORE": "fernet",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings.from_environ()


def _with_subscription(tenant: Tenant) -> Tenant:
    return attrs.evolve(tenant, stripe_customer_id="cus_premium",
                        stripe_subscription_id="sub_premium")  # fmt: skip


def this_month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


async def _seed(settings: Settings) -> None:
    services = await build_services(settings, migrate=True)
    try:
        now = datetime.now(UTC)
        for tenant_id, tier in (("t-premium", "premium"), ("t-byok", "byok")):
            tenant = Tenant(TenantId(tenant_id), TierId(tier), SubscriptionStatus.ACTIVE, "UTC",
                            1, now)  # fmt: skip
            user = User(UserId(f"u-{tenant_id}"), f"{tenant_id}@example.com", "x", tenant.id, now)
            await services.ports.tenants.add(tenant, user)
        premium = await services.ports.tenants.get(TenantId("t-premium"))
        assert premium is not None and services.ports.paid_invoices is not None
        await services.ports.tenants.save(_with_subscription(premium))
        await services.ports.paid_invoices.record(
            PaidInvoice("in_premium_1", TenantId("t-premium"), PREMIUM_PAID_CENTS, "usd", now)
        )
        catalog = services.catalog
        premium_model = catalog.tier("premium").primary_model
        assert premium_model is not None
        metering = services.metering
        await metering.admit(TenantId("t-premium"), MessageId("m-1"))
        await metering.settle(
            TenantId("t-premium"), MessageId("m-1"), premium_model,
            TokenUsage(*PREMIUM_TOKENS), Credential.PLATFORM,
        )  # fmt: skip
        await metering.settle(
            TenantId("t-byok"), MessageId("m-2"), "openai/gpt-4.1",
            TokenUsage(*OWN_KEY_TOKENS), Credential.TENANT,
        )  # fmt: skip
        await metering.admit(TenantId("t-premium"), MessageId("m-never-settled"))
        await services.ports.ledger.release_expired(now + timedelta(days=1))
    finally:
        await services.close()


def test_the_report_as_csv_has_tokens_cost_revenue_and_margin_per_tenant(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_seed(settings))
    capsys.readouterr()
    assert main(["usage", "report", "--period", this_month(), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    by_key = {(r["tenant_id"], r["row"], r["credential"]): r for r in rows}

    from adapters.catalog.toml_loader import load_catalog

    catalog = load_catalog()
    premium_model = catalog.tier("premium").primary_model
    assert premium_model is not None
    cost = model_cost_usd(catalog.model(premium_model).rates, *PREMIUM_TOKENS)
    model_row = by_key[("t-premium", "model", "platform")]
    assert model_row["model"] == premium_model
    assert (model_row["messages"], model_row["tokens"]) == ("1", str(sum(PREMIUM_TOKENS)))
    assert Decimal(model_row["model_cost_usd"]) == cost.quantize(Decimal("0.000001"))
    premium = by_key[("t-premium", "tenant", "")]
    assert Decimal(premium["revenue_usd"]) * 100 == PREMIUM_PAID_CENTS
    assert Decimal(premium["margin_usd"]) * 100 == PREMIUM_PAID_CENTS - usd_to_cents(cost)
    assert (premium["admitted"], premium["settled"], premium["expired"]) == ("2", "1", "1")
    assert premium["activated_without_payment"] == "no"
    assert (premium["tier"], premium["status"], premium["period"]) == (
        "premium", "active", this_month(),
    )  # fmt: skip

    own = by_key[("t-byok", "model", "tenant")]
    assert (own["model"], own["tokens"], own["model_cost_usd"]) == (
        "openai/gpt-4.1", str(sum(OWN_KEY_TOKENS)), "0.000000",
    )  # fmt: skip
    byok = by_key[("t-byok", "tenant", "")]
    assert (Decimal(byok["revenue_usd"]), Decimal(byok["margin_usd"])) == (0, 0)
    assert byok["activated_without_payment"] == "yes"


def test_the_report_as_a_table_names_every_tenant_and_the_totals(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    asyncio.run(_seed(settings))
    capsys.readouterr()
    assert main(["usage", "report", "--period", this_month()]) == 0
    out = capsys.readouterr().out
    assert f"tierkeeper usage {this_month()}" in out
    for text in ("t-premium", "t-byok", "openai/gpt-4.1 (tenant)", "total", "2 / 1 / 1"):
        assert text in out
    assert "without a subscription or a paid invoice" in out
    assert "$18.34" in out


def test_a_month_without_usage_reports_revenue_only(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_seed(settings))
    capsys.readouterr()
    assert main(["usage", "report", "--period", "2001-01", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["row"] for r in rows} == {"tenant"}
    assert {r["messages"] for r in rows} == {"0"}


def test_a_bad_period_is_refused_before_the_database_is_opened(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["usage", "report", "--period", "26-1"]) == 2
    assert "YYYY-MM" in capsys.readouterr().err
    assert not Path(settings.database_url.removeprefix("sqlite:///")).exists()


def test_on_a_fresh_embedded_database_the_report_is_empty(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """The embedded SQLite file is created and migrated first, like the other commands do."""
    assert main(["usage", "report", "--period", "2026-01", "--csv"]) == 0
    assert capsys.readouterr().out.splitlines() == [",".join(CSV_COLUMNS)]
