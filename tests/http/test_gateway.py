"""The gateway's endpoints: admission with refusals, settlement, key failures, configs."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from entrypoints.bootstrap import Services
from tests.http.conftest import Customer, key_for, make_active, sign_up

pytestmark = pytest.mark.http


async def admit(
    client: AsyncTestClient[Any],
    headers: dict[str, str],
    tenant_id: str,
    message_id: str,
    **kw: Any,
) -> Any:
    return await client.post(
        "/api/v1/gateway/admit",
        json={"tenant_id": tenant_id, "message_id": message_id, **kw},
        headers=headers,
    )


async def tier(client: AsyncTestClient[Any], tier_id: str) -> dict[str, Any]:
    tiers = (await client.get("/api/v1/tiers")).json()
    return next(t for t in tiers if t["id"] == tier_id)


async def test_admit_answers_the_route_and_what_remains(
    client: AsyncTestClient[Any],
    customer: Customer,
    services: Services,
    service_headers: dict[str, str],
) -> None:
    await make_active(services, customer.tenant_id)
    starter = await tier(client, "starter")
    response = await admit(client, service_headers, customer.tenant_id, "msg-1", max_tokens=1000)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["admitted"] is True
    assert body["reservation_id"]
    assert body["model"] == {
        "primary": starter["primary_model"],
        "fallbacks": starter["fallback_models"],
    }
    assert body["remaining"] == {
        "messages_today": starter["message_cap_per_day"] - 1,
        "tokens_in_period": starter["token_budget_per_period"] - 1000,
    }


async def test_repeating_a_message_id_returns_the_first_answer_and_counts_once(
    client: AsyncTestClient[Any],
    customer: Customer,
    services: Services,
    service_headers: dict[str, str],
) -> None:
    await make_active(services, customer.tenant_id)
    first = await admit(client, service_headers, customer.tenant_id, "same")
    again = await admit(client, service_headers, customer.tenant_id, "same")
    assert again.status_code == 200
    assert again.json()["reservation_id"] == first.json()["reservation_id"]
    usage = (await client.get("/api/v1/usage", headers=customer.headers)).json()
    assert usage["day"]["messages_used"] == 1


async def test_the_message_cap_refuses_with_429_and_when_it_resets(
    client: AsyncTestClient[Any],
    customer: Customer,
    services: Services,
    service_headers: dict[str, str],
) -> None:
    await make_active(services, customer.tenant_id)
    cap = (await tier(client, "starter"))["message_cap_per_day"]
    for index in range(cap):
        ok = await admit(client, service_headers, customer.tenant_id, f"m{index}", max_tokens=1)
        assert ok.status_code == 200
    refused = await admit(client, service_headers, customer.tenant_id, "one-too-many")
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "message_cap_reached"
    assert datetime.fromisoformat(body["resets_at"]) > datetime.fromisoformat(
        (await client.get("/api/v1/usage", headers=customer.headers)).json()["period"]["starts_at"]
    )
    assert int(refused.headers["retry-after"]) >= 0
    usage = (await client.get("/api/v1/usage", headers=customer.headers)).json()
    assert usage["day"]["messages_used"] == cap


async def test_a_reservation_beyond_the_budget_is_refused(
    client: AsyncTestClient[Any],
    customer: Customer,
    services: Services,
    service_headers: dict[str, str],
) -> None:
    await make_active(services, customer.tenant_id)
    budget = (await tier(client, "starter"))["token_budget_per_period"]
    response = await admit(
        client, service_headers, customer.tenant_id, "big", max_tokens=budget + 1
    )
    assert response.status_code == 429
    assert response.json()["code"] == "token_budget_exhausted"
    assert response.json()["resets_at"]


async def test_an_unpaid_tenant_is_refused_with_402(
    client: AsyncTestClient[Any], customer: Customer, service_headers: dict[str, str]
) -> None:
    response = await admit(client, service_headers, customer.tenant_id, "m")
    assert response.status_code == 402
    assert response.json()["code"] == "subscription_inactive"


async def test_an_unknown_tenant_is_404_tenant_unknown(
    client: AsyncTestClient[Any], service_headers: dict[str, str]
) -> None:
    for response in (
        await admit(client, service_headers, "t_nobody", "m"),
        await client.post(
            "/api/v1/gateway/key-failure",
            json={"tenant_id": "t_nobody", "provider": "openai", "status_code": 401},
            headers=service_headers,
        ),
        await client.get("/api/v1/gateway/tenants/t_nobody/config", headers=service_headers),
        await client.post(
            "/api/v1/gateway/settle",
            json={
                "tenant_id": "t_nobody",
                "message_id": "m",
                "model": "moonshot/kimi-k2.5",
                "input_tokens": 1,
                "output_tokens": 1,
                "credential": "platform",
            },
            headers=service_headers,
        ),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "tenant_unknown"


async def test_a_byok_tenant_with_an_invalid_key_and_no_fallback_is_refused(
    client: AsyncTestClient[Any],
    customer: Customer,
    services: Services,
    service_headers: dict[str, str],
) -> None:
    await make_active(services, customer.tenant_id, "byok")
    await client.put(
        "/api/v1/settings/llm-config/",
        json={
            "provider": "openai",
            "api_key": key_for("openai"),
            "model_preference": "gpt-4o",
            "allow_platform_fallback": False,
        },
        headers=customer.headers,
    )
    failed = await client.post(
        "/api/v1/gateway/key-failure",
        json={"tenant_id": customer.tenant_id, "provider": "openai", "status_code": 401},
        headers=service_headers,
    )
    assert failed.json() == {"status": "invalid"}
    response = await admit(client, service_headers, customer.tenant_id, "m")
    assert response.status_code == 429
    assert response.json()["code"] == "byok_key_invalid"


async def test_settle_is_idempotent_and_counts_platform_tokens_against_the_budget(
    client: AsyncTestClient[Any],
    customer: Customer,
    services: Services,
    service_headers: dict[str, str],
) -> None:
    await make_active(services, customer.tenant_id)
    await admit(client, service_headers, customer.tenant_id, "s1", max_tokens=500)
    settle = {
        "tenant_id": customer.tenant_id,
        "message_id": "s1",
        "model": (await tier(client, "starter"))["primary_model"],
        "input_tokens": 100,
        "output_tokens": 50,
        "cache_read_tokens": 10,
        "credential": "platform",
    }
    for _ in range(2):
        response = await client.post("/api/v1/gateway/settle", json=settle, headers=service_headers)
        assert response.status_code == 200
        assert response.json() == {"settled": True, "counted_as": "platform", "anomaly": None}
    usage = (await client.get("/api/v1/usage", headers=customer.headers)).json()
    assert usage["period"]["tokens_used"] == 160
    assert usage["day"]["messages_used"] == 1
    assert usage["platform_fallback"] is None


async def test_settling_an_unknown_message_id_settles_without_a_reservation(
    client: AsyncTestClient[Any],
    customer: Customer,
    services: Services,
    service_headers: dict[str, str],
) -> None:
    await make_active(services, customer.tenant_id)
    response = await client.post(
        "/api/v1/gateway/settle",
        json={
            "tenant_id": customer.tenant_id, "message_id": "never-admitted",
            "model": "vendor/unknown-model", "input_tokens": 7, "output_tokens": 3,
            "credential": "platform",
        },
        headers=service_headers,
    )  # fmt: skip
    assert response.status_code == 200
    usage = (await client.get("/api/v1/usage", headers=customer.headers)).json()
    assert usage["period"]["tokens_used"] == 10


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input_tokens": -1}, "input_tokens"),
        ({"credential": "someone"}, "credential"),
        ({"message_id": ""}, "message_id"),
        ({"output_tokens": "many"}, "output_tokens"),
    ],
)
async def test_settle_refuses_bad_input_naming_the_field(
    client: AsyncTestClient[Any],
    customer: Customer,
    service_headers: dict[str, str],
    body: dict[str, Any],
    field: str,
) -> None:
    payload = {
        "tenant_id": customer.tenant_id, "message_id": "m", "model": "moonshot/kimi-k2.5",
        "input_tokens": 1, "output_tokens": 1, "credential": "platform", **body,
    }  # fmt: skip
    response = await client.post("/api/v1/gateway/settle", json=payload, headers=service_headers)
    assert response.status_code == 422
    assert response.json()["field"] == field


async def test_byok_usage_separates_own_key_and_platform_fallback_tokens(
    client: AsyncTestClient[Any],
    customer: Customer,
    services: Services,
    service_headers: dict[str, str],
) -> None:
    await make_active(services, customer.tenant_id, "byok")
    await client.put(
        "/api/v1/settings/llm-config/",
        json={"provider": "openai", "api_key": key_for("openai"), "model_preference": "gpt-4.1"},
        headers=customer.headers,
    )
    for message_id, credential, tokens in (("own", "tenant", 40), ("fb", "platform", 2)):
        await admit(client, service_headers, customer.tenant_id, message_id, max_tokens=100)
        await client.post(
            "/api/v1/gateway/settle",
            json={
                "tenant_id": customer.tenant_id, "message_id": message_id,
                "model": "moonshot/kimi-k2.5", "input_tokens": tokens, "output_tokens": 0,
                "credential": credential,
            },
            headers=service_headers,
        )  # fmt: skip
    usage = (await client.get("/api/v1/usage", headers=customer.headers)).json()
    starter = await tier(client, "starter")
    assert usage["period"]["tokens_used"] == 40
    assert usage["period"]["token_budget"] is None
    assert usage["platform_fallback"] == {
        "tokens_used": 2,
        "tokens_reserved": 0,
        "token_budget": starter["token_budget_per_period"],
    }


async def test_a_key_failure_invalidates_the_key_and_regenerates_the_config_on_the_starter_model(
    client: AsyncTestClient[Any],
    customer: Customer,
    services: Services,
    service_headers: dict[str, str],
    environ: dict[str, str],
) -> None:
    await make_active(services, customer.tenant_id, "byok")
    await client.put(
        "/api/v1/settings/llm-config/",
        json={"provider": "anthropic", "api_key": key_for("anthropic"),
              "model_preference": "claude-sonnet-4-6"},
        headers=customer.headers,
    )  # fmt: skip
    config_file = Path(environ["TIERKEEPER_CONFIG_ROOT"]) / customer.tenant_id / "openclaw.json"
    before = json.loads(config_file.read_text())
    assert before["agents"]["defaults"]["model"]["primary"].endswith("/claude-sonnet-4-6")

    ignored = await client.post(
        "/api/v1/gateway/key-failure",
        json={"tenant_id": customer.tenant_id, "provider": "anthropic", "status_code": 500},
        headers=service_headers,
    )
    assert ignored.json() == {"status": "unverified"}

    failed = await client.post(
        "/api/v1/gateway/key-failure",
        json={"tenant_id": customer.tenant_id, "provider": "anthropic", "status_code": 403},
        headers=service_headers,
    )
    assert failed.status_code == 200
    assert failed.json() == {"status": "invalid"}
    starter = await tier(client, "starter")
    after = json.loads(config_file.read_text())
    assert after["agents"]["defaults"]["model"]["primary"] == starter["primary_model"]
    assert (
        not (config_file.parent / ".env").exists()
        or key_for("anthropic") not in (config_file.parent / ".env").read_text()
    )
    fetched = await client.get(
        f"/api/v1/gateway/tenants/{customer.tenant_id}/config", headers=service_headers
    )
    assert (
        fetched.json()["openclaw"]["agents"]["defaults"]["model"]["primary"]
        == (starter["primary_model"])
    )
    stored = (await client.get("/api/v1/settings/llm-config/", headers=customer.headers)).json()
    assert stored["status"] == "invalid"


async def test_a_key_failure_for_a_provider_without_a_stored_key_is_not_found(
    client: AsyncTestClient[Any], customer: Customer, service_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/api/v1/gateway/key-failure",
        json={"tenant_id": customer.tenant_id, "provider": "openai", "status_code": 401},
        headers=service_headers,
    )
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_the_config_names_its_variables_and_digests_its_document(
    client: AsyncTestClient[Any],
    customer: Customer,
    services: Services,
    service_headers: dict[str, str],
) -> None:
    await make_active(services, customer.tenant_id, "premium")
    first = await client.get(
        f"/api/v1/gateway/tenants/{customer.tenant_id}/config/", headers=service_headers
    )
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"openclaw", "env_names", "generated_at", "digest"}
    assert "ANTHROPIC_API_KEY" in body["env_names"] or body["env_names"]
    assert body["digest"].startswith("sha256:")
    assert datetime.fromisoformat(body["generated_at"]).tzinfo is not None
    second = await client.get(
        f"/api/v1/gateway/tenants/{customer.tenant_id}/config", headers=service_headers
    )
    assert second.json()["digest"] == body["digest"]
    other = await sign_up(client)
    third = await client.get(
        f"/api/v1/gateway/tenants/{other.tenant_id}/config", headers=service_headers
    )
    assert third.json()["digest"] != body["digest"]


async def test_a_tenant_id_with_unprintable_bytes_is_a_validation_error(
    client: AsyncTestClient[Any], service_headers: dict[str, str]
) -> None:
    response = await client.get("/api/v1/gateway/tenants/t%00x/config", headers=service_headers)
    assert response.status_code == 422
    assert response.json()["field"] == "tenant_id"
