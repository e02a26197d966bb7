"""How a notification leaves: the mail (plain text plus simple HTML) and the customer's
webhook (JSON signed per the Standard Webhooks specification)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
from datetime import datetime

import attrs

from domain.errors import ValidationError
from domain.notifications import PRODUCT_NAME, Message, NotificationId, StoredNotification
from domain.secrets import Secret

WEBHOOK_SECRET_PREFIX = "whsec_"


@attrs.frozen(repr=False)
class OutgoingMail:
    """One mail. ``message_id`` derives from the notification id, so a mail sent twice (at
    least once delivery) is recognisably the same mail."""

    message_id: str
    sender: str
    recipient: str
    subject: str
    text: str
    html: str

    def __repr__(self) -> str:
        return f"OutgoingMail(message_id={self.message_id!r}, subject={self.subject!r})"


def absolute_link(public_url: str, link: str) -> str:
    """A path on the site as a full URL; a link that already is one stays as it is."""
    if link.startswith(("http://", "https://")):
        return link
    return public_url.rstrip("/") + (link or "/")


def render_mail(
    message: Message,
    notification_id: NotificationId,
    sender: str,
    recipient: str,
    link: str,
    settings_link: str | None = None,
) -> OutgoingMail:
    """The product name in the subject and the footer, the body, and one link back to the
    relevant page; the HTML is the same text, escaped, with the link as a button. A one-time
    link carrying its code after ``#code=`` also shows the code, for a page without
    JavaScript (where the code is pasted). The footer of a notice (usage, billing, key)
    names the notification settings at ``settings_link``; account mail (``settings_link``
    None) is sent whatever those settings, so its footer says what it is about instead."""
    domain = sender.rpartition("@")[2] or "localhost"
    code = link.partition("#code=")[2]
    paste = f"If the page does not fill in your code, paste it there: {code}" if code else ""
    why = mail_footer(settings_link)
    text = (
        f"{message.body}\n\n{message.action}: {link}\n\n{paste + chr(10) * 2 if paste else ''}"
        f"-- \n{PRODUCT_NAME}: the team behind your agent. {why}\n"
    )
    body = html.escape(message.body)
    markup = (
        '<!doctype html><html><body style="font-family:sans-serif;max-width:36em">'
        f'<h1 style="font-size:1.3em">{html.escape(message.title)}</h1>'
        f"<p>{body}</p>"
        f'<p><a href="{html.escape(link)}" style="display:inline-block;'
        "padding:.5em 1em;background:#1d4ed8;color:#fff;text-decoration:none;"
        f'border-radius:4px">{html.escape(message.action)}</a></p>'
        f"{f'<p>{html.escape(paste)}</p>' if paste else ''}"
        f'<hr><p style="color:#555;font-size:.9em">{PRODUCT_NAME}: the team behind your '
        f"agent. {_footer_html(settings_link)}</p></body></html>"
    )
    return OutgoingMail(
        message_id=f"<{notification_id}@{domain}>",
        sender=sender,
        recipient=recipient,
        subject=f"[{PRODUCT_NAME}] {message.title}",
        text=text,
        html=markup,
    )


NOTICE_FOOTER = "You get this mail because mail notices are on in your notification settings:"
ACCOUNT_FOOTER = (
    "This mail is about your account itself (its password, address or sign-in), so it "
    "cannot be turned off."
)


def mail_footer(settings_link: str | None) -> str:
    """Why the reader got the mail: a notice names the settings that turn it off; account
    mail cannot be turned off and says so."""
    return ACCOUNT_FOOTER if settings_link is None else f"{NOTICE_FOOTER} {settings_link}"


def _footer_html(settings_link: str | None) -> str:
    if settings_link is None:
        return html.escape(ACCOUNT_FOOTER)
    link = html.escape(settings_link)
    return f'{html.escape(NOTICE_FOOTER)} <a href="{link}">{link}</a>'


def webhook_payload(
    note: StoredNotification, message: Message, link: str, sent_at: datetime
) -> bytes:
    """The JSON body: ``type`` ``notification.<kind>``, the instant, and the notification
    (the same fields as the API's list, plus the link and the facts of a threshold)."""
    facts = note.facts
    data: dict[str, object] = {
        "id": note.id,
        "tenant_id": facts.tenant_id,
        "kind": note.api_kind(),
        "title": message.title,
        "body": message.body,
        "link": link,
        "created_at": note.created_at.isoformat(),
    }
    if facts.percent is not None:
        data.update(
            window=facts.window_key, percent=facts.percent, used=facts.used, limit=facts.limit
        )
    document = {
        "type": f"notification.{note.api_kind()}",
        "timestamp": sent_at.isoformat(),
        "data": data,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _secret_bytes(secret: Secret) -> bytes:
    value = secret.reveal()
    if not value.startswith(WEBHOOK_SECRET_PREFIX):
        raise ValidationError("a webhook secret starts with whsec_", field="webhook_secret")
    return base64.b64decode(value[len(WEBHOOK_SECRET_PREFIX) :])


def new_webhook_secret(random_bytes: bytes) -> Secret:
    """A signing secret in the specification's form: ``whsec_`` and base64 of 24+ bytes."""
    if len(random_bytes) < 24:
        raise ValueError("a webhook secret needs at least 24 random bytes")
    return Secret(WEBHOOK_SECRET_PREFIX + base64.b64encode(random_bytes).decode())


def webhook_headers(
    secret: Secret, message_id: NotificationId, timestamp: int, body: bytes
) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``:
    ``v1,`` and base64 of HMAC-SHA256 over ``id.timestamp.body`` with the decoded secret."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_bytes(secret), signed, hashlib.sha256).digest()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        "content-type": "application/json",
    }
