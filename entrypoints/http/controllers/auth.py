"""Signup, login and logout of customers."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, post
from litestar.di import Provide
from litestar.params import JSONBody

from domain.secrets import Secret
from entrypoints.http.auth import (
    CLEARED_SESSION_COOKIES,
    CUSTOMER_SECURITY,
    CustomerDep,
    ServicesDep,
    provide_customer,
    set_session,
)
from entrypoints.http.openapi import errors
from entrypoints.http.schemas import LoginIn, SignupIn, SignupOut, TenantBrief, TokenOut, UserOut


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ("auth",)

    @post("/signup", status_code=201, responses=errors(409, 422), security=[])
    async def signup(
        self, request: Request[Any, Any, Any], data: JSONBody[SignupIn], services: ServicesDep
    ) -> Response[SignupOut]:
        """Create a tenant (starter tier, status incomplete until paid) and its first user;
        answers a customer token and sets the session cookie."""
        signed = await services.accounts.signup(data.email, Secret(data.password), data.timezone)
        request.state.tenant_id = signed.tenant.id
        body = SignupOut(
            user=UserOut(id=signed.user.id, email=signed.user.email),
            tenant=TenantBrief(
                id=signed.tenant.id, tier=signed.tenant.tier, status=signed.tenant.status.value
            ),
            token=signed.token.reveal(),
        )
        response = Response(body, status_code=201)
        set_session(response, signed.token, services)
        return response

    @post("/login", status_code=200, responses=errors(401, 422), security=[])
    async def login(
        self, request: Request[Any, Any, Any], data: JSONBody[LoginIn], services: ServicesDep
    ) -> Response[TokenOut]:
        """A fresh customer token for the right email and password; sets the session cookie."""
        user, token = await services.accounts.login(data.email, Secret(data.password))
        request.state.tenant_id = user.tenant_id
        response = Response(TokenOut(token=token.reveal()), status_code=200)
        set_session(response, token, services)
        return response

    @post(
        "/logout",
        status_code=204,
        dependencies={"customer": Provide(provide_customer)},
        responses=errors(401, 403),
        security=CUSTOMER_SECURITY,
        response_cookies=CLEARED_SESSION_COOKIES,
    )
    async def logout(self, customer: CustomerDep, services: ServicesDep) -> None:
        """Revokes the token or session used, and clears the session cookie."""
        await services.accounts.logout(customer)
