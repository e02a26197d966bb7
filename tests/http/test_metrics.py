"""``GET /metrics`` (spec §12, http-api.md): who may read it, and values that move with the
requests the app answers: admissions, refusals by code, settlements, settle anomalies,
latency by route, key failures, webhook outcomes, database pools."""

from __future__ import annotations

from typing import Any

import attrs
from litestar.testing import AsyncTestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from entrypoints.bootstrap import Services
from entrypoints.http.app import create_app
from entrypoints.http.metrics import SETTLE_ROUTE, UNMATCHED_ROUTE, Metrics
from entrypoints.settings import Settings
from tests.http.conftest import (
    Customer,
    key_for,
    make_active,
    sign_up,
    stripe_event,
    stripe_signature,
)

METRICS_TOKEN = "metrics-scraper-token-0123456789"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client: AsyncTestClient[Any], headers: dict[str, str]) -> str:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def admit(
    client: AsyncTestClient[Any], headers: dict[str, str], tenant: str, message: str
) -> int:
    response = await client.post(
        "/api/v1/gateway/admit",
        json={"tenant_id": tenant, "message_id": message, "max_tokens": 100},
        headers=headers,
    )
    return response.status_code


async def test_metrics_without_a_token_or_with_a_customer_token_are_401(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers=customer.headers)).status_code == 401
    wrong = {"Authorization": "Bearer not-a-token"}
    response = await client.get("/metrics", headers=wrong)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


async def test_a_service_token_reads_the_metrics(
    client: AsyncTestClient[Any], service_headers: dict[str, str]
) -> None:
    text = await scrape(client, service_headers)
    assert "tierkeeper_http_request_duration_seconds" in text


async def test_the_metrics_token_reads_the_metrics_and_no_other_token_is_it(
    services: Services, environ: dict[str, str]
) -> None:
    settings = Settings.from_environ({**environ, "TIERKEEPER_METRICS_TOKEN": METRICS_TOKEN})
    scraper = attrs.evolve(services, settings=settings)
    async with AsyncTestClient(create_app(scraper)) as client:
        ok = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        near = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}x"})
    assert ok.status_code == 200
    assert near.status_code == 401


async def test_admissions_and_refusals_move_by_outcome_and_code(
    client: AsyncTestClient[Any], services: Services, service_headers: dict[str, str]
) -> None:
    active = await sign_up(client)
    await make_active(services, active.tenant_id)
    unpaid = await sign_up(client)
    before = await scrape(client, service_headers)

    assert await admit(client, service_headers, active.tenant_id, "m-1") == 200
    assert await admit(client, service_headers, active.tenant_id, "m-2") == 200
    assert await admit(client, service_headers, active.tenant_id, "m-1") == 200  # replayed
    assert await admit(client, service_headers, unpaid.tenant_id, "m-3") == 402
    assert await admit(client, service_headers, "t-nobody", "m-4") in (404, 409, 402, 429)

    after = await scrape(client, service_headers)
    name = "tierkeeper_admissions_total"
    assert (
        value(after, name, outcome="admitted", reason="")
        - value(before, name, outcome="admitted", reason="")
        == 2
    )
    assert value(after, name, outcome="replayed", reason="") == 1
    assert value(after, name, outcome="refused", reason="subscription_inactive") == 1
    assert value(after, name, outcome="refused", reason="tenant_unknown") == 1


async def test_the_cap_refusal_is_counted_under_its_code(
    client: AsyncTestClient[Any], services: Services, service_headers: dict[str, str]
) -> None:
    tenant = await sign_up(client)
    await make_active(services, tenant.tenant_id)
    cap = services.catalog.tier("starter").messages_per_day
    for index in range(cap):
        assert await admit(client, service_headers, tenant.tenant_id, f"c-{index}") == 200
    assert await admit(client, service_headers, tenant.tenant_id, "c-over") == 429
    text = await scrape(client, service_headers)
    assert value(text, "tierkeeper_admissions_total", outcome="admitted", reason="") == cap
    assert (
        value(text, "tierkeeper_admissions_total", outcome="refused", reason="message_cap_reached")
        == 1
    )


async def test_settlements_count_settled_and_replayed(
    client: AsyncTestClient[Any], services: Services, service_headers: dict[str, str]
) -> None:
    tenant = await sign_up(client)
    await make_active(services, tenant.tenant_id)
    assert await admit(client, service_headers, tenant.tenant_id, "s-1") == 200
    body = {
        "tenant_id": tenant.tenant_id,
        "message_id": "s-1",
        "model": "moonshot/kimi-k2.5",
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_tokens": 0,
        "credential": "platform",
    }
    for _ in range(2):
        response = await client.post("/api/v1/gateway/settle", json=body, headers=service_headers)
        assert response.status_code == 200, response.text
    text = await scrape(client, service_headers)
    assert value(text, "tierkeeper_settlements_total", outcome="settled") == 1
    assert value(text, "tierkeeper_settlements_total", outcome="replayed") == 1


