"""Account pages, all plain HTML forms posted to the server (no script needed): sessions
(end one, log out everywhere), password and email change, account deletion, and for visitors
the forgotten-password, reset and address-verification forms.

Signed-in forms carry the session's CSRF token (``csrf_token``); every POST also passes the
cross-site check (``entrypoints.http.origin_guard``). Answers never put a password or a code
into a URL: a redirect carries only a fixed ``done`` flag.
"""

from __future__ import annotations

from typing import Annotated, Any

import attrs
from litestar import Controller, Request, Response, get, post
from litestar.enums import MediaType
from litestar.params import Parameter
from litestar.response import Redirect

from domain.errors import Conflict, DomainError, TooManyAttempts, Unauthorized, ValidationError
from domain.secrets import Secret
from domain.use_cases.accounts import MIN_PASSWORD_LENGTH, Principal
from entrypoints.http.auth import (
    CLEARED_SESSION_COOKIES,
    CSRF_COOKIE,
    CSRF_FORM_FIELD,
    CSRF_HEADER,
    csrf_token,
    provide_customer,
    services_of,
)
from entrypoints.http.pages.rendering import render

HTML_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'self'"
    ),
}
"""The same headers as every other page: never cached, no framing, scripts of ours only."""

NOTICES = {
    "session": "The session has ended.",
    "verification-sent": "We mailed a new code to your address.",
    "password": "Your password is changed; your other sessions have ended.",
    "email": "We mailed a code to the new address; enter it to finish the change.",
    "reset-asked": "If that address has an account, a code is on its way. It works for 30 minutes.",
    "reset": "Your password is set. Log in with it.",
    "verified": "Your address is confirmed.",
    "deleted": "Your account is deleted. Thank you for having used tierkeeper.",
}


@attrs.frozen
class AccountViewer:
    """What the page frame shows of the signed-in customer."""

    email: str


def _notice(request: Request[Any, Any, Any]) -> str:
    return NOTICES.get(request.query_params.get("done", ""), "")


def _page(
    request: Request[Any, Any, Any],
    template: str,
    title: str,
    viewer: AccountViewer | None,
    status: int = 200,
    **context: Any,
) -> Response[str]:
    html = render(
        template,
        {
            "page": "account",
            "title": title,
            "viewer": viewer,
            "csrf_header": CSRF_HEADER,
            "csrf_cookie": CSRF_COOKIE,
            "csrf_field": CSRF_FORM_FIELD,
            "csrf_token": csrf_token(request) if viewer else None,
            "password_min_length": MIN_PASSWORD_LENGTH,
            "notice": context.pop("notice", _notice(request)),
            "error": context.pop("error", ""),
            **context,
        },
    )
    return Response(html, media_type=MediaType.HTML, headers=HTML_HEADERS, status_code=status)


async def _signed_in(request: Request[Any, Any, Any]) -> Principal | None:
    """The customer of the session (the CSRF token checked on a POST); None: log in."""
    try:
        return await provide_customer(request, services_of(request))
    except Unauthorized:
        return None


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _problem(error: DomainError) -> str:
    """What the page says about a refusal, in words for people."""
    if isinstance(error, TooManyAttempts):
        return f"Too many attempts; wait {error.retry_after_s} seconds and try again."
    return error.detail[:1].upper() + error.detail[1:] + "."


def _done(path: str, flag: str) -> Redirect:
    return Redirect(path=f"{path}?done={flag}", status_code=303)


