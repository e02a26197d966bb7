"""Signup, login, logout; bearer tokens vs the session cookie and CSRF; service vs customer."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from domain.use_cases.accounts import hash_token
from entrypoints.bootstrap import Services
from entrypoints.http.auth import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, csrf_token_for
from tests.http.conftest import PASSWORD, Customer, sign_up

pytestmark = pytest.mark.http


async def test_signup_creates_an_incomplete_starter_tenant_and_answers_a_token(
    client: AsyncTestClient[Any], services: Services
) -> None:
    response = await client.post(
        "/api/v1/auth/signup",
        json={"email": "Ada@Example.com ", "password": PASSWORD, "timezone": "Europe/Berlin"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["user"]["email"] == "ada@example.com"
    assert body["tenant"]["tier"] == "starter"
    assert body["tenant"]["status"] == "incomplete"
    assert body["token"]
    tenant = await services.tenants.get(body["tenant"]["id"])
    assert tenant.timezone == "Europe/Berlin"


async def test_signup_sets_an_http_only_session_cookie_and_a_readable_csrf_cookie(
    client: AsyncTestClient[Any],
) -> None:
    response = await client.post(
        "/api/v1/auth/signup", json={"email": "cookie@example.com", "password": PASSWORD}
    )
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith(SESSION_COOKIE + "="))
    csrf = next(c for c in cookies if c.startswith(CSRF_COOKIE + "="))
    assert "HttpOnly" in session and "SameSite=lax" in session
    assert "HttpOnly" not in csrf


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "short@example.com", "password": "123456789"}, "password"),
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "tz@example.com", "password": PASSWORD, "timezone": "Mars/Olympus"}, "timezone"),
        ({"email": "x@example.com"}, "password"),
        ({"email": 5, "password": PASSWORD}, "email"),
    ],
)
async def test_signup_refuses_bad_input_naming_the_field(
    client: AsyncTestClient[Any], body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/v1/auth/signup", json=body)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert response.json()["field"] == field


async def test_signing_up_twice_with_one_email_is_a_conflict(client: AsyncTestClient[Any]) -> None:
    await sign_up(client, "twice@example.com")
    response = await client.post(
        "/api/v1/auth/signup", json={"email": "TWICE@example.com", "password": PASSWORD}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


async def test_login_answers_a_working_token(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"email": customer.email, "password": PASSWORD}
    )
    assert response.status_code == 200
    token = response.json()["token"]
    client.cookies.clear()
    me = await client.get("/api/v1/tenant", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["id"] == customer.tenant_id


@pytest.mark.parametrize("email_known", [True, False])
async def test_login_with_a_wrong_password_or_unknown_email_is_unauthorized(
    client: AsyncTestClient[Any], customer: Customer, email_known: bool
) -> None:
    email = customer.email if email_known else "nobody@example.com"
    response = await client.post(
        "/api/v1/auth/login", json={"email": email, "password": "wrong password!"}
    )
    assert response.status_code == 401
    assert response.json() == {"code": "unauthorized", "detail": "email or password is wrong"}


async def test_tokens_and_passwords_are_stored_only_as_hashes(
    client: AsyncTestClient[Any], customer: Customer, environ: dict[str, str]
) -> None:
    path = environ["TIERKEEPER_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        dump = "\n".join(db.iterdump())
    assert customer.token not in dump
    assert hash_token(customer.token) in dump
    assert PASSWORD not in dump


async def test_logout_revokes_the_bearer_token(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    response = await client.post("/api/v1/auth/logout", headers=customer.headers)
    assert response.status_code == 204
    after = await client.get("/api/v1/tenant", headers=customer.headers)
    assert after.status_code == 401
    assert after.json()["code"] == "unauthorized"


async def test_the_session_cookie_authenticates_reads_without_csrf(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    client.cookies.set(SESSION_COOKIE, customer.token)
    response = await client.get("/api/v1/tenant")
    assert response.status_code == 200
    assert response.json()["id"] == customer.tenant_id


async def test_a_cookie_authenticated_unsafe_request_needs_the_csrf_token(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    client.cookies.set(SESSION_COOKIE, customer.token)
    refused = await client.patch("/api/v1/tenant", json={"timezone": "Asia/Tokyo"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    wrong = await client.patch(
        "/api/v1/tenant", json={"timezone": "Asia/Tokyo"}, headers={CSRF_HEADER: "0" * 64}
    )
    assert wrong.status_code == 403
    accepted = await client.patch(
        "/api/v1/tenant",
        json={"timezone": "Asia/Tokyo"},
        headers={CSRF_HEADER: csrf_token_for(customer.token)},
    )
    assert accepted.status_code == 200
    assert accepted.json()["pending_timezone"]["timezone"] == "Asia/Tokyo"


async def test_logout_by_cookie_revokes_the_session_and_clears_the_cookie(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    client.cookies.set(SESSION_COOKIE, customer.token)
    response = await client.post(
        "/api/v1/auth/logout", headers={CSRF_HEADER: csrf_token_for(customer.token)}
    )
    assert response.status_code == 204
    assert any(
        c.startswith(f"{SESSION_COOKIE}=") and "Max-Age=0" in c
        for c in response.headers.get_list("set-cookie")
    ) or any(c.startswith(f'{SESSION_COOKIE}=""') for c in response.headers.get_list("set-cookie"))
    client.cookies.clear()
    assert (await client.get("/api/v1/tenant", headers=customer.headers)).status_code == 401


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwYXNz"}],
)
async def test_customer_endpoints_without_valid_credentials_are_unauthorized(
    client: AsyncTestClient[Any], headers: dict[str, str]
) -> None:
    response = await client.get("/api/v1/tenant", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_service_token_on_a_customer_endpoint_is_forbidden(
    client: AsyncTestClient[Any], service_headers: dict[str, str]
) -> None:
    for method, path in [
        ("GET", "/api/v1/tenant"),
        ("GET", "/api/v1/usage"),
        ("GET", "/api/v1/settings/llm-config/"),
        ("POST", "/api/v1/auth/logout"),
    ]:
        response = await client.request(method, path, headers=service_headers)
        assert response.status_code == 403, path
        assert response.json()["code"] == "forbidden"


async def test_a_customer_token_on_a_gateway_endpoint_is_forbidden(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    admit = await client.post(
        "/api/v1/gateway/admit",
        json={"tenant_id": customer.tenant_id, "message_id": "m1"},
        headers=customer.headers,
    )
    assert admit.status_code == 403
    assert admit.json()["code"] == "forbidden"
    config = await client.get(
        f"/api/v1/gateway/tenants/{customer.tenant_id}/config", headers=customer.headers
    )
    assert config.status_code == 403


async def test_gateway_endpoints_without_a_token_are_unauthorized(
    client: AsyncTestClient[Any],
) -> None:
    response = await client.post(
        "/api/v1/gateway/admit", json={"tenant_id": "t", "message_id": "m"}
    )
    assert response.status_code == 401
