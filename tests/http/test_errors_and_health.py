"""One error body everywhere; health and readiness; trailing slashes; OpenAPI."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from entrypoints.bootstrap import build_services
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.http.conftest import TEST_PASSWORD_HASHER, Customer, http_environ, key_for
from tests.support.provider_stub import ProviderStub, refused_url

pytestmark = pytest.mark.http

CONTRACT_PATHS = [
    ("get", "/api/v1/tiers"),
    ("get", "/api/v1/providers"),
    ("post", "/api/v1/auth/signup"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/tenant"),
    ("patch", "/api/v1/tenant"),
    ("get", "/api/v1/usage"),
    ("get", "/api/v1/settings/llm-config"),
    ("put", "/api/v1/settings/llm-config"),
    ("delete", "/api/v1/settings/llm-config"),
    ("post", "/api/v1/settings/llm-config/test"),
    ("post", "/api/v1/billing/checkout"),
    ("post", "/api/v1/billing/webhook"),
    ("post", "/api/v1/gateway/admit"),
    ("post", "/api/v1/gateway/settle"),
    ("post", "/api/v1/gateway/key-failure"),
    ("get", "/api/v1/gateway/tenants/{tenant_id}/config"),
    ("get", "/healthz"),
    ("get", "/readyz"),
]


async def test_health_and_readiness(client: AsyncTestClient[Any]) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "key_store": "ok"}


async def test_readiness_names_an_unreachable_key_store(
    tmp_path: Path, sqlite_template: Path, provider_stub: ProviderStub
) -> None:
    environ = http_environ(
        tmp_path,
        sqlite_template,
        provider_stub,
        TIERKEEPER_KEY_STORE="vault",
        TIERKEEPER_VAULT_ADDR=refused_url().rsplit("/", 1)[0],
        TIERKEEPER_VAULT_TOKEN="s.nothing",
    )
    services = await build_services(
        Settings.from_environ(environ), password_hasher=TEST_PASSWORD_HASHER
    )
    try:
        async with AsyncTestClient(create_app(services)) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["code"] == "key_store_unavailable"
            signup = await client.post(
                "/api/v1/auth/signup",
                json={"email": "vault@example.com", "password": "long enough pass"},
            )
            token = signup.json()["token"]
            put = await client.put(
                "/api/v1/settings/llm-config/",
                json={"provider": "openai", "api_key": key_for("openai"),
                      "model_preference": "gpt-4o"},
                headers={"Authorization": f"Bearer {token}"},
            )  # fmt: skip
            assert put.status_code == 503
            assert put.json()["code"] == "key_store_unavailable"
            assert key_for("openai") not in put.text
    finally:
        await services.close()


async def test_readiness_names_an_unreachable_database(
    tmp_path: Path, sqlite_template: Path, provider_stub: ProviderStub
) -> None:
    environ = http_environ(tmp_path, sqlite_template, provider_stub)
    services = await build_services(
        Settings.from_environ(environ), password_hasher=TEST_PASSWORD_HASHER
    )
    database = Path(environ["TIERKEEPER_DATABASE_URL"].removeprefix("sqlite:///"))
    try:
        async with AsyncTestClient(create_app(services)) as client:
            database.unlink()  # noqa: ASYNC240
            database.mkdir()  # noqa: ASYNC240
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["code"] == "database_unavailable"
    finally:
        shutil.rmtree(database)
        await services.close()


async def test_unknown_paths_and_methods_answer_the_error_body(
    client: AsyncTestClient[Any],
) -> None:
    missing = await client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {"code": "not_found", "detail": "no such resource"}
    wrong = await client.delete("/api/v1/tiers")
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"


async def test_a_body_that_is_not_json_is_a_validation_error(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    response = await client.put(
        "/api/v1/settings/llm-config/",
        content=b'{"provider": "openai", "api_key": "sk-',
        headers={**customer.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert response.json()["field"] == "body"
    assert "sk-" not in response.text


@pytest.mark.parametrize("slash", ["", "/"])
async def test_every_contract_path_accepts_a_trailing_slash(
    client: AsyncTestClient[Any], slash: str
) -> None:
    for method, path in CONTRACT_PATHS:
        url = path.replace("{tenant_id}", "t_x").rstrip("/") + slash
        response = await client.request(method.upper(), url)
        assert response.status_code not in (404, 405), (method, url, response.text)


async def test_the_openapi_document_describes_every_contract_path(
    client: AsyncTestClient[Any],
) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    for method, path in CONTRACT_PATHS:
        assert method in document["paths"][path], (method, path)
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer"
    assert "ErrorBody" in document["components"]["schemas"]


async def test_every_request_logs_one_structured_line_with_tenant_and_outcome_never_a_key(
    client: AsyncTestClient[Any], customer: Customer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tierkeeper.http.access")
    key = key_for("openai")
    await client.put(
        "/api/v1/settings/llm-config/",
        json={"provider": "openai", "api_key": key, "model_preference": "gpt-4o"},
        headers=customer.headers,
    )
    await client.get("/api/v1/no-such-thing")
    lines = [
        json.loads(r.getMessage()) for r in caplog.records if r.name == "tierkeeper.http.access"
    ]
    assert [(line["method"], line["status"]) for line in lines] == [("PUT", 200), ("GET", 404)]
    assert lines[0]["tenant_id"] == customer.tenant_id
    assert lines[0]["outcome"] == "ok"
    assert lines[1]["outcome"] == "not_found"
    assert key not in caplog.text
    assert customer.token not in caplog.text
