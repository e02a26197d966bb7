"""Account mail as the deliverer actually sent it: the ``.eml`` files it writes under
``var/mail`` when no SMTP server is configured (the tests' default), read back like a
customer's mailbox, for the one-time code in a reset or verification link."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path

SUBJECTS = {
    "password_reset": "[tierkeeper] Reset your password",
    "verify_email": "[tierkeeper] Confirm your email address",
}
"""The subject of each account mail kind that carries a code."""

CODE = re.compile(r"#code=(\S+)")


def delivered(mail_dir: Path) -> list[EmailMessage]:
    """Every mail written under ``mail_dir``, oldest first."""
    paths = sorted(mail_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    return [
        message
        for path in paths
        if isinstance(
            message := email.message_from_bytes(path.read_bytes(), policy=email.policy.default),
            EmailMessage,
        )
    ]


def code_in(message: EmailMessage) -> str:
    """The code in the mail's one-click link (its ``#code=`` fragment)."""
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    found = CODE.search(body.get_content())
    assert found is not None, "the mail has no one-time link"
    return found.group(1)


def mailed_code(mail_dir: Path, recipient: str, kind: str) -> str:
    """The code of the newest delivered mail of ``kind`` to ``recipient``."""
    mails = [
        m for m in delivered(mail_dir) if m["To"] == recipient and m["Subject"] == SUBJECTS[kind]
    ]
    assert mails, f"no {kind} mail was delivered to {recipient}"
    return code_in(mails[-1])