def test_a_settle_anomaly_the_controller_records_is_counted_by_kind() -> None:
    """The limits work records anomalies in the request state; the metrics count them."""
    metrics = Metrics.create()
    metrics.observe_request(SETTLE_ROUTE, "POST", 200, 0.01, {"settlement": "settled"})
    metrics.observe_request(
        SETTLE_ROUTE, "POST", 200, 0.01, {"settlement": "settled", "settle_anomaly": "no_admission"}
    )
    text = generate_latest(metrics.registry).decode()
    assert value(text, "tierkeeper_settle_anomalies_total", kind="no_admission") == 1
    assert value(text, "tierkeeper_settlements_total", outcome="settled") == 2


async def test_latency_is_a_histogram_by_route_template_method_and_status(
    client: AsyncTestClient[Any], service_headers: dict[str, str]
) -> None:
    for _ in range(3):
        assert (await client.get("/api/v1/tiers")).status_code == 200
    assert (await client.get("/api/v1/gateway/tenants/t-none/config", headers=service_headers)
            ).status_code == 404  # fmt: skip
    assert (await client.get("/no/such/page")).status_code == 404
    text = await scrape(client, service_headers)
    name = "tierkeeper_http_request_duration_seconds_count"
    assert value(text, name, route="/api/v1/tiers", method="GET", status="200") == 3
    config = "/api/v1/gateway/tenants/{tenant_id}/config"
    assert value(text, name, route=config, method="GET", status="404") == 1
    assert value(text, name, route="unmatched", method="GET", status="404") == 1


async def test_key_failures_reported_by_the_gateway_are_counted(
    client: AsyncTestClient[Any],
    services: Services,
    service_headers: dict[str, str],
    customer: Customer,
) -> None:
    await make_active(services, customer.tenant_id, "byok")
    saved = await client.put(
        "/api/v1/settings/llm-config/",
        json={"provider": "openai", "api_key": key_for("openai"), "model_preference": "gpt-4.1"},
        headers=customer.headers,
    )
    assert saved.status_code == 200, saved.text
    reported = await client.post(
        "/api/v1/gateway/key-failure",
        json={"tenant_id": customer.tenant_id, "provider": "openai", "status_code": 401},
        headers=service_headers,
    )
    assert reported.status_code == 200, reported.text
    text = await scrape(client, service_headers)
    assert value(text, "tierkeeper_key_failures_total", kind="provider_rejected") == 1


async def test_webhook_outcomes_are_counted(
    client: AsyncTestClient[Any], service_headers: dict[str, str]
) -> None:
    payload = stripe_event("evt_metrics_1", "customer.created", {"id": "cus_x"})
    json_type = {"Content-Type": "application/json"}
    good = await client.post(
        "/api/v1/billing/webhook",
        content=payload,
        headers={"Stripe-Signature": stripe_signature(payload), **json_type},
    )
    bad = await client.post(
        "/api/v1/billing/webhook",
        content=payload,
        headers={"Stripe-Signature": stripe_signature(payload, secret="whsec_wrong"), **json_type},
    )
    assert good.status_code == 200
    assert bad.status_code == 400
    text = await scrape(client, service_headers)
    assert value(text, "tierkeeper_webhook_events_total", outcome="ignored") == 1
    assert value(text, "tierkeeper_webhook_events_total", outcome="invalid_signature") == 1


async def test_the_database_pool_is_reported(
    client: AsyncTestClient[Any], service_headers: dict[str, str]
) -> None:
    text = await scrape(client, service_headers)
    assert value(text, "tierkeeper_db_pool_connections", pool="sqlalchemy", state="max") > 0


async def test_a_scrape_hook_sets_a_gauge_before_every_answer(
    services: Services, service_headers: dict[str, str]
) -> None:
    """How the notification outbox reports its backlog: a hook run at scrape time."""
    app = create_app(services)

    hooked = 3

    async def backlog(_services: Any, metrics: Any) -> None:
        metrics.outbox_backlog.set(hooked)

    app.state.metrics.scrape_hooks.append(backlog)
    async with AsyncTestClient(app) as client:
        text = await scrape(client, service_headers)
    assert value(text, "tierkeeper_outbox_backlog") == hooked


def test_a_method_no_route_knows_is_labelled_other_so_clients_cannot_make_series() -> None:
    metrics = Metrics.create()
    for method in ("FOO", "BAR", "GET"):
        metrics.observe_request(UNMATCHED_ROUTE, method, 404, 0.001, {})
    text = generate_latest(metrics.registry).decode()
    name = "tierkeeper_http_request_duration_seconds_count"
    assert value(text, name, route=UNMATCHED_ROUTE, method="other", status="404") == 2
    assert value(text, name, route=UNMATCHED_ROUTE, method="GET", status="404") == 1
    assert "FOO" not in text
