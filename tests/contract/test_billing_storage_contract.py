"""Billing storage contracts: subscription records and paid invoices behave alike in memory,
on SQLite and on PostgreSQL; the message counts the usage report reads from the ledger's
reservations agree with what the ledger did (SQLite and PostgreSQL, through the real ledger)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from adapters.sql.database import open_database
from domain.ids import TenantId, TierId
from domain.metering import Admitted, MessageCounts
from domain.subscription_records import PaidInvoice, Subscription
from tests.contract.test_ledger_contract import TTL, admission, settlement
from tests.fakes import InMemoryPaidInvoiceRepository, InMemorySubscriptionRepository
from tests.support import postgres

pytestmark = pytest.mark.contract

T0 = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


@attrs.frozen
class BillingStorage:
    backend: str
    subscriptions: Any
    invoices: Any
    ledger: Any = None
    counter: Any = None


async def _sql(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Any:
    if backend == "sqlite":
        path = tmp_path / "tierkeeper.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return await open_database(f"sqlite:///{path}", pool_size=4)
    url = request.getfixturevalue("postgres_url")
    postgres.truncate_all(url)
    return await open_database(url, pool_size=4)


@pytest.fixture(params=("memory", "sqlite", "postgres"))
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BillingStorage]:
    if request.param == "memory":
        yield BillingStorage(
            "memory", InMemorySubscriptionRepository(), InMemoryPaidInvoiceRepository()
        )
        return
    db = await _sql(request, request.param, tmp_path)
    try:
        yield BillingStorage(
            request.param, db.subscriptions, db.paid_invoices, db.ledger, db.message_counts
        )
    finally:
        await db.close()


@pytest.fixture(params=("sqlite", "postgres"))
async def sql_storage(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BillingStorage]:
    db = await _sql(request, request.param, tmp_path)
    try:
        yield BillingStorage(
            request.param, db.subscriptions, db.paid_invoices, db.ledger, db.message_counts
        )
    finally:
        await db.close()


async def test_a_subscription_record_reads_back_as_saved(storage: BillingStorage) -> None:
    assert await storage.subscriptions.get(TenantId("t-1")) is None
    saved = Subscription(TenantId("t-1"), "sub_1", T0, T0 + timedelta(days=31), True,
                         TierId("starter"), T0 + timedelta(days=31))  # fmt: skip
    await storage.subscriptions.save(saved)
    assert await storage.subscriptions.get(TenantId("t-1")) == saved


async def test_saving_again_replaces_the_tenants_one_record(storage: BillingStorage) -> None:
    first = Subscription(TenantId("t-1"), "sub_1", T0, T0 + timedelta(days=31), True,
                         TierId("starter"), T0)  # fmt: skip
    await storage.subscriptions.save(first)
    second = Subscription(TenantId("t-1"), "sub_2")
    await storage.subscriptions.save(second)
    await storage.subscriptions.save(Subscription(TenantId("t-2"), "sub_3"))
    assert await storage.subscriptions.get(TenantId("t-1")) == second


async def test_a_paid_invoice_is_kept_once(storage: BillingStorage) -> None:
    invoice = PaidInvoice("in_1", TenantId("t-1"), 2_500, "usd", T0)
    assert await storage.invoices.record(invoice) is True
    assert await storage.invoices.record(attrs.evolve(invoice, amount_cents=1)) is False
    assert await storage.invoices.paid_between(T0, T0 + timedelta(seconds=1)) == [invoice]


async def test_paid_invoices_are_read_by_the_half_open_window_oldest_first(
    storage: BillingStorage,
) -> None:
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    invoices = [
        PaidInvoice("in_before", TenantId("t-1"), 1, "usd", start - timedelta(microseconds=1)),
        PaidInvoice("in_late", TenantId("t-2"), 3, "usd", end - timedelta(seconds=1)),
        PaidInvoice("in_first", TenantId("t-1"), 2, "usd", start),
        PaidInvoice("in_after", TenantId("t-1"), 4, "usd", end),
    ]
    for invoice in invoices:
        await storage.invoices.record(invoice)
    found = await storage.invoices.paid_between(start, end)
    assert [i.invoice_id for i in found] == ["in_first", "in_late"]
    assert found[1] == invoices[1]


async def test_message_counts_follow_what_the_ledger_did(sql_storage: BillingStorage) -> None:
    ledger = sql_storage.ledger
    for message in ("m-1", "m-2", "m-3"):
        assert isinstance(await ledger.admit(admission(message, cap=10)), Admitted)
    assert isinstance(await ledger.admit(admission("m-other", cap=10, tenant="t002")), Admitted)
    await ledger.settle(settlement("m-1", 500))
    await ledger.release_expired(T0 + TTL + timedelta(seconds=1))
    counts = await sql_storage.counter.message_counts(T0, T0 + timedelta(days=1))
    assert counts == {
        TenantId("t001"): MessageCounts(admitted=3, settled=1, expired=2),
        TenantId("t002"): MessageCounts(admitted=1, settled=0, expired=1),
    }
    assert (
        await sql_storage.counter.message_counts(T0 + timedelta(days=1), T0 + timedelta(days=2))
        == {}
    )
