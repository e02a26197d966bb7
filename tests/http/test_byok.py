"""BYOK settings over HTTP: stored encrypted, read masked, scoped to the caller's tenant."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from entrypoints.bootstrap import Services
from tests.http.conftest import Customer, key_for, make_active, sign_up

pytestmark = pytest.mark.http

PATH = "/api/v1/settings/llm-config/"
FIELDS = {
    "provider",
    "model_preference",
    "api_key_masked",
    "status",
    "last_verified_at",
    "last_error",
    "allow_platform_fallback",
    "created_at",
    "updated_at",
}


async def put_key(
    client: AsyncTestClient[Any], customer: Customer, provider: str = "openai", **body: Any
) -> Any:
    payload = {"provider": provider, "model_preference": "gpt-4o", **body}
    if "api_key" not in body:
        payload["api_key"] = key_for(provider)
    return await client.put(PATH, json=payload, headers=customer.headers)


async def test_get_without_a_stored_key_is_not_found(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    response = await client.get(PATH, headers=customer.headers)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_put_stores_the_key_and_every_read_masks_it(
    client: AsyncTestClient[Any], customer: Customer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = key_for("anthropic")
    put = await put_key(
        client, customer, "anthropic", api_key=key, model_preference="claude-sonnet-4-6"
    )
    assert put.status_code == 200, put.text
    got = await client.get(PATH, headers=customer.headers)
    assert got.status_code == 200
    body = got.json()
    assert set(body) == FIELDS
    assert body["provider"] == "anthropic"
    assert body["status"] == "unverified"
    assert body["allow_platform_fallback"] is True
    assert body["api_key_masked"] == f"sk-ant-…{key[-4:]}"
    assert put.json() == body
    for response in (put, got):
        assert key not in response.text
    assert key not in caplog.text


async def test_put_without_api_key_keeps_the_stored_key(
    client: AsyncTestClient[Any], customer: Customer, services: Services
) -> None:
    await put_key(client, customer)
    before = await services.ports.credentials.get(customer.tenant_id)
    response = await client.put(
        PATH,
        json={
            "provider": "openai",
            "model_preference": "gpt-4.1",
            "allow_platform_fallback": False,
        },
        headers=customer.headers,
    )
    assert response.status_code == 200
    assert response.json()["model_preference"] == "gpt-4.1"
    assert response.json()["allow_platform_fallback"] is False
    after = await services.ports.credentials.get(customer.tenant_id)
    assert before is not None and after is not None
    assert after.ciphertext == before.ciphertext
    assert after.key_mask == before.key_mask


@pytest.mark.parametrize("stored", [None, "groq"])
async def test_put_without_api_key_is_refused_when_no_key_of_that_provider_is_stored(
    client: AsyncTestClient[Any], customer: Customer, stored: str | None
) -> None:
    if stored:
        await put_key(client, customer, stored, model_preference="openai/gpt-oss-20b")
    response = await client.put(
        PATH, json={"provider": "openai", "model_preference": "gpt-4o"}, headers=customer.headers
    )
    assert response.status_code == 422
    assert response.json()["field"] == "api_key"


def body_with(**fields: Any) -> dict[str, Any]:
    base = {"provider": "openai", "model_preference": "gpt-4o", "api_key": "sk-abc123456"}
    return {k: v for k, v in {**base, **fields}.items() if v is not None}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (body_with(provider="mistral"), "provider"),
        (body_with(model_preference="gpt-99"), "model_preference"),
        (body_with(api_key="gsk_wrongshape1"), "api_key"),
        (body_with(api_key="sk-has space"), "api_key"),
        (body_with(api_key="sk-" + "a" * 600), "api_key"),
        (body_with(api_key=""), "api_key"),
        ({"model_preference": "gpt-4o", "api_key": "sk-abc123456"}, "provider"),
        (body_with(api_key=None, allow_platform_fallback="yes"), "allow_platform_fallback"),
    ],
)
async def test_put_refuses_bad_input_naming_the_field_and_never_echoing_the_key(
    client: AsyncTestClient[Any], customer: Customer, body: dict[str, Any], field: str
) -> None:
    response = await client.put(PATH, json=body, headers=customer.headers)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert response.json()["field"] == field
    if body.get("api_key"):
        assert body["api_key"] not in response.text


async def test_openrouter_accepts_any_vendor_model(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    response = await put_key(
        client, customer, "openrouter", model_preference="mistralai/mistral-large"
    )
    assert response.status_code == 200
    assert response.json()["model_preference"] == "mistralai/mistral-large"


async def test_delete_forgets_the_key(client: AsyncTestClient[Any], customer: Customer) -> None:
    await put_key(client, customer)
    deleted = await client.delete(PATH, headers=customer.headers)
    assert deleted.status_code == 204
    assert (await client.get(PATH, headers=customer.headers)).status_code == 404
    again = await client.delete(PATH, headers=customer.headers)
    assert again.status_code == 404


async def test_a_customer_never_sees_or_changes_another_tenants_credential(
    client: AsyncTestClient[Any], services: Services
) -> None:
    alice = await sign_up(client)
    mallory = await sign_up(client)
    await put_key(client, alice)
    assert (await client.get(PATH, headers=mallory.headers)).status_code == 404
    assert (await client.delete(PATH, headers=mallory.headers)).status_code == 404
    tested = await client.post(f"{PATH}test", json={}, headers=mallory.headers)
    assert tested.status_code == 404
    await put_key(client, mallory, "groq", model_preference="openai/gpt-oss-20b")
    alices = await client.get(PATH, headers=alice.headers)
    assert alices.status_code == 200
    assert alices.json()["provider"] == "openai"
    stored = await services.ports.credentials.get(alice.tenant_id)
    assert stored is not None and stored.user_id == alice.user_id


async def test_a_byok_tenants_config_uses_its_key_only_by_reference(
    client: AsyncTestClient[Any],
    customer: Customer,
    services: Services,
    service_headers: dict[str, str],
    environ: dict[str, str],
) -> None:
    await make_active(services, customer.tenant_id, "byok")
    await put_key(client, customer)
    config = await client.get(
        f"/api/v1/gateway/tenants/{customer.tenant_id}/config", headers=service_headers
    )
    assert config.status_code == 200
    assert key_for("openai") not in config.text
    primary = config.json()["openclaw"]["agents"]["defaults"]["model"]["primary"]
    assert primary.endswith("/gpt-4o")
    files = list(Path(environ["TIERKEEPER_CONFIG_ROOT"]).rglob("*"))  # noqa: ASYNC240
    env_files = [f for f in files if f.name == ".env"]
    assert env_files and key_for("openai") in env_files[0].read_text()
    assert all(
        key_for("openai") not in f.read_text() for f in files if f.is_file() and f.name != ".env"
    )
