"""What a customer changes about its account after signup: the password (the other sessions
end), a forgotten password (a mailed single-use code, 30 minutes), the email address (a code
mailed to the new address proves it), and the account itself (deleted with its password).

Deleting an account cancels the subscription at once, deletes the key ciphertext and the
OpenClaw files, ends every session and removes the user, and with it the email address; the
tenant row stays, canceled, so billing and usage records keep their meaning without naming
anyone.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from domain.accounts import AccountMail, AccountMailKind, OneTimePurpose
from domain.errors import PaymentProviderError, Unauthorized, ValidationError
from domain.ports import (
    AccountRepository,
    AuthTokenRepository,
    Clock,
    ConfigRemover,
    CredentialRepository,
    PasswordHasher,
    SubscriptionCanceler,
    TenantRepository,
)
from domain.secrets import Secret
from domain.tenants import SubscriptionStatus, User
from domain.throttle import wait_before_next
from domain.use_cases.accounts import (
    LOGIN_PATH,
    PASSWORD_RESET_VALID_FOR,
    RESET_PASSWORD_PATH,
    Accounts,
    Principal,
    Throttled,
    check_password,
    hash_token,
    normalise_email,
    throttle_key,
)

INVALID_CODE = "the code is wrong, used or expired; ask for a new one"


@attrs.frozen
class AccountChanges:
    accounts: Accounts
    tenants: TenantRepository
    auth_tokens: AuthTokenRepository
    account_store: AccountRepository
    hasher: PasswordHasher
    credentials: CredentialRepository
    config_remover: ConfigRemover
    canceler: SubscriptionCanceler | None
    clock: Clock
    public_url: str

    async def _user(self, principal: Principal) -> User:
        if principal.user is None:
            raise Unauthorized("a customer session is required")
        user = await self.tenants.user(principal.user.id)
        if user is None:
            raise Unauthorized("the account no longer exists")
        return user

    async def _confirm_password(self, user: User, password: Secret, field: str) -> None:
        await self.accounts.confirm_password(user, password, field)

    async def change_password(self, principal: Principal, current: Secret, new: Secret) -> None:
        """With the current password, set a new one; every other session of the customer
        ends and the address is told: the three commit together or not at all."""
        user = await self._user(principal)
        check_password(new)
        await self._confirm_password(user, current, "current_password")
        password_hash = await self.hasher.hash(new)
        async with self.accounts.mailing(
            self._mail(AccountMailKind.PASSWORD_CHANGED, user, LOGIN_PATH)
        ) as tx:
            await tx.accounts.set_password_hash(user.id, password_hash)
            await tx.auth_tokens.revoke_subject(
                user.id, self.clock.now(), keep=principal.token_hash
            )

    async def request_password_reset(self, email: str) -> None:
        """Mail a reset code (single use, 30 minutes) when the address has an account; the
        caller learns nothing either way. Requests for one address beyond a few wait like
        failed logins, silently: nobody can flood a mailbox through us."""
        try:
            address = normalise_email(email)
        except ValidationError:
            return
        now = self.clock.now()
        key = throttle_key(Throttled.RESET_MAIL, address)
        if wait_before_next(await self.accounts.attempts.get(key), now) > timedelta(0):
            return
        await self.accounts.count_failure(key, now)
        user = await self.tenants.user_by_email(address)
        if user is None:
            return
        code, token = self.accounts.one_time(
            OneTimePurpose.PASSWORD_RESET, user.id, user.email, PASSWORD_RESET_VALID_FOR
        )
        mail = self._mail(AccountMailKind.PASSWORD_RESET, user, RESET_PASSWORD_PATH, code)
        async with self.accounts.mailing(mail) as tx:
            await tx.accounts.add_one_time_token(token)

    async def confirm_password_reset(self, code: Secret, new: Secret) -> None:
        """Set the new password with a mailed reset code, once; every session ends. A new
        password that breaks the rules does not use the code up."""
        check_password(new)
        token = await self.account_store.consume_one_time_token(
            hash_token(code.reveal()), OneTimePurpose.PASSWORD_RESET, self.clock.now()
        )
        user = None if token is None else await self.tenants.user(token.user_id)
        if token is None or user is None or user.email != token.email:
            raise ValidationError(INVALID_CODE, field="token")
        now = self.clock.now()
        await self.account_store.set_password_hash(user.id, await self.hasher.hash(new))
        await self.auth_tokens.revoke_subject(user.id, now)
        await self.account_store.mark_email_verified(user.id, now)

    async def request_email_change(
        self, principal: Principal, password: Secret, new_email: str
    ) -> None:
        """With the password, mail a code to the new address; the address changes when the
        code comes back (``verify_email``)."""
        user = await self._user(principal)
        address = normalise_email(new_email)
        await self._confirm_password(user, password, "password")
        await self.accounts.send_verification(user, address)

    async def email_verified_at(self, principal: Principal) -> datetime | None:
        """When the customer's current address was confirmed (None: not yet)."""
        user = await self._user(principal)
        return await self.account_store.email_verified_at(user.id)

    async def resend_verification(self, principal: Principal) -> None:
        """A new code for the current address, unless it is confirmed already; resends to
        one address are limited like reset mails."""
        user = await self._user(principal)
        if await self.account_store.email_verified_at(user.id) is not None:
            return
        now = self.clock.now()
        key = throttle_key(Throttled.VERIFY_MAIL, user.email)
        if wait_before_next(await self.accounts.attempts.get(key), now) > timedelta(0):
            return
        await self.accounts.count_failure(key, now)
        await self.accounts.send_verification(user)

    async def verify_email(self, code: Secret) -> None:
        """A mailed verification code, once: the address it was sent to becomes the user's
        verified address (an address taken meanwhile is a ``Conflict``)."""
        now = self.clock.now()
        token = await self.account_store.consume_one_time_token(
            hash_token(code.reveal()), OneTimePurpose.VERIFY_EMAIL, now
        )
        user = None if token is None else await self.tenants.user(token.user_id)
        if token is None or user is None:
            raise ValidationError(INVALID_CODE, field="token")
        if token.email != user.email:
            await self.account_store.set_email(user.id, token.email)
        await self.account_store.mark_email_verified(user.id, now)

    async def delete_account(self, principal: Principal, password: Secret) -> None:
        """With the password: the subscription is canceled at once (a failure there stops
        everything before anything is deleted), then the key ciphertext, the OpenClaw
        files, the user and with it every token of the user go (``delete_user``); the tenant
        stays as a canceled record."""
        user = await self._user(principal)
        await self._confirm_password(user, password, "password")
        tenant = await self.tenants.get(user.tenant_id)
        if tenant is not None and tenant.stripe_subscription_id:
            if self.canceler is None:
                raise PaymentProviderError(
                    "the subscription cannot be canceled now; try again later"
                )
            await self.canceler.cancel_now(tenant.stripe_subscription_id)
        await self.credentials.delete(user.tenant_id)
        await self.config_remover.remove(user.tenant_id)
        if tenant is not None:
            await self.tenants.save(attrs.evolve(tenant, status=SubscriptionStatus.CANCELED))
        await self.account_store.delete_user(user.id)

    def _mail(
        self, kind: AccountMailKind, user: User, path: str, code: Secret | None = None
    ) -> AccountMail:
        return AccountMail(kind, user.email, user.tenant_id, self.public_url + path, code)
