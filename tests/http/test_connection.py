"""Test connection: the httpx probe against a local stub of each provider's models endpoint."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.http.conftest import PROBE_TIMEOUT_S, Customer, key_for
from tests.support.provider_stub import ProviderStub

pytestmark = pytest.mark.http

TEST_PATH = "/api/v1/settings/llm-config/test"
MODELS = {
    "openai": "gpt-4o",
    "anthropic": "claude-sonnet-4-6",
    "groq": "openai/gpt-oss-120b",
    "google": "gemini-2.5-pro",
    "openrouter": "openai/gpt-4o",
}


async def probe(
    client: AsyncTestClient[Any], customer: Customer, provider: str, marker: str = ""
) -> Any:
    return await client.post(
        TEST_PATH,
        json={"provider": provider, "api_key": key_for(provider, marker)},
        headers=customer.headers,
    )


@pytest.mark.parametrize("provider", ["openai", "anthropic", "google", "openrouter"])
async def test_a_good_key_is_valid_at_every_provider(
    client: AsyncTestClient[Any], customer: Customer, provider_stub: ProviderStub, provider: str
) -> None:
    response = await probe(client, customer, provider)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["result"] == "valid"
    assert isinstance(body["latency_ms"], int) and body["latency_ms"] >= 0
    assert set(body) == {"result", "detail", "latency_ms"}


@pytest.mark.parametrize(
    ("marker", "result"),
    [
        ("unauthorized", "invalid_key"),
        ("forbidden", "invalid_key"),
        ("ratelimited", "rate_limited"),
        ("broken", "unreachable"),
    ],
)
async def test_provider_answers_are_classified(
    client: AsyncTestClient[Any], customer: Customer, marker: str, result: str
) -> None:
    response = await probe(client, customer, "openai", marker)
    assert response.status_code == 200
    assert response.json()["result"] == result


async def test_a_provider_slower_than_the_timeout_is_unreachable(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    response = await probe(client, customer, "anthropic", "slow")
    body = response.json()
    assert body["result"] == "unreachable"
    assert PROBE_TIMEOUT_S * 1000 * 0.8 <= body["latency_ms"] < PROBE_TIMEOUT_S * 1000 * 3


async def test_a_refused_connection_is_unreachable(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    response = await probe(client, customer, "groq")
    assert response.json()["result"] == "unreachable"


async def test_testing_a_new_key_stores_nothing(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    await probe(client, customer, "openai")
    got = await client.get("/api/v1/settings/llm-config/", headers=customer.headers)
    assert got.status_code == 404


async def test_testing_the_stored_key_updates_its_status(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    await client.put(
        "/api/v1/settings/llm-config/",
        json={"provider": "openai", "api_key": key_for("openai"), "model_preference": "gpt-4o"},
        headers=customer.headers,
    )
    valid = await client.post(TEST_PATH, json={}, headers=customer.headers)
    assert valid.json()["result"] == "valid"
    stored = (await client.get("/api/v1/settings/llm-config/", headers=customer.headers)).json()
    assert stored["status"] == "valid"
    assert stored["last_verified_at"] is not None
    await client.put(
        "/api/v1/settings/llm-config/",
        json={
            "provider": "openai",
            "api_key": key_for("openai", "unauthorized"),
            "model_preference": "gpt-4o",
        },
        headers=customer.headers,
    )
    invalid = await client.post(TEST_PATH, json={"provider": "openai"}, headers=customer.headers)
    assert invalid.json()["result"] == "invalid_key"
    stored = (await client.get("/api/v1/settings/llm-config/", headers=customer.headers)).json()
    assert stored["status"] == "invalid"
    assert stored["last_error"]


async def test_testing_the_stored_key_without_one_is_not_found(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    response = await client.post(TEST_PATH, json={}, headers=customer.headers)
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"api_key": "sk-abcdef123456"}, "provider"),
        ({"provider": "openai", "api_key": "AIzaWrongShape"}, "api_key"),
        (
            {"provider": "openai", "api_key": "sk-abcdef123456", "model_preference": "nope"},
            "model_preference",
        ),
        ({"provider": "nope", "api_key": "sk-abcdef123456"}, "provider"),
    ],
)
async def test_testing_bad_input_names_the_field(
    client: AsyncTestClient[Any], customer: Customer, body: dict[str, str], field: str
) -> None:
    response = await client.post(TEST_PATH, json=body, headers=customer.headers)
    assert response.status_code == 422
    assert response.json()["field"] == field


async def test_the_probe_sends_the_key_only_to_the_provider_and_never_logs_it(
    client: AsyncTestClient[Any],
    customer: Customer,
    provider_stub: ProviderStub,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    before = len(provider_stub.requests)
    response = await probe(client, customer, "anthropic")
    assert response.json()["result"] == "valid"
    assert provider_stub.requests[before:] == [("anthropic", "/v1/models")]
    assert key_for("anthropic") not in caplog.text
    assert key_for("anthropic") not in response.text
