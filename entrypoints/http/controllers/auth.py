"""Signup, login and logout of customers; their sessions; password, email and deletion.

Every response here is ``Cache-Control: no-store``: some carry tokens, none should be kept.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import ResponseHeader
from litestar.di import Provide
from litestar.params import JSONBody, Parameter

from domain.secrets import Secret
from entrypoints.http.account_schemas import (
    AccountDeleteIn,
    EmailChangeIn,
    PasswordChangeIn,
    PasswordResetConfirmIn,
    PasswordResetIn,
    SessionOut,
    VerifyEmailIn,
)
from entrypoints.http.auth import (
    CLEARED_SESSION_COOKIES,
    CUSTOMER_SECURITY,
    NO_STORE,
    CustomerDep,
    ServicesDep,
    client_address,
    provide_customer,
    set_session,
    verify_login_csrf,
)
from entrypoints.http.openapi import errors
from entrypoints.http.schemas import LoginIn, SignupIn, SignupOut, TenantBrief, TokenOut, UserOut

NO_STORE_HEADERS = [ResponseHeader(name=k, value=v) for k, v in NO_STORE.items()]
CUSTOMER = {"customer": Provide(provide_customer)}
SESSION_ID_PATTERN = r"^[0-9a-f]{1,64}$"


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ("auth",)
    response_headers = NO_STORE_HEADERS

    @post("/signup", status_code=201, responses=errors(403, 409, 415, 422, 429), security=[])
    async def signup(
        self, request: Request[Any, Any, Any], data: JSONBody[SignupIn], services: ServicesDep
    ) -> Response[SignupOut]:
        """Create a tenant (starter tier, status incomplete until paid) and its first user;
        answers a customer token and sets the session cookie. A mail asks to verify the
        address."""
        await verify_login_csrf(request, services)
        signed = await services.accounts.signup(
            data.email, Secret(data.password), data.timezone, client_address(request)
        )
        request.state.tenant_id = signed.tenant.id
        body = SignupOut(
            user=UserOut(id=signed.user.id, email=signed.user.email),
            tenant=TenantBrief(
                id=signed.tenant.id, tier=signed.tenant.tier, status=signed.tenant.status.value
            ),
            token=signed.token.reveal(),
        )
        response = Response(body, status_code=201, headers=NO_STORE)
        set_session(response, signed.token, services)
        return response

    @post("/login", status_code=200, responses=errors(401, 403, 415, 422, 429, 503), security=[])
    async def login(
        self, request: Request[Any, Any, Any], data: JSONBody[LoginIn], services: ServicesDep
    ) -> Response[TokenOut]:
        """A fresh customer token for the right email and password; sets the session cookie.
        Repeated failures for one account or from one address are 429 with Retry-After."""
        await verify_login_csrf(request, services)
        user, token = await services.accounts.login(
            data.email, Secret(data.password), client_address(request)
        )
        request.state.tenant_id = user.tenant_id
        response = Response(TokenOut(token=token.reveal()), status_code=200, headers=NO_STORE)
        set_session(response, token, services)
        return response

    @post(
        "/logout",
        status_code=204,
        dependencies=CUSTOMER,
        responses=errors(401, 403),
        security=CUSTOMER_SECURITY,
        response_cookies=CLEARED_SESSION_COOKIES,
    )
    async def logout(self, customer: CustomerDep, services: ServicesDep) -> None:
        """Revokes the token or session used, and clears the session cookie."""
        await services.accounts.logout(customer)

    @post(
        "/logout-all",
        status_code=204,
        dependencies=CUSTOMER,
        responses=errors(401, 403),
        security=CUSTOMER_SECURITY,
        response_cookies=CLEARED_SESSION_COOKIES,
    )
    async def logout_all(self, customer: CustomerDep, services: ServicesDep) -> None:
        """Revokes every session and token of the customer, this one included."""
        await services.accounts.logout_everywhere(customer)

    @get(
        "/sessions",
        dependencies=CUSTOMER,
        responses=errors(401, 403),
        security=CUSTOMER_SECURITY,
    )
    async def sessions(self, customer: CustomerDep, services: ServicesDep) -> list[SessionOut]:
        """The customer's live sessions (tokens), oldest first; ``current`` is this one."""
        return [
            SessionOut(
                id=s.id,
                created_at=s.created_at,
                last_used_at=s.last_used_at,
                expires_at=s.expires_at,
                current=s.current,
            )
            for s in await services.accounts.sessions(customer)
        ]

    @delete(
        "/sessions/{session_id:str}",
        status_code=204,
        dependencies=CUSTOMER,
        responses=errors(401, 403, 404),
        security=CUSTOMER_SECURITY,
    )
    async def revoke_session(
        self,
        session_id: Annotated[str, Parameter(pattern=SESSION_ID_PATTERN)],
        customer: CustomerDep,
        services: ServicesDep,
    ) -> None:
        """Ends one of the customer's sessions; another customer's id is 404."""
        await services.accounts.revoke_session(customer, session_id)

    @post(
        "/password",
        status_code=204,
        dependencies=CUSTOMER,
        responses=errors(401, 403, 422, 429),
        security=CUSTOMER_SECURITY,
    )
    async def change_password(
        self, data: JSONBody[PasswordChangeIn], customer: CustomerDep, services: ServicesDep
    ) -> None:
        """With the current password, sets a new one; every other session ends."""
        await services.account_changes.change_password(
            customer, Secret(data.current_password), Secret(data.new_password)
        )

    @post("/password-reset", status_code=202, responses=errors(403, 422), security=[])
    async def password_reset(self, data: JSONBody[PasswordResetIn], services: ServicesDep) -> None:
        """Always 202; a reset code (single use, 30 minutes) is mailed when the address has
        an account."""
        await services.account_changes.request_password_reset(data.email)

    @post("/password-reset/confirm", status_code=204, responses=errors(422), security=[])
    async def password_reset_confirm(
        self, data: JSONBody[PasswordResetConfirmIn], services: ServicesDep
    ) -> None:
        """Sets the new password with the mailed code, once; every session ends."""
        await services.account_changes.confirm_password_reset(
            Secret(data.token), Secret(data.password)
        )

    @post("/verify-email", status_code=204, responses=errors(409, 422), security=[])
    async def verify_email(self, data: JSONBody[VerifyEmailIn], services: ServicesDep) -> None:
        """Confirms the address a verification code was mailed to (an email change takes
        effect here)."""
        await services.account_changes.verify_email(Secret(data.token))

    @post(
        "/email",
        status_code=202,
        dependencies=CUSTOMER,
        responses=errors(401, 403, 422, 429),
        security=CUSTOMER_SECURITY,
    )
    async def change_email(
        self, data: JSONBody[EmailChangeIn], customer: CustomerDep, services: ServicesDep
    ) -> None:
        """With the password, mails a code to the new address; the change applies when the
        code comes back to ``/verify-email``."""
        await services.account_changes.request_email_change(
            customer, Secret(data.password), data.email
        )


class AccountController(Controller):
    path = "/api/v1/account"
    tags = ("auth",)
    response_headers = NO_STORE_HEADERS

    @delete(
        "/",
        status_code=204,
        dependencies=CUSTOMER,
        responses=errors(401, 403, 422, 429, 502),
        security=CUSTOMER_SECURITY,
        response_cookies=CLEARED_SESSION_COOKIES,
    )
    async def delete_account(
        self, data: JSONBody[AccountDeleteIn], customer: CustomerDep, services: ServicesDep
    ) -> None:
        """With the password: cancels the subscription at once, deletes the key and the
        configs, ends every session and removes the user; billing records stay, without the
        email."""
        await services.account_changes.delete_account(customer, Secret(data.password))
