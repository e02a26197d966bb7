"""Budget leases keep the budget exact under concurrency (issue #20, ADR 0003 session 6):
two API processes' metering, each with leases of its own, call for one tenant on one
database until the ledger refuses them. The period never holds or settles more than its
budget, every admitted call settles exactly its usage, and every lease is given back."""

from __future__ import annotations

import asyncio
import tomllib

import pytest
import sqlalchemy as sa

from adapters.catalog.toml_loader import default_catalog_text
from adapters.sql.database import SqlDatabase
from domain.catalog import build_catalog
from domain.ids import MessageId, TenantId
from domain.metering import Admitted, Credential, TokenUsage
from domain.routing import Route, platform_token_budget
from domain.tenants import Tenant
from domain.use_cases.budget_leases import BudgetLeases
from domain.use_cases.metering import Admission, Metering
from tests.contract.test_ledger_contract import T0, windows
from tests.contract.test_repositories_contract import a_tenant, a_user
from tests.fakes import FixedClock

pytestmark = pytest.mark.integration

RESERVE = 10_000
PROCESSES = 2
TASKS = 6


def _one_upstream(tenant: Tenant, route: Route) -> tuple[str]:
    return ("the route's primary",)


async def _call_until_refused(metering: Metering, tenant: TenantId, name: str) -> list[int]:
    """Calls of ``RESERVE`` tokens, each settling all of them, until one is refused;
    the tokens each admitted call held."""
    held: list[int] = []
    for n in range(1_000):
        call = MessageId(f"call-{name}-{n}")
        reserved = await metering.reserve_call(tenant, call, None, RESERVE, _one_upstream)
        if not isinstance(reserved.admission, Admission):
            return held
        assert isinstance(reserved.admission.decision, Admitted)
        held.append(reserved.admission.decision.held_tokens)
        await asyncio.sleep(0)
        usage = TokenUsage(0, RESERVE)
        model, platform = "moonshot/kimi-k2.5", Credential.PLATFORM
        await metering.settle(tenant, reserved.ledger_id, model, usage, platform, reserved.drawn)
    raise AssertionError("the budget never refused")


async def test_processes_leasing_one_budget_never_hold_or_settle_more_than_it(
    db: SqlDatabase,
) -> None:
    tenant = a_tenant(1)
    await db.tenants.add(tenant, a_user(1))
    catalog = build_catalog(tomllib.loads(default_catalog_text()))
    budget = platform_token_budget(catalog, catalog.tier("starter"))
    assert budget == 500_000
    meterings = [
        Metering(catalog, db.tenants, db.credentials, db.ledger, FixedClock(T0),
                 leases=BudgetLeases(seconds=60))
        for _ in range(PROCESSES)
    ]  # fmt: skip
    runs = [
        _call_until_refused(metering, tenant.id, f"{p}-{t}")
        for p, metering in enumerate(meterings)
        for t in range(TASKS)
    ]
    held = [tokens for run in await asyncio.gather(*runs) for tokens in run]
    for metering in meterings:
        await metering.end_leases()
    day, period = windows(T0)
    counters = await db.ledger.counters(tenant.id, day, period, T0)
    assert counters.platform_tokens_settled == len(held) * RESERVE <= budget
    assert counters.platform_tokens_reserved == 0
    assert set(held) == {RESERVE}
    # a process stops calling once refused; the other's last lease may still hold less than
    # one call for it: at most one call per process is left unserved
    assert len(held) >= budget // RESERVE - PROCESSES
    assert await _lease_states(db, tenant.id) == {"released"}


async def _lease_states(db: SqlDatabase, tenant: TenantId) -> set[str]:
    """The states of the tenant's leases (each process asked for some)."""
    query = sa.text(
        "SELECT state FROM reservations WHERE tenant_id = :tenant AND message_id LIKE 'lease-%'"
    )
    async with db.engine.connect() as conn:
        states = (await conn.execute(query, {"tenant": tenant})).scalars().all()
    assert len(states) >= PROCESSES
    return set(states)
