"""Mail out: ``SmtpMailSender`` over SMTP (``smtp://`` with optional STARTTLS, or
``smtps://``) and ``EmlFileMailSender``, which writes each mail as an ``.eml`` file so the
embedded default works with no mail server. Both build the same MIME message: plain text
with an HTML alternative, the notification's stable Message-ID."""

from __future__ import annotations

import asyncio
import os
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, localtime
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import attrs

from domain.errors import ValidationError
from domain.notification_delivery import OutgoingMail
from domain.notifications import DeliveryFailed
from domain.secrets import Secret

SMTP_TIMEOUT_S = 20.0


def mime_message(mail: OutgoingMail) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = mail.subject
    message["From"] = mail.sender
    message["To"] = mail.recipient
    message["Message-ID"] = mail.message_id
    message["Date"] = format_datetime(localtime())
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


@attrs.frozen(repr=False)
class SmtpTarget:
    """Where and how to reach the SMTP server; the password stays a ``Secret``."""

    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: Secret | None

    def __repr__(self) -> str:
        return f"SmtpTarget({self.host!r}, {self.port}, tls={self.implicit_tls or self.starttls})"


def parse_smtp_url(url: Secret) -> SmtpTarget:
    """``smtp://[user:pass@]host:port[?starttls=1]`` or ``smtps://…`` (port 465 by default,
    else 25; 587 implies nothing: ask for STARTTLS explicitly)."""
    parts = urlsplit(url.reveal())
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValidationError(
            "TIERKEEPER_SMTP_URL must be smtp://host:port or smtps://host:port",
            field="TIERKEEPER_SMTP_URL",
        )
    query = parse_qs(parts.query)
    implicit = parts.scheme == "smtps"
    try:
        port = parts.port or (465 if implicit else 25)
    except ValueError:
        raise ValidationError(
            "TIERKEEPER_SMTP_URL has an invalid port", field="TIERKEEPER_SMTP_URL"
        ) from None
    return SmtpTarget(
        host=parts.hostname,
        port=port,
        implicit_tls=implicit,
        starttls=query.get("starttls", ["0"])[0].lower() in ("1", "true", "yes"),
        username=unquote(parts.username) if parts.username else None,
        password=Secret(unquote(parts.password)) if parts.password else None,
    )


@attrs.frozen
class SmtpMailSender:
    target: SmtpTarget

    async def send(self, mail: OutgoingMail) -> None:
        message = mime_message(mail)
        try:
            await asyncio.to_thread(self._send, message)
        except (OSError, smtplib.SMTPException) as exc:
            # the exception names the server's answer, never the credentials
            raise DeliveryFailed(f"SMTP: {type(exc).__name__}: {exc}") from None

    def _send(self, message: EmailMessage) -> None:
        target = self.target
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if target.implicit_tls:
            client = smtplib.SMTP_SSL(
                target.host, target.port, timeout=SMTP_TIMEOUT_S, context=context
            )
        else:
            client = smtplib.SMTP(target.host, target.port, timeout=SMTP_TIMEOUT_S)
        with client:
            if target.starttls:
                client.starttls(context=context)
            if target.username and target.password is not None:
                client.login(target.username, target.password.reveal())
            client.send_message(message)


@attrs.frozen
class EmlFileMailSender:
    """Each mail as ``<notification id>.eml`` under ``directory`` (0700), written whole
    (temporary file, then rename), so a reader never sees half a mail."""

    directory: Path

    async def send(self, mail: OutgoingMail) -> None:
        await asyncio.to_thread(self._write, mime_message(mail).as_bytes(), mail.message_id)

    def _write(self, content: bytes, message_id: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = message_id.strip("<>").partition("@")[0]
        target = self.directory / f"{name}.eml"
        temporary = target.with_suffix(".eml.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(temporary, target)