class AccountPagesController(Controller):
    path = "/"
    include_in_schema = False

    async def _account(
        self, request: Request[Any, Any, Any], principal: Principal, **context: Any
    ) -> Response[str]:
        services = services_of(request)
        assert principal.user is not None
        return _page(
            request,
            "pages/account.html",
            "Account & security",
            AccountViewer(principal.user.email),
            sessions=await services.accounts.sessions(principal),
            verified_at=await services.account_changes.email_verified_at(principal),
            **context,
        )

    @get("/account")
    async def account(self, request: Request[Any, Any, Any]) -> Response[str] | Redirect:
        principal = await _signed_in(request)
        if principal is None:
            return Redirect(path="/login?next=/account", status_code=303)
        return await self._account(request, principal)

    @post("/account/sessions/{session_id:str}/revoke", status_code=303)
    async def revoke_session(
        self,
        request: Request[Any, Any, Any],
        session_id: Annotated[str, Parameter(max_length=64)],
    ) -> Response[str] | Redirect:
        principal = await _signed_in(request)
        if principal is None:
            return Redirect(path="/login", status_code=303)
        try:
            await services_of(request).accounts.revoke_session(principal, session_id)
        except DomainError as error:
            return await self._account(request, principal, error=_problem(error))
        return _done("/account", "session")

    @post("/account/verify-email", status_code=303)
    async def resend_verification(self, request: Request[Any, Any, Any]) -> Redirect:
        principal = await _signed_in(request)
        if principal is None:
            return Redirect(path="/login", status_code=303)
        await services_of(request).account_changes.resend_verification(principal)
        return _done("/account", "verification-sent")

    @post("/account/logout-all", status_code=303)
    async def logout_all(self, request: Request[Any, Any, Any]) -> Redirect:
        principal = await _signed_in(request)
        if principal is not None:
            await services_of(request).accounts.logout_everywhere(principal)
        return Redirect(path="/login", status_code=303, cookies=CLEARED_SESSION_COOKIES)

    @post("/account/password", status_code=303)
    async def change_password(self, request: Request[Any, Any, Any]) -> Response[str] | Redirect:
        principal = await _signed_in(request)
        if principal is None:
            return Redirect(path="/login", status_code=303)
        form = await _form(request)
        try:
            await services_of(request).account_changes.change_password(
                principal,
                Secret(form.get("current_password", "")),
                Secret(form.get("new_password", "")),
            )
        except (ValidationError, TooManyAttempts) as error:
            return await self._account(request, principal, error=_problem(error), notice="")
        return _done("/account", "password")

    @post("/account/email", status_code=303)
    async def change_email(self, request: Request[Any, Any, Any]) -> Response[str] | Redirect:
        principal = await _signed_in(request)
        if principal is None:
            return Redirect(path="/login", status_code=303)
        form = await _form(request)
        try:
            await services_of(request).account_changes.request_email_change(
                principal, Secret(form.get("password", "")), form.get("email", "")
            )
        except (ValidationError, TooManyAttempts) as error:
            return await self._account(request, principal, error=_problem(error), notice="")
        return _done("/account", "email")

    @post("/account/delete", status_code=303)
    async def delete_account(self, request: Request[Any, Any, Any]) -> Response[str] | Redirect:
        principal = await _signed_in(request)
        if principal is None:
            return Redirect(path="/login", status_code=303)
        form = await _form(request)
        try:
            await services_of(request).account_changes.delete_account(
                principal, Secret(form.get("password", ""))
            )
        except DomainError as error:
            return await self._account(request, principal, error=_problem(error), notice="")
        return Redirect(
            path="/account-deleted?done=deleted", status_code=303, cookies=CLEARED_SESSION_COOKIES
        )

    @get("/account-deleted")
    async def deleted(self, request: Request[Any, Any, Any]) -> Response[str]:
        return _page(request, "pages/account_code.html", "Account deleted", None, mode="done")

    @get("/forgot-password")
    async def forgot(self, request: Request[Any, Any, Any]) -> Response[str]:
        return _page(
            request, "pages/account_code.html", "Forgot your password?", None, mode="forgot"
        )

    @post("/forgot-password", status_code=303)
    async def ask_reset(self, request: Request[Any, Any, Any]) -> Redirect:
        form = await _form(request)
        await services_of(request).account_changes.request_password_reset(form.get("email", ""))
        return _done("/reset-password", "reset-asked")

    @get("/reset-password")
    async def reset(self, request: Request[Any, Any, Any]) -> Response[str]:
        return _page(request, "pages/account_code.html", "Reset your password", None, mode="reset")

    @post("/reset-password", status_code=303)
    async def confirm_reset(self, request: Request[Any, Any, Any]) -> Response[str] | Redirect:
        form = await _form(request)
        try:
            await services_of(request).account_changes.confirm_password_reset(
                Secret(form.get("token", "").strip()), Secret(form.get("password", ""))
            )
        except ValidationError as error:
            return _page(
                request, "pages/account_code.html", "Reset your password", None, 422,
                mode="reset", error=_problem(error), notice="",
            )  # fmt: skip
        return Redirect(path="/login?done=reset", status_code=303, cookies=CLEARED_SESSION_COOKIES)

    @get("/verify-email")
    async def verify(self, request: Request[Any, Any, Any]) -> Response[str]:
        return _page(request, "pages/account_code.html", "Confirm your email", None, mode="verify")

    @post("/verify-email", status_code=303)
    async def confirm_verify(self, request: Request[Any, Any, Any]) -> Response[str] | Redirect:
        form = await _form(request)
        try:
            await services_of(request).account_changes.verify_email(
                Secret(form.get("token", "").strip())
            )
        except (ValidationError, Conflict) as error:
            return _page(
                request, "pages/account_code.html", "Confirm your email", None, 422,
                mode="verify", error=_problem(error), notice="",
            )  # fmt: skip
        return _done("/verify-email", "verified")
