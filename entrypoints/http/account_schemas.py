"""Wire schemas of the account endpoints (sessions, password, reset, verification, email
change, deletion)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from entrypoints.http.schemas import Email, Password, Wire

OneTimeCode = Annotated[str, msgspec.Meta(max_length=128)]


class SessionOut(Wire):
    id: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime
    current: bool


class PasswordResetIn(Wire):
    email: Email


class PasswordResetConfirmIn(Wire):
    token: OneTimeCode
    password: Password


class VerifyEmailIn(Wire):
    token: OneTimeCode


class PasswordChangeIn(Wire):
    current_password: Password
    new_password: Password


class EmailChangeIn(Wire):
    password: Password
    email: Email


class AccountDeleteIn(Wire):
    password: Password
