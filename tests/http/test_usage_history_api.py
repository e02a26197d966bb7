"""``GET /api/v1/usage/history``: the caller's settled usage by day or model, as JSON or CSV;
ranges checked (from ≤ to, at most 400 days); only the caller's own tenant."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from litestar.testing import AsyncTestClient

from domain.catalog import Catalog
from domain.ids import MessageId
from domain.metering import Credential, TokenUsage
from entrypoints.bootstrap import Services
from tests.http.conftest import Customer, make_active, sign_up


def day_row(day: date, messages: int, tokens: int) -> dict[str, object]:
    return {
        "day": str(day),
        "messages": messages,
        "tokens": tokens,
        "platform_tokens": tokens,
        "own_key_tokens": 0,
    }


async def spend(services: Services, customer: Customer, model: str, tokens: int, n: int) -> None:
    message = MessageId(f"hist-{n}")
    await services.metering.admit(customer.tenant_id, message, 4000)
    await services.metering.settle(
        customer.tenant_id, message, model, TokenUsage(tokens, 0), Credential.PLATFORM
    )


async def test_history_by_day_and_by_model_as_json_and_csv(
    client: AsyncTestClient[Any], services: Services, customer: Customer, catalog: Catalog
) -> None:
    await make_active(services, customer.tenant_id)
    starter = catalog.tier("starter")
    model = starter.primary_model or ""
    await spend(services, customer, model, 1000, 1)
    await spend(services, customer, model, 500, 2)
    other = await sign_up(client)
    await make_active(services, other.tenant_id)
    await spend(services, other, model, 9999, 3)

    today = services.metering.clock.now().date()
    first = today - timedelta(days=2)
    query = f"from={first}&to={today}"
    by_day = await client.get(f"/api/v1/usage/history?{query}", headers=customer.headers)
    assert by_day.status_code == 200, by_day.text
    weight = catalog.model(model).budget_weight
    spent = int(1000 * weight) + int(500 * weight)
    assert by_day.json() == {
        "rows": [
            day_row(first, 0, 0),
            day_row(first + timedelta(days=1), 0, 0),
            day_row(today, 2, spent),
        ]
    }
    by_model = await client.get(
        f"/api/v1/usage/history?{query}&group=model", headers=customer.headers
    )
    assert by_model.json()["rows"] == [
        {"model": model, "messages": 2, "tokens": spent, "platform_tokens": spent,
         "own_key_tokens": 0}
    ]  # fmt: skip
    as_csv = await client.get(
        f"/api/v1/usage/history?{query}", headers={**customer.headers, "accept": "text/csv"}
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    assert as_csv.text.splitlines() == [
        "day,messages,tokens,platform_tokens,own_key_tokens",
        f"{first},0,0,0,0",
        f"{first + timedelta(days=1)},0,0,0,0",
        f"{today},2,{spent},{spent},0",
    ]
    by_format = await client.get(
        f"/api/v1/usage/history?{query}&group=model&format=csv", headers=customer.headers
    )
    assert by_format.text.splitlines()[1] == f"{model},2,{spent},{spent},0"


async def test_history_defaults_to_the_last_30_days(
    client: AsyncTestClient[Any], services: Services, customer: Customer
) -> None:
    answer = await client.get("/api/v1/usage/history", headers=customer.headers)
    rows = answer.json()["rows"]
    assert len(rows) == 30
    assert rows[-1]["day"] == str(services.metering.clock.now().date())


async def test_bad_ranges_name_the_field(client: AsyncTestClient[Any], customer: Customer) -> None:
    start = date(2025, 1, 1)
    cases = [
        ("from=2026-12-02&to=2026-12-01", "from"),
        (f"from={start}&to={start + timedelta(days=400)}", "to"),
        ("from=yesterday&to=2026-12-01", "from"),
        ("from=2026-12-01&to=2026-12-01&group=week", "group"),
    ]
    for query, field in cases:
        answer = await client.get(f"/api/v1/usage/history?{query}", headers=customer.headers)
        assert answer.status_code == 422, query
        assert answer.json()["code"] == "validation_error"
        assert answer.json()["field"] == field, query
    longest = await client.get(
        f"/api/v1/usage/history?from={start}&to={start + timedelta(days=399)}",
        headers=customer.headers,
    )
    assert longest.status_code == 200
    assert len(longest.json()["rows"]) == 400


async def test_history_needs_a_customer(client: AsyncTestClient[Any]) -> None:
    answer = await client.get("/api/v1/usage/history")
    assert answer.status_code == 401
